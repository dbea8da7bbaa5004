"""A small AR System REST client: JWT login and the entry API, over httpx.

Written here rather than taken from ``remedy-py`` (synchronous ``requests``, no error
mapping, no multipart) so the simulator sees exactly what we send (itsm-apis.md §3).
What it speaks (AR 9.1 and later, Helix ITSM):

* ``POST /api/jwt/login`` with a form body (username, password, optional authString);
  the answer is the raw JWT as text. Later calls send ``Authorization: AR-JWT <token>``.
  A token lives about an hour: a 401 (ARERR 623) is answered by one fresh login and a
  retry. :meth:`RemedyClient.logout` releases the token on shutdown.
* The entry API under ``/api/arsys/v1/entry/{form}``: search with a ``q``
  qualification (pages followed through ``next`` links), get, create (201 and a
  ``Location`` header; multipart with ``entry`` and ``attach-<field>`` parts for files),
  update (PUT, 204).
* Errors are AR's error array ``[{messageType, messageNumber, messageText,
  messageAppendedText}]``: 302 (no such entry) is TicketNotFoundError; 303 (no such
  form), 314 (no such field), 326 (required field) and filter errors are permanent and
  named; 5xx, 429 and transport failures are retryable. An HTML page (a proxy, single
  sign-on or Mid-Tier answering instead of the AR REST port) gets a message that says so.

Customer data only ever reaches AR inside a double-quoted value of a qualification
(:func:`ar_quote`), never as a field name, a form name or a path segment of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
from pydantic import SecretStr

from rsbridge.connectors.transport import (
    FormPart,
    PeerTransport,
    body_excerpt,
    looks_like_html,
    multipart_body,
    response_json,
    retry_after_seconds,
    secret_text,
)
from rsbridge.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)

Values = dict[str, Any]

ANY_ENTRY = "'1' != $NULL$"
"""A qualification every entry meets (field 1, the entry id, is never empty): servers
that refuse unqualified searches accept it."""

API = "/api/arsys/v1"
PAGE_SIZE = 100
"""Entries asked for per search page (AR's default page limit)."""
MAX_PAGES = 50
"""A search stops following ``next`` links after this many pages (5,000 entries)."""

# ARERR numbers the client reacts to (itsm-apis.md 3.4).
NO_ENTRY = 302
NO_FORM = 303
NO_FIELD = 314
REQUIRED = 326
DUPLICATE = 382
AUTH_FAILED = 623
_PERMANENT_NUMBERS = frozenset({101, 306, NO_FIELD, REQUIRED, 1587, 8931})
"""Refusals of the request itself: too long an id, a bad value, an unknown field, a
required field left empty, a bad qualification, a body AR cannot read."""
_RETRYABLE_NUMBERS = frozenset({90, 91, 92, 93, 94})
"""Cannot reach the AR server / server busy or timed out behind the REST layer (inferred)."""


class DuplicateEntryError(ConnectorRetryableError):
    """A save repeated the values of a unique index (ARERR 382): another writer saved the
    same key first; a retry finds its entry."""


class FormMissingError(ConnectorPermanentError):
    """The AR server has no form of that name (ARERR 303): a set-up problem, not a
    missing ticket."""


@dataclass(frozen=True)
class ARMessage:
    """One element of AR's error array."""

    number: int | None
    text: str
    appended: str

    def __str__(self) -> str:
        number = f"ARERR {self.number}: " if self.number is not None else ""
        return f"{number}{self.text}" + (f" ({self.appended})" if self.appended else "")


def error_array(body: Any) -> list[ARMessage]:
    """The messages of an AR error answer (empty when the body is not one)."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    found = []
    for item in body:
        if not isinstance(item, dict) or "messageText" not in item:
            continue
        number = item.get("messageNumber")
        found.append(
            ARMessage(
                int(number) if isinstance(number, int | str) and str(number).isdigit() else None,
                str(item.get("messageText") or ""),
                str(item.get("messageAppendedText") or ""),
            )
        )
    return found


def ar_quote(value: str) -> str:
    """``value`` as a double-quoted AR qualification string (``"`` doubled inside).

    Line breaks and other control characters are dropped: a qualification is one line,
    and no value rsbridge looks up (numbers, keys, names) holds them legitimately.
    """
    clean = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return '"' + clean.replace('"', '""') + '"'


def field_ref(name: str) -> str:
    """A field name as a qualification names it: in single quotes."""
    if "'" in name:
        raise ValueError(f"an AR field name cannot hold a single quote: {name!r}")
    return f"'{name}'"


def equals(field: str, value: str) -> str:
    """``'field' = "value"``."""
    return f"{field_ref(field)} = {ar_quote(value)}"


@dataclass(frozen=True)
class Attachment:
    """A file for an attachment field of a create (multipart ``attach-<field>`` part)."""

    field: str
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


class RemedyClient:
    """Calls one AR System server as one user; share it between tasks."""

    def __init__(
        self,
        server_url: str,
        username: str,
        password: SecretStr | None,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        auth_string: str | None = None,
    ) -> None:
        self.transport = PeerTransport(
            "Remedy", server_url, http, timeout=timeout, secrets=self._secrets
        )
        self.server_url = self.transport.base_url
        self.username = username
        self._password = password
        self.auth_string = auth_string
        self._token: str | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0
        """Successful logins, for tests (a token is reused until AR refuses it)."""

    def _secrets(self) -> list[str]:
        token = [self._token] if self._token else []
        return [secret_text(self._password), *token]

    @property
    def calls(self) -> int:
        """HTTP requests sent (logins included), for tests and benchmarks."""
        return self.transport.calls

    @property
    def where(self) -> str:
        """``"Remedy <host>"``, the start of every message."""
        return self.transport.where

    # --- authentication -----------------------------------------------------------

    async def login(self, *, stale: str | None = None) -> None:
        """Get a JWT. ``stale``: the token a 401 refused; if another task has replaced
        it meanwhile, that one is used instead of logging in again."""
        async with self._login_lock:
            if self._token is not None and self._token != stale:
                return
            form = {"username": self.username, "password": secret_text(self._password)}
            if self.auth_string:
                form["authString"] = self.auth_string
            response = await self.transport.send(
                "POST",
                f"{self.server_url}/api/jwt/login",
                content=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            status = response.status_code
            token = response.text.strip()
            if status == 200 and token and not looks_like_html(response) and " " not in token:
                self._token = token
                self.logins += 1
                return
            if looks_like_html(response):
                self._raise_for(response, "log in")  # a proxy or SSO page: says so
            if status == 429 or status >= 500:
                raise ConnectorRetryableError(
                    f"{self.where}: the login endpoint is not answering "
                    f"({_said(response)}); will retry",
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )
            raise self.transport.scrub(
                ConnectorAuthError(
                    f"{self.where}: login as {self.username!r} was refused ({_said(response)}); "
                    "check username, password and auth_string, and that the user may use the "
                    "REST API"
                )
            )

    async def logout(self) -> None:
        """Release the token (best effort: a server that is gone has released it anyway)."""
        token, self._token = self._token, None
        if token is None:
            return
        with contextlib.suppress(ConnectorError):
            await self.transport.send(
                "POST",
                f"{self.server_url}/api/jwt/logout",
                headers={"Authorization": f"AR-JWT {token}"},
            )

    # --- calls ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        what: str,
    ) -> httpx.Response:
        """One call to ``path`` (under the server URL); one re-login on a 401. A 2xx
        answer, or raise (see the module docstring)."""
        headers = {"Accept": "application/json"}
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self._token is None:
                await self.login()
            token = self._token
            response = await self.transport.send(
                method,
                f"{self.server_url}{path}",
                content=content,
                params=params,
                headers={**headers, "Authorization": f"AR-JWT {token}"},
            )
            if response.status_code == 401 and attempt == 1:
                await self.login(stale=token)
                continue
            break
        self._raise_for(response, what)
        return response

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if 200 <= status < 300 and not looks_like_html(response):
            return
        messages = error_array(response_json(response))
        numbers = {m.number for m in messages}
        said = "; ".join(str(m) for m in messages) or _said(response)
        where = f"{self.where}: {what}"
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        error: ConnectorError
        if looks_like_html(response):
            page = (
                f"{where}: an HTML page answered (HTTP {status}), not the AR REST API: a proxy, "
                "single sign-on or the Mid-Tier is in front; server_url must reach the AR "
                "server's REST port (8008 by default)"
            )
            error = (
                ConnectorRetryableError(page + "; will retry", retry_after=retry_after)
                if status >= 500 or status in (200, 429)
                else ConnectorPermanentError(page)
            )
        elif numbers & _RETRYABLE_NUMBERS:
            error = ConnectorRetryableError(
                f"{where}: HTTP {status} ({said})", retry_after=retry_after
            )
        elif status == 401 or AUTH_FAILED in numbers:
            error = ConnectorAuthError(
                f"{where}: not authenticated after a fresh login ({said}); check the user"
            )
        elif DUPLICATE in numbers:
            error = DuplicateEntryError(
                f"{where}: another writer saved the same key first ({said}); will retry",
                retry_after=retry_after,
            )
        elif NO_FORM in numbers:
            error = FormMissingError(
                f"{where}: a form is missing ({said}); import the session forms "
                "(`rsbridge remedy forms`) and check the form settings"
            )
        elif NO_ENTRY in numbers:
            error = TicketNotFoundError(f"{where}: not found ({said})")
        elif NO_FIELD in numbers:
            error = ConnectorPermanentError(
                f"{where}: a field is missing ({said}); `rsbridge check` lists every missing field"
            )
        elif numbers & _PERMANENT_NUMBERS or (messages and 400 <= status < 500 and status != 429):
            # AR refused the values (a required field, a bad value, a filter): sent with
            # HTTP 400 or, by some servers, 500; repeating the call cannot change that.
            error = ConnectorPermanentError(f"{where}: refused with HTTP {status} ({said})")
        elif status >= 500 or status in (408, 429):
            error = ConnectorRetryableError(
                f"{where}: HTTP {status} ({said})", retry_after=retry_after
            )
        elif status == 404:
            error = ConnectorPermanentError(
                f"{where}: HTTP 404 without an AR message ({said}); check that server_url is "
                "the AR server's REST endpoint"
            )
        elif status == 403:
            error = ConnectorPermanentError(
                f"{where}: access refused ({said}); give the integration user write access "
                "to the forms"
            )
        else:
            error = ConnectorPermanentError(f"{where}: refused with HTTP {status} ({said})")
        raise self.transport.scrub(error)

    # --- entries --------------------------------------------------------------------

    @staticmethod
    def entry_path(form: str, entry_id: str = "") -> str:
        """``/api/arsys/v1/entry/<form>[/<id>]``, each part percent-encoded."""
        path = f"{API}/entry/{quote(form, safe=':')}"
        return f"{path}/{quote(entry_id, safe='|')}" if entry_id else path

    async def search(
        self,
        form: str,
        qualification: str,
        fields: Sequence[str] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        what: str = "search",
    ) -> list[Values]:
        """The values of every entry ``qualification`` matches (all when empty; ``next``
        pages followed), or of the first ``limit``."""
        params: dict[str, str] = {"q": qualification} if qualification else {}
        if fields:
            params["fields"] = f"values({','.join(fields)})"
        if sort:
            params["sort"] = sort
        size = min(limit or PAGE_SIZE, PAGE_SIZE)
        params["limit"] = str(size)
        found: list[Values] = []
        offset = 0
        for _page in range(MAX_PAGES):
            params["offset"] = str(offset)
            response = await self.request("GET", self.entry_path(form), params=params, what=what)
            body = response_json(response)
            if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
                raise ConnectorRetryableError(
                    f"{self.where}: {what}: the answer is not an entry list "
                    f"({body_excerpt(response)})"
                )
            entries = [e.get("values") for e in body["entries"] if isinstance(e, dict)]
            found.extend(v for v in entries if isinstance(v, dict))
            if limit is not None and len(found) >= limit:
                return found[:limit]
            links = body.get("_links")
            if not (isinstance(links, dict) and links.get("next")) or not entries:
                return found
            offset += len(entries)
        raise ConnectorPermanentError(
            f"{self.where}: {what}: more than {MAX_PAGES * PAGE_SIZE} entries match"
        )

    async def get(
        self, form: str, entry_id: str, fields: Sequence[str] = (), *, what: str = "read"
    ) -> Values | None:
        """An entry's values, or None when there is no such entry (ARERR 302)."""
        params = {"fields": f"values({','.join(fields)})"} if fields else None
        try:
            response = await self.request(
                "GET", self.entry_path(form, entry_id), params=params, what=what
            )
        except TicketNotFoundError:
            return None
        body = response_json(response)
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            raise ConnectorRetryableError(
                f"{self.where}: {what}: the answer has no values ({body_excerpt(response)})"
            )
        return values

    async def create(
        self,
        form: str,
        values: Mapping[str, Any],
        *,
        files: Sequence[Attachment] = (),
        what: str = "create",
    ) -> str:
        """Create an entry; its id from the ``Location`` header (empty for a join form,
        which answers 204 without one)."""
        entry_id, _values = await self.create_returning(form, values, (), files=files, what=what)
        return entry_id

    async def create_returning(
        self,
        form: str,
        values: Mapping[str, Any],
        returning: Sequence[str],
        *,
        files: Sequence[Attachment] = (),
        what: str = "create",
    ) -> tuple[str, Values]:
        """Create an entry and read ``returning`` fields of it in the same call
        (``?fields=values(...)``, as BMC's create example does): its id and those values."""
        params = {"fields": f"values({','.join(returning)})"} if returning else None
        body = {"values": dict(values)}
        if files:
            content, content_type = multipart(body, files)
            response = await self.request(
                "POST",
                self.entry_path(form),
                params=params,
                content=content,
                content_type=content_type,
                what=what,
            )
        else:
            response = await self.request(
                "POST", self.entry_path(form), params=params, json_body=body, what=what
            )
        answer = response_json(response) if returning else None
        got = answer.get("values") if isinstance(answer, dict) else None
        location = response.headers.get("Location", "")
        entry_id = unquote(location.rstrip("/").rsplit("/", 1)[-1]) if location else ""
        return ("" if response.status_code == 204 else entry_id), (
            got if isinstance(got, dict) else {}
        )

    async def update(
        self, form: str, entry_id: str, values: Mapping[str, Any], *, what: str = "update"
    ) -> None:
        """Change fields of an entry (PUT, 204)."""
        await self.request(
            "PUT", self.entry_path(form, entry_id), json_body={"values": dict(values)}, what=what
        )

    async def missing_fields(self, form: str, fields: Sequence[str]) -> list[str]:
        """Which of ``fields`` ``form`` lacks: a one-entry search asking for all of them,
        repeated without each field AR names in ARERR 314 (one call when none is missing).
        FormMissingError when the form itself is missing (ARERR 303)."""
        wanted = list(fields)
        missing: list[str] = []
        while wanted:
            try:
                await self.search(form, ANY_ENTRY, wanted, limit=1, what=f"read {form}")
                return missing
            except ConnectorPermanentError as exc:
                named = _missing_field(exc.message, wanted)
                if named is None:
                    raise
                missing.append(named)
                wanted.remove(named)
        return missing


def multipart(body: Mapping[str, Any], files: Sequence[Attachment]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body: the ``entry`` JSON part, then one ``attach-<field>``
    part per file (itsm-apis.md 3.3)."""
    entry = json.dumps(body, ensure_ascii=False).encode()
    return multipart_body(
        [
            FormPart("entry", entry, "application/json"),
            *(FormPart(f"attach-{f.field}", f.data, f.content_type, f.filename) for f in files),
        ]
    )


def _said(response: httpx.Response) -> str:
    messages = error_array(response_json(response))
    if not messages:
        raw = response.headers.get("X-AR-Messages")
        if raw:
            with contextlib.suppress(ValueError):
                messages = error_array(json.loads(raw))
    if messages:
        return f"HTTP {response.status_code}: " + "; ".join(str(m) for m in messages)
    if looks_like_html(response):
        return f"HTTP {response.status_code}, an HTML page"
    return f"HTTP {response.status_code}: {body_excerpt(response)}"


def _missing_field(message: str, wanted: Sequence[str]) -> str | None:
    """The field an ARERR 314 message names (``<form> : <field>``), if it is one we asked for."""
    if "ARERR 314" not in message:
        return None
    for name in sorted(wanted, key=len, reverse=True):
        if f": {name})" in message or f": {name};" in message:
            return name
    return None
