"""Searches: the ``q`` qualification subset, ``fields``, ``sort``, ``offset``/``limit``/``next``."""

from __future__ import annotations

from typing import Any

import pytest

from rsbridge.sim.remedy import ARError, SimRemedyState, seed_demo
from rsbridge.sim.remedy.qualification import parse_qualification
from tests.sim_remedy.conftest import AR


def _numbers(ar: AR, q: str, **params: Any) -> list[str]:
    answer = ar.request("GET", "/HPD:IncidentInterface", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    return [e["values"]["Incident Number"] for e in answer.json()["entries"]]


def test_comparisons_logic_like_and_null(ar: AR) -> None:
    ids = ar.demo.ids
    printer, vpn, laptop = ids["printer"], ids["vpn"], ids["laptop"]
    assert _numbers(ar, f"'Incident Number' = \"{vpn}\"") == [vpn]
    assert _numbers(ar, f"'Incident Number' != \"{vpn}\"") == [printer, laptop]
    # Selections compare by their order: Assigned < In Progress < Resolved.
    assert _numbers(ar, "'Status' < \"Resolved\"") == [printer, vpn]
    assert _numbers(ar, "'Status' >= \"In Progress\"") == [vpn, laptop]
    assert _numbers(ar, "'Description' LIKE \"%boot%\"") == [laptop]
    assert _numbers(ar, "'Description' LIKE \"_PN%\"") == [vpn]
    assert _numbers(ar, "'First Name' = \"Allen\" AND NOT 'Status' = \"Resolved\"") == [printer]
    assert _numbers(ar, "'Status' = \"Resolved\" OR 'Description' LIKE \"VPN%\"") == [vpn, laptop]
    assert _numbers(
        ar, "('Status' = \"Resolved\" || 'Status' = \"Assigned\") && !'Assignee' != $NULL$"
    ) == [printer, laptop]
    assert _numbers(ar, "'Assignee' = $NULL$") == [printer, vpn, laptop]
    assert _numbers(ar, "'Assignee' != $NULL$") == []
    # A field by id (1000000161 is Incident Number).
    assert _numbers(ar, f"'1000000161' = \"{printer}\"") == [printer]


def test_dates_compare_by_time(ar: AR) -> None:
    ar.clock.now += 1800  # within the token's hour
    later = ar.request(
        "POST",
        "/HPD:IncidentInterface_Create",
        params={"fields": "values(Incident Number)"},
        json={
            "values": {
                "First_Name": "Zed",
                "Last_Name": "Z",
                "Description": "later",
                "Impact": "4-Minor/Localized",
                "Urgency": "4-Low",
                "Status": "New",
                "Reported Source": "Email",
                "Service_Type": "User Service Request",
            }
        },
    ).json()["values"]["Incident Number"]
    assert _numbers(ar, "'Submit Date' > \"2025-01-15T10:15:00.000+0000\"") == [later]
    assert len(_numbers(ar, "'Submit Date' <= \"2025-01-15T10:00:00.000+0000\"")) == 3


def test_bad_qualifications_fail_with_an_error_array(ar: AR) -> None:
    for q, number in (
        ("'Status' = ", 1587),
        ('Status = "New"', 1587),
        ("'Status' = \"New\" AND", 1587),
        ("'Nope' = \"x\"", 314),
        ("'Status' < $NULL$", 1587),
    ):
        answer = ar.request("GET", "/HPD:IncidentInterface", params={"q": q})
        assert answer.status_code == 400, q
        assert answer.json()[0]["messageNumber"] == number, q


def test_pages_follow_next_links_to_the_end(ar: AR) -> None:
    for n in range(7):
        ar.state.create(
            "HPD:WorkLog",
            {
                "Incident Number": ar.demo.ids["vpn"],
                "Work Log Type": "Working Log",
                "Description": f"note {n}",
            },
            "Demo",
        )
    seen: list[str] = []
    answer = ar.request(
        "GET",
        "/HPD:WorkLog",
        params={"q": f"'Incident Number' = \"{ar.demo.ids['vpn']}\"", "limit": "3"},
    )
    pages = 0
    while True:
        body = answer.json()
        pages += 1
        seen += [e["values"]["Description"] for e in body["entries"]]
        assert body["entries"][0]["_links"]["self"][0]["href"].startswith(
            f"{ar.url}/api/arsys/v1/entry/HPD:WorkLog/WLG"
        )
        if "next" not in body["_links"]:
            break
        answer = ar.http.get(
            body["_links"]["next"][0]["href"], headers={"Authorization": f"AR-JWT {ar.token}"}
        )
    assert pages == 3
    assert seen == [f"note {n}" for n in range(7)]


def test_fields_and_sort(ar: AR) -> None:
    answer = ar.request(
        "GET",
        "/HPD:IncidentInterface",
        params={"fields": "values(Incident Number,Status)", "sort": "Status.desc"},
    )
    entries = answer.json()["entries"]
    assert [set(e["values"]) for e in entries] == [{"Incident Number", "Status"}] * 3
    assert [e["values"]["Status"] for e in entries] == ["Resolved", "In Progress", "Assigned"]
    asc = ar.request("GET", "/HPD:IncidentInterface", params={"sort": "Description.asc"})
    descriptions = [e["values"]["Description"] for e in asc.json()["entries"]]
    assert descriptions == sorted(descriptions)
    bad = ar.request("GET", "/HPD:IncidentInterface", params={"fields": "values(Nope)"})
    assert bad.status_code == 400 and bad.json()[0]["messageNumber"] == 314


def test_offset_past_the_end_is_an_empty_page(ar: AR) -> None:
    body = ar.request("GET", "/HPD:Help Desk", params={"offset": "10"}).json()
    assert body["entries"] == [] and "next" not in body["_links"]


@pytest.mark.parametrize("text", ["'Status' = \"New", "'Status' ~ \"New\"", "'Status' = \"New\")"])
def test_parser_refuses_malformed_text(text: str) -> None:
    state = SimRemedyState()
    seed_demo(state)
    with pytest.raises(ARError) as caught:
        parse_qualification(state.form("HPD:Help Desk"), text)
    assert caught.value.number == 1587


def test_like_sets_and_escaped_quotes() -> None:
    state = SimRemedyState()
    seed_demo(state)
    form = state.form("HPD:Help Desk")
    summary = form.by_name["Description"].id
    check = parse_qualification(form, "'Description' LIKE \"[PV]%\"")
    assert check({summary: "VPN"}) and check({summary: "Printer"}) and not check({summary: "x"})
    quoted = parse_qualification(form, '\'Description\' = "say ""hi"""')
    assert quoted({summary: 'say "hi"'})
    # A literal regex character in a LIKE pattern is matched as itself.
    dotted = parse_qualification(form, "'Description' LIKE \"a.c%\"")
    assert dotted({summary: "a.cd"}) and not dotted({summary: "abcd"})
