// UI page rsbridge_related_lists, processing script: adds the Remote Support Session list
// to the default view of the task, configuration item, call and interaction forms. It only
// adds an entry to a form's existing related lists (an update set carrying a form's whole
// list would replace what the form has); a form without lists of its own is reported.
(function () {
    // [form table, related list] pairs, from rsbridge's configuration.
    var FORMS = "{{forms}}";
    if (!gs.hasRole('admin')) {
        gs.addErrorMessage('Adding related lists needs the role admin.');
        response.sendRedirect('rsbridge_related_lists.do');
        return;
    }
    var added = [];
    var present = [];
    var skipped = [];
    for (var i = 0; i < FORMS.length; i++) {
        var form = FORMS[i][0];
        var related = FORMS[i][1];
        if (!new GlideRecord(form).isValid()) {
            skipped.push(form + ' (no such table)');
            continue;
        }
        var list = new GlideRecord('sys_ui_related_list');
        list.addQuery('name', form);
        list.addQuery('view', 'Default view');
        list.query();
        if (!list.next()) {
            skipped.push(form + ' (no related lists of its own: add it with Configure > Related Lists)');
            continue;
        }
        var entries = new GlideRecord('sys_ui_related_list_entry');
        entries.addQuery('list_id', list.getUniqueValue());
        entries.query();
        var count = 0;
        var found = false;
        while (entries.next()) {
            count++;
            if (entries.getValue('related_list') === related) {
                found = true;
            }
        }
        if (found) {
            present.push(form);
            continue;
        }
        var entry = new GlideRecord('sys_ui_related_list_entry');
        entry.initialize();
        entry.setValue('list_id', list.getUniqueValue());
        entry.setValue('related_list', related);
        entry.setValue('position', count);
        entry.insert();
        added.push(form);
    }
    gs.addInfoMessage('Remote Support Session list added to: ' + (added.join(', ') || 'none') +
        '; already there: ' + (present.join(', ') || 'none') + '.');
    if (skipped.length) {
        gs.addErrorMessage('Not added: ' + GlideStringUtil.escapeHTML(skipped.join('; ')) + '.');
    }
    response.sendRedirect('rsbridge_related_lists.do');
})();
