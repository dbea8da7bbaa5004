// UI action "Jump to Configuration Item": on a task, its configuration item; on a
// configuration item, the item itself. The representative console opens the Jump.
(function () {
    var api = new RsbridgeActions();
    var onCi = current.getRecordClassName().indexOf('cmdb_ci') === 0;
    var answer = onCi ? api.jump(null, current.getUniqueValue()) : api.jump(current, '');
    if (!answer.ok) {
        gs.addErrorMessage('No Jump: ' + api.escape(answer.message));
        action.setRedirectURL(current);
        return;
    }
    gs.addInfoMessage('Jumping to ' + api.escape(answer.data.configuration_item.name) +
        ' in the representative console.');
    action.setRedirectURL(answer.data.url);
})();
