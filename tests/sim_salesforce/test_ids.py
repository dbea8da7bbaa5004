"""Record ids: the 18-character checksum, key prefixes, 15-character ids accepted."""

from __future__ import annotations

from rsbridge.sim.salesforce import checksum, make_id, to18
from tests.sim_salesforce.conftest import Org


def test_checksum_matches_a_documented_id() -> None:
    # 500Dn000002IvK0IAK is the case id of the REST guide's create example.
    assert checksum("500Dn000002IvK0") == "IAK"
    assert to18("500Dn000002IvK0") == "500Dn000002IvK0IAK"
    assert to18("500Dn000002IvK0IAK") == "500Dn000002IvK0IAK"


def test_to18_refuses_what_is_not_an_id() -> None:
    assert to18("500Dn000002IvK0XXX") is None  # wrong checksum
    assert to18("500Dn000002IvK") is None
    assert to18("500Dn000002IvK0-AK") is None


def test_made_ids_carry_prefix_and_valid_checksum() -> None:
    made = make_id("a0X", 12345)
    assert len(made) == 18 and made.startswith("a0X")
    assert to18(made[:15]) == made


def test_records_get_their_objects_key_prefix(org: Org) -> None:
    expected = {"case_vpn": "500", "ada": "003", "acme": "001", "integration": "005"}
    for name, prefix in expected.items():
        record_id = org.ids[name]
        assert len(record_id) == 18 and record_id.startswith(prefix)
        assert to18(record_id[:15]) == record_id
    comment = org.post("/sobjects/CaseComment", json={"ParentId": org.ids["case_vpn"]})
    assert comment.json()["id"].startswith("00a")


def test_a_15_character_id_reads_the_same_record(org: Org) -> None:
    case_id = org.ids["case_vpn"]
    short = org.get(f"/sobjects/Case/{case_id[:15]}")
    assert short.status_code == 200
    assert short.json()["Id"] == case_id
    found = org.query(f"SELECT Id FROM Case WHERE Id = '{case_id[:15]}'")  # noqa: S608
    assert [r["Id"] for r in found["records"]] == [case_id]
