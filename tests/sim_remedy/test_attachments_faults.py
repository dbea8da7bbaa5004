"""Multipart create with attachments and their download; fault injection."""

from __future__ import annotations

import json

import httpx

from tests.sim_remedy.conftest import AR

REPORT = b"%PDF-1.4 session report\n" + bytes(range(256))


def _multipart_work_log(
    ar: AR, entry: dict[str, object], files: dict[str, bytes]
) -> httpx.Response:
    # The parts Splunk's bmcremedy connector sends: an "entry" JSON part and one
    # "attach-<field>" part per file (itsm-apis.md 3.3).
    parts: dict[str, tuple[str | None, bytes, str]] = {
        "entry": (None, json.dumps({"values": entry}).encode(), "application/json")
    }
    for field, data in files.items():
        parts[f"attach-{field}"] = ("report.pdf", data, "application/octet-stream")
    return ar.request("POST", "/HPD:WorkLog", files=parts)


def test_multipart_create_stores_the_file_and_download_answers_it(ar: AR) -> None:
    answer = _multipart_work_log(
        ar,
        {
            "Incident Number": ar.demo.ids["printer"],
            "Work Log Type": "General Information",
            "Description": "Remote session report",
            "z2AF Work Log01": "report.pdf",
        },
        {"z2AF Work Log01": REPORT},
    )
    assert answer.status_code == 201, answer.text
    location = answer.headers["Location"]
    values = ar.http.get(location, headers={"Authorization": f"AR-JWT {ar.token}"}).json()["values"]
    attachment = values["z2AF Work Log01"]
    assert attachment["name"] == "report.pdf"
    assert attachment["sizeBytes"] == len(REPORT)
    assert attachment["href"] == f"{location}/attach/z2AF%20Work%20Log01"
    assert values["z2AF Work Log02"] is None
    download = ar.http.get(attachment["href"], headers={"Authorization": f"AR-JWT {ar.token}"})
    assert download.status_code == 200 and download.content == REPORT
    empty = ar.http.get(
        f"{location}/attach/z2AF%20Work%20Log02", headers={"Authorization": f"AR-JWT {ar.token}"}
    )
    assert empty.status_code == 404 and empty.json()[0]["messageNumber"] == 302


def test_a_file_part_names_the_attachment_when_the_entry_leaves_it_empty(ar: AR) -> None:
    answer = _multipart_work_log(
        ar,
        {
            "Incident Number": ar.demo.ids["vpn"],
            "Work Log Type": "General Information",
            "Description": "x",
            "z2AF Work Log02": None,
        },
        {"z2AF Work Log02": b"abc"},
    )
    assert answer.status_code == 201, answer.text
    log = ar.http.get(answer.headers["Location"], headers={"Authorization": f"AR-JWT {ar.token}"})
    assert log.json()["values"]["z2AF Work Log02"]["name"] == "report.pdf"
    assert log.json()["values"]["z2AF Work Log02"]["sizeBytes"] == 3


def test_multipart_to_a_field_that_is_no_attachment_fails_314(ar: AR) -> None:
    answer = _multipart_work_log(
        ar,
        {
            "Incident Number": ar.demo.ids["printer"],
            "Work Log Type": "General Information",
            "Description": "x",
        },
        {"Description": b"abc"},
    )
    assert answer.status_code == 400 and answer.json()[0]["messageNumber"] == 314
    no_entry = ar.request(
        "POST", "/HPD:WorkLog", files={"attach-z2AF Work Log01": ("a.txt", b"x", "text/plain")}
    )
    assert no_entry.status_code == 400


def test_fail_next_answers_queued_errors_then_recovers(ar: AR) -> None:
    ar.state.fail_next(2, 500, 8760, "Internal error")
    for _ in range(2):
        answer = ar.request("GET", "/HPD:Help Desk")
        assert answer.status_code == 500 and answer.json()[0]["messageNumber"] == 8760
    assert ar.request("GET", "/HPD:Help Desk").status_code == 200


def test_a_proxy_html_page_and_down(ar: AR) -> None:
    ar.state.html_next(1)
    answer = ar.request("GET", "/HPD:Help Desk")
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")
    ar.state.down = True
    answer = ar.login()
    assert answer.status_code == 503 and answer.json()[0]["messageNumber"] == 90
    ar.state.down = False
    assert ar.request("GET", "/HPD:Help Desk").status_code == 200
    assert [r.status for r in ar.state.requests[-3:]] == [502, 503, 200]
    assert ar.state.requests[-1].user == ar.demo.integration[0]


def test_latency_delays_but_answers(ar: AR) -> None:
    ar.state.latency = 0.05
    assert ar.request("GET", "/HPD:Help Desk").status_code == 200
