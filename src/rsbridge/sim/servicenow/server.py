"""The simulated instance's HTTP surface: OAuth, Table, Attachment, Batch and Email APIs.

Every request goes through one path: instance switches (``down``, ``hibernating``),
queued faults, authentication (Basic or Bearer), rate-limit rules, then the route's
handler. Handlers work on a plain :class:`SimRequest` and return a
:class:`SimResponse`, so the Batch API serves its sub-requests with the very same
code, as the outer request's user.

Inferred, no public sample: the 405, 415 and attachment-parameter error texts, the
429 body text, the duplicate-sys_id answer (403 ``Operation Failed`` / ``Error during
insert of <table> (<display value>)``, the platform's answer to an aborted insert),
and the HTML of the ``down`` page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rsbridge.sim.servicenow import email
from rsbridge.sim.servicenow.query import split_fields
from rsbridge.sim.servicenow.render import Renderer, attachment_meta
from rsbridge.sim.servicenow.state import (
    LoggedRequest,
    SimServiceNowError,
    SimServiceNowState,
    SimUser,
    invalid_table,
    no_record,
)

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=UTF-8"
UNAUTHENTICATED = ("User Not Authenticated", "Required to provide Auth information")
READ_DENIED = (
    "Insufficient rights to query records",
    "Field(s) present in the query do not have permission to be read",
)
TOKEN_ERROR = {"error_description": "access_denied", "error": "server_error"}
NO_RESOURCE = "Requested URI does not represent any resource"
DEFAULT_LIMIT = 10000
_COMMON_HEADERS = {
    "Server": "ServiceNow",
    "Cache-Control": "no-cache,no-store,must-revalidate,max-age=-1",
    "Pragma": "no-store,no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
}
DOWN_PAGE = (
    "<html><head><title>503 Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1><p>The instance is not available at the moment. "
    "Please try again later.</p></body></html>"
)
HIBERNATING_PAGE = (
    "<!DOCTYPE html><html><head><title>Instance Hibernating page</title></head><body>"
    "<h1>Your instance is hibernating</h1><p>Developer instances go to sleep when they are "
    "not used. Sign in to the developer site to wake this one up.</p></body></html>"
)


@dataclass
class SimRequest:
    """A request as the handlers see it (header names in lower case)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    base_url: str

    @cached_property
    def params(self) -> dict[str, str]:
        """Query parameters; the first of repeated names wins."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            params.setdefault(key, value)
        return params

    def flag(self, name: str) -> bool:
        """A ``true``/``false`` query parameter."""
        return self.params.get(name, "").lower() == "true"


@dataclass
class SimResponse:
    """Status, body bytes and headers of an answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
    """Compact JSON, as the instance sends it."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return SimResponse(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def error_response(error: SimServiceNowError, headers: dict[str, str] | None = None) -> SimResponse:
    """The ``{"error": {...}, "status": "failure"}`` envelope."""
    return json_response(error.status, error.envelope(), headers)


def _error(status: int, message: str, detail: str | None = "") -> SimServiceNowError:
    return SimServiceNowError(status, message, detail)


def _write_denied(operation: str) -> SimServiceNowError:
    return _error(
        403, "Operation Failed", f"ACL Exception {operation} Failed due to security constraints"
    )


def _int_param(text: str | None, default: int, minimum: int) -> int:
    try:
        value = int(text or "")
    except ValueError:
        return default
    return value if value >= minimum else default


Handler = Callable[..., SimResponse]
_V = r"(?:/v[12])?"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(rf"/api/now{_V}/table/(?P<table>[^/]+)/?"), {"GET": "list", "POST": "create"}),
    (
        re.compile(rf"/api/now{_V}/table/(?P<table>[^/]+)/(?P<sys_id>[^/]+)/?"),
        {"GET": "read", "PUT": "update", "PATCH": "update", "DELETE": "delete"},
    ),
    (re.compile(r"/api/now(?:/v1)?/attachment/?"), {"GET": "attachments"}),
    (re.compile(r"/api/now(?:/v1)?/attachment/file/?"), {"POST": "upload_raw"}),
    (re.compile(r"/api/now(?:/v1)?/attachment/upload/?"), {"POST": "upload_multipart"}),
    (
        re.compile(r"/api/now(?:/v1)?/attachment/(?P<sys_id>[^/]+)/?"),
        {"GET": "attachment", "DELETE": "delete_attachment"},
    ),
    (re.compile(r"/api/now(?:/v1)?/attachment/(?P<sys_id>[^/]+)/file/?"), {"GET": "download"}),
    (re.compile(r"/api/now(?:/v1)?/batch/?"), {"POST": "batch"}),
    (re.compile(r"/api/now(?:/v1)?/email/?"), {"POST": "email_send"}),
    (re.compile(r"/api/now(?:/v1)?/email/(?P<sys_id>[^/]+)/?"), {"GET": "email_read"}),
]


class _Instance:
    def __init__(self, state: SimServiceNowState) -> None:
        self.state = state

    # --- entry points ---------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        body = await request.body()
        base = self.state.instance_url or f"{request.url.scheme}://{request.url.netloc}"
        sim = SimRequest(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            base,
        )
        answer = self.handle(sim)
        return Response(answer.body, answer.status, headers=answer.headers)

    def handle(self, req: SimRequest) -> SimResponse:
        """Answer one HTTP request (not a batch sub-request) and log it."""
        state = self.state
        user_name: str | None = None
        subs: list[LoggedRequest] = []
        with state.lock:
            if state.down:
                answer = SimResponse(503, DOWN_PAGE.encode(), {"Content-Type": HTML_TYPE})
            elif state.hibernating:
                answer = SimResponse(200, HIBERNATING_PAGE.encode(), {"Content-Type": HTML_TYPE})
            elif (
                state.faults
                and state.faults[0].meets(req.path)
                and not state.faults[0].after_processing
            ):
                answer = self._fault()
            elif req.path == "/oauth_token.do":
                answer = self.token(req)
            elif req.path.startswith("/api/"):
                user = self.authenticate(req)
                if user is None:
                    answer = error_response(
                        _error(401, *UNAUTHENTICATED),
                        {"WWW-Authenticate": 'BASIC realm="Service-now"'},
                    )
                else:
                    user_name = user.user_name
                    answer = self._limited(req, user, subs)
                    if (
                        state.faults
                        and state.faults[0].meets(req.path)
                        and state.faults[0].after_processing
                    ):
                        answer = self._fault()  # done, but the caller never hears it
            else:
                answer = error_response(_error(400, NO_RESOURCE, None))
            answer.headers = {**_COMMON_HEADERS, **answer.headers}
            state.requests.append(
                LoggedRequest(req.method, req.path, req.query, user_name, answer.status, subs)
            )
        return answer

    def _fault(self) -> SimResponse:
        fault = self.state.faults.popleft()
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        return error_response(_error(fault.status, phrase, "Injected fault"), headers)

    def _limited(self, req: SimRequest, user: SimUser, subs: list[LoggedRequest]) -> SimResponse:
        counted = self.state.count_request(user)
        if counted is None:
            return self.dispatch(req, user, subs)
        rule, reset, allowed = counted
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Rule": rule.sys_id,
        }
        if not allowed:
            wait = max(1, math.ceil(reset - self.state.clock()))
            detail = (
                f"The rate limit of {rule.limit} requests per hour set by rule '{rule.name}' "
                "has been exceeded"
            )
            return error_response(
                _error(429, "Too Many Requests", detail), {**headers, "Retry-After": str(wait)}
            )
        answer = self.dispatch(req, user, subs)
        answer.headers.update(headers)
        return answer

    def dispatch(self, req: SimRequest, user: SimUser, subs: list[LoggedRequest]) -> SimResponse:
        """Route an authenticated API request (also used for batch sub-requests)."""
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            name = methods.get(req.method)
            if name is None:
                allow = ", ".join(methods)
                return error_response(
                    _error(405, "Method not Supported", "Requested method is not supported"),
                    {"Allow": allow},
                )
            try:
                if name == "batch":
                    return self.api_batch(req, user, subs)
                handler: Handler = getattr(self, f"api_{name}")
                return handler(req, user, **match.groupdict())
            except SimServiceNowError as exc:
                return error_response(exc)
        return error_response(_error(400, NO_RESOURCE, None))

    # --- authentication -------------------------------------------------------------

    def authenticate(self, req: SimRequest) -> SimUser | None:
        """The user behind Basic credentials or a live Bearer token."""
        scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            name, _, password = decoded.partition(":")
            return self.state.authenticate(name, password)
        if scheme.lower() == "bearer":
            token = self.state.access_tokens.get(credentials)
            if token is None or token.expires_at <= self.state.clock():
                return None
            user = self.state.users.get(token.user_name)
            return user if user is not None and self.state.user_active(user) else None
        return None

    def token(self, req: SimRequest) -> SimResponse:
        """``POST /oauth_token.do``: password, refresh_token and client_credentials grants."""
        state = self.state
        if req.method != "POST":
            return error_response(
                _error(405, "Method not Supported", "Requested method is not supported"),
                {"Allow": "POST"},
            )
        refused = json_response(401, TOKEN_ERROR)
        if (
            not req.headers.get("content-type", "")
            .lower()
            .startswith("application/x-www-form-urlencoded")
        ):
            return refused  # JSON bodies are not read: no client, no grant
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
        if not client_id and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return refused
            client_id, _, secret = decoded.partition(":")
        client = state.oauth_clients.get(client_id)
        if client is None or client.client_secret != secret:
            return refused
        grant = form.get("grant_type", "")
        if grant == "password":
            user = state.authenticate(form.get("username", ""), form.get("password", ""))
            if user is None:
                return refused
            access, refresh = state.issue_tokens(user.user_name, client_id, refresh=True)
        elif grant == "refresh_token":
            refresh = state.refresh_tokens.get(form.get("refresh_token", ""))
            owner = state.users.get(refresh.user_name) if refresh else None
            if (
                refresh is None
                or owner is None
                or refresh.client_id != client_id
                or refresh.expires_at <= state.clock()
                or not state.user_active(owner)
            ):
                return refused
            access, _ = state.issue_tokens(refresh.user_name, client_id, refresh=False)
        elif grant == "client_credentials":
            owner = state.users.get(client.user) if client.user else None
            if owner is None or not state.user_active(owner):
                return refused
            access, refresh = state.issue_tokens(owner.user_name, client_id, refresh=False)
        else:
            return refused
        payload: dict[str, Any] = {"access_token": access.value}
        if refresh is not None:
            payload["refresh_token"] = refresh.value
        payload |= {
            "scope": access.scope,
            "token_type": "Bearer",
            "expires_in": state.access_token_ttl,
        }
        return json_response(200, payload)

    # --- Table API ------------------------------------------------------------------

    def _renderer(self, req: SimRequest) -> Renderer:
        return Renderer(
            self.state,
            req.base_url,
            req.params.get("sysparm_display_value", "false").lower(),
            req.flag("sysparm_exclude_reference_link"),
        )

    def _require_table(self, table: str) -> None:
        if not self.state.has_table(table):
            raise invalid_table(table)

    def _visible(self, user: SimUser, record: dict[str, str]) -> bool:
        """Row-level rules: journal entries and attachments follow their parent's table."""
        state = self.state
        kind = record.get("sys_class_name")
        if "admin" in user.roles or kind not in ("sys_journal_field", "sys_attachment"):
            return True
        if kind == "sys_journal_field" and state.journal_rows_admin_only:
            return False
        parent = record.get("name" if kind == "sys_journal_field" else "table_name", "")
        return state.has_table(parent) and state.can_read(user, parent)

    def _body(self, req: SimRequest) -> dict[str, Any]:
        content_type = req.headers.get("content-type", "").lower()
        if content_type and "json" not in content_type:
            raise _error(
                415, "Unsupported Media Type", f"Content type {content_type} is not supported"
            )
        try:
            data = json.loads(req.body.decode("utf-8")) if req.body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, list):  # one record per write: the rest are ignored (KB0534905)
            data = data[0] if data else {}
        if not isinstance(data, dict):
            raise _error(400, "Exception while reading request", "The payload is not valid JSON.")
        return data

    def _page(
        self, req: SimRequest, records: list[dict[str, str]]
    ) -> tuple[list[dict[str, str]], dict[str, str]]:
        """The requested page and the ``X-Total-Count`` / ``Link`` headers."""
        params = req.params
        limit = _int_param(params.get("sysparm_limit"), DEFAULT_LIMIT, 1)
        offset = _int_param(params.get("sysparm_offset"), 0, 0)
        total = len(records)
        page = records[offset : offset + limit]
        headers: dict[str, str] = {}
        counted = not req.flag("sysparm_no_count")
        if counted:
            headers["X-Total-Count"] = str(total)
        if not req.flag("sysparm_suppress_pagination_header") and (offset > 0 or total > limit):
            pairs = [
                (k, v)
                for k, v in parse_qsl(req.query, keep_blank_values=True)
                if k not in ("sysparm_limit", "sysparm_offset")
            ]

            def link(at: int, rel: str) -> str:
                query = urlencode([*pairs, ("sysparm_limit", limit), ("sysparm_offset", at)])
                return f'<{req.base_url}{req.path}?{query}>;rel="{rel}"'

            links = [link(0, "first")]
            if offset > 0:
                links.append(link(max(0, offset - limit), "prev"))
            if offset + limit < total:
                links.append(link(offset + limit, "next"))
            if counted:
                links.append(link(max(0, (total - 1) // limit * limit), "last"))
            headers["Link"] = ",".join(links)
        return page, headers

    def api_list(self, req: SimRequest, user: SimUser, table: str) -> SimResponse:
        self._require_table(table)
        if not self.state.can_read(user, table):
            raise _error(403, *READ_DENIED)
        records = self.state.select(table, req.params.get("sysparm_query", ""))
        records = [r for r in records if self._visible(user, r)]
        page, headers = self._page(req, records)
        fields = split_fields(req.params.get("sysparm_fields"))
        renderer = self._renderer(req)
        return json_response(
            200, {"result": [renderer.record(table, r, fields) for r in page]}, headers
        )

    def _record(self, user: SimUser, table: str, sys_id: str) -> dict[str, str]:
        self._require_table(table)
        record = self.state.find(table, sys_id)
        if record is None or not self._visible(user, record):
            raise no_record()
        return record

    def api_read(self, req: SimRequest, user: SimUser, table: str, sys_id: str) -> SimResponse:
        self._require_table(table)
        if not self.state.can_read(user, table):
            raise _error(403, *READ_DENIED)
        record = self._record(user, table, sys_id)
        fields = split_fields(req.params.get("sysparm_fields"))
        return json_response(200, {"result": self._renderer(req).record(table, record, fields)})

    def api_create(self, req: SimRequest, user: SimUser, table: str) -> SimResponse:
        self._require_table(table)
        if not self.state.can_write(user, table, "create"):
            raise _write_denied("Insert")
        values = self._body(req)
        record = self.state.insert(
            table,
            values,
            user=user.user_name,
            input_display_value=req.flag("sysparm_input_display_value"),
        )
        fields = split_fields(req.params.get("sysparm_fields"))
        location = f"{req.base_url}/api/now/table/{table}/{record['sys_id']}"
        return json_response(
            201,
            {"result": self._renderer(req).record(table, record, fields)},
            {"Location": location},
        )

    def api_update(self, req: SimRequest, user: SimUser, table: str, sys_id: str) -> SimResponse:
        record = self._record(user, table, sys_id)
        if not self.state.can_write(user, table):
            raise _write_denied("Update")
        values = self._body(req)
        record = self.state.update(
            table,
            sys_id,
            values,
            user=user.user_name,
            input_display_value=req.flag("sysparm_input_display_value"),
        )
        fields = split_fields(req.params.get("sysparm_fields"))
        return json_response(200, {"result": self._renderer(req).record(table, record, fields)})

    def api_delete(self, req: SimRequest, user: SimUser, table: str, sys_id: str) -> SimResponse:
        self._record(user, table, sys_id)
        if not self.state.can_write(user, table, "delete"):
            raise _write_denied("Delete")
        self.state.delete(table, sys_id)
        return SimResponse(204)

    # --- Attachment API -------------------------------------------------------------

    def _attach(
        self,
        req: SimRequest,
        user: SimUser,
        table: str,
        table_sys_id: str,
        file_name: str,
        content: bytes,
        content_type: str,
    ) -> SimResponse:
        state = self.state
        self._require_table(table)
        parent = state.find(table, table_sys_id)
        if parent is None or not state.can_read(user, table):
            raise no_record()
        if not state.can_write(user, table):
            raise _write_denied("Insert")
        if len(content) > state.max_attachment_bytes:
            raise _error(
                400,
                "Failed to create the attachment. File part might be too large.",
                f"The file exceeds the maximum attachment size of {state.max_attachment_bytes} "
                "bytes",
            )
        record = state.add_attachment(
            table, table_sys_id, file_name, content, content_type, user=user.user_name
        )
        location = f"{req.base_url}/api/now/attachment/{record['sys_id']}"
        return json_response(
            201, {"result": attachment_meta(record, req.base_url)}, {"Location": location}
        )

    def api_upload_raw(self, req: SimRequest, user: SimUser) -> SimResponse:
        params = req.params
        for name in ("table_name", "table_sys_id", "file_name"):
            if not params.get(name):
                raise _error(400, f"Missing parameter: {name}", "")
        content_type = req.headers.get("content-type", "")
        if not content_type:
            raise _error(400, "Missing header: Content-Type", "Content-Type is mandatory")
        return self._attach(
            req,
            user,
            params["table_name"],
            params["table_sys_id"],
            params["file_name"],
            req.body,
            content_type,
        )

    def api_upload_multipart(self, req: SimRequest, user: SimUser) -> SimResponse:
        content_type = req.headers.get("content-type", "")
        parts = _multipart(req.body, content_type)
        if parts is None:
            raise _error(415, "Unsupported Media Type", "Content-Type must be multipart/form-data")
        fields: dict[str, str] = {}
        for name, file_name, part_type, data in parts:
            if file_name is None:
                fields[name] = data.decode("utf-8", "replace")
                continue
            # The metadata parts must precede the file part: the instance reads the
            # stream in order and needs the target record before the bytes arrive.
            for required in ("table_name", "table_sys_id"):
                if not fields.get(required):
                    raise _error(400, f"Missing parameter: {required}", "")
            return self._attach(
                req,
                user,
                fields["table_name"],
                fields["table_sys_id"],
                file_name,
                data,
                part_type or "application/octet-stream",
            )
        raise _error(400, "Missing parameter: file", "No file part in the request")

    def _readable_attachment(self, user: SimUser, record: dict[str, str]) -> bool:
        parent = record.get("table_name", "")
        return self.state.has_table(parent) and self.state.can_read(user, parent)

    def _attachment_record(self, user: SimUser, sys_id: str) -> dict[str, str]:
        record = self.state.find("sys_attachment", sys_id)
        if record is None or not self._readable_attachment(user, record):
            raise no_record()
        return record

    def api_attachments(self, req: SimRequest, user: SimUser) -> SimResponse:
        records = self.state.select("sys_attachment", req.params.get("sysparm_query", ""))
        visible = [r for r in records if self._readable_attachment(user, r)]
        page, headers = self._page(req, visible)
        return json_response(
            200, {"result": [attachment_meta(r, req.base_url) for r in page]}, headers
        )

    def api_attachment(self, req: SimRequest, user: SimUser, sys_id: str) -> SimResponse:
        record = self._attachment_record(user, sys_id)
        return json_response(200, {"result": attachment_meta(record, req.base_url)})

    def api_download(self, req: SimRequest, user: SimUser, sys_id: str) -> SimResponse:
        record = self._attachment_record(user, sys_id)
        content = self.state.attachment_content(sys_id) or b""
        meta = json.dumps(attachment_meta(record, req.base_url), separators=(",", ":"))
        return SimResponse(
            200,
            content,
            {
                "Content-Type": record.get("content_type") or "application/octet-stream",
                "X-Attachment-Metadata": meta,
            },
        )

    def api_delete_attachment(self, req: SimRequest, user: SimUser, sys_id: str) -> SimResponse:
        record = self._attachment_record(user, sys_id)
        if not self.state.can_write(user, record["table_name"]):
            raise _write_denied("Delete")
        self.state.delete("sys_attachment", record["sys_id"])
        return SimResponse(204)

    # --- Email API (see ``email``) ---------------------------------------------------

    def api_email_send(self, req: SimRequest, user: SimUser) -> SimResponse:
        return json_response(200, {"result": email.send(self.state, user, self._body(req))})

    def api_email_read(self, req: SimRequest, user: SimUser, sys_id: str) -> SimResponse:
        fields = split_fields(req.params.get("sysparm_fields"))
        return json_response(200, {"result": email.read(self.state, user, sys_id, fields)})

    # --- Batch API ------------------------------------------------------------------

    def api_batch(self, req: SimRequest, user: SimUser, subs: list[LoggedRequest]) -> SimResponse:
        payload = self._body(req)
        requests = payload.get("rest_requests")
        if not isinstance(requests, list):
            raise _error(400, "Exception while reading request", "rest_requests is required")
        serviced = []
        for item in requests:
            if not isinstance(item, dict):
                continue
            started = time.perf_counter()
            sub_req, answer = self._sub_request(req, user, item)
            subs.append(
                LoggedRequest(
                    sub_req.method, sub_req.path, sub_req.query, user.user_name, answer.status
                )
            )
            try:
                phrase = HTTPStatus(answer.status).phrase
            except ValueError:
                phrase = ""
            entry: dict[str, Any] = {
                "id": str(item.get("id", "")),
                "status_code": answer.status,
                "status_text": phrase,
                "headers": []
                if item.get("exclude_response_headers")
                else [{"name": k, "value": v} for k, v in answer.headers.items()],
                "body": base64.b64encode(answer.body).decode("ascii"),
                "execution_time": round((time.perf_counter() - started) * 1000),
            }
            serviced.append(entry)
        return json_response(
            200,
            {
                "batch_request_id": str(payload.get("batch_request_id", "")),
                "serviced_requests": serviced,
                "unserviced_requests": [],
            },
        )

    def _sub_request(
        self, req: SimRequest, user: SimUser, item: dict[str, Any]
    ) -> tuple[SimRequest, SimResponse]:
        url = urlsplit(str(item.get("url", "")))
        headers = {
            str(h.get("name", "")).lower(): str(h.get("value", ""))
            for h in item.get("headers") or []
            if isinstance(h, dict)
        }
        sub = SimRequest(
            str(item.get("method", "GET")).upper(), url.path, url.query, headers, b"", req.base_url
        )
        try:
            sub.body = base64.b64decode(str(item.get("body") or ""), validate=True)
        except binascii.Error:
            return sub, error_response(
                _error(400, "Exception while reading request", "The body is not valid base64")
            )
        if not sub.path.startswith("/api/now/") or re.fullmatch(
            r"/api/now(?:/v1)?/batch/?", sub.path
        ):
            return sub, error_response(_error(400, NO_RESOURCE, None))
        return sub, self.dispatch(sub, user, [])


def _multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, str, bytes]] | None:
    """``(name, filename or None, content type, data)`` per part of a form-data body."""
    header = Message()
    header["content-type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        return None
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, data = chunk.partition(b"\r\n\r\n")
        message = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                message[name.strip()] = value.strip()
        field_name = message.get_param("name", header="content-disposition")
        file_name = message.get_param("filename", header="content-disposition")
        parts.append(
            (
                field_name if isinstance(field_name, str) else "",
                file_name if isinstance(file_name, str) else None,
                message.get("content-type", ""),
                data.removesuffix(b"\r\n"),
            )
        )
    return parts


def create_app(state: SimServiceNowState) -> Starlette:
    """A Starlette app answering like a ServiceNow instance (see the module docstring)."""
    instance = _Instance(state)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", instance.endpoint, methods=methods)])
