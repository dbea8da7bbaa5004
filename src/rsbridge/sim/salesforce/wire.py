"""Plain request and response values the handlers work on (composite reuses them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from rsbridge.sim.salesforce.errors import SalesforceError, json_parser_error

if TYPE_CHECKING:
    from rsbridge.sim.salesforce.state import LoggedRequest

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class SimRequest:
    """A request as the handlers see it (header names in lower case). ``host`` is the
    ``Host`` header without the port; ``base_url`` is scheme and authority."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    host: str

    @cached_property
    def params(self) -> dict[str, str]:
        """Query parameters; the first of repeated names wins."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            params.setdefault(key, value)
        return params


@dataclass
class SimResponse:
    """Status, body bytes and headers of an answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body decoded (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
    """Compact JSON."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return SimResponse(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def error_response(error: SalesforceError, headers: dict[str, str] | None = None) -> SimResponse:
    """The error array."""
    return json_response(error.status, error.body(), headers)


def read_json(req: SimRequest) -> Any:
    """The JSON body, or 400 ``JSON_PARSER_ERROR`` (415 for another declared type)."""
    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and req.body.strip():
        raise SalesforceError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type header specified in HTTP request is not supported: {content_type}",
        )
    try:
        return json.loads(req.body.decode("utf-8")) if req.body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise json_parser_error(f"Unexpected character in JSON input: {exc}") from None


def body_object(req: SimRequest) -> dict[str, Any]:
    """The JSON object body of a write."""
    data = read_json(req)
    if not isinstance(data, dict):
        raise json_parser_error(
            "Cannot deserialize instance of sObject from START_ARRAY value or request may be "
            "missing a required field"
        )
    return data


class Context:
    """What a handler knows about the caller and the call's API version."""

    def __init__(self, user_id: str, version: str, subs: list[LoggedRequest]) -> None:
        self.user_id = user_id
        self.version = version
        self.subs = subs
