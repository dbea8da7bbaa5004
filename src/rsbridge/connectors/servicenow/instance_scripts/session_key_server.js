// UI action "Session Key" (task form): a session key for this task from rsbridge.
(function () {
    var api = new RsbridgeActions();
    var answer = api.sessionKey(current, false);
    if (!answer.ok) {
        gs.addErrorMessage('No session key: ' + api.escape(answer.message));
    } else if (answer.data.short_key) {
        gs.addInfoMessage(api.keyMessage(answer.data));
        if (answer.data.email && answer.data.email.sent === false) {
            gs.addErrorMessage('The key was not e-mailed: ' + api.escape(answer.data.email.error));
        }
    } else {
        // Use Rep Console for Session Keys: the console makes the key in its own dialog.
        gs.addInfoMessage('Opening the representative console\'s Generate Session Key dialog.');
        action.setRedirectURL(answer.data.console_url);
        return;
    }
    action.setRedirectURL(current);
})();
