// UI action "Load Issues" (rsbridge's system properties): the connectivity test, from
// the instance through rsbridge to the appliance.
(function () {
    var api = new RsbridgeActions();
    var answer = api.issues();
    if (answer.ok) {
        gs.addInfoMessage(api.issuesMessage(answer.data));
    } else {
        gs.addErrorMessage('Something went wrong while attempting to load issues: ' +
            api.escape(answer.message));
    }
    action.setRedirectURL(current);
})();
