// UI action "E-mail Session Key" (task form link): the key of this window, e-mailed to the caller.
(function () {
    var api = new RsbridgeActions();
    var answer = api.sessionKey(current, true);
    if (!answer.ok) {
        gs.addErrorMessage('No session key: ' + api.escape(answer.message));
    } else if (answer.data.email && answer.data.email.sent) {
        gs.addInfoMessage(api.keyMessage(answer.data));
    } else {
        var why = answer.data.email ? answer.data.email.error : 'rsbridge sent no e-mail';
        gs.addErrorMessage('Session key ' + api.escape(answer.data.short_key) +
            ' was not e-mailed: ' + api.escape(why));
    }
    action.setRedirectURL(current);
})();
