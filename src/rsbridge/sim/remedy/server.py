"""The simulated AR System server's HTTP surface: JWT login/logout and the entry API.

Every request goes through one path: ``down`` (503, ARERR 90), queued faults (an AR error
array, or an HTML page as a proxy in front would send), login/logout, then ``AR-JWT``
authentication (401, ARERR 623) and the entry routes under ``/api/arsys/v1`` (also
``/api/arsys/v1.0``). Formats: itsm-apis.md 3.1-3.4.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rsbridge.sim.remedy import errors
from rsbridge.sim.remedy.errors import ARError
from rsbridge.sim.remedy.forms import FormDef
from rsbridge.sim.remedy.qualification import parse_qualification
from rsbridge.sim.remedy.state import Entry, LoggedRequest, SimRemedyState
from rsbridge.sim.remedy.values import render

_ENTRY = re.compile(r"/api/arsys/v1(?:\.0)?/entry/(?P<form>[^/]+)(?:/(?P<id>[^/]+))?"
                    r"(?:/attach/(?P<attach>[^/]+))?")  # fmt: skip
_FIELDS = re.compile(r"values\((?P<names>.*)\)", re.DOTALL)
DEFAULT_LIMIT = 100  # the REST API's default page size (itsm-apis.md 3.2, pagination)
PROXY_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p>"
    b"</body></html>"
)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers, media_type="application/json")


def _error(exc: ARError, headers: dict[str, str] | None = None) -> Response:
    return Response(exc.body(), exc.status, headers=headers, media_type="application/json")


class RemedyServer:
    """The request path of one simulated server (see the module docstring)."""

    def __init__(self, state: SimRemedyState) -> None:
        self.state = state

    async def endpoint(self, request: Request) -> Response:
        if self.state.latency > 0:
            await asyncio.sleep(self.state.latency)
        body = await request.body()
        user: str | None = None
        state = self.state
        with state.lock:
            try:
                if state.down:
                    raise ARError(503, 90, "Cannot establish a network connection to the AR "
                                  "System server")  # fmt: skip
                if state.faults:
                    fault = state.faults.popleft()
                    if fault.html:
                        answer = Response(PROXY_PAGE, fault.status, media_type="text/html")
                        self._log(request, None, answer)
                        return answer
                    raise ARError(fault.status, fault.number, fault.text)
                path = request.url.path
                if path == "/api/jwt/login" and request.method == "POST":
                    answer = self.login(body)
                elif path == "/api/jwt/logout" and request.method == "POST":
                    answer = self.logout(request)
                else:
                    user = self.authenticate(request)
                    answer = self.entries(request, body, user)
            except ARError as exc:
                answer = _error(exc)
            self._log(request, user, answer)
        return answer

    def _log(self, request: Request, user: str | None, answer: Response) -> None:
        self.state.requests.append(
            LoggedRequest(
                request.method, request.url.path, request.url.query, user, answer.status_code
            )
        )

    def login(self, body: bytes) -> Response:
        """Form body in, raw JWT text out; a refusal carries ``X-AR-Messages`` (3.1)."""
        form = parse_qs(body.decode("utf-8", "replace"))
        token = self.state.login(form.get("username", [""])[0], form.get("password", [""])[0])
        if token is None:
            failed = errors.authentication_failed()
            messages = json.dumps([{**failed.entry(), "messageText": "Authentication failed"}])
            return _error(failed, {"X-AR-Messages": messages})
        return Response(token, 200, media_type="text/plain")

    def logout(self, request: Request) -> Response:
        token = self._token(request)
        if not token or not self.state.logout(token):
            raise errors.authentication_failed()
        return Response(status_code=204)

    @staticmethod
    def _token(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme == "AR-JWT" else ""

    def authenticate(self, request: Request) -> str:
        user = self.state.authenticate(self._token(request))
        if user is None:
            raise errors.authentication_failed()
        return user

    # -- entry API ---------------------------------------------------------------------
    def entries(self, request: Request, body: bytes, user: str) -> Response:
        match = _ENTRY.fullmatch(request.url.path)
        if match is None:
            return Response(status_code=404)
        form = self.state.form(match["form"])
        entry_id, attach = match["id"], match["attach"]
        method = request.method
        base = f"{request.url.scheme}://{request.url.netloc}"
        if attach is not None:
            if method != "GET":
                return Response(status_code=405)
            return self.download(form, entry_id, attach)
        if entry_id is None and method == "GET":
            return self.search(form, request, base)
        if entry_id is None and method == "POST":
            return self.create(form, request, body, user, base)
        if entry_id is not None and method == "GET":
            entry = self.state.entry(form, entry_id)
            fields = _fields(form, request.query_params.get("fields"))
            return _json(200, self.view(form, entry, fields, base))
        if entry_id is not None and method == "PUT":
            self.state.update(form.name, entry_id, _values(body), user)
            return Response(status_code=204)
        if entry_id is not None and method == "DELETE":
            self.state.delete(form.name, entry_id)
            return Response(status_code=204)
        return Response(status_code=405)

    def href(self, base: str, form: FormDef, entry_id: str = "") -> str:
        url = f"{base}/api/arsys/v1/entry/{quote(form.name, safe=':')}"
        return f"{url}/{quote(entry_id, safe='|')}" if entry_id else url

    def view(
        self, form: FormDef, entry: Entry, fields: list[int] | None, base: str
    ) -> dict[str, Any]:
        """``{"values": {...}, "_links": {"self": [...]}}`` for one entry."""
        public = self.state.public_id(form, entry)
        own = self.href(base, form, public)
        values: dict[str, Any] = {}
        for fdef in form.fields:
            if fields is not None and fdef.id not in fields:
                continue
            value = public if fdef.id == 1 else entry.values.get(fdef.id)
            values[fdef.name] = render(fdef, value, f"{own}/attach/{quote(fdef.name)}")
        return {"values": values, "_links": {"self": [{"href": own}]}}

    def search(self, form: FormDef, request: Request, base: str) -> Response:
        params = request.query_params
        predicate = parse_qualification(form, params.get("q", ""))
        found = self.state.search(form, predicate)
        for spec in reversed([s for s in params.get("sort", "").split(",") if s.strip()]):
            name, _, direction = spec.strip().rpartition(".")
            if not name or direction.lower() not in ("asc", "desc"):
                name, direction = spec.strip(), "asc"
            fdef = form.lookup(name)
            if fdef is None:
                raise errors.no_such_field(form.name, name)
            found.sort(key=_sort_key(fdef.id), reverse=direction.lower() == "desc")
        try:
            offset = max(int(params.get("offset", "0")), 0)
            limit = max(int(params.get("limit", str(DEFAULT_LIMIT))), 1)
        except ValueError:
            raise errors.bad_request("offset and limit are numbers") from None
        fields = _fields(form, params.get("fields"))
        page = found[offset : offset + limit]
        links: dict[str, Any] = {"self": [{"href": str(request.url)}]}
        if offset + limit < len(found):
            query = dict(params.items())
            query.update(offset=str(offset + limit), limit=str(limit))
            links["next"] = [
                {"href": f"{self.href(base, form)}?{urlencode(query, quote_via=quote)}"}
            ]
        if offset > 0:
            query = dict(params.items())
            query.update(offset=str(max(offset - limit, 0)), limit=str(limit))
            links["prev"] = [
                {"href": f"{self.href(base, form)}?{urlencode(query, quote_via=quote)}"}
            ]
        entries = [self.view(form, e, fields, base) for e in page]
        # numMatches is null unless asked for, as in the recorded list_worklogs.json.
        return _json(200, {"entries": entries, "numMatches": None, "_links": links})

    def create(
        self, form: FormDef, request: Request, body: bytes, user: str, base: str
    ) -> Response:
        """201 + ``Location``, empty body unless ``fields=values(...)``; join forms answer 204
        without an id (3.2)."""
        fields = _fields(form, request.query_params.get("fields"))  # refused before any write
        content_type = request.headers.get("content-type", "")
        files: dict[str, tuple[str, bytes]] = {}
        if content_type.startswith("multipart/form-data"):
            raw, files = _multipart(content_type, body)
        else:
            raw = _values(body)
        entry_id = self.state.create(form.name, raw, user, files)
        if form.join:
            return Response(status_code=204)
        entry = self.state.entry(self.state.form(form.store), entry_id)
        public = self.state.public_id(form, entry)
        headers = {"Location": self.href(base, form, public)}
        if fields is None:
            return Response(status_code=201, headers=headers)
        answer = self.view(form, entry, fields, base)
        answer["_links"] = {"self": [{"href": self.href(base, form)}]}
        return _json(201, answer, headers)

    def download(self, form: FormDef, entry_id: str, name: str) -> Response:
        entry = self.state.entry(form, entry_id)
        fdef = form.by_name.get(name)
        if fdef is None or fdef.type != "attachment":
            raise errors.no_such_field(form.name, name)
        data = entry.files.get(fdef.id)
        if data is None:
            raise errors.not_found(f"{entry_id} : {name}")
        return Response(data, 200, media_type="application/octet-stream")


def _sort_key(field_id: int) -> Callable[[Entry], tuple[bool, Any]]:
    """Empty values first (ascending), then by stored value."""

    def key(entry: Entry) -> tuple[bool, Any]:
        value = entry.values.get(field_id)
        return (value is not None, value if value is not None else 0)

    return key


def _values(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise errors.bad_request("the body is not JSON") from None
    values = parsed.get("values") if isinstance(parsed, dict) else None
    if not isinstance(values, dict):
        raise errors.bad_request('the body has no "values" object')
    return values


def _fields(form: FormDef, spec: str | None) -> list[int] | None:
    """Field ids named by ``fields=values(a,b)``; ``None`` when not given."""
    if spec is None:
        return None
    match = _FIELDS.fullmatch(spec.strip())
    if match is None:
        raise errors.bad_request("fields must look like values(Field 1,Field 2)")
    ids: list[int] = []
    for name in (n.strip() for n in match["names"].split(",") if n.strip()):
        fdef = form.lookup(name)
        if fdef is None:
            raise errors.no_such_field(form.name, name)
        ids.append(fdef.id)
    return ids


def _multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """The ``entry`` JSON part and ``attach-<field>`` file parts (3.3, work-log multipart)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    raw: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "entry":
            raw = _values(data)
        elif isinstance(name, str) and name.startswith("attach-"):
            files[name[len("attach-") :]] = (str(part.get_filename() or "attachment"), data)
    if raw is None:
        raise errors.bad_request('the multipart body has no "entry" part')
    return raw, files


def create_app(state: SimRemedyState) -> Starlette:
    """The ASGI app of a simulated AR System server over ``state``."""
    server = RemedyServer(state)
    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", server.endpoint, methods=methods)])
