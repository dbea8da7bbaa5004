// UI action "Get Support Now" (incident form, for its caller): start a session with a
// representative about this incident.
(function () {
    var api = new RsbridgeActions();
    var answer = api.supportNow(current, '', '');
    if (!answer.ok) {
        gs.addErrorMessage('Support could not be started: ' + api.escape(answer.message));
        action.setRedirectURL(current);
        return;
    }
    action.setRedirectURL(answer.data.url);
})();
