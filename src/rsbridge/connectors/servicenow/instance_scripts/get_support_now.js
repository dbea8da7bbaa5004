// UI action "Get Support Now" (incident form, for its caller): start a session with a
// representative about this incident, for the first issue rsbridge offers (the order of
// the integration's self_service_issues; the portal widget lets the user choose).
(function () {
    var api = new RsbridgeActions();
    var answer = api.issues();
    if (answer.ok && !answer.data.issues.length) {
        answer = {ok: false, message: 'no support issue is offered'};
    }
    if (answer.ok) {
        var issue = answer.data.issues[0].code_name;
        answer = api.supportNow(current, issue, current.getValue('short_description'));
    }
    if (!answer.ok) {
        gs.addErrorMessage('Support could not be started: ' + api.escape(answer.message));
        action.setRedirectURL(current);
        return;
    }
    action.setRedirectURL(answer.data.url);
})();
