"""The simulated knowledge base's HTTP surface: the EW REST interface under ``/ewws/``.

Every request goes one path: ``latency``, ``down`` (503 page), queued faults, the operation
and its methods (405), authentication (credentials or ``Authorization: Bearer``, never
both), the KB and table names (case-sensitive), the operation, then ``ws_delay`` (Agiloft's
``WSDelay``). Parameters come from the query string and the body (form-encoded or
multipart), keys repeated for multi-value fields. Errors answer HTTP 200 unless the call
says ``err_code_resp=1``. Formats: itsm-apis.md 4.2-4.3 and ``ewrest.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rsbridge.sim.agiloft import errors, ewrest
from rsbridge.sim.agiloft.errors import AgiloftError
from rsbridge.sim.agiloft.state import LoggedRequest, SimAgiloftState
from rsbridge.sim.agiloft.tables import Attachment

_PATH = re.compile(r"/ewws/(?P<op>[A-Za-z]+)(?P<json>/\.json)?/?")
GET_POST = ("GET", "POST")
METHODS: dict[str, tuple[str, ...]] = {
    "EWLogin": GET_POST,
    "EWLogout": GET_POST,
    "EWCreate": GET_POST,
    "EWRead": GET_POST,
    "EWUpdate": GET_POST,
    "EWDelete": ("GET", "POST", "DELETE"),
    "EWUpsert": ("POST",),
    "EWSelect": GET_POST,
    "EWSearch": GET_POST,
    "EWAttach": ("PUT", "POST"),
    "otoken": ("POST",),
    "EWRetrieve": GET_POST,
    "EWAttachInfo": GET_POST,
    "EWRemoveAttachment": GET_POST,
    "EWGetChoiceLineId": ("GET",),
}
# Parameters of the operations that are not record fields.
NOT_FIELDS = frozenset({"id", "err_code_resp"})
PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p>"
    "</body></html>"
)
DOWN_PAGE = (
    "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service "
    "your request.</p></body></html>"
)
NOT_FOUND_PAGE = "<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"


@dataclass
class Call:
    """One request as the operations see it."""

    method: str
    operation: str
    json: bool
    params: dict[str, list[str]]
    files: dict[str, list[Attachment]]
    body: bytes
    content_type: str
    authorization: str
    user: str | None = None

    def get(self, name: str, default: str = "") -> str:
        """The last value of a parameter."""
        values = self.params.get(name)
        return values[-1] if values else default

    def need(self, name: str) -> str:
        """A parameter that must have a value (400 "No value for '<name>' ...")."""
        value = self.get(name).strip()
        if not value:
            raise errors.no_value(name)
        return value

    @property
    def err_code(self) -> bool:
        """Whether errors answer their HTTP status (``err_code_resp=1``)."""
        return self.get("err_code_resp") == "1"

    @property
    def table(self) -> str | None:
        """The ``$table`` named, if any."""
        return self.get("$table") or None

    def values(self) -> dict[str, list[str]]:
        """The record fields the call writes (keys without ``$``)."""
        return {k: v for k, v in self.params.items() if "$" not in k and k not in NOT_FIELDS}

    def overwrite(self) -> list[str]:
        """File fields named ``<field>$overwrite`` (replace rather than add)."""
        return [
            k.removesuffix("$overwrite")
            for k, v in self.params.items()
            if k.endswith("$overwrite") and v and v[-1].lower() not in ("0", "false")
        ]


class AgiloftServer:
    """The request path of one simulated KB (see the module docstring)."""

    def __init__(self, state: SimAgiloftState) -> None:
        self.state = state
        self.task = 70000

    async def endpoint(self, request: Request) -> Response:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        call = _call(request, await request.body())
        with self.state.lock:
            answer = self.handle(call)
            self.state.requests.append(
                LoggedRequest(
                    call.method,
                    call.operation,
                    call.table,
                    call.user,
                    answer.status_code,
                    call.get("$KB") or None,
                )
            )
        if self.state.ws_delay > 0:
            await asyncio.sleep(self.state.ws_delay)
        return answer

    def handle(self, call: Call) -> Response:
        """The answer to one call, errors included."""
        state = self.state
        if state.down:
            return Response(DOWN_PAGE, 503, media_type=ewrest.HTML_TYPE)
        try:
            if state.faults:
                fault = state.faults.popleft()
                if fault.html:
                    return Response(PROXY_PAGE, fault.status, media_type=ewrest.HTML_TYPE)
                raise AgiloftError(fault.status, fault.message)
            allowed = METHODS.get(call.operation)
            if allowed is None:
                return Response(NOT_FOUND_PAGE, 404, media_type=ewrest.HTML_TYPE)
            if call.method not in allowed:
                raise errors.method_not_allowed(call.method)
            if call.operation == "otoken":
                return self.otoken(call)
            if call.operation == "EWLogin":
                return self.login(call)
            if call.operation == "EWLogout":
                self.state.logout(self._bearer(call))
                return self._ok(call, [], None)
            self.authenticate(call)
            handler = getattr(self, call.operation.removeprefix("EW").lower())
            answer: Response = handler(call, self._table(call))
            return answer
        except AgiloftError as exc:
            return self.error(call, exc)

    # -- answers -----------------------------------------------------------------------
    def error(self, call: Call, exc: AgiloftError) -> Response:
        """An error in the call's style: the ``/.json`` envelope or the exception page."""
        status = exc.status if call.err_code else 200
        if call.json:
            body = ewrest.envelope(None, exc.message, success=False)
            return Response(body, status, media_type=ewrest.JSON_TYPE)
        self.task += 1
        page = ewrest.error_page(exc, self.task, int(self.state.clock() * 1000))
        return Response(page, status, media_type=ewrest.HTML_TYPE)

    @staticmethod
    def _ok(call: Call, lines: list[str], result: Any, status: int = 200) -> Response:
        if call.json:
            return Response(ewrest.envelope(result), status, media_type=ewrest.JSON_TYPE)
        return Response(ewrest.text_body(lines), status, media_type=ewrest.TEXT_TYPE)

    # -- authentication ----------------------------------------------------------------
    @staticmethod
    def _bearer(call: Call) -> str:
        scheme, _, token = call.authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AgiloftError(401, errors.WRONG_AUTHORIZATION)
        return token.strip()

    @staticmethod
    def _credentials(call: Call) -> bool:
        given = "$login" in call.params or "$password" in call.params
        if given and call.authorization:
            raise errors.bad(errors.BOTH_CREDENTIALS)
        return given

    def _kb(self, call: Call, required: bool) -> None:
        kb = call.get("$KB")
        if not kb and required:
            raise errors.bad(errors.MISSING_SYSTEM)
        if kb:
            self.state.check_kb(kb)
        if required and not call.get("$lang"):
            raise errors.bad(errors.MISSING_SYSTEM)

    def otoken(self, call: Call) -> Response:
        """The OAuth2 token endpoint, client credentials grant (RFC 6749 4.4): the client
        in the form body or HTTP Basic; RFC 6749 error objects (the answer format is
        inferred: Agiloft documents the endpoint and the grants, not the bodies)."""
        client_id, secret = call.get("client_id"), call.get("client_secret")
        scheme, _, encoded = call.authorization.strip().partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                decoded = base64.b64decode(encoded.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if call.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        answer = self.state.client_credentials(client_id, secret)
        if answer is None:
            return _oauth_error(401, "invalid_client")
        call.user = client_id
        return Response(json.dumps(answer), 200, media_type="application/json")

    def login(self, call: Call) -> Response:
        """EWLogin: credentials, or ``refresh_token`` with the access token."""
        if self._credentials(call):
            self._kb(call, required=True)
            call.user = call.get("$login")
            answer = self.state.login(call.get("$login"), call.get("$password"))
        elif "refresh_token" in call.params:
            self._kb(call, required=False)
            answer = self.state.refresh(self._bearer(call), call.need("refresh_token"))
        else:
            raise errors.bad(errors.NO_CREDENTIALS)
        # The documented answer is a bare JSON object; /.json wraps it (inferred).
        body = ewrest.envelope(answer) if call.json else json.dumps(answer)
        return Response(body, 200, media_type=ewrest.JSON_TYPE)

    def authenticate(self, call: Call) -> None:
        """Sets ``call.user``; credentials want ``$KB`` and ``$lang``, a token may omit
        them (its KB is the one it was issued for)."""
        if self._credentials(call):
            call.user = call.get("$login")
            self._kb(call, required=True)
            self.state.check_password(call.get("$login"), call.get("$password"))
        elif call.authorization:
            grant = self.state.authenticate(self._bearer(call))
            call.user = grant.login
            self._kb(call, required=False)
            kb = call.get("$KB")
            if kb and kb != grant.kb:
                raise errors.bad(errors.KB_MISMATCH)
        else:
            raise errors.bad(errors.NO_CREDENTIALS)

    def _table(self, call: Call) -> str:
        table = call.table
        if not table:
            raise errors.bad(errors.MISSING_SYSTEM)
        self.state.table(table)
        return table

    # -- operations (one method each, named after the operation) ------------------------
    def create(self, call: Call, table: str) -> Response:
        record_id = self.state.create(table, call.values(), call.files, user=call.user or "")
        return self._ok(call, [ewrest.line("id", str(record_id))], record_id)

    def _target(self, call: Call, table: str, missing: str) -> str:
        """The id of ``id=``, or of the one record ``$searchSQL`` selects."""
        record_id = call.get("id").strip()
        if record_id:
            return record_id
        where = call.get("$searchSQL").strip()
        if not where:
            raise errors.bad(missing)
        ids = self.state.select(table, where)
        if not ids:
            raise errors.not_found(where)
        if len(ids) > 1:
            raise errors.bad(f"$searchSQL must match exactly one record; it matches {len(ids)}")
        return str(ids[0])

    def _record(self, call: Call, table: str, record_id: str | int) -> Response:
        view = self.state.view(table, self.state.record(table, record_id))
        return self._ok(call, ewrest.record_lines(view), view)

    def read(self, call: Call, table: str) -> Response:
        return self._record(call, table, self._target(call, table, errors.NO_ID))

    def update(self, call: Call, table: str) -> Response:
        record_id = self._target(call, table, errors.NO_ID_OR_SEARCH)
        record = self.state.update(table, record_id, call.values(), call.files, call.overwrite())
        return self._record(call, table, record.id)

    def delete(self, call: Call, table: str) -> Response:
        record_id = call.get("id").strip()
        if not record_id:
            raise errors.bad(errors.NO_ID)
        self.state.delete(table, record_id, call.get("deleteRule") or "ERROR_IF_DEPENDANTS")
        return self._ok(call, [], None)

    def upsert(self, call: Call, table: str) -> Response:
        match = [m for m in call.params.get("$match", []) if m.strip()]
        record_id, created = self.state.upsert(
            table, match, call.values(), call.files, call.overwrite()
        )
        status = 201 if created else 200
        return self._ok(call, [ewrest.line("id", str(record_id))], record_id, status)

    def select(self, call: Call, table: str) -> Response:
        ids = self.state.select(table, call.need("where"))
        lines = [ewrest.counter("id_length", len(ids))]
        lines += [ewrest.counter(f"id_{i}", record_id) for i, record_id in enumerate(ids)]
        return self._ok(call, lines, ids)

    def search(self, call: Call, table: str) -> Response:
        saved = call.get("search")
        if saved:
            raise errors.bad(f"No search {saved} for table {table}")
        page, limit = _whole(call, "page"), _whole(call, "limit")
        fields = [f for f in call.params.get("field", []) if f.strip()]
        rows = self.state.search(table, call.get("query"), fields, page, limit)
        if not rows:
            return self._ok(call, [ewrest.counter("id_length", 0)], [])
        lines = [ewrest.counter("length", len(rows))]
        for i, row in enumerate(rows):
            lines += ewrest.record_lines(row, f"_{i}")
        return self._ok(call, lines, rows)

    def attach(self, call: Call, table: str) -> Response:
        record_id, column = call.need("id"), call.need("field")
        name = call.need("fileName")
        files = [f for held in call.files.values() for f in held]
        if not files and call.body and not call.content_type.startswith("multipart/"):
            files = [Attachment(name, call.content_type or "application/octet-stream", call.body)]
        if not files:
            raise errors.bad("No file in the request body")
        if len(files) == 1:
            files = [Attachment(name, files[0].content_type, files[0].data)]
        overwrite = column in call.overwrite()
        count = self.state.attach(table, record_id, column, files, overwrite)
        return self._ok(call, [ewrest.line(f"{column}.length", str(count))], count)

    def retrieve(self, call: Call, table: str) -> Response:
        position = _whole(call, "filePosition")
        found = self.state.attachment(table, call.need("id"), call.need("field"), position)
        safe = found.name.replace('"', "'").replace("\r", " ").replace("\n", " ")
        disposition = f'attachment; filename="{safe}"'
        return Response(
            found.data,
            200,
            headers={"Content-Disposition": disposition},
            media_type=found.content_type,
        )

    def attachinfo(self, call: Call, table: str) -> Response:
        info = self.state.attach_info(table, call.need("id"), call.need("field"))
        lines = [ewrest.counter("length", len(info))]
        for i, item in enumerate(info):
            lines += [ewrest.line(f"{k}_{i}", str(v)) for k, v in item.items()]
        return self._ok(call, lines, info)

    def removeattachment(self, call: Call, table: str) -> Response:
        column = call.need("field")
        position = _whole(call, "filePosition")
        left = self.state.remove_attachment(table, call.need("id"), column, position)
        return self._ok(call, [ewrest.line(f"{column}.length", str(left))], left)

    def getchoicelineid(self, call: Call, table: str) -> Response:
        line = self.state.choice_line_id(table, call.need("field"), call.need("value"))
        return self._ok(call, [ewrest.counter("choiceLineId", line)], line)


def _whole(call: Call, name: str) -> int:
    text = call.get(name, "0").strip() or "0"
    if not text.isdigit():
        raise errors.bad(f"Wrong value for '{name}' parameter: {text!r}")
    return int(text)


def _oauth_error(status: int, error: str) -> Response:
    return Response(json.dumps({"error": error}), status, media_type="application/json")


def _call(request: Request, body: bytes) -> Call:
    """Parameters from the query string and the body; files from multipart parts."""
    match = _PATH.fullmatch(request.url.path)
    params: dict[str, list[str]] = {}
    files: dict[str, list[Attachment]] = {}
    for key, value in parse_qsl(request.url.query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        _multipart(content_type, body, params, files)
    elif body and "json" not in content_type and "octet-stream" not in content_type:
        text = body.decode("utf-8", "replace")
        if "=" in text and request.method != "PUT":
            for key, value in parse_qsl(text, keep_blank_values=True):
                params.setdefault(key, []).append(value)
    return Call(
        request.method,
        match["op"] if match else request.url.path,
        bool(match and match["json"]),
        params,
        files,
        body,
        content_type,
        request.headers.get("authorization", ""),
    )


def _multipart(
    content_type: str,
    body: bytes,
    params: dict[str, list[str]],
    files: dict[str, list[Attachment]],
) -> None:
    """Text parts are parameters; parts with a file name are files of the field they name
    (documented: the form field name is the file field's name)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    if not message.is_multipart():
        return  # unreadable: the operation then finds its parameters missing
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is None:
            params.setdefault(name, []).append(data.decode("utf-8", "replace"))
        else:
            kind = part.get_content_type() or "application/octet-stream"
            files.setdefault(name, []).append(Attachment(str(filename), kind, data))


def create_app(state: SimAgiloftState) -> Starlette:
    """The ASGI app of a simulated knowledge base over ``state``."""
    server = AgiloftServer(state)
    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", server.endpoint, methods=methods)])
