"""A small ServiceNow REST client: Table, Attachment, Batch and Email APIs over httpx.

Written here rather than taken from a library (pysnc, pysnow): the surface we use is
small, the libraries are synchronous or unmaintained, and owning the client means the
simulator sees exactly what we send (reference: itsm-apis.md §1.7).

Authentication is Basic, or OAuth (password grant with refresh token, or client
credentials) at ``/oauth_token.do``. A token is refreshed before it expires, and a 401
on a call is answered once by a fresh login and a retry. Errors become the connector
error tree: 401 → ConnectorAuthError; 403, 400, 404 → permanent; 429, 5xx, timeouts,
unreachable, the HTML page of a hibernating instance → retryable (with the instance's
``Retry-After``). The password and client secret never appear in a message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from rsbridge.connectors.transport import (
    PeerTransport,
    body_excerpt,
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

AuthMode = Literal["basic", "oauth_password", "oauth_client_credentials"]
Record = dict[str, Any]

_TOKEN_MARGIN = 60.0  # seconds before expiry at which a token is renewed


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client logs in with; secrets stay SecretStr until sent."""

    mode: AuthMode
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None

    def secrets(self) -> list[str]:
        """The secret values, to scrub from any message."""
        return [s.get_secret_value() for s in (self.password, self.client_secret) if s]


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One sub-request of a Batch API call."""

    id: str
    method: str
    path: str
    """``/api/now/table/...`` with its query string."""
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """One read of a read round: the record ``sys_id`` of ``table`` (None when it is
    not there), or the records the encoded ``query`` matches. Hashable: the connector
    keeps answers by their read."""

    table: str
    sys_id: str | None = None
    query: str = ""
    fields: tuple[str, ...] = ()
    limit: int | None = None
    display_value: str | None = None
    """``all`` (every field as ``{"display_value", "value"}``), ``true`` or None."""

    def params(self) -> dict[str, str]:
        """The Table API parameters of this read."""
        params = {"sysparm_exclude_reference_link": "true"}
        if self.sys_id is None:
            params.update(
                sysparm_query=self.query,
                sysparm_suppress_pagination_header="true",
                sysparm_no_count="true",
            )
        if self.fields:
            params["sysparm_fields"] = ",".join(self.fields)
        if self.limit is not None:
            params["sysparm_limit"] = str(self.limit)
        if self.display_value:
            params["sysparm_display_value"] = self.display_value
        return params

    @property
    def path(self) -> str:
        """The Table API path (without the query string)."""
        tail = f"/{self.sys_id}" if self.sys_id is not None else ""
        return f"/api/now/table/{self.table}{tail}"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer to one sub-request."""

    id: str
    status: int
    body: Any


class ServiceNowClient:
    """Calls one instance as one user; share it between tasks."""

    def __init__(
        self, base_url: str, credentials: Credentials, http: httpx.AsyncClient, *, timeout: float
    ) -> None:
        self.transport = PeerTransport(
            "ServiceNow", base_url, http, timeout=timeout, secrets=credentials.secrets
        )
        self.base_url = self.transport.base_url
        self.host = self.transport.host
        self.credentials = credentials
        self._token: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0
        self._login_lock = asyncio.Lock()

    # --- authentication -----------------------------------------------------------

    async def _auth_header(self) -> dict[str, str]:
        creds = self.credentials
        if creds.mode == "basic":
            raw = f"{creds.username or ''}:{secret_text(creds.password)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self._token is None or time.monotonic() > self._expires - _TOKEN_MARGIN:
            await self._login(force=False)
        return {"Authorization": f"Bearer {self._token}"}

    async def _login(self, *, force: bool, stale: str | None = None) -> None:
        """Get a token. ``stale``: the token a 401 refused; if another task has
        replaced it meanwhile, that one is used instead of logging in again."""
        async with self._login_lock:
            if force and self._token is not None and self._token != stale:
                return  # another task logged in while we waited
            if (
                not force
                and self._token is not None
                and (time.monotonic() < self._expires - _TOKEN_MARGIN)
            ):
                return
            creds = self.credentials
            form: dict[str, str] = {
                "client_id": creds.client_id or "",
                "client_secret": secret_text(creds.client_secret),
            }
            if self._refresh is not None:
                try:
                    await self._token_request(
                        {**form, "grant_type": "refresh_token", "refresh_token": self._refresh}
                    )
                    return
                except ConnectorAuthError:
                    self._refresh = None  # expired or revoked (not a passing failure)
            if creds.mode == "oauth_password":
                form.update(
                    grant_type="password",
                    username=creds.username or "",
                    password=secret_text(creds.password),
                )
            else:
                form["grant_type"] = "client_credentials"
            await self._token_request(form)

    async def _token_request(self, form: Mapping[str, str]) -> None:
        url = f"{self.base_url}/oauth_token.do"
        response = await self._send(
            "POST",
            url,
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        body = self.transport.token_answer(response)
        if body is None:
            body_json = response_json(response)
            detail = ""
            if isinstance(body_json, dict):
                detail = str(body_json.get("error_description") or body_json.get("error") or "")
            raise self._scrub(
                ConnectorAuthError(
                    f"ServiceNow {self.host}: the OAuth token request was refused "
                    f"(HTTP {response.status_code}{': ' + detail if detail else ''}); check "
                    "client_id, client_secret and the user's credentials"
                )
            )
        self._token = str(body["access_token"])
        self._refresh = str(body["refresh_token"]) if body.get("refresh_token") else None
        self._expires = time.monotonic() + float(body.get("expires_in") or 1800)

    # --- transport ----------------------------------------------------------------

    @property
    def calls(self) -> int:
        """HTTP requests sent (token requests included), for tests and benchmarks."""
        return self.transport.calls

    async def _send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.transport.send(
            method, url, content=content, headers=headers, params=params
        )

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
        refused: str = "give the integration user the roles for this table",
    ) -> httpx.Response:
        """Send one API call (logging in again once on 401); a 2xx response or raise
        (``refused``: what to do about a 403)."""
        headers = {"Accept": "application/json"}
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            auth = await self._auth_header()
            token = self._token
            response = await self._send(
                method, url, content=content, params=params, headers={**headers, **auth}
            )
            if response.status_code == 401 and self.credentials.mode != "basic" and attempt == 1:
                await self._login(force=True, stale=token)
                continue
            break
        self._raise_for(response, what, refused)
        return response

    def _raise_for(self, response: httpx.Response, what: str, refused: str) -> None:
        status = response.status_code
        where = f"ServiceNow {self.host}: {what}"
        if 200 <= status < 300:
            if status != 204 and "json" not in response.headers.get("content-type", ""):
                # A hibernating developer instance answers its wake-up page with 200.
                raise ConnectorRetryableError(
                    f"{where}: the instance answered with a web page, not JSON (is it "
                    "hibernating or behind a login page?)"
                )
            return
        message = _envelope(response)
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        error: ConnectorError
        if status == 401:
            error = ConnectorAuthError(
                f"{where}: not authenticated ({message}); check the username and password "
                "or the OAuth client"
            )
        elif status == 403:
            error = ConnectorPermanentError(f"{where}: access refused ({message}); {refused}")
        elif status == 404:
            error = TicketNotFoundError(f"{where}: not found ({message})")
        elif status == 429:
            error = ConnectorRetryableError(
                f"{where}: rate limited by the instance ({message})", retry_after=retry_after
            )
        elif status >= 500 or status in (408, 425):
            error = ConnectorRetryableError(
                f"{where}: HTTP {status} ({message})", retry_after=retry_after
            )
        else:
            error = ConnectorPermanentError(f"{where}: refused with HTTP {status} ({message})")
        raise self._scrub(error)

    def _scrub(self, error: ConnectorError) -> ConnectorError:
        return self.transport.scrub(error)

    # --- Table API ----------------------------------------------------------------

    async def query(
        self,
        table: str,
        query: str,
        *,
        fields: Sequence[str] = (),
        limit: int | None = None,
        display_value: bool = False,
    ) -> list[Record]:
        """Records of ``table`` matching the encoded ``query``."""
        read = Read(table, None, query, tuple(fields), limit, "true" if display_value else None)
        return list((await self.read([read], what=f"query {table}"))[read] or [])

    async def get(
        self,
        table: str,
        sys_id: str,
        *,
        fields: Sequence[str] = (),
        display_value: str | None = None,
    ) -> Record | None:
        """One record by sys_id, or None. ``display_value="all"`` gives every field as
        ``{"display_value", "value"}`` (journal fields then hold their whole stream)."""
        read = Read(table, sys_id, fields=tuple(fields), display_value=display_value)
        answer = (await self.read([read], what=f"read {table}"))[read]
        return answer if isinstance(answer, dict) else None

    async def read(self, reads: Sequence[Read], *, what: str) -> dict[Read, Any]:
        """Answer several reads in one call: a record or None for a read by sys_id, a
        list of records for a query. One read is a plain GET; more ride in one Batch API
        call (it serves GETs as it serves writes). A failed read raises as a call would."""
        if not reads:
            return {}
        if len(reads) == 1:
            (one,) = reads
            try:
                response = await self.request("GET", one.path, params=one.params(), what=what)
            except TicketNotFoundError:
                if one.sys_id is None:
                    raise
                return {one: None}
            return {one: _answer(one, response_json(response), self.host, what)}
        unique = list(dict.fromkeys(reads))
        results = await self.batch(
            [
                BatchRequest(f"read{n}", "GET", f"{r.path}?{urlencode(r.params())}")
                for n, r in enumerate(unique)
            ],
            what=what,
        )
        answers: dict[Read, Any] = {}
        for one, result in zip(unique, results, strict=True):
            if result.status == 404 and one.sys_id is not None:
                answers[one] = None
                continue
            raise_for_results([result], self.host, f"{what} ({one.table})")
            answers[one] = _answer(one, result.body, self.host, f"{what} ({one.table})")
        return answers

    async def insert(self, table: str, record: Mapping[str, Any]) -> Record:
        """Create a record; the new record as the instance returns it."""
        response = await self.request(
            "POST",
            f"/api/now/table/{table}",
            json_body=dict(record),
            params={"sysparm_exclude_reference_link": "true"},
            what=f"create {table} record",
        )
        return _result(response)

    async def update(self, table: str, sys_id: str, record: Mapping[str, Any]) -> Record:
        """PATCH a record (journal fields append a journal entry)."""
        response = await self.request(
            "PATCH",
            f"/api/now/table/{table}/{sys_id}",
            json_body=dict(record),
            params={"sysparm_exclude_reference_link": "true"},
            what=f"update {table} record",
        )
        return _result(response)

    async def attach(
        self, table: str, sys_id: str, file_name: str, content_type: str, data: bytes
    ) -> Record:
        """Upload a file to a record (Attachment API, raw body)."""
        response = await self.request(
            "POST",
            "/api/now/attachment/file",
            params={"table_name": table, "table_sys_id": sys_id, "file_name": file_name},
            content=data,
            content_type=content_type,
            what=f"attach {file_name}",
        )
        return _result(response)

    async def query_attachments(self, table: str, sys_id: str, file_name: str) -> list[Record]:
        """Attachments of a record with ``file_name``."""
        response = await self.request(
            "GET",
            "/api/now/attachment",
            params={
                "sysparm_query": f"table_name={table}^table_sys_id={sys_id}^file_name={file_name}"
            },
            what=f"list attachments of {table}",
        )
        return _result_list(response) or []

    # --- Email API ----------------------------------------------------------------

    async def send_email(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str,
        table: str,
        sys_id: str,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Send an e-mail through the instance (Email API, ``POST /api/now/v1/email``),
        attached to the record ``sys_id`` of ``table``; the sys_email record's sys_id."""
        body: dict[str, object] = {
            "to": [to],
            "subject": subject,
            "text": text,
            "html": html,
            "table_name": table,
            "table_record_id": sys_id,
        }
        if headers:
            body["headers"] = headers
        response = await self.request(
            "POST",
            "/api/now/v1/email",
            json_body=body,
            what="send an e-mail",
            refused="give the integration user the email_api_send role (and access to sys_email)",
        )
        body = response_json(response)
        result = body.get("result") if isinstance(body, dict) else None
        email_id = result.get("id") if isinstance(result, dict) else None
        if not isinstance(email_id, str) or not email_id:
            raise ConnectorPermanentError(
                f"ServiceNow {self.host}: send an e-mail: the answer holds no e-mail id"
            )
        return email_id

    async def find_email(self, record_sys_id: str, in_headers: str) -> str | None:
        """The sys_id of an e-mail of the e-mail log (``sys_email``) targeting the record
        ``record_sys_id`` whose headers contain ``in_headers`` (letters and digits), if any.
        How the instance lays out the headers it was given is not documented: only the
        value is looked for."""
        found = await self.query(
            "sys_email",
            f"instance={record_sys_id}^headersLIKE{in_headers}",
            fields=("sys_id",),
            limit=1,
        )
        sys_id = found[0].get("sys_id") if found else None
        return sys_id if isinstance(sys_id, str) and sys_id else None

    async def batch(self, requests: Sequence[BatchRequest], *, what: str) -> list[BatchResult]:
        """Send sub-requests in one Batch API call; their answers in request order."""
        rest_requests = [
            {
                "id": r.id,
                "method": r.method,
                "url": r.path,
                "headers": [
                    {"name": "Content-Type", "value": "application/json"},
                    {"name": "Accept", "value": "application/json"},
                ],
                **(
                    {"body": base64.b64encode(json.dumps(r.body).encode()).decode()}
                    if r.body is not None
                    else {}
                ),
            }
            for r in requests
        ]
        response = await self.request(
            "POST",
            "/api/now/v1/batch",
            json_body={
                "batch_request_id": requests[0].id if requests else "0",
                "rest_requests": rest_requests,
            },
            what=what,
        )
        body = response_json(response)
        served = body.get("serviced_requests") if isinstance(body, dict) else None
        if not isinstance(served, list):
            raise ConnectorPermanentError(f"ServiceNow {self.host}: {what}: no batch answer")
        by_id: dict[str, BatchResult] = {}
        for item in served:
            if not isinstance(item, dict):
                continue
            raw = item.get("body")
            decoded: Any = None
            if isinstance(raw, str) and raw:
                try:
                    decoded = json.loads(base64.b64decode(raw))
                except ValueError:
                    decoded = None
            by_id[str(item.get("id"))] = BatchResult(
                str(item.get("id")), int(item.get("status_code") or 0), decoded
            )
        missing = [r.id for r in requests if r.id not in by_id]
        if missing:
            raise ConnectorRetryableError(
                f"ServiceNow {self.host}: {what}: {len(missing)} sub-requests were not served"
            )
        return [by_id[r.id] for r in requests]


def raise_for_results(results: Sequence[BatchResult], host: str, what: str) -> None:
    """Raise the connector error of the first sub-request that failed (as a call's
    status would: 401 auth, 429 and 5xx retryable, the rest permanent)."""
    for result in results:
        if 200 <= result.status < 300:
            continue
        message = "error"
        if isinstance(result.body, dict) and isinstance(result.body.get("error"), dict):
            error = result.body["error"]
            message = str(error.get("message") or "error")
            if error.get("detail"):
                message += f": {error['detail']}"
        where = f"ServiceNow {host}: {what}: sub-request {result.id} answered {result.status}"
        if result.status == 401:
            raise ConnectorAuthError(f"{where} ({message})")
        if result.status == 429 or result.status >= 500:
            raise ConnectorRetryableError(f"{where} ({message})")
        hint = (
            "; give the integration user the roles for this table" if result.status == 403 else ""
        )
        raise ConnectorPermanentError(f"{where} ({message}){hint}")


def _answer(read: Read, body: Any, host: str, what: str) -> Any:
    """The record (read by sys_id) or the list of records (query) of an answer."""
    result = body.get("result") if isinstance(body, dict) else None
    if read.sys_id is not None and isinstance(result, list):  # be lenient on reads
        result = result[0] if result else None
    if read.sys_id is not None and isinstance(result, dict):
        return result
    if read.sys_id is None and isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    shape = "result record" if read.sys_id is not None else "result list"
    raise ConnectorPermanentError(f"ServiceNow {host}: {what} answered without a {shape}")


def _result_list(response: httpx.Response) -> list[Record] | None:
    """The records of a list answer (``{"result": [...]}``), or None if it is not one."""
    body = response_json(response)
    result = body.get("result") if isinstance(body, dict) else None
    return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else None


def _result(response: httpx.Response) -> Record:
    body = response_json(response)
    result = body.get("result") if isinstance(body, dict) else None
    if isinstance(result, list):  # one record per write, but be lenient on reads
        result = result[0] if result else None
    if not isinstance(result, dict):
        raise ConnectorPermanentError(
            f"ServiceNow {response.url.host}: answer without a result record "
            f"(HTTP {response.status_code})"
        )
    return result


def _envelope(response: httpx.Response) -> str:
    """The error envelope's message and detail, or an excerpt of the body."""
    body = response_json(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or "").strip()
        detail = str(error.get("detail") or "").strip()
        return f"{message}: {detail}" if detail and detail != message else message or "error"
    return body_excerpt(response)
