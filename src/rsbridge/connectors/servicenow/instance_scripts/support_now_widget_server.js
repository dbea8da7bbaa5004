// Widget "rsbridge Get Support Now", server script: the issue list, and on "start" the
// session's start URL for the portal user's own incident (rsbridge checks the caller).
(function () {
    var api = new RsbridgeActions();
    data.ticket = String((input && input.ticket) || $sp.getParameter('sys_id') || '');
    data.issues = [];
    data.error = '';
    data.url = '';
    if (input && input.action === 'start') {
        // GlideRecordSecure: the portal user's own rights decide what they can open.
        var task = new GlideRecordSecure('task');
        if (!data.ticket || !task.get(data.ticket)) {
            data.error = gs.getMessage('That incident is not yours or does not exist.');
            return;
        }
        var started = api.supportNow(task, input.issue, input.details);
        if (started.ok) {
            data.url = started.data.url;
        } else {
            data.error = started.message;
        }
        return;
    }
    var issues = api.issues();
    if (issues.ok) {
        data.issues = issues.data.issues;
    } else {
        data.error = 'Something went wrong while attempting to load issues: ' + issues.message;
    }
})();
