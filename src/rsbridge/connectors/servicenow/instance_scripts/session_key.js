// UI action "Session Key" (task form, client side): onclick rsbridgeSessionKey(). The key
// is asked for through GlideAjax (RsbridgeActionsAjax) and shown in a GlideModal with its
// URL, expiry and an "E-mail the key" button. One request id per dialog opening: a double
// click, and "E-mail the key", repeat the same request (one key, one work note, one mail).
var rsbridgeKeyDialog = null;

function rsbridgeSessionKey() {
    if (rsbridgeKeyDialog === null) {
        rsbridgeKeyDialog = {request: rsbridgeRequestId(), modal: null};
    }
    rsbridgeAskKey(false);
}

function rsbridgeEmailSessionKey() {
    if (rsbridgeKeyDialog !== null) {
        rsbridgeAskKey(true);
    }
}

function rsbridgeCloseSessionKey() {
    if (rsbridgeKeyDialog !== null && rsbridgeKeyDialog.modal !== null) {
        rsbridgeKeyDialog.modal.destroy();
    }
    rsbridgeKeyDialog = null;
}

function rsbridgeRequestId() {
    var id = new Date().getTime().toString(36);
    while (id.length < 24) {
        id += Math.floor(Math.random() * 36).toString(36);
    }
    return id;
}

function rsbridgeAskKey(email) {
    var dialog = rsbridgeKeyDialog;
    var ajax = new GlideAjax('RsbridgeActionsAjax');
    ajax.addParam('sysparm_name', 'sessionKey');
    ajax.addParam('sysparm_task', g_form.getUniqueValue());
    ajax.addParam('sysparm_request', dialog.request);
    ajax.addParam('sysparm_email', email ? 'true' : 'false');
    ajax.getXMLAnswer(function (text) {
        if (rsbridgeKeyDialog !== dialog) {
            return; // closed while asking: nothing to show
        }
        var answer;
        try {
            answer = JSON.parse(text);
        } catch (e) {
            answer = {ok: false, message: 'rsbridge\'s script include gave no answer.'};
        }
        if (answer.ok && answer.console_url) {
            rsbridgeKeyDialog = null;
            g_navigation.open(answer.console_url, '_blank');
            return;
        }
        rsbridgeShowKey(dialog, answer);
    });
}

function rsbridgeEscape(value) {
    return String(value === undefined || value === null ? '' : value)
        .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function rsbridgeShowKey(dialog, answer) {
    var e = rsbridgeEscape;
    var html = '<div class="rsbridge-session-key" style="padding:15px">';
    if (!answer.ok) {
        html += '<p class="text-danger">No session key: ' + e(answer.message) + '</p>';
    } else {
        html += '<p>Session key <b class="rsbridge-key">' + e(answer.short_key) + '</b> for ' +
            e(answer.number) + ' (valid until ' + e(answer.expires) + ').</p>';
        var url = String(answer.key_url || '');
        // Only a web address becomes a link (never javascript: or data:).
        if (/^https?:\/\//i.test(url)) {
            html += '<p>The customer opens <a href="' + e(url) + '" target="_blank" ' +
                'rel="noopener noreferrer">' + e(url) + '</a></p>';
        } else {
            html += '<p>The customer opens ' + e(url) + '</p>';
        }
        if (answer.email && answer.email.sent) {
            html += '<p>E-mailed to ' + e(answer.email.to) + '.</p>';
        } else if (answer.email) {
            html += '<p class="text-danger">Not e-mailed: ' + e(answer.email.error) + '</p>';
        }
        html += '<button type="button" class="btn btn-default" ' +
            'onclick="rsbridgeEmailSessionKey()">E-mail the key</button> ';
    }
    html += '<button type="button" class="btn btn-primary" ' +
        'onclick="rsbridgeCloseSessionKey()">Close</button></div>';
    if (dialog.modal === null) {
        // readOnly: no close button of its own, so Close (which ends this request id)
        // is the way out.
        dialog.modal = new GlideModal('rsbridge_session_key', true, 600);
        dialog.modal.setTitle('Session Key');
    }
    dialog.modal.renderWithContent(html);
}
