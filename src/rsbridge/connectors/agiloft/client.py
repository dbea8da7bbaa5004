"""A small Agiloft EW REST client: JWT login and refresh, records, searches, over httpx.

There is no Agiloft client on PyPI (itsm-apis.md 4.4), so this is ours. What it speaks:

* ``/ewws/<Operation>/.json`` with ``err_code_resp=1``: JSON answers
  ``{"success", "message", "result"}`` and the real HTTP status on errors (without the
  parameter Agiloft answers HTTP 200 even when it refuses).
* ``EWLogin`` (``$KB``, ``$login``, ``$password``, ``$lang``) answers an access token (15
  minutes by default) and a refresh token; later calls send ``Authorization: Bearer`` and
  never the credentials (both together are refused). The token is refreshed a minute before
  it expires; "Token is expired" or a token the KB no longer knows is answered by one new
  login and a retry. ``EWLogout`` on shutdown.
* Parameters go form-encoded in the POST body (credentials never in a URL); a multi-value
  field repeats its key; a linked field's value starts with ``:``.
* Errors are the documented texts: "No column x in table y" and "Table x has not been
  found" are permanent and named; "no data found" is TicketNotFoundError; 5xx and 429 are
  retryable; an HTML page (a proxy) says so.

Agiloft pauses about a second after every REST call (``WSDelay``), so the connector counts
calls, not milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

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

Value = str | Sequence[str] | None
Record = dict[str, Any]

REFRESH_MARGIN = 60.0
"""Seconds before an access token's end at which it is refreshed."""
_STALE_TOKEN = ("Token is expired", "No active session found", "Wrong Authorization data")
_NOT_FOUND = ("no data found",)


class ColumnMissingError(ConnectorPermanentError):
    """The KB has no such column (or table): a set-up problem, named."""


@dataclass(frozen=True)
class FileUpload:
    """A file for a file field (multipart part named after the field)."""

    field: str
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


class AgiloftClient:
    """Calls one knowledge base as one user; share it between tasks."""

    def __init__(
        self,
        kb_url: str,
        kb: str,
        login: str,
        password: SecretStr | None,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        language: str = "en",
        clock: Callable[[], float] = time.monotonic,
        oauth: tuple[str, SecretStr | None] | None = None,
    ) -> None:
        self.transport = PeerTransport(
            "Agiloft", kb_url, http, timeout=timeout, secrets=self._secrets
        )
        self.kb_url = self.transport.base_url
        self.kb = kb
        self.login_name = login
        self._password = password
        self._oauth = oauth
        self.language = language
        self._clock = clock
        self._token: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0
        """Logins and refreshes that succeeded (tests)."""

    def _secrets(self) -> list[str]:
        oauth = secret_text(self._oauth[1]) if self._oauth else ""
        return [s for s in (secret_text(self._password), oauth, self._token, self._refresh) if s]

    @property
    def calls(self) -> int:
        """HTTP requests sent (logins included), for tests and benchmarks."""
        return self.transport.calls

    @property
    def where(self) -> str:
        """``"Agiloft <host>"``, the start of every message."""
        return self.transport.where

    # --- authentication -----------------------------------------------------------

    async def _ensure_token(self, *, stale: str | None = None) -> str:
        async with self._lock:
            now = self._clock()
            if self._token is not None and self._token != stale and now < self._expires:
                return self._token
            if self._token is not None and self._refresh and self._token != stale:
                # Near its end: refresh (the old pair stops working).
                # A refused refresh (expired, or the session gone) falls back to a login;
                # a KB that is down fails that login too, and says so.
                with contextlib.suppress(ConnectorAuthError, ConnectorRetryableError):
                    await self._login({"refresh_token": self._refresh}, bearer=self._token)
                    return self._token
            if self._oauth is not None:
                await self._client_credentials(*self._oauth)
            else:
                await self._login(
                    {
                        "$login": self.login_name,
                        "$password": secret_text(self._password),
                    },
                    bearer=None,
                )
            assert self._token is not None
            return self._token

    async def _client_credentials(self, client_id: str, secret: SecretStr | None) -> None:
        """An access token from the OAuth2 token endpoint (``/ewws/otoken``, client
        credentials grant, RFC 6749 4.4); there is no refresh token: a new one is asked
        for when it ends."""
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret_text(secret),
        }
        response = await self.transport.send(
            "POST",
            f"{self.kb_url}/ewws/otoken",
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        body = self.transport.token_answer(response)
        if body is None:
            said = response_json(response)
            error = str(said.get("error") or "") if isinstance(said, dict) else ""
            raise self.transport.scrub(
                ConnectorAuthError(
                    f"{self.where}: the OAuth2 token request for client {client_id!r} was "
                    f"refused (HTTP {response.status_code}{': ' + error if error else ''}); "
                    "check client_id and client_secret, and the client's service user"
                )
            )
        seconds = body.get("expires_in")
        lifetime = float(seconds) if isinstance(seconds, int | float) else 900.0
        self._token, self._refresh = str(body["access_token"]), None
        self._expires = self._clock() + max(lifetime - REFRESH_MARGIN, lifetime / 2)
        self.logins += 1

    async def _login(self, extra: Mapping[str, str], *, bearer: str | None) -> None:
        form = {"$KB": self.kb, "$lang": self.language, "err_code_resp": "1", **extra}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self.transport.send(
            "POST",
            f"{self.kb_url}/ewws/EWLogin/.json",
            content=urlencode(form).encode(),
            headers=headers,
        )
        body = response_json(response)
        if isinstance(body, dict) and isinstance(body.get("result"), dict):
            body = body["result"]  # the /.json envelope around the documented answer
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            minutes = body.get("expires_in")
            lifetime = float(minutes) * 60 if isinstance(minutes, int | float) else 900.0
            self._token = str(body["access_token"])
            self._refresh = str(body.get("refresh_token") or "") or None
            self._expires = self._clock() + max(lifetime - REFRESH_MARGIN, lifetime / 2)
            self.logins += 1
            return
        self._token = self._refresh = None
        self._raise_for(response, "log in", login=True)

    async def logout(self) -> None:
        """End the token (best effort)."""
        token, self._token, self._refresh = self._token, None, None
        if token is None:
            return
        with contextlib.suppress(ConnectorError):
            await self.transport.send(
                "POST",
                f"{self.kb_url}/ewws/EWLogout",
                content=urlencode({"err_code_resp": "1"}).encode(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )

    # --- calls ----------------------------------------------------------------------

    async def call(
        self,
        operation: str,
        table: str,
        params: Iterable[tuple[str, str]] = (),
        *,
        files: Sequence[FileUpload] = (),
        what: str,
    ) -> Any:
        """One operation on ``table``; its ``result``. One new login when the token was
        refused (expired, logged out, or not this KB's)."""
        form = [("$KB", self.kb), ("$table", table), ("$lang", self.language)]
        form += [("err_code_resp", "1"), *params]
        if files:
            content, content_type = _multipart(form, files)
        else:
            content, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        token: str | None = None
        for attempt in (1, 2):
            token = await self._ensure_token(stale=token if attempt == 2 else None)
            response = await self.transport.send(
                "POST",
                f"{self.kb_url}/ewws/{operation}/.json",
                content=content,
                headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
            )
            message = _message(response)
            if (
                attempt == 1
                and response.status_code in (400, 401, 500)
                and message.startswith(_STALE_TOKEN)
            ):
                continue
            break
        self._raise_for(response, what)
        body = response_json(response)
        return body.get("result") if isinstance(body, dict) else None

    def _raise_for(self, response: httpx.Response, what: str, *, login: bool = False) -> None:
        status = response.status_code
        body = response_json(response)
        ok = isinstance(body, dict) and body.get("success") is not False
        if 200 <= status < 300 and ok and not looks_like_html(response):
            return
        message = _message(response)
        said = (
            f"HTTP {status}: {message}" if message else f"HTTP {status}: {body_excerpt(response)}"
        )
        where = f"{self.where}: {what}"
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        error: ConnectorError
        if looks_like_html(response) and not message:
            page = (
                f"{where}: an HTML page answered (HTTP {status}), not the EW REST interface: "
                "a proxy or a login page is in front; check kb_url"
            )
            error = (
                ConnectorRetryableError(page + "; will retry", retry_after=retry_after)
                if status >= 500 or status in (200, 429)
                else ConnectorPermanentError(page)
            )
        elif message.startswith("Cannot find specified knowledgebase"):
            error = ConnectorPermanentError(f"{where}: {said}; the kb setting is case-sensitive")
        elif message.startswith("No column") or "has not been found" in message:
            error = ColumnMissingError(
                f"{where}: {said}; create it (docs/agiloft.md) or fix the table and field "
                "settings; `rsbridge check` lists every missing one"
            )
        elif login or status in (401, 403) or message.startswith(_STALE_TOKEN):
            hint = (
                'its groups must be under "Groups allowed for REST"'
                if "lacks permission" in message or status == 403
                else "check login and password"
            )
            error = ConnectorAuthError(
                f"{where}: the KB refused {self.login_name!r} ({said}); {hint}"
            )
            if status >= 500 or status == 429:
                error = ConnectorRetryableError(f"{where}: {said}", retry_after=retry_after)
        elif message.lower().startswith(_NOT_FOUND):
            error = TicketNotFoundError(f"{where}: not found ({said})")
        elif (status >= 500 and not message.startswith("Error executing query")) or status in (
            408,
            429,
        ):
            error = ConnectorRetryableError(f"{where}: {said}", retry_after=retry_after)
        else:
            error = ConnectorPermanentError(f"{where}: refused ({said})")
        raise self.transport.scrub(error)

    # --- operations -------------------------------------------------------------------

    async def read(self, table: str, record_id: str, *, what: str = "read") -> Record | None:
        """A record by id, or None when there is none."""
        try:
            result = await self.call("EWRead", table, [("id", record_id)], what=what)
        except TicketNotFoundError:
            return None
        return result if isinstance(result, dict) else None

    async def search(
        self,
        table: str,
        query: str,
        fields: Sequence[str] = (),
        *,
        limit: int = 0,
        what: str = "search",
    ) -> list[Record]:
        """Records ``query`` (EWSearch syntax) matches, with ``fields``."""
        params = [("query", query), *(("field", f) for f in fields)]
        if limit:
            params += [("page", "0"), ("limit", str(limit))]
        result = await self.call("EWSearch", table, params, what=what)
        return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []

    async def upsert(
        self,
        table: str,
        match: str,
        values: Mapping[str, Value],
        *,
        files: Sequence[FileUpload] = (),
        what: str = "upsert",
    ) -> str:
        """Create or update the one record whose ``match`` field has the value given:
        Agiloft's only idempotent write. Its id."""
        params = [("$match", match), *_pairs(values)]
        result = await self.call("EWUpsert", table, params, files=files, what=what)
        record_id = str(result).strip()
        if not record_id.isdigit():
            raise ConnectorRetryableError(
                f"{self.where}: {what}: the answer names no record id ({record_id[:60]!r})"
            )
        return record_id

    async def update(
        self, table: str, record_id: str, values: Mapping[str, Value], *, what: str = "update"
    ) -> None:
        """Change fields of a record."""
        await self.call("EWUpdate", table, [("id", record_id), *_pairs(values)], what=what)

    async def missing_columns(self, table: str, fields: Sequence[str]) -> list[str]:
        """Which of ``fields`` ``table`` lacks: a one-record search asking for them all,
        repeated without each column Agiloft names. ColumnMissingError for a missing table."""
        wanted = list(fields)
        missing: list[str] = []
        while wanted:
            try:
                await self.search(table, "id!='0'", wanted, limit=1, what=f"read {table}")
                return missing
            except ColumnMissingError as exc:
                named = next((f for f in wanted if f"No column {f} in" in exc.message), None)
                if named is None:
                    raise
                missing.append(named)
                wanted.remove(named)
        return missing


def search_value(value: str) -> str:
    """``value`` quoted for an EWSearch query: ``\\`` and ``'`` doubled (a backslash
    escapes the next character there), line breaks and other controls dropped."""
    clean = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return "'" + clean.replace("\\", "\\\\").replace("'", "''") + "'"


def link_value(value: str) -> str:
    """A linked field's value: ``:`` then the value, with ``:`` and ``?`` escaped."""
    return ":" + value.replace("\\", "\\\\").replace(":", "\\:").replace("?", "\\?")


def _pairs(values: Mapping[str, Value]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs += [(name, v) for v in value]
    return pairs


def _message(response: httpx.Response) -> str:
    body = response_json(response)
    if isinstance(body, dict) and body.get("success") is False:
        return str(body.get("message") or "").strip()
    return ""


def _multipart(form: Sequence[tuple[str, str]], files: Sequence[FileUpload]) -> tuple[bytes, str]:
    """The parameters as form fields, then each file under its field's name."""
    return multipart_body(
        [
            *(FormPart(name, value.encode()) for name, value in form),
            *(FormPart(f.field, f.data, f.content_type, f.filename) for f in files),
        ]
    )


__all__ = [
    "AgiloftClient",
    "ColumnMissingError",
    "FileUpload",
    "link_value",
    "search_value",
]
