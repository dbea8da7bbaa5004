"""Configuration: the loaded configuration with every secret masked, and what ``check``
says of it without reaching any system (:func:`~rsbridge.engine.check.configuration_verdicts`).

Masking is by type and then by value: every :class:`~pydantic.SecretStr` (client secrets,
tokens, connector secrets, ``[admin]`` password hashes...) shows as :data:`MASK`, a URL's
password and its ``password`` / ``token`` / ``secret`` / ``key`` query values as ``***``,
and finally any secret's value found in any other field is replaced too (a secret pasted
into a setting that is not declared secret, or read from an environment variable or file).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.config import Config
from rsbridge.engine.check import configuration_verdicts
from rsbridge.engine.store.urls import mask_url, url_secrets
from rsbridge.web.admin.checks import shown
from rsbridge.web.admin.site import AdminSite, Viewer

MASK = "********"
"""What a secret shows as."""
_MIN_SCRUBBED = 4  # shorter values would garble the page and hide nothing worth hiding
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:[^=&#]*(?:password|passwd|token|secret|key|sig)[^=&#]*)=)[^&#]*"
)

Rows = list[tuple[str, str]]


def masked_config(config: Config) -> list[tuple[str, Rows]]:
    """Each section of ``config`` (``engine``, ``appliances``...) as (setting, shown value)
    rows, every secret masked."""
    secrets: set[str] = set()
    sections: list[tuple[str, Rows]] = []
    for name in type(config).model_fields:
        rows: Rows = []
        _flatten(getattr(config, name), name, rows, secrets)
        sections.append((name, rows))
    secrets |= _resolved_secrets(config)
    scrub = sorted((s for s in secrets if len(s) >= _MIN_SCRUBBED), key=len, reverse=True)
    return [(name, [(k, _scrubbed(v, scrub)) for k, v in rows]) for name, rows in sections]


def _flatten(value: Any, path: str, rows: Rows, secrets: set[str]) -> None:
    if isinstance(value, SecretStr):
        secrets.add(value.get_secret_value())
        rows.append((path, MASK))
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _flatten(getattr(value, field), f"{path}.{field}", rows, secrets)
    elif isinstance(value, dict):
        if not value:
            rows.append((path, "(none)"))
        for key, item in value.items():
            _flatten(item, f"{path}.{key}", rows, secrets)
    elif isinstance(value, list | tuple) and any(
        isinstance(v, BaseModel | dict | SecretStr) for v in value
    ):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{_label(item, index)}]", rows, secrets)
    elif isinstance(value, list | tuple):
        rows.append((path, ", ".join(_shown(v) for v in value) or "(none)"))
    else:
        rows.append((path, _shown(value)))


def _label(item: Any, index: int) -> str:
    """A list item's name (an appliance's id, an integration's or a user's name)."""
    for attribute in ("name", "id"):
        found = getattr(item, attribute, None)
        if isinstance(found, str) and found:
            return found
    return str(index)


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _URL.match(text):
        return _SECRET_QUERY.sub(r"\1***", mask_url(text))
    return text


def _resolved_secrets(config: Config) -> set[str]:
    """Secret values that are not in the model as SecretStr: connector secrets read from
    environment variables or files, and the store URL's password."""
    found = set(url_secrets(str(config.engine.store)))
    for integration in config.integrations:
        try:
            settings = integration.connector_settings()
        except Exception:  # noqa: S112 - the verdicts report the problem
            continue
        for value in settings.model_dump().values():
            if isinstance(value, SecretStr):
                found.add(value.get_secret_value())
        for value in integration.settings.values():
            if isinstance(value, str) and _URL.match(value):
                found.update(url_secrets(value))
    return found


def _scrubbed(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def config_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/config``."""

    @site.page()
    async def config_page(request: Request, viewer: Viewer) -> Response:
        config = site.config
        # Template directories are read and compiled: off the event loop.
        verdicts = await asyncio.to_thread(configuration_verdicts, config)
        return site.render(
            request,
            "config.html",
            viewer,
            sections=masked_config(config),
            verdicts=[shown(v) for v in verdicts],
        )

    return [Route("/config", config_page, methods=["GET"])]
