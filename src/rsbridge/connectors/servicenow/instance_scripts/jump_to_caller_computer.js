// UI action "Jump to Caller's Computer" (incident form): the computer assigned to the
// caller in the CMDB, as the vendor's Incident Caller Jump macro does.
(function () {
    var api = new RsbridgeActions();
    var computer = new GlideRecord('cmdb_ci_computer');
    computer.addQuery('assigned_to', current.getValue('caller_id'));
    computer.orderByDesc('sys_updated_on');
    computer.setLimit(1);
    computer.query();
    if (!computer.next()) {
        gs.addErrorMessage('No Jump: the caller has no computer in the CMDB ' +
            '(a cmdb_ci_computer whose Assigned to is the caller).');
        action.setRedirectURL(current);
        return;
    }
    var answer = api.jump(current, computer.getUniqueValue());
    if (!answer.ok) {
        gs.addErrorMessage('No Jump: ' + api.escape(answer.message));
        action.setRedirectURL(current);
        return;
    }
    gs.addInfoMessage('Jumping to ' + api.escape(answer.data.configuration_item.name) +
        ' in the representative console.');
    action.setRedirectURL(answer.data.url);
})();
