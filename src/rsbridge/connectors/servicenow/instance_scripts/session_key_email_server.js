// UI action "E-mail Session Key" (Agent Workspace): the task's session key, e-mailed to its
// caller. Workspaces run no GlideModal dialog, so this is the workspace's "E-mail the key":
// within the same time window it repeats the "Session Key" button's request, so the key
// already shown is the one e-mailed, and a second click sends no second e-mail.
(function () {
    var api = new RsbridgeActions();
    var answer = api.sessionKey(current, true);
    if (!answer.ok) {
        gs.addErrorMessage('No session key: ' + api.escape(answer.message));
    } else if (answer.data.short_key) {
        gs.addInfoMessage(api.keyMessage(answer.data));
        var mail = answer.data.email;
        if (mail && mail.sent) {
            gs.addInfoMessage('E-mailed to ' + api.escape(mail.to) + '.');
        } else {
            gs.addErrorMessage('The key was not e-mailed: ' +
                api.escape(mail ? mail.error : 'rsbridge did not send it'));
        }
    } else {
        // Use Rep Console for Session Keys: the console makes (and e-mails) the key.
        gs.addInfoMessage('Opening the representative console\'s Generate Session Key dialog.');
        action.setRedirectURL(answer.data.console_url);
        return;
    }
    action.setRedirectURL(current);
})();
