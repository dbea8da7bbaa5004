"""Attachment API: raw and multipart uploads, listing, metadata, download, delete."""

from __future__ import annotations

import gzip
import hashlib
import json

import httpx

from tests.sim_servicenow.conftest import NOW_TEXT, Instance

FILE = "/api/now/attachment/file"
CONTENT = b"Session report\r\n\x00\xff binary tail"
META_FIELDS = {
    "size_bytes",
    "file_name",
    "sys_mod_count",
    "average_image_color",
    "image_width",
    "sys_updated_on",
    "sys_tags",
    "table_name",
    "sys_id",
    "image_height",
    "sys_updated_by",
    "download_link",
    "content_type",
    "sys_created_on",
    "size_compressed",
    "compressed",
    "state",
    "table_sys_id",
    "chunk_size_bytes",
    "hash",
    "sys_created_by",
}


def upload(sn: Instance, sys_id: str, name: str = "report.txt", **kwargs: object) -> httpx.Response:
    params = {"table_name": "incident", "table_sys_id": sys_id, "file_name": name}
    return sn.post(
        FILE,
        params=params,
        content=CONTENT,
        headers={"Content-Type": "text/plain"},
        **kwargs,
    )


def test_raw_upload(sn: Instance) -> None:
    incident = sn.ids["INC0010001"]
    r = upload(sn, incident)
    assert r.status_code == 201
    meta = r.json()["result"]
    assert set(meta) == META_FIELDS
    assert all(isinstance(v, str) for v in meta.values())
    assert r.headers["location"] == f"{sn.url}/api/now/attachment/{meta['sys_id']}"
    assert meta["download_link"] == f"{sn.url}/api/now/attachment/{meta['sys_id']}/file"
    assert meta["hash"] == hashlib.sha256(CONTENT).hexdigest()
    assert meta["size_bytes"] == str(len(CONTENT))
    assert meta["size_compressed"] == str(len(gzip.compress(CONTENT, mtime=0)))
    assert meta["compressed"] == "true"
    assert (meta["table_name"], meta["table_sys_id"], meta["file_name"]) == (
        "incident",
        incident,
        "report.txt",
    )
    assert meta["content_type"] == "text/plain"
    assert meta["sys_created_by"] == "rsbridge" and meta["sys_created_on"] == NOW_TEXT
    assert meta["sys_mod_count"] == "0"
    # pysnc uses the v1 path
    assert sn.result(f"/api/now/v1/attachment/{meta['sys_id']}") == meta
    r = sn.get(f"/api/now/attachment/{meta['sys_id']}/file")
    assert r.status_code == 200 and r.content == CONTENT
    assert r.headers["content-type"] == "text/plain"
    assert json.loads(r.headers["x-attachment-metadata"])["sys_id"] == meta["sys_id"]


def test_raw_upload_errors(sn: Instance) -> None:
    incident = sn.ids["INC0010001"]
    for missing in ("table_name", "table_sys_id", "file_name"):
        params = {"table_name": "incident", "table_sys_id": incident, "file_name": "a.txt"}
        del params[missing]
        r = sn.post(FILE, params=params, content=b"x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400
        assert r.json()["error"]["message"] == f"Missing parameter: {missing}"
    r = sn.post(
        FILE,
        params={"table_name": "incident", "table_sys_id": incident, "file_name": "a"},
        content=b"x",
    )
    assert r.status_code == 400 and r.json()["status"] == "failure"
    r = upload(sn, "0" * 32)
    assert r.status_code == 404 and r.json()["error"]["message"] == "No Record found"
    r = sn.post(
        FILE,
        params={"table_name": "u_none", "table_sys_id": incident, "file_name": "a"},
        content=b"x",
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 400
    assert upload(sn, incident, auth=sn.demo.viewer).status_code == 403
    sn.state.max_attachment_bytes = 4
    assert upload(sn, incident).status_code == 400


def test_multipart_upload(sn: Instance) -> None:
    incident = sn.ids["INC0010002"]
    r = sn.post(
        "/api/now/attachment/upload",
        data={"table_name": "incident", "table_sys_id": incident},
        files={"uploadFile": ("shot.png", CONTENT, "image/png")},
    )
    assert r.status_code == 201, r.text
    meta = r.json()["result"]
    assert (meta["file_name"], meta["content_type"], meta["size_bytes"]) == (
        "shot.png",
        "image/png",
        str(len(CONTENT)),
    )
    assert sn.state.attachment_content(meta["sys_id"]) == CONTENT


def test_multipart_metadata_must_come_first(sn: Instance) -> None:
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="uploadFile"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "data\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="table_name"\r\n\r\n'
        "incident\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    r = sn.post(
        "/api/now/attachment/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Missing parameter: table_name"
    r = sn.post("/api/now/attachment/upload", json={"table_name": "incident"})
    assert r.status_code == 415


def test_list_query_and_delete(sn: Instance) -> None:
    first, second = sn.ids["INC0010001"], sn.ids["INC0010002"]
    upload(sn, first, "a.txt")
    upload(sn, first, "b.txt")
    upload(sn, second, "c.txt")
    r = sn.get("/api/now/attachment", params={"sysparm_query": f"table_sys_id={first}"})
    assert r.headers["x-total-count"] == "2"
    listed = r.json()["result"]
    assert [m["file_name"] for m in listed] == ["a.txt", "b.txt"]
    assert set(listed[0]) == META_FIELDS
    r = sn.get("/api/now/attachment", params={"sysparm_limit": "1"})
    assert r.headers["x-total-count"] == "3" and 'rel="next"' in r.headers["link"]
    target = listed[0]["sys_id"]
    assert (
        sn.request("DELETE", f"/api/now/attachment/{target}", auth=sn.demo.viewer).status_code
        == 403
    )
    r = sn.request("DELETE", f"/api/now/attachment/{target}")
    assert r.status_code == 204 and r.content == b""
    assert sn.get(f"/api/now/attachment/{target}").status_code == 404
    assert sn.get(f"/api/now/attachment/{target}/file").status_code == 404
    # deleting the record takes its attachments with it
    sn.request("DELETE", f"/api/now/table/incident/{second}")
    assert sn.get("/api/now/attachment").headers["x-total-count"] == "1"


def test_attachments_follow_the_parent_acl(sn: Instance) -> None:
    meta = upload(sn, sn.ids["INC0010001"]).json()["result"]
    sn.state.add_user("noroles", "pw", ())
    assert (
        sn.get(f"/api/now/attachment/{meta['sys_id']}", auth=("noroles", "pw")).status_code == 404
    )
    r = sn.get("/api/now/attachment", auth=("noroles", "pw"))
    assert r.json()["result"] == [] and r.headers["x-total-count"] == "0"
    rows = sn.result("/api/now/table/sys_attachment", params={"sysparm_fields": "file_name"})
    assert rows == [{"file_name": "report.txt"}]
