"""Batch API, rate-limit rules, fault injection, instance switches and the request log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from rsbridge.sim.servicenow import SimServiceNowState, create_app
from tests.sim_servicenow.conftest import NOW, Instance

BATCH = "/api/now/v1/batch"
JSON_HEADER = [{"name": "Content-Type", "value": "application/json"}]


def b64(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_batch_serves_each_request_in_order(sn: Instance) -> None:
    incident = sn.ids["INC0010001"]
    body = {
        "batch_request_id": 7,
        "rest_requests": [
            {
                "id": "create",
                "method": "POST",
                "url": "/api/now/table/incident?sysparm_fields=number",
                "headers": JSON_HEADER,
                "body": b64({"short_description": "from batch"}),
            },
            {
                "id": "note",
                "method": "PATCH",
                "url": f"/api/now/table/incident/{incident}",
                "headers": JSON_HEADER,
                "body": b64({"work_notes": "batched note"}),
            },
            {
                "id": "read",
                "method": "GET",
                "url": "/api/now/table/incident?sysparm_query=short_description=from batch"
                "&sysparm_fields=number",
                "headers": [{"name": "Accept", "value": "application/json"}],
                "exclude_response_headers": True,
            },
            {"id": "missing", "method": "GET", "url": f"/api/now/table/incident/{'0' * 32}"},
            {"id": "nested", "method": "POST", "url": BATCH, "body": b64({})},
        ],
    }
    r = sn.post(BATCH, json=body)
    assert r.status_code == 200
    data = r.json()
    assert data["batch_request_id"] == "7"
    assert data["unserviced_requests"] == []
    served = {s["id"]: s for s in data["serviced_requests"]}
    assert [s["id"] for s in data["serviced_requests"]] == [
        "create",
        "note",
        "read",
        "missing",
        "nested",
    ]
    create = served["create"]
    assert (create["status_code"], create["status_text"]) == (201, "Created")
    assert json.loads(base64.b64decode(create["body"])) == {"result": {"number": "INC0010006"}}
    headers = {h["name"]: h["value"] for h in create["headers"]}
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert headers["Location"].startswith(f"{sn.url}/api/now/table/incident/")
    assert isinstance(create["execution_time"], int)
    assert served["note"]["status_code"] == 200
    assert sn.state.journal(incident, "work_notes")[0]["value"] == "batched note"
    read = served["read"]
    assert read["headers"] == []
    assert json.loads(base64.b64decode(read["body"]))["result"] == [{"number": "INC0010006"}]
    assert served["missing"]["status_code"] == 404
    assert (
        json.loads(base64.b64decode(served["missing"]["body"]))["error"]["message"]
        == "No Record found"
    )
    assert served["nested"]["status_code"] == 400
    # one call in the log, the sub-requests inside it
    assert sn.state.count_requests("POST", BATCH) == 1
    outer = sn.state.requests[-1]
    assert [(s.method, s.status) for s in outer.sub_requests] == [
        ("POST", 201),
        ("PATCH", 200),
        ("GET", 200),
        ("GET", 404),
        ("POST", 400),
    ]
    assert outer.sub_requests[2].query.startswith("sysparm_query=")


def test_reads_in_a_batch_answer_as_the_same_gets_do(sn: Instance) -> None:
    # The connector sends its reads (the ticket lookup, the session row, the reps'
    # users, a journal with display values) as GET sub-requests with encoded query strings.
    incident = sn.ids["INC0010001"]
    sn.patch(f"/api/now/table/incident/{incident}", json={"work_notes": "a note"})
    reads = {
        "lookup": (
            "/api/now/table/incident",
            {"sysparm_query": "number=INC0010001", "sysparm_fields": "sys_id,number"},
        ),
        "users": (
            "/api/now/table/sys_user",
            {"sysparm_query": "user_nameINjsmith,mjones^ORDERBYuser_name", "sysparm_limit": "1"},
        ),
        "journal": (
            f"/api/now/table/incident/{incident}",
            {"sysparm_fields": "work_notes,state", "sysparm_display_value": "all"},
        ),
        "missing": (f"/api/now/table/incident/{'0' * 32}", {}),
    }
    body = {
        "batch_request_id": "r",
        "rest_requests": [
            {"id": name, "method": "GET", "url": f"{path}?{urlencode(params)}"}
            for name, (path, params) in reads.items()
        ],
    }
    served = {s["id"]: s for s in sn.post(BATCH, json=body).json()["serviced_requests"]}
    for name, (path, params) in reads.items():
        alone = sn.get(path, params=params)
        assert served[name]["status_code"] == alone.status_code, name
        assert json.loads(base64.b64decode(served[name]["body"])) == alone.json(), name
    journal = json.loads(base64.b64decode(served["journal"]["body"]))["result"]
    assert "a note" in journal["work_notes"]["display_value"]
    users = json.loads(base64.b64decode(served["users"]["body"]))["result"]
    assert [u["user_name"] for u in users] == ["jsmith"]


def test_batch_uses_the_callers_identity(sn: Instance) -> None:
    body = {
        "batch_request_id": "x",
        "rest_requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/api/now/table/incident",
                "headers": JSON_HEADER,
                "body": b64({}),
            }
        ],
    }
    r = sn.post(BATCH, json=body, auth=sn.demo.viewer)
    assert r.json()["serviced_requests"][0]["status_code"] == 403
    assert sn.post(BATCH, json=body, auth=False).status_code == 401
    assert sn.post(BATCH, json={"batch_request_id": "1"}).status_code == 400


def test_rate_limit_rule(sn: Instance) -> None:
    rule = sn.state.add_rate_limit(3, user="rsbridge")
    reset = str((int(NOW) // 3600 + 1) * 3600)
    for _ in range(3):
        r = sn.get("/api/now/table/incident", params={"sysparm_limit": "1"})
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] == "3"
        assert r.headers["x-ratelimit-reset"] == reset
        assert r.headers["x-ratelimit-rule"] == rule.sys_id
    r = sn.get("/api/now/table/incident")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3600"  # NOW is on the hour
    assert r.headers["x-ratelimit-rule"] == rule.sys_id
    assert r.json()["status"] == "failure"
    assert r.json()["error"]["message"] == "Too Many Requests"
    # other users are not limited by a user rule; the window resets on the hour
    assert sn.get("/api/now/table/incident", auth=sn.demo.admin).status_code == 200
    sn.clock.now += 3600
    assert sn.get("/api/now/table/incident").status_code == 200


def test_rate_limit_priority_and_batches(sn: Instance) -> None:
    everyone = sn.state.add_rate_limit(100)
    itil = sn.state.add_rate_limit(50, role="itil")
    sn.state.add_rate_limit(20, role="rest_service")
    assert sn.state.rate_limit_rule(sn.state.users["admin"]) is everyone
    assert sn.state.rate_limit_rule(sn.state.users["jsmith"]) is itil
    assert sn.state.rate_limit_rule(sn.state.users["rsbridge"]).limit == 20  # type: ignore[union-attr]
    requests = [
        {"id": str(i), "method": "GET", "url": "/api/now/table/incident"} for i in range(30)
    ]
    r = sn.post(BATCH, json={"batch_request_id": "1", "rest_requests": requests})
    assert r.status_code == 200  # 30 sub-requests, one counted call
    rule = sn.state.rate_limit_rule(sn.state.users["rsbridge"])
    assert rule is not None and sum(rule.counts.values()) == 1
    sn.state.reset_rate_limits()
    assert sum(rule.counts.values()) == 0


def test_fail_next(sn: Instance) -> None:
    sn.state.fail_next(2, status=503, retry_after=7)
    for _ in range(2):
        r = sn.get("/api/now/table/incident")
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
        assert r.json()["status"] == "failure"
    assert sn.get("/api/now/table/incident").status_code == 200
    sn.state.fail_next(1, status=429)
    r = sn.post("/oauth_token.do", data={})
    assert r.status_code == 429 and "retry-after" not in r.headers


def test_down_and_hibernating(sn: Instance) -> None:
    sn.state.down = True
    r = sn.get("/api/now/table/incident")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    sn.state.down = False
    sn.state.hibernating = True
    r = sn.get("/api/now/table/incident")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "hibernating" in r.text
    sn.state.hibernating = False
    assert sn.get("/api/now/table/incident").headers["content-type"].startswith("application/json")


def test_request_log(sn: Instance) -> None:
    sn.state.requests.clear()
    sn.get("/api/now/table/incident", params={"sysparm_limit": "1"})
    sn.post("/api/now/table/incident", json={})
    sn.get("/api/now/table/incident", auth=False)
    logged = [(r.method, r.path, r.query, r.user, r.status) for r in sn.state.requests]
    assert logged == [
        ("GET", "/api/now/table/incident", "sysparm_limit=1", "rsbridge", 200),
        ("POST", "/api/now/table/incident", "", "rsbridge", 201),
        ("GET", "/api/now/table/incident", "", None, 401),
    ]
    assert sn.state.count_requests("GET") == 2
    assert sn.state.count_requests(path_prefix="/api/now/table/incident") == 3


def test_latency_is_added_without_blocking_the_server(sn: Instance) -> None:
    sn.state.latency = 2.0

    async def three() -> list[tuple[float, float]]:
        async with httpx.AsyncClient(auth=sn.demo.integration, timeout=60) as client:
            url = f"{sn.url}/api/now/table/incident?sysparm_limit=1"

            async def timed() -> tuple[float, float]:
                started = time.perf_counter()
                answer = await client.get(url)
                assert answer.status_code == 200
                return started, time.perf_counter()

            return await asyncio.gather(*(timed() for _ in range(3)))

    spans = asyncio.run(three())
    assert all(end - start >= 2.0 for start, end in spans)  # each waited
    # Served one after another they would take 6 s; together about 2. The bound leaves a
    # busy machine 3 s of slack: it tells the two apart, it times nothing finer.
    assert max(end for _, end in spans) - min(start for start, _ in spans) < 5.0


def test_instance_url_fixes_links() -> None:
    state = SimServiceNowState(instance_url="https://dev12345.service-now.com/")
    state.add_user("a", "b", ["admin"])
    app = create_app(state)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/api/now/table/incident",
                json={"caller_id": state.users["a"].sys_id},
                auth=("a", "b"),
            )

    r = asyncio.run(call())
    assert r.json()["result"]["caller_id"]["link"].startswith(
        "https://dev12345.service-now.com/api/now/table/sys_user/"
    )
