// Widget "rsbridge Get Support Now", client controller: the user picks an issue; the
// server script asks rsbridge for the session's start URL, which the browser opens.
api.controller = function ($window) {
    var c = this;
    c.issue = c.data.issues && c.data.issues.length === 1 ? c.data.issues[0].code_name : '';
    c.details = '';
    c.busy = false;
    c.start = function () {
        c.busy = true;
        c.server.get({action: 'start', ticket: c.data.ticket, issue: c.issue, details: c.details})
            .then(function (response) {
                c.busy = false;
                if (response.data.url) {
                    $window.location.href = response.data.url;
                } else {
                    c.data.error = response.data.error;
                }
            });
    };
};
