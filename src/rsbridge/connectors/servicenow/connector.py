"""The ServiceNow connector class: its settings, its construction and its connection test.

:class:`ServiceNowConnector` is one class made of mixins, one module per job, each layer
using the ones below it:

* ``settings`` -- the declared settings, their parsing into options, the session values
  a field mapping can name;
* ``tickets`` -- find a ticket by sys_id or number, auto-create one, look up the records
  a mapping or reference names; declares the parts every job shares (client, schema,
  options), which this module builds;
* ``reads`` -- read rounds: what an import or a survey must know (rows already present,
  the session row's references, the task's journal stream), in one call; the import's
  reads sent along with the ticket lookup (``find_session_ticket``);
* ``writes`` -- what imports and surveys write: Batch API calls, journal entries and
  their markers, the session row's lock;
* ``session_import`` -- a session into records, journal entries and an attachment (its
  docstring says what is written and how a replay stays once-only);
* ``surveys`` -- exit surveys and the actions' work notes;
* ``actions`` -- what the technician and customer actions ask: ticket context, user
  mapping, configuration items, custom links;
* ``checks`` -- the connection test (tables, columns, lookups, rights, probe rows);
* ``connector`` (here) -- the class itself: settings, construction.

Below them: ``client`` (HTTP: Table, Batch, Attachment and Email APIs and auth), ``records`` (the
rows of a session) and ``schema`` (table and column names).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx

from rsbridge.connectors.base import CheckResult, ConnectorSettings, Setting
from rsbridge.connectors.servicenow.actions import ActionsMixin
from rsbridge.connectors.servicenow.checks import check_instance, instance_url_problem
from rsbridge.connectors.servicenow.client import Credentials, ServiceNowClient
from rsbridge.connectors.servicenow.schema import Schema
from rsbridge.connectors.servicenow.session_import import SessionImportMixin
from rsbridge.connectors.servicenow.settings import (
    CALLER_FIELDS,
    DEFAULT_CLOSED_STATES,
    RECORD_TYPES,
    SESSION_VALUE_SOURCES,
    SETTINGS,
    parse_options,
    session_value,
)
from rsbridge.connectors.servicenow.surveys import SurveysMixin
from rsbridge.connectors.transport import peer_client
from rsbridge.errors import ConfigurationError

# The settings' names stay importable from here, where they were first defined.
__all__ = [
    "CALLER_FIELDS",
    "DEFAULT_CLOSED_STATES",
    "RECORD_TYPES",
    "SESSION_VALUE_SOURCES",
    "SETTINGS",
    "ServiceNowConnector",
    "session_value",
]


class ServiceNowConnector(SessionImportMixin, SurveysMixin, ActionsMixin):
    """Writes sessions into a ServiceNow instance; serves the actions' ticket lookups."""

    name = "servicenow"
    title = "ServiceNow"
    settings: ClassVar[Sequence[Setting]] = SETTINGS
    default_ticket_from: ClassVar[tuple[str, ...]] = (
        "custom:snow_task_id",
        "custom:snow_call_id",
        "custom:snow_interaction_id",
        "external_key",
        "rep_survey:task_number",
    )

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        c: Any = config
        own = http is None
        if http is None:
            http = peer_client(c, connector="servicenow")
        super().__init__(config, http=http)
        self._own_http = own
        self.schema = Schema.build(c.tables, c.fields)
        self.options = parse_options(config)
        mode: Literal["basic", "oauth_password", "oauth_client_credentials"] = c.auth
        needs = {
            "basic": ("username", "password"),
            "oauth_password": ("username", "password", "client_id", "client_secret"),
            "oauth_client_credentials": ("client_id", "client_secret"),
        }[mode]
        missing = [n for n in needs if getattr(c, n) in (None, "")]
        if missing:
            raise ConfigurationError(
                f"servicenow: auth = {mode!r} needs the settings {', '.join(missing)}"
            )
        self.base_url = str(c.instance_url).rstrip("/")
        self.client = ServiceNowClient(
            self.base_url,
            Credentials(mode, c.username, c.password, c.client_id, c.client_secret),
            self.http,
            timeout=c.timeout_seconds,
        )
        self._c = c
        # One import of a session at a time in this process: concurrent ones would each
        # find the session missing and write its journal entries again. (Across processes
        # the engine's job leases keep one worker per session.)
        self._session_locks = weakref.WeakValueDictionary()
        # What a ticket lookup read along for the import that follows (see ``reads``).

    @classmethod
    def validate_settings(
        cls, raw: Mapping[str, object], *, where: str = "connector settings"
    ) -> ConnectorSettings:
        """The declared checks, then the form of ``instance_url`` (scheme and host only)."""
        config = super().validate_settings(raw, where=where)
        problem = instance_url_problem(str(getattr(config, "instance_url", "")))
        if problem is not None:
            raise ConfigurationError(f"{where} ({cls.name}): instance_url: {problem}")
        return config

    async def check(self) -> CheckResult:
        """Every table, column, lookup and right the connector uses (see ``checks``)."""
        return await check_instance(self, self.check_create_fields)
