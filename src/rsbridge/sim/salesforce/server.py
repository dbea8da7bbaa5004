"""The simulated org's HTTP surface: OAuth, SOAP login, and the REST API's resources.

Every request goes through one path: ``down``, queued faults, then sign-in endpoints or
(for ``/services/data/vXX.X/...``) Bearer authentication (401 ``INVALID_SESSION_ID``),
the daily allowance (403 ``REQUEST_LIMIT_EXCEEDED``, not 429) and the resource handler.
Data answers carry ``Sforce-Limit-Info: api-usage=N/M``. Handlers take a
:class:`SimRequest` and return a :class:`SimResponse`, so composite sub-requests run
through the same code (``composite.py``).

The login host decides what a client sees, as on the platform: a sign-in through
``login.salesforce.com`` / ``test.salesforce.com`` or the My Domain answers with the My
Domain as ``instance_url``; a sign-in on the plain loopback address answers with that
address (what rsbridge's own connector is configured with).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rsbridge.sim.salesforce import auth, composite, query, records
from rsbridge.sim.salesforce.errors import SalesforceError, not_found
from rsbridge.sim.salesforce.schema import describe, global_entry
from rsbridge.sim.salesforce.state import (
    VERSIONS,
    LoggedRequest,
    Record,
    SimSalesforceState,
    release_label,
)
from rsbridge.sim.salesforce.wire import (
    Context,
    SimRequest,
    SimResponse,
    error_response,
    json_response,
)

_DATA = re.compile(r"/services/data/v(?P<version>\d+\.\d)(?P<rest>/.*)?")
_SOAP = re.compile(r"/services/Soap/u/(?P<version>\d+\.\d)(?:/.*)?")
INVALID_SESSION = SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
LIMIT_EXCEEDED = SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


Handler = Callable[[SimRequest, Context, list[str]], SimResponse]


class Org:
    """The request path of one simulated org (see the module docstring)."""

    def __init__(self, state: SimSalesforceState) -> None:
        self.state = state
        self.records = records.Records(self)
        self.composite = composite.Composite(self)

    async def endpoint(self, request: Request) -> Response:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        body = await request.body()
        host = (request.headers.get("host") or request.url.netloc).split(":")[0].lower()
        sim = SimRequest(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            f"{request.url.scheme}://{request.url.netloc}",
            host,
        )
        answer = self.handle(sim)
        return Response(answer.body, answer.status, headers=answer.headers)

    def handle(self, req: SimRequest) -> SimResponse:
        """Answer one HTTP request and log it."""
        state = self.state
        user_id: str | None = None
        subs: list[LoggedRequest] = []
        with state.lock:
            data = _DATA.fullmatch(req.path.rstrip("/") or "/")
            soap = _SOAP.fullmatch(req.path)
            if state.down:
                answer = error_response(
                    SalesforceError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
                )
            elif state.faults:
                fault = state.faults.popleft()
                answer = error_response(
                    SalesforceError(fault.status, fault.error_code, fault.message)
                )
            elif req.path == "/services/oauth2/token" and req.method == "POST":
                answer = auth.token(state, req)
            elif soap is not None and req.method == "POST":
                answer = auth.soap_login(state, req, soap["version"])
            elif req.path.rstrip("/") == "/services/data" and req.method == "GET":
                answer = json_response(200, _versions())
            elif data is not None:
                user_id, answer = self._data(req, data["version"], data["rest"] or "/", subs)
            else:
                answer = error_response(not_found())
            state.requests.append(
                LoggedRequest(req.method, req.path, req.query, user_id, answer.status, subs)
            )
        return answer

    def _data(
        self, req: SimRequest, version: str, rest: str, subs: list[LoggedRequest]
    ) -> tuple[str | None, SimResponse]:
        state = self.state
        scheme, _, credential = req.headers.get("authorization", "").partition(" ")
        session = (
            state.session(credential.strip()) if scheme.lower() in ("bearer", "oauth") else None
        )
        if session is None:
            return None, error_response(INVALID_SESSION, {"WWW-Authenticate": "Token"})
        if not state.count_api_request():
            return session.user_id, error_response(
                LIMIT_EXCEEDED, {"Sforce-Limit-Info": state.limit_info()}
            )
        if version not in VERSIONS:
            answer = error_response(not_found())
        else:
            answer = self.dispatch(req, Context(session.user_id, version, subs), rest)
        answer.headers["Sforce-Limit-Info"] = state.limit_info()
        return session.user_id, answer

    def dispatch(self, req: SimRequest, ctx: Context, rest: str) -> SimResponse:
        """Route ``rest`` (the path after ``/services/data/vXX.X``); used by composite too."""
        parts = [p for p in rest.split("/") if p]
        method = req.params.get("_HttpMethod", req.method).upper()
        if method != req.method:
            req = SimRequest(
                method, req.path, req.query, req.headers, req.body, req.base_url, req.host
            )
        try:
            handler = self._route(parts, method)
            return handler(req, ctx, parts)
        except query.MultipleMatchesError as exc:
            urls = [query.record_url(ctx.version, exc.object_name, i) for i in exc.ids]
            return json_response(300, urls)
        except SalesforceError as exc:
            return error_response(exc)

    def _route(self, parts: list[str], method: str) -> Handler:
        head = parts[0].lower() if parts else ""
        count = len(parts)
        table: dict[tuple[str, int], dict[str, Handler]] = {
            ("", 0): {"GET": self.resources},
            ("limits", 1): {"GET": self.limits},
            ("sobjects", 1): {"GET": self.describe_global},
            ("sobjects", 2): {"GET": self.records.basic_info, "POST": self.records.create},
            ("query", 1): {"GET": self.query},
            ("queryall", 1): {"GET": self.query},
            ("query", 2): {"GET": self.query_more},
            ("queryall", 2): {"GET": self.query_more},
            ("composite", 1): {"POST": self.composite.composite},
            ("composite", 2): self.composite.collection_methods(),
            ("composite", 3): {"GET": self.composite.retrieve},
            ("composite", 4): {"PATCH": self.composite.collection_upsert},
        }
        if head == "sobjects" and count == 3:
            if parts[2].lower() == "describe":
                methods: dict[str, Handler] = {"GET": self.describe}
            else:
                methods = {
                    "GET": self.records.read,
                    "PATCH": self.records.update,
                    "DELETE": self.records.delete,
                }
        elif head == "sobjects" and count == 4:
            methods = self.records.by_external_id_methods()
        elif head == "composite" and count >= 2 and parts[1].lower() != "sobjects":
            methods = {}
        else:
            methods = table.get((head, count), {})
        if not methods:
            raise not_found()
        handler = methods.get(method)
        if handler is None:
            raise SalesforceError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}",
            )
        return handler

    # --- resources ----------------------------------------------------------------------

    def resources(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        base = f"/services/data/v{ctx.version}"
        names = ("sobjects", "query", "queryAll", "composite", "limits")
        return json_response(200, {name: f"{base}/{name}" for name in names})

    def limits(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        state = self.state
        remaining = max(0, state.daily_api_limit - state.api_requests)
        return json_response(
            200, {"DailyApiRequests": {"Max": state.daily_api_limit, "Remaining": remaining}}
        )

    def describe_global(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        objects = sorted(self.state.objects.values(), key=lambda o: o.name.lower())
        return json_response(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [global_entry(o, ctx.version) for o in objects],
            },
        )

    def describe(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        definition = self.state.require_object(parts[1])
        children = self.state.children(definition)
        return json_response(200, describe(definition, ctx.version, children))

    # --- query --------------------------------------------------------------------------

    def _batch_size(self, req: SimRequest) -> int:
        size = self.state.query_batch_size
        match = re.search(r"batchSize=(\d+)", req.headers.get("sforce-query-options", ""))
        if match:
            size = min(size, max(200, min(2000, int(match.group(1)))))
        return size

    def query(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        text = req.params.get("q")
        if not text:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        total, rows = query.run(
            self.state, text, ctx.version, include_deleted=parts[0].lower() == "queryall"
        )
        cursor = self.state.new_locator()
        return self._page(ctx, parts[0], cursor, total, rows, 0, self._batch_size(req))

    def _page(
        self,
        ctx: Context,
        resource: str,
        cursor: str,
        total: int,
        rows: list[Record],
        start: int,
        size: int,
    ) -> SimResponse:
        page = rows[start : start + size]
        payload: dict[str, Any] = {"totalSize": total, "done": start + size >= len(rows)}
        if not payload["done"]:
            self.state.cursors[cursor] = rows
            resource = "queryAll" if resource.lower() == "queryall" else "query"
            payload["nextRecordsUrl"] = (
                f"/services/data/v{ctx.version}/{resource}/{cursor}-{start + size}"
            )
        else:
            self.state.cursors.pop(cursor, None)
        payload["records"] = page
        return json_response(200, payload)

    def query_more(self, req: SimRequest, ctx: Context, parts: list[str]) -> SimResponse:
        cursor, _, offset = parts[1].partition("-")
        rows = self.state.cursors.get(cursor)
        if rows is None or not offset.isdigit():
            raise SalesforceError(404, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(
            ctx, parts[0], cursor, len(rows), rows, int(offset), self._batch_size(req)
        )


def _versions() -> list[dict[str, str]]:
    return [
        {"label": release_label(v), "url": f"/services/data/v{v}", "version": v} for v in VERSIONS
    ]


def create_app(state: SimSalesforceState) -> Starlette:
    """A Starlette app answering like a Salesforce org (see the module docstring)."""
    org = Org(state)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", org.endpoint, methods=methods)])
