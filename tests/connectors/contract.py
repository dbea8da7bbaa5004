"""The contract every connector honours, as a test base class.

A connector's test module subclasses :class:`ConnectorContract`, sets
``connector_class``, and provides:

* the ``connector`` fixture: an instance talking to a healthy peer (a simulator on
  loopback, a temporary file), closed after the test;
* :meth:`ConnectorContract.valid_settings`: raw settings that validate;
* :meth:`ConnectorContract.effects`: how many effects the peer holds for an
  idempotency key (lines, records, comments), read from the peer itself.

The fixture may keep what ``effects`` needs on ``self``: pytest binds fixture methods
to the same instance as the test.

Third-party connector packages may copy this file into their own tests.
"""

from __future__ import annotations

import asyncio
import functools
import re
import typing
from typing import ClassVar, Literal

import pytest

from rsbridge.appliance.report_model import ExitSurvey, SupportSession, SurveyAnswer
from rsbridge.connectors.base import (
    UNTRUSTED,
    Association,
    CheckResult,
    Connector,
    ConnectorSettings,
    NoteDelivery,
    RenderedPart,
    RenderedReport,
    SessionDelivery,
    SettingType,
    SurveyDelivery,
    Ticket,
    WriteResult,
)
from rsbridge.connectors.registry import connector_class
from rsbridge.errors import ConfigurationError, TicketNotFoundError
from rsbridge.sim.appliance.scenarios import SessionGenerator

APPLIANCE_ID = "0123456789abcdef0123456789abcdef"
INTEGRATION = "contract"
SECRET_SAMPLE = "s3cr3t-Sample-Value-9f2c"
"""Put into every secret setting by the tests that look for leaks."""

WriteKind = Literal["session_report", "survey", "note"]


# --- deliveries --------------------------------------------------------------------------


@functools.cache
def sample_session(seed: int = 1) -> SupportSession:
    """A realistic ended session (cached: the tests only read it)."""
    return SessionGenerator(seed).session_from_key("INC0010001")


def session_delivery(
    key: str,
    *,
    session: SupportSession | None = None,
    text: str = "Session report\nline two",
    html: str = "<p>Session report</p><p>line two</p>",
    association: Association = UNTRUSTED,
) -> SessionDelivery:
    """A session report delivery with a full rendering and one part."""
    return SessionDelivery(
        key=key,
        appliance_id=APPLIANCE_ID,
        integration=INTEGRATION,
        session=session or sample_session(),
        report=RenderedReport(
            full=RenderedPart(text, html),
            parts={"chat": RenderedPart("Chat transcript", "<p>Chat transcript</p>")},
        ),
        association=association,
    )


def survey_delivery(
    key: str, kind: Literal["customer", "rep"] = "customer", association: Association = UNTRUSTED
) -> SurveyDelivery:
    """A customer (or rep) exit survey delivery."""
    survey = ExitSurvey(7, [SurveyAnswer("rating", "5"), SurveyAnswer("comments", "Quick fix")])
    return SurveyDelivery(
        key=key,
        appliance_id=APPLIANCE_ID,
        integration=INTEGRATION,
        kind=kind,
        survey=survey,
        session=sample_session(),
        rendered=RenderedPart("Rating: 5\nComments: Quick fix", "<p>Rating: 5</p>"),
        association=association,
    )


def note_delivery(key: str, text: str = "A note from rsbridge") -> NoteDelivery:
    """A note with text and HTML."""
    return NoteDelivery(key=key, text=text, html=f"<p>{text}</p>")


async def write(connector: Connector, ticket: Ticket, kind: WriteKind, key: str) -> WriteResult:
    """Write a sample delivery of ``kind`` with idempotency key ``key``."""
    if kind == "session_report":
        return await connector.write_session_report(ticket, session_delivery(key))
    if kind == "survey":
        return await connector.write_survey(ticket, survey_delivery(key))
    return await connector.write_note(ticket, note_delivery(key))


WRITE_KINDS: tuple[WriteKind, ...] = ("session_report", "survey", "note")
_SETTING_TYPES = frozenset(typing.get_args(SettingType))


# --- the contract --------------------------------------------------------------------------


class ConnectorContract:
    """What every connector must do; subclass it in the connector's test module."""

    connector_class: ClassVar[type[Connector]]
    known_ticket_ref: ClassVar[str] = "INC0010001"
    """A reference ``find_ticket`` must find on the healthy peer."""
    unknown_ticket_ref: ClassVar[str | None] = None
    """A reference ``find_ticket`` must not find (None: the test is skipped)."""
    create_fields: ClassVar[dict[str, str]] = {"short_description": "Remote support session"}
    """Field values for ``create_ticket`` that the peer accepts."""

    @pytest.fixture
    async def connector(self) -> Connector:
        pytest.fail("a ConnectorContract subclass must provide the `connector` fixture")

    def valid_settings(self) -> dict[str, object]:
        """Raw settings (as from the configuration file) that validate."""
        raise NotImplementedError

    def effects(self, key: str) -> int:
        """How many effects the peer holds for idempotency key ``key``."""
        raise NotImplementedError

    # --- metadata and settings ----------------------------------------------------------

    def test_metadata(self) -> None:
        cls = self.connector_class
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.name), cls.name
        assert cls.title.strip()
        names = [s.name for s in cls.settings]
        assert len(names) == len(set(names)), "setting names repeat"
        for setting in cls.settings:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", setting.name), setting.name
            assert setting.help.strip(), f"setting {setting.name} has no help text"
            assert setting.type in _SETTING_TYPES, f"{setting.name}: type {setting.type!r}"
            assert not (setting.required and setting.default is not None), setting.name
            if setting.choices and setting.default is not None:
                assert setting.default in setting.choices, setting.name
        assert issubclass(cls.settings_model(), ConnectorSettings)

    def test_registered_under_its_name(self) -> None:
        assert connector_class(self.connector_class.name) is self.connector_class

    def test_valid_settings_validate(self) -> None:
        config = self.connector_class.validate_settings(self.valid_settings())
        assert isinstance(config, ConnectorSettings)

    def test_defaults_apply(self) -> None:
        config = self.connector_class.validate_settings(self.valid_settings())
        values = config.model_dump()
        for setting in self.connector_class.settings:
            if setting.name not in self.valid_settings() and not setting.required:
                assert values[setting.name] == setting.default, setting.name

    def test_unknown_setting_is_refused(self) -> None:
        raw = {**self.valid_settings(), "no_such_setting": "x"}
        with pytest.raises(ConfigurationError, match="no_such_setting"):
            self.connector_class.validate_settings(raw)

    def test_missing_required_setting_is_named(self) -> None:
        required = [s.name for s in self.connector_class.settings if s.required]
        if not required:
            pytest.skip("no required settings")
        for name in required:
            raw = {k: v for k, v in self.valid_settings().items() if k != name}
            with pytest.raises(ConfigurationError, match=rf"\b{name}\b"):
                self.connector_class.validate_settings(raw)

    def test_wrongly_typed_setting_is_named(self) -> None:
        for setting in self.connector_class.settings:
            raw = {**self.valid_settings(), setting.name: {"not": "a value"}}
            with pytest.raises(ConfigurationError, match=rf"\b{setting.name}\b"):
                self.connector_class.validate_settings(raw)

    def test_plain_http_urls_need_allow_plain_http(self) -> None:
        # Session reports and credentials must not cross the network in clear text by
        # accident: http:// is refused for every URL setting unless the host is loopback
        # or the integration says allow_plain_http = true.
        cls = self.connector_class
        guarded = [s.name for s in cls.settings if s.type == "url" and not s.plain_http_ok]
        if not guarded:
            pytest.skip("no url settings")
        for name in guarded:
            raw = {**self.valid_settings(), name: "http://user:pw@tickets.example.com:8080/a?t=1"}
            with pytest.raises(ConfigurationError) as caught:
                cls.validate_settings(raw)
            message = str(caught.value)
            assert f"{name}: plain http:// to tickets.example.com:8080" in message
            assert "allow_plain_http = true" in message
            assert "pw" not in message and "t=1" not in message
            plain = "http://tickets.example.com:8080/a?t=1"
            allowed = cls.validate_settings({**raw, name: plain, "allow_plain_http": True})
            assert cls.plain_http_urls(allowed) == [(name, "tickets.example.com:8080")]
            for loopback in ("http://127.0.0.1:8080/x", "http://LOCALHOST/x", "http://[::1]:9/"):
                cls.validate_settings({**self.valid_settings(), name: loopback})
        assert (
            cls.validate_settings(self.valid_settings()).model_dump()["allow_plain_http"] is False
        )

    async def test_secrets_are_never_shown(self) -> None:
        secrets = [s.name for s in self.connector_class.settings if s.secret]
        if not secrets:
            pytest.skip("no secret settings")
        raw: dict[str, object] = {**self.valid_settings(), **dict.fromkeys(secrets, SECRET_SAMPLE)}
        config = self.connector_class.validate_settings(raw)
        assert SECRET_SAMPLE not in repr(config)
        assert SECRET_SAMPLE not in str(config)
        instance = self.connector_class(config)
        try:
            assert SECRET_SAMPLE not in repr(instance)
            assert SECRET_SAMPLE not in str(instance)
        finally:
            await instance.aclose()
        # Nor in the message about another, invalid setting.
        raw["no_such_setting"] = SECRET_SAMPLE + "-x"
        with pytest.raises(ConfigurationError) as caught:
            self.connector_class.validate_settings(raw)
        assert SECRET_SAMPLE not in str(caught.value)

    # --- the peer ----------------------------------------------------------------------------

    async def test_check_passes_on_a_healthy_peer(self, connector: Connector) -> None:
        result = await connector.check()
        assert isinstance(result, CheckResult)
        assert result.summary.strip()

    async def test_find_known_ticket(self, connector: Connector) -> None:
        ticket = await connector.find_ticket(self.known_ticket_ref)
        assert isinstance(ticket, Ticket)
        assert ticket.id
        assert self.known_ticket_ref in (ticket.id, ticket.number)

    async def test_find_unknown_ticket(self, connector: Connector) -> None:
        if self.unknown_ticket_ref is None:
            pytest.skip("no unknown reference declared")
        with pytest.raises(TicketNotFoundError):
            await connector.find_ticket(self.unknown_ticket_ref)

    @pytest.mark.parametrize("kind", WRITE_KINDS)
    async def test_write_returns_a_result(self, connector: Connector, kind: WriteKind) -> None:
        ticket = await connector.find_ticket(self.known_ticket_ref)
        result = await write(connector, ticket, kind, f"write-{kind}")
        assert isinstance(result, WriteResult)
        assert isinstance(result.ref, str) and result.ref
        assert all(isinstance(v, str) for v in result.detail.values())
        assert self.effects(f"write-{kind}") == 1

    @pytest.mark.parametrize("kind", WRITE_KINDS)
    async def test_repeated_write_is_an_upsert(self, connector: Connector, kind: WriteKind) -> None:
        ticket = await connector.find_ticket(self.known_ticket_ref)
        first = await write(connector, ticket, kind, f"again-{kind}")
        second = await write(connector, ticket, kind, f"again-{kind}")
        assert second.ref == first.ref
        assert self.effects(f"again-{kind}") == 1

    async def test_concurrent_writes_with_one_key_are_one_effect(
        self, connector: Connector
    ) -> None:
        ticket = await connector.find_ticket(self.known_ticket_ref)
        results = await asyncio.gather(
            *(write(connector, ticket, "session_report", "concurrent") for _ in range(4))
        )
        assert len({r.ref for r in results}) == 1
        assert self.effects("concurrent") == 1

    async def test_distinct_keys_are_distinct_effects(self, connector: Connector) -> None:
        ticket = await connector.find_ticket(self.known_ticket_ref)
        first = await write(connector, ticket, "note", "note-a")
        second = await write(connector, ticket, "note", "note-b")
        assert first.ref != second.ref
        assert self.effects("note-a") == self.effects("note-b") == 1

    async def test_create_ticket_is_idempotent_by_key(self, connector: Connector) -> None:
        session = sample_session()
        fields = self.create_fields
        first = await connector.create_ticket(session, fields, key="ticket-a")
        again = await connector.create_ticket(session, fields, key="ticket-a")
        other = await connector.create_ticket(session, fields, key="ticket-b")
        assert isinstance(first, Ticket) and first.id
        assert again == first
        assert other.id != first.id
        assert self.effects("ticket-a") == 1
        assert self.effects("ticket-b") == 1
