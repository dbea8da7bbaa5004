"""Files: multipart creates and updates, EWAttach (adding and ``field$overwrite``),
EWRetrieve, EWAttachInfo, EWRemoveAttachment."""

from __future__ import annotations

import httpx

from tests.sim_agiloft.conftest import KB

SESSIONS = "bomgar_session_details"
REPORT = b"<html><body>Session report</body></html>\n" + bytes(range(256))


def _attach(
    kb: KB, record_id: int, name: str, data: bytes, *extra: tuple[str, str], json: bool = False
) -> httpx.Response:
    params: list[tuple[str, str | int | float | bool | None]] = [
        *kb.system(SESSIONS).items(),
        *kb.creds().items(),
        ("id", str(record_id)),
        ("field", "session_files"),
        ("fileName", name),
        *extra,
    ]
    return kb.http.put(
        f"{kb.url}/ewws/EWAttach{'/.json' if json else ''}",
        params=params,
        files={"session_files": (name, data, "text/html")},
    )


def _retrieve(kb: KB, record_id: int, position: int = 0) -> httpx.Response:
    return kb.call(
        "EWRetrieve",
        {"id": record_id, "field": "session_files", "filePosition": position},
        table=SESSIONS,
    )


def test_attach_adds_files_and_retrieve_answers_the_bytes(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    first = _attach(kb, session, "report.html", REPORT)
    assert first.status_code == 200 and first.text == "EWREST_session_files.length='1';\n"
    second = _attach(kb, session, "chat.txt", b"hello", json=True)
    assert second.json() == {"success": True, "message": "", "result": 2}
    download = _retrieve(kb, session)
    assert download.status_code == 200 and download.content == REPORT
    assert download.headers["content-type"].startswith("text/html")
    assert 'filename="report.html"' in download.headers["content-disposition"]
    assert _retrieve(kb, session, 1).content == b"hello"
    assert kb.ok("EWRead", {"id": session}, table=SESSIONS)["session_files"] == [
        "report.html",
        "chat.txt",
    ]


def test_overwrite_replaces_the_files(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    _attach(kb, session, "old.html", b"old")
    _attach(kb, session, "older.html", b"older")
    answer = _attach(kb, session, "new.html", b"new", ("session_files$overwrite", "1"))
    assert answer.text == "EWREST_session_files.length='1';\n"
    assert _retrieve(kb, session).content == b"new"


def test_attach_info_in_both_styles(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    _attach(kb, session, "report.html", REPORT)
    params = {"id": session, "field": "session_files"}
    info = kb.ok("EWAttachInfo", params, table=SESSIONS)
    assert info == [{"fileName": "report.html", "size": len(REPORT), "filePosition": 0}]
    lines = kb.lines("EWAttachInfo", params, table=SESSIONS)
    assert lines == {
        "length": "1",
        "fileName_0": "report.html",
        "size_0": str(len(REPORT)),
        "filePosition_0": "0",
    }


def test_remove_attachment(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    _attach(kb, session, "a.txt", b"a")
    _attach(kb, session, "b.txt", b"b")
    left = kb.ok(
        "EWRemoveAttachment",
        {"id": session, "field": "session_files", "filePosition": 0},
        table=SESSIONS,
    )
    assert left == 1
    assert _retrieve(kb, session).content == b"b"


def test_multipart_create_and_update_carry_files(kb: KB) -> None:
    fields = {**kb.system(SESSIONS), **kb.creds(), "session_id": "s9", "support_case": ":1"}
    created = kb.http.post(
        f"{kb.url}/ewws/EWCreate",
        data=fields,
        files={"session_files": ("report.html", REPORT, "text/html")},
    )
    assert created.text == "EWREST_id='1';\n"
    assert _retrieve(kb, 1).content == REPORT
    updated = kb.http.post(
        f"{kb.url}/ewws/EWUpdate/.json",
        data={**kb.system(SESSIONS), **kb.creds(), "id": "1", "session_files$overwrite": "1"},
        files={"session_files": ("v2.html", b"v2", "text/html")},
    )
    assert updated.json()["result"]["session_files"] == ["v2.html"]
    upsert = kb.http.post(
        f"{kb.url}/ewws/EWUpsert",
        data={**kb.system(SESSIONS), **kb.creds(), "$match": "session_id", "session_id": "s9"},
        files={"session_files": ("v3.html", b"v3", "text/html")},
    )
    assert upsert.status_code == 200
    assert kb.ok("EWRead", {"id": 1}, table=SESSIONS)["session_files"] == ["v2.html", "v3.html"]


def test_file_errors(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    no_name = kb.http.put(
        f"{kb.url}/ewws/EWAttach/.json",
        params={**kb.system(SESSIONS), **kb.creds(), "id": str(session),
                "field": "session_files", "err_code_resp": "1"},
        files={"session_files": ("x", b"x", "text/plain")},
    )  # fmt: skip
    assert no_name.status_code == 400
    assert no_name.json()["message"] == "No value for 'fileName' parameter specified."
    assert kb.error("EWRetrieve", {"id": session, "field": "session_files"}, table=SESSIONS) == (
        400,
        "No file at position 0 in field session_files",
    )
    assert kb.error("EWRetrieve", {"id": session, "field": "duration"}, table=SESSIONS) == (
        400,
        "Wrong format/value pointed to duration: it is not a file field",
    )
    assert kb.error("EWRetrieve", {"id": session}, table=SESSIONS) == (
        400,
        "No value for 'field' parameter specified.",
    )
    as_text = kb.error("EWCreate", {"session_id": "x", "session_files": "a.txt"}, table=SESSIONS)
    assert as_text[0] == 400 and "multipart" in as_text[1]


def test_a_raw_body_is_one_file(kb: KB) -> None:
    session = kb.ok("EWCreate", {"session_id": "s1"}, table=SESSIONS)
    answer = kb.http.put(
        f"{kb.url}/ewws/EWAttach",
        params={**kb.system(SESSIONS), **kb.creds(), "id": str(session),
                "field": "session_files", "fileName": "raw.bin"},
        content=b"\x00\x01raw",
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert answer.text == "EWREST_session_files.length='1';\n"
    download = _retrieve(kb, session)
    assert download.content == b"\x00\x01raw"
    assert download.headers["content-type"] == "application/octet-stream"


def test_an_unreadable_multipart_body_is_an_agiloft_error(kb: KB) -> None:
    answer = kb.http.put(
        f"{kb.url}/ewws/EWAttach/.json",
        params={**kb.system("bomgar_session_details"), **kb.creds(), "err_code_resp": "1"},
        content=b"garbage",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "No value for 'id' parameter specified."
