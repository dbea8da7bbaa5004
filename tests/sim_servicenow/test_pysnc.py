"""The published client library ``pysnc`` (ServiceNow's own) against the simulator.

pysnc refuses ``http://`` instance URLs (``pysnc.utils.get_instance``); the client
module imports that function by name, so replacing ``pysnc.client.get_instance`` lets
it talk to the loopback server. Everything else is the stock client.
"""

from __future__ import annotations

from typing import Any

import pysnc
import pysnc.client
import pytest

from rsbridge.sim.servicenow.seed import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.sim_servicenow.conftest import Instance


@pytest.fixture
def client(sn: Instance, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(pysnc.client, "get_instance", lambda instance: instance.rstrip("/"))
    return pysnc.ServiceNowClient(sn.url, sn.demo.integration, auto_retry=False)


def test_query(sn: Instance, client: Any) -> None:
    gr = client.GlideRecord("incident")
    gr.add_query("active", "true")
    gr.add_query("state", "IN", "1,2")
    gr.order_by("number")
    gr.query()
    assert len(gr) == 3
    rows = [(r.number.get_value(), r.caller_id.get_display_value()) for r in gr]
    assert rows == [
        ("INC0010001", "Abel Tuter"),
        ("INC0010002", "Beth Anglin"),
        ("INC0010003", "Charlie Whitherspoon"),
    ]
    gr = client.GlideRecord("incident")
    assert gr.get("number", "INC0010004")
    assert gr.state.get_value() == "6" and gr.state.get_display_value() == "Resolved"
    assert gr.get_display_value("assigned_to") == "John Smith"


def test_paging_in_batches(sn: Instance, client: Any) -> None:
    gr = client.GlideRecord("sys_user", batch_size=3)
    gr.query()
    names = [r.user_name.get_value() for r in gr]
    assert len(names) == 10 and len(set(names)) == 10
    pages = [r for r in sn.state.requests if r.path == "/api/now/table/sys_user"]
    assert len(pages) == 4


def test_insert_update_delete(sn: Instance, client: Any) -> None:
    gr = client.GlideRecord("incident")
    gr.initialize()
    gr.short_description = "Created by pysnc"
    gr.caller_id = sn.ids["abel.tuter"]
    gr.work_notes = "note from pysnc"
    sys_id = gr.insert()
    assert sys_id and len(sys_id) == 32
    assert gr.number.get_value() == "INC0010006"
    stored = sn.state.get("incident", str(sys_id))
    assert stored is not None and stored["caller_id"] == sn.ids["abel.tuter"]
    assert [e["value"] for e in sn.state.journal(str(sys_id))] == ["note from pysnc"]

    gr = client.GlideRecord("incident")
    assert gr.get(str(sys_id))
    gr.state = "2"
    gr.update()
    assert sn.state.get("incident", str(sys_id))["state"] == "2"  # type: ignore[index]
    assert gr.delete()
    assert sn.state.get("incident", str(sys_id)) is None
    assert not client.GlideRecord("incident").get(str(sys_id))


def test_update_and_delete_multiple_use_the_batch_api(sn: Instance, client: Any) -> None:
    gr = client.GlideRecord("incident")
    gr.add_query("state", "1")
    gr.query()
    for record in gr:
        record.urgency = "1"
    assert gr.update_multiple()
    assert {r["urgency"] for r in sn.state.query("incident", "state=1")} == {"1"}
    assert sn.state.count_requests("POST", "/api/now/v1/batch") == 1
    gr = client.GlideRecord("incident")
    gr.add_query("state", "1")
    assert gr.delete_multiple()
    assert sn.state.query("incident", "state=1") == []


def test_attachments(sn: Instance, client: Any) -> None:
    gr = client.GlideRecord("incident")
    assert gr.get(sn.ids["INC0010001"])
    location = gr.add_attachment("report.txt", b"session report", "text/plain")
    assert location.startswith(f"{sn.url}/api/now/attachment/")
    attachments = gr.get_attachments()
    assert len(attachments) == 1
    for attachment in attachments:
        assert attachment.file_name == "report.txt"
        assert attachment.read() == b"session report"
        attachment.delete()
    assert client.GlideRecord("incident").get(sn.ids["INC0010001"])
    assert sn.state.records("sys_attachment") == []


def test_errors_map_to_pysnc_exceptions(sn: Instance, client: Any) -> None:
    from pysnc.exceptions import AuthenticationException, RequestException, RoleException

    with pytest.raises(RequestException):
        client.GlideRecord("u_nothing").query()
    viewer = pysnc.ServiceNowClient(sn.url, sn.demo.viewer, auto_retry=False)
    gr = viewer.GlideRecord("incident")
    gr.initialize()
    gr.short_description = "x"
    with pytest.raises(RoleException):
        gr.insert()
    stranger = pysnc.ServiceNowClient(sn.url, ("nobody", "x"), auto_retry=False)
    with pytest.raises(AuthenticationException):
        stranger.GlideRecord("incident").query()


def test_client_credentials_flow(sn: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pysnc.client, "get_instance", lambda instance: instance.rstrip("/"))
    flow = pysnc.ServiceNowClientCredentialsFlow(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)
    client = pysnc.ServiceNowClient(sn.url, flow, auto_retry=False)
    gr = client.GlideRecord("incident")
    gr.query()
    assert len(gr) == 5
    assert sn.state.requests[-1].user == "rsbridge"
    assert sn.state.requests[-2].path == "/oauth_token.do"
