"""Encoded queries: the parser, and evaluation through the Table API."""

from __future__ import annotations

import pytest

from rsbridge.sim.servicenow.query import Condition, parse
from tests.sim_servicenow.conftest import Instance


def known(path: str) -> bool:
    return path.split(".")[0] in {"active", "state", "number", "caller_id", "priority", "order"}


def test_parser_structure() -> None:
    q = parse("active=true^stateIN1,2^ORpriority<=2^NQnumberSTARTSWITHINC^ORDERBYDESCnumber", known)
    assert q.groups == [
        [
            [Condition("active", "=", "true")],
            [Condition("state", "IN", "1,2"), Condition("priority", "<=", "2")],
        ],
        [[Condition("number", "STARTSWITH", "INC")]],
    ]
    assert q.order_by == [("number", True)]
    assert q.invalid == []


def test_parser_reads_operators_next_to_names() -> None:
    q = parse(
        "numberISEMPTY^stateISNOTEMPTY^caller_id.nameNOT LIKEx^stateNOT IN1^numberENDSWITH9"
        "^orderBETWEEN1@5^caller_idINSTANCEOFsys_user^order!=3^ORorder>=4^EQ",
        known,
    )
    operators = [c.operator for clause in q.groups[0] for c in clause]
    assert operators == [
        "ISEMPTY",
        "ISNOTEMPTY",
        "NOT LIKE",
        "NOT IN",
        "ENDSWITH",
        "BETWEEN",
        "INSTANCEOF",
        "!=",
        ">=",
    ]
    # "order" is a field, "OR" an operator: the case tells them apart
    assert q.groups[0][-1][1] == Condition("order", ">=", "4")


def test_parser_drops_unknown_fields_and_reads_escaped_carets() -> None:
    q = parse("u_missing=1^number=a^^b^^^ORDERBYnumber", known)
    assert q.invalid == ["u_missing=1"]
    assert q.groups == [[[Condition("number", "=", "a^b^")]]]
    assert q.order_by == [("number", False)]


def numbers(sn: Instance, query: str, table: str = "incident") -> list[str]:
    result = sn.result(
        f"/api/now/table/{table}", params={"sysparm_query": query, "sysparm_fields": "number"}
    )
    return [r["number"] for r in result]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("number=INC0010003", ["INC0010003"]),
        ("number=inc0010003", ["INC0010003"]),  # case-insensitive, like MySQL
        ("state=1", ["INC0010002", "INC0010003"]),
        ("state!=1", ["INC0010001", "INC0010004", "INC0010005"]),
        ("stateIN6,7", ["INC0010004", "INC0010005"]),
        ("stateNOT IN1,2", ["INC0010004", "INC0010005"]),
        ("state>2", ["INC0010004", "INC0010005"]),
        ("state>=2^state<7", ["INC0010001", "INC0010004"]),
        ("state<=1", ["INC0010002", "INC0010003"]),
        ("short_descriptionLIKEvpn", ["INC0010002"]),
        ("short_descriptionNOT LIKEmail", ["INC0010001", "INC0010002", "INC0010003", "INC0010005"]),
        ("short_descriptionSTARTSWITHlaptop", ["INC0010005"]),
        ("short_descriptionENDSWITHe-mail", ["INC0010004"]),
        ("cmdb_ciISEMPTY", ["INC0010003"]),
        ("close_codeISNOTEMPTY", ["INC0010004", "INC0010005"]),
        ("active=true^state=1^ORstate=6", ["INC0010002", "INC0010003", "INC0010004"]),
        ("state=7^NQstate=6", ["INC0010004", "INC0010005"]),
        ("caller_id.user_name=abel.tuter", ["INC0010001", "INC0010005"]),
        ("caller_idLIKEanglin", ["INC0010002"]),  # a reference's display value
        ("cmdb_ci.fqdnSTARTSWITHsrv-", ["INC0010004"]),
        ("stateBETWEEN2@6", ["INC0010001", "INC0010004"]),
        ("sys_created_on>2024-12-02 08:30:00", ["INC0010004", "INC0010005"]),
        ("work_notesLIKEremote session", ["INC0010001"]),
        ("ORDERBYDESCnumber^active=true", ["INC0010004", "INC0010003", "INC0010002", "INC0010001"]),
        (
            "ORDERBYcaller_id^ORDERBYDESCnumber",
            ["INC0010005", "INC0010001", "INC0010002", "INC0010003", "INC0010004"],
        ),
        ("", ["INC0010001", "INC0010002", "INC0010003", "INC0010004", "INC0010005"]),
    ],
)  # fmt: skip
def test_queries(sn: Instance, query: str, expected: list[str]) -> None:
    assert numbers(sn, query) == expected


def test_negative_operators_skip_empty_values(sn: Instance) -> None:
    # close_code is empty on three incidents: SQL NULL never satisfies !=
    assert numbers(sn, "close_code!=Duplicate") == ["INC0010004", "INC0010005"]


def test_instanceof_on_task(sn: Instance) -> None:
    found = numbers(sn, "sys_class_nameINSTANCEOFincident", table="task")
    assert len(found) == 5 and all(n.startswith("INC") for n in found)


def test_unknown_fields_are_dropped_unless_strict(sn: Instance) -> None:
    assert numbers(sn, "u_typo=1^number=INC0010001") == ["INC0010001"]
    assert len(numbers(sn, "u_typo=1")) == 5  # the classic dangerous behaviour
    sn.state.invalid_query_returns_no_rows = True
    assert numbers(sn, "u_typo=1") == []


def test_equality_lookups_follow_writes(sn: Instance) -> None:
    def correlated(value: str, table: str = "incident") -> list[str]:
        return numbers(sn, f"correlation_id={value}", table)

    sys_id = sn.ids["INC0010002"]
    assert correlated("RS-1") == []  # builds the index
    sn.patch(f"/api/now/table/incident/{sys_id}", json={"correlation_id": "RS-1"})
    assert correlated("rs-1") == ["INC0010002"]
    assert correlated("RS-1", "task") == ["INC0010002"]
    assert correlated("RS-1", "problem") == []
    created = sn.post("/api/now/table/incident", json={"correlation_id": "RS-1"}).json()["result"]
    assert correlated("RS-1") == ["INC0010002", created["number"]]
    sn.patch(f"/api/now/table/incident/{sys_id}", json={"correlation_id": "RS-2"})
    sn.request("DELETE", f"/api/now/table/incident/{created['sys_id']}")
    assert correlated("RS-1") == []
    assert correlated("RS-2") == ["INC0010002"]
    assert numbers(sn, "correlation_id=RS-2^NQnumber=INC0010001") == ["INC0010001", "INC0010002"]
