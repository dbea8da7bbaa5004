"""A small Salesforce REST client: OAuth, sObject rows, SOQL, composite, over httpx.

Written here rather than taken from simple-salesforce: that client is synchronous
(``requests``), and owning ours means the simulator sees exactly what we send
(reference: itsm-apis.md §2). What it speaks:

* OAuth at ``<login_url>/services/oauth2/token``: client credentials (the recommended
  flow; a My Domain URL), JWT bearer (a certificate uploaded to the connected app), or
  username-password with the security token appended (blocked by default in orgs made
  since Summer '23: the ``invalid_grant`` answer says so). There is no refresh token: an
  access token lives until the org's session timeout, and a 401 ``INVALID_SESSION_ID``
  is answered once by a fresh login and a retry.
* Every call goes to the ``instance_url`` of the token answer, under
  ``/services/data/v<api_version>/``.
* Errors are Salesforce's error array ``[{"message", "errorCode", "fields"}]``, mapped to
  the connector error tree: ``REQUEST_LIMIT_EXCEEDED`` (403, not 429: the org's daily
  API allowance) and ``UNABLE_TO_LOCK_ROW`` are retryable; validation failures,
  unknown fields, missing required fields are permanent and named; 404 is
  TicketNotFoundError; 5xx and transport failures are retryable.
* ``Sforce-Limit-Info: api-usage=N/M`` is read from every answer into
  :attr:`SalesforceClient.api_usage`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

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
    ConnectorQuotaError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.tls import is_loopback_host

AuthMode = Literal["client_credentials", "jwt_bearer", "password"]
Record = dict[str, Any]

DEFAULT_API_VERSION = "60.0"
LIMIT_RETRY_SECONDS = 900.0
"""How long to wait after ``REQUEST_LIMIT_EXCEEDED``: the allowance is a rolling 24-hour
window, so a retry soon is wasted; jobs wait with backoff of at least this, never die."""

_RETRYABLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
_JWT_LIFETIME = 180  # seconds; Salesforce accepts assertions valid for at most 3 minutes


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client logs in with; secrets stay SecretStr until sent."""

    mode: AuthMode
    client_id: str
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key: SecretStr | None = None
    """PEM private key of the certificate uploaded to the connected app (JWT bearer)."""
    audience: str = "https://login.salesforce.com"
    """JWT ``aud``: ``https://login.salesforce.com`` or ``https://test.salesforce.com``."""

    def secrets(self) -> list[str]:
        """The secret values, to scrub from any message."""
        values = (self.client_secret, self.password, self.security_token, self.private_key)
        return [s.get_secret_value() for s in values if s]


@dataclass(frozen=True, slots=True)
class SalesforceError:
    """One entry of Salesforce's error array."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        named = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        return f"{self.code}: {self.message}{named}"


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One subrequest of a composite call; ``url`` is relative to ``/services/data/vXX.X``
    (e.g. ``/sobjects/Case``) and may use ``@{ref.id}`` references."""

    reference_id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SubResult:
    """The answer to one subrequest."""

    reference_id: str
    status: int
    body: Any
    errors: tuple[SalesforceError, ...] = field(default=())


class SalesforceClient:
    """Calls one org as one integration user; share it between tasks."""

    def __init__(
        self,
        login_url: str,
        credentials: Credentials,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.transport = PeerTransport(
            "Salesforce", login_url, http, timeout=timeout, secrets=credentials.secrets
        )
        self.login_url = self.transport.base_url
        self.credentials = credentials
        self.api_version = api_version
        self.api_usage: tuple[int, int] | None = None
        """``(used, allowance)`` from the last ``Sforce-Limit-Info`` header."""
        self._token: str | None = None
        self._instance: str | None = None
        self._login_lock = asyncio.Lock()

    @property
    def calls(self) -> int:
        """HTTP requests sent (token requests included), for tests and benchmarks."""
        return self.transport.calls

    @property
    def where(self) -> str:
        """``"Salesforce <host>"``, the start of every message."""
        return self.transport.where

    @property
    def instance_url(self) -> str:
        """The org's instance URL from the last token answer (the login URL before)."""
        return self._instance or self.login_url

    @property
    def data_path(self) -> str:
        """``/services/data/v<api_version>``."""
        return f"/services/data/v{self.api_version}"

    # --- authentication -----------------------------------------------------------

    async def login(self, *, stale: str | None = None) -> None:
        """Get an access token. ``stale``: the token a 401 refused; if another task has
        replaced it meanwhile, that one is used instead of logging in again."""
        async with self._login_lock:
            if self._token is not None and self._token != stale:
                return
            creds = self.credentials
            form: dict[str, str] = {"client_id": creds.client_id}
            if creds.mode == "client_credentials":
                form.update(
                    grant_type="client_credentials", client_secret=secret_text(creds.client_secret)
                )
            elif creds.mode == "password":
                form.update(
                    grant_type="password",
                    client_secret=secret_text(creds.client_secret),
                    username=creds.username or "",
                    password=secret_text(creds.password) + secret_text(creds.security_token),
                )
            else:
                form = {
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": self._assertion(),
                }
            await self._token_request(form)

    def _assertion(self) -> str:
        # Imported here: only the JWT flow needs the signing library.
        import jwt

        creds = self.credentials
        claims = {
            "iss": creds.client_id,
            "sub": creds.username or "",
            "aud": creds.audience,
            "exp": int(time.time()) + _JWT_LIFETIME,
        }
        try:
            return jwt.encode(claims, secret_text(creds.private_key), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConnectorAuthError(
                f"{self.where}: private_key is not a PEM RSA private key ({type(exc).__name__})"
            ) from None

    async def _token_request(self, form: Mapping[str, str]) -> None:
        response = await self.transport.send(
            "POST",
            f"{self.login_url}/services/oauth2/token",
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        body = self.transport.token_answer(response)
        if body is None:
            refusal = ConnectorAuthError(
                self._refusal(response_json(response), response.status_code)
            )
            raise self.transport.scrub(refusal)
        instance = str(body.get("instance_url") or "").rstrip("/")
        url = httpx.URL(instance) if instance else None
        if url is None or not (
            url.scheme == "https" or (url.scheme == "http" and is_loopback_host(url.host))
        ):
            # The token goes wherever instance_url says: only over TLS (or to loopback).
            raise ConnectorAuthError(f"{self.where}: the token answer has no https:// instance_url")
        self._token, self._instance = str(body["access_token"]), instance

    def _refusal(self, body: Any, status: int) -> str:
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        detail = str(body.get("error_description") or "") if isinstance(body, dict) else ""
        said = (
            f"HTTP {status}" + (f": {error}" if error else "") + (f" ({detail})" if detail else "")
        )
        hint = {
            "invalid_client_id": "check client_id (the connected app's consumer key)",
            "invalid_client": "check client_id and client_secret",
            "invalid_grant": (
                "check the credentials; the username-password flow is blocked in orgs made "
                "since Summer '23 unless an administrator allows it: prefer client credentials"
                if self.credentials.mode == "password"
                else "check the connected app's run-as user (client credentials) or the "
                "certificate and pre-authorised user (JWT)"
            ),
        }.get(error, "check the connected app and the credentials")
        return f"{self.where}: the OAuth token request was refused ({said}); {hint}"

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
        """One API call to ``path`` (``/services/...``) on the instance; re-login once on a
        401. A 2xx answer, or raise (300, an ambiguous upsert, is a permanent error)."""
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
                f"{self._instance}{path}",
                content=content,
                params=params,
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
            self._read_limits(response)
            if response.status_code == 401 and attempt == 1:
                await self.login(stale=token)
                continue
            break
        self._raise_for(response, what)
        return response

    def _read_limits(self, response: httpx.Response) -> None:
        info = response.headers.get("Sforce-Limit-Info", "")
        for part in info.split(","):
            name, _, value = part.strip().partition("=")
            used, _, allowed = value.partition("/")
            if name == "api-usage" and used.isdigit() and allowed.isdigit():
                self.api_usage = (int(used), int(allowed))

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        errors = error_array(response_json(response))
        codes = {e.code for e in errors}
        said = "; ".join(str(e) for e in errors) or body_excerpt(response)
        where = f"{self.where}: {what}"
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        error: ConnectorError
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            error = ConnectorQuotaError(
                f"{where}: the org's daily API allowance is spent ({said}); will retry",
                retry_after=max(retry_after or 0.0, LIMIT_RETRY_SECONDS),
            )
        elif codes & _RETRYABLE_CODES or status >= 500 or status in (408, 429):
            error = ConnectorRetryableError(
                f"{where}: HTTP {status} ({said})", retry_after=retry_after
            )
        elif status == 401:
            error = ConnectorAuthError(
                f"{where}: not authenticated ({said}); check the connected app and its user"
            )
        elif status == 404:
            error = TicketNotFoundError(f"{where}: not found ({said})")
        elif status == 403:
            error = ConnectorPermanentError(
                f"{where}: access refused ({said}); give the integration user the permission "
                "set rsbridge generates (`rsbridge salesforce package`)"
            )
        elif status == 300:
            error = ConnectorPermanentError(f"{where}: the external id matches several records")
        else:
            error = ConnectorPermanentError(f"{where}: refused with HTTP {status} ({said})")
        raise self.transport.scrub(error)

    # --- records ----------------------------------------------------------------------

    async def query(self, soql: str, *, what: str = "query") -> list[Record]:
        """Every record ``soql`` selects, following ``nextRecordsUrl`` pages."""
        response = await self.request(
            "GET", f"{self.data_path}/query", params={"q": soql}, what=what
        )
        records: list[Record] = []
        while True:
            body = response_json(response)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise ConnectorPermanentError(f"{self.where}: {what}: answer without records")
            records += [r for r in body["records"] if isinstance(r, dict)]
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not isinstance(next_url, str):
                return records
            if not next_url.startswith("/services/data/"):
                raise ConnectorPermanentError(f"{self.where}: {what}: unexpected next page URL")
            response = await self.request("GET", next_url, what=what)

    async def get(self, sobject: str, record_id: str, fields: Sequence[str] = ()) -> Record | None:
        """One record by id, or None."""
        params = {"fields": ",".join(fields)} if fields else None
        try:
            response = await self.request(
                "GET",
                f"{self.data_path}/sobjects/{sobject}/{record_id}",
                params=params,
                what=f"read {sobject}",
            )
        except TicketNotFoundError:
            return None
        body = response_json(response)
        return body if isinstance(body, dict) else None

    async def create(self, sobject: str, values: Mapping[str, Any]) -> str:
        """Insert a record; its id."""
        response = await self.request(
            "POST",
            f"{self.data_path}/sobjects/{sobject}",
            json_body=dict(values),
            what=f"create {sobject}",
        )
        return _new_id(response, self.where, sobject)

    async def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        """PATCH a record (204)."""
        await self.request(
            "PATCH",
            f"{self.data_path}/sobjects/{sobject}/{record_id}",
            json_body=dict(values),
            what=f"update {sobject}",
        )

    async def upsert(
        self, sobject: str, external_field: str, external_id: str, values: Mapping[str, Any]
    ) -> tuple[str | None, bool]:
        """Create or update the record whose ``external_field`` is ``external_id``:
        ``(id, created)``; the id is None when an update answered 204 without it."""
        response = await self.request(
            "PATCH",
            f"{self.data_path}/sobjects/{sobject}/{external_field}/{_path_value(external_id)}",
            json_body=dict(values),
            what=f"upsert {sobject}",
        )
        body = response_json(response)
        record_id = str(body["id"]) if isinstance(body, dict) and body.get("id") else None
        created = response.status_code == 201 or (
            isinstance(body, dict) and body.get("created") is True
        )
        return record_id, created

    async def describe(self, sobject: str) -> Record:
        """The sObject's describe (fields with ``name``, ``type``, ``updateable``...)."""
        response = await self.request(
            "GET", f"{self.data_path}/sobjects/{sobject}/describe", what=f"describe {sobject}"
        )
        body = response_json(response)
        if not isinstance(body, dict):
            raise ConnectorPermanentError(f"{self.where}: describe {sobject}: not an object")
        return body

    async def composite(
        self, requests: Sequence[SubRequest], *, all_or_none: bool, what: str
    ) -> list[SubResult]:
        """Up to 25 subrequests in one call; their answers in request order.

        Salesforce answers 200 whatever the subrequests did; each result carries its own
        status and error array. With ``all_or_none`` a failure rolls back every write.
        """
        if len(requests) > 25:
            raise ValueError("a composite request holds at most 25 subrequests")
        body = {
            "allOrNone": all_or_none,
            "compositeRequest": [
                {
                    "method": r.method,
                    "url": f"{self.data_path}{r.url}",
                    "referenceId": r.reference_id,
                    **({"body": dict(r.body)} if r.body is not None else {}),
                }
                for r in requests
            ],
        }
        response = await self.request(
            "POST", f"{self.data_path}/composite", json_body=body, what=what
        )
        answer = response_json(response)
        items = answer.get("compositeResponse") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ConnectorPermanentError(f"{self.where}: {what}: no composite answer")
        by_ref: dict[str, SubResult] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            ref, status = str(item.get("referenceId")), int(item.get("httpStatusCode") or 0)
            sub_body = item.get("body")
            errors = error_array(sub_body) if not 200 <= status < 300 else ()
            by_ref[ref] = SubResult(ref, status, sub_body, tuple(errors))
        missing = [r.reference_id for r in requests if r.reference_id not in by_ref]
        if missing:
            raise ConnectorRetryableError(
                f"{self.where}: {what}: {len(missing)} subrequests got no answer"
            )
        return [by_ref[r.reference_id] for r in requests]


def error_array(body: Any) -> list[SalesforceError]:
    """Salesforce's error array (``[{"message", "errorCode", "fields"}]``, or the
    ``statusCode`` form of sObject Collections results) as errors."""
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    found = []
    for item in items:
        # sObject Collections name the code statusCode; everything else errorCode.
        code = item.get("errorCode") or item.get("statusCode") if isinstance(item, dict) else None
        if isinstance(item, dict) and (code or item.get("message")):
            fields = item.get("fields")
            found.append(
                SalesforceError(
                    str(code or "UNKNOWN_ERROR"),
                    str(item.get("message") or "").strip(),
                    tuple(str(f) for f in fields) if isinstance(fields, list) else (),
                )
            )
    return found


def soql_quote(value: str) -> str:
    """``value`` as a SOQL string literal, quotes included.

    Session values are customer data: every character SOQL gives a meaning inside a
    literal is escaped (backslash, quotes, line breaks), so a value can never end the
    literal and add a condition.
    """
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
    )
    return f"'{escaped}'"


def soql_like_prefix(prefix: str) -> str:
    """A SOQL ``LIKE`` literal matching values that start with ``prefix``.

    In a LIKE literal ``\\_`` and ``\\%`` stand for the characters themselves: the
    wildcards of ``prefix`` are escaped once, inside the literal, after the string
    escapes (escaping them before quoting would double the backslash).
    """
    quoted = soql_quote(prefix)[1:-1].replace("%", "\\%").replace("_", "\\_")
    return f"'{quoted}%'"


def _path_value(value: str) -> str:
    # An external id in a URL path: every reserved character percent-encoded, and the
    # dots too, so a value with "/", "?" or ".." cannot address another resource.
    return quote(value, safe="").replace(".", "%2E")


def _new_id(response: httpx.Response, where: str, sobject: str) -> str:
    body = response_json(response)
    if isinstance(body, dict) and body.get("id"):
        return str(body["id"])
    raise ConnectorPermanentError(f"{where}: create {sobject}: the answer has no id")
