"""Answers checked against facts of recorded real answers.

Source: ``demisto/content: Packs/BmcITSM/Integrations/BmcITSM/test_data/list_worklogs.json``
(a work-log search recorded from a Helix instance; itsm-apis.md 3.3). The facts are transcribed
here, not the file.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from tests.sim_remedy.conftest import AR

AR_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000")


def test_work_log_search_has_the_recorded_shape(ar: AR) -> None:
    number = ar.demo.ids["printer"]
    q = f"'Incident Number'=\"{number}\""
    answer = ar.request("GET", "/HPD:WorkLog", params={"q": q})
    assert answer.status_code == 200
    body = answer.json()
    # Top level: entries, numMatches (null), _links.self whose href carries the query.
    assert set(body) == {"entries", "numMatches", "_links"}
    assert body["numMatches"] is None
    assert unquote_plus(body["_links"]["self"][0]["href"]).endswith(f"/entry/HPD:WorkLog?q={q}")
    entry = body["entries"][0]
    assert set(entry) == {"values", "_links"}
    values = entry["values"]
    log_id = values["Work Log ID"]
    assert re.fullmatch(r"WLG\d{12}", log_id)
    assert entry["_links"]["self"][0]["href"] == f"{ar.url}/api/arsys/v1/entry/HPD:WorkLog/{log_id}"
    for name in ("Submit Date", "Last Modified Date"):
        assert AR_DATE.fullmatch(values[name]), name
    assert values["Incident Number"] == number
    assert values["Work Log Type"] == "General Information"
    assert values["Status"] == "Enabled"
    assert values["Secure Work Log"] in ("Yes", "No")
    assert values["View Access"] in ("Internal", "Public")
    assert values["Detailed Description"] is None
    assert values["Submitter"] and values["Last Modified By"]


def test_the_v1_0_base_path_answers_too(ar: AR) -> None:
    number = ar.demo.ids["vpn"]
    answer = ar.http.get(
        f"{ar.url}/api/arsys/v1.0/entry/HPD:Help%20Desk/{number}",
        headers={"Authorization": f"AR-JWT {ar.token}"},
    )
    assert answer.status_code == 200
    assert answer.json()["values"]["Incident Number"] == number
