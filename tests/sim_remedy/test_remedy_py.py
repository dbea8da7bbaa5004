"""The published ``remedy-py`` client (1.0.0) drives the simulated server end to end.

remedy-py builds ``http://<host>:<port>/api`` URLs, logs in with a form body, decodes the
raw token text, sends ``AR-JWT``, creates with ``?fields=values(...)`` and reads the JSON
answer, and expects 204 from update, delete and logout.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from remedy_py.RemedyAPIClient import RemedyClient

from rsbridge.sim.remedy.seed import INTEGRATION
from tests.sim_remedy.conftest import AR


def _client(ar: AR, password: str = INTEGRATION[1]) -> RemedyClient:
    parts = urlsplit(ar.url)
    # verify=False selects remedy-py's plain-HTTP base URL.
    return RemedyClient(parts.hostname, INTEGRATION[0], password, port=parts.port, verify=False)


def test_remedy_py_creates_reads_updates_and_deletes(ar: AR) -> None:
    client = _client(ar)
    created, status = client.create_form_entry(
        "HPD:IncidentInterface_Create",
        {
            "First_Name": "Allen",
            "Last_Name": "Allbrook",
            "Description": "Created by remedy-py",
            "Impact": "2-Significant/Large",
            "Urgency": "2-High",
            "Status": "Assigned",
            "Reported Source": "Web",
            "Service_Type": "User Service Restoration",
        },
        ["Incident Number", "Create Date"],
    )
    assert status == 201
    number = created["values"]["Incident Number"]
    assert number.startswith("INC")
    entry, status = client.get_form_entry("HPD:Help Desk", number)
    assert status == 200 and entry["values"]["Description"] == "Created by remedy-py"
    updated, status = client.update_form_entry("HPD:Help Desk", number, {"Status": "Pending"})
    assert status == 204 and updated["values"]["Status"] == "Pending"
    assert client.delete_form_entry("HPD:Help Desk", number) == ({}, 204)
    with pytest.raises(requests.HTTPError) as caught:
        client.get_form_entry("HPD:Help Desk", number)
    assert caught.value.response.status_code == 404
    assert caught.value.response.json()[0]["messageNumber"] == 302
    assert client.release_token() == ({}, 204)
    assert ar.state.requests[-1].path == "/api/jwt/logout"


def test_remedy_py_sees_a_refused_login(ar: AR) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        _client(ar, password="wrong")
    assert caught.value.response.status_code == 401
