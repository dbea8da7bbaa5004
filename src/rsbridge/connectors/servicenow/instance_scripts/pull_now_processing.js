// UI page rsbridge_pull_now, processing script: "Pull now" asks rsbridge to import the
// sessions that ended since its last pull (24 hours back on the first).
(function () {
    var api = new RsbridgeActions();
    if (!gs.hasRole('rsbridge_admin')) {
        gs.addErrorMessage('Pull now needs the role rsbridge_admin.');
    } else {
        var answer = api.pull();
        if (answer.ok) {
            gs.addInfoMessage('rsbridge queued ' + answer.data.sessions_queued + ' of ' +
                answer.data.sessions_listed + ' session(s) that ended since ' +
                api.escape(answer.data.since) + '; they appear as they are imported.');
        } else {
            gs.addErrorMessage('Pull now failed: ' + api.escape(answer.message));
        }
    }
    response.sendRedirect('rsbridge_pull_now.do');
})();
