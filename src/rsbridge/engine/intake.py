"""Outbound-event intake: authenticate, record durably, then acknowledge.

HTTP-agnostic: :class:`Intake` takes what a request carried (appliance id, source
address, query token, body) and returns the status to answer. The routes live in
:mod:`rsbridge.web.app`.

The appliance holds every later event until the current one gets HTTP 200, so:

* refusals (4xx) are only for requests that are not from a configured appliance: an
  unknown appliance id, a refused source address, a missing or wrong outbound event
  token (all three one and the same 401, so that nobody learns which appliance ids
  exist; the log says which it was), an oversized body (413);
* an authenticated event that can never be processed (a malformed form, an event type no
  integration processes) is recorded as ignored and acknowledged, never left to block
  the appliance's queue;
* 200 is answered only after :meth:`Store.record_event` returned, i.e. after the event and
  its jobs are on disk. A store failure answers 503, so the appliance retries.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from rsbridge.appliance.events import (
    END,
    MEMBER_ADDED,
    SURVEY_EVENTS,
    OutboundForm,
    OutboundFormError,
    parse_outbound_form,
)
from rsbridge.config import ApplianceConfig, Config, IPNetwork
from rsbridge.engine.store.base import (
    RANK_LIVE,
    RANK_SESSION_END,
    RANK_SURVEY,
    IncomingEvent,
    JobSpec,
    Store,
)

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "outbound_event_token"  # noqa: S105 (a variable name, not a secret)
"""Query (or form) variable carrying the outbound event token (seeds 003, 004)."""

MALFORMED_EVENT = "(malformed)"
"""Event type recorded for an authenticated body that is not a valid event form."""

#: Events whose jobs need a session id to do anything.
_NEEDS_LSID = frozenset({END, *SURVEY_EVENTS})


REFUSED = (
    "event refused: unknown appliance id, address not accepted, or missing or wrong "
    "outbound event token (the engine's log says which)"
)
"""The one answer (with 401) to every request not from a configured appliance."""


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What to answer the appliance."""

    status: int
    message: str
    event_id: int | None = None
    duplicate: bool = False


def job_specs(config: Config, appliance_id: str, event_type: str, *, polled: bool) -> list[JobSpec]:
    """The jobs an event of ``event_type`` gets: one per integration that processes it.

    "Someone joins a support session" is processed by integrations that auto-create on
    join; its job ranks before the session's end so that the import finds the ticket.
    """
    if event_type == MEMBER_ADDED:
        return [
            JobSpec(integration.name, RANK_LIVE)
            for integration in config.active_integrations(appliance_id)
            if integration.association.create_on_join and not polled
        ]
    rank = RANK_SURVEY if event_type in SURVEY_EVENTS else RANK_SESSION_END
    return [
        JobSpec(integration.name, rank)
        for integration in config.active_integrations(appliance_id)
        if event_type in (integration.polling_events if polled else integration.outbound_events)
    ]


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address an event came from, believing ``X-Forwarded-For`` only from trusted proxies.

    Walks the forwarded chain from the right (the hop nearest to us) and stops at the first
    address that is not a trusted proxy: a client cannot forge its way past our proxies.
    """
    address = _ip(peer)
    if address is None or not forwarded_for or not _within(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        hop_address = _ip(hop)
        if hop_address is None:
            return None
        address = hop_address
        if not _within(address, trusted):
            break
    return address


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Sequence[IPNetwork]
) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _is_token_variable(name: str) -> bool:
    """Whether a form variable's (decoded) name is the token's, in any letter case."""
    return name.strip().casefold() == TOKEN_VARIABLE


def strip_token(body: str) -> str:
    """``body`` (a form, well made or not) without any ``outbound_event_token`` variable.

    Split as the form parser splits (on ``&``); a part is dropped when, URL-decoded, it
    starts with the variable's name in any letter case, so that ``outbound%5Fevent...``,
    ``OUTBOUND_EVENT_TOKEN=`` and ``outbound_event_token%3D...`` go too.
    """
    return "&".join(
        part
        for part in body.split("&")
        if not unquote_plus(part).lstrip().casefold().startswith(TOKEN_VARIABLE)
    )


def _token_ok(appliance: ApplianceConfig, sent: str | None) -> bool:
    expected = appliance.outbound_event_token
    if expected is None:
        return True
    if sent is None:
        return False
    # Digests first, so that compare_digest sees equal lengths and the timing says
    # nothing about the token's length either.
    return hmac.compare_digest(
        hashlib.sha256(sent.encode()).digest(),
        hashlib.sha256(expected.get_secret_value().encode()).digest(),
    )


class Intake:
    """Receives outbound events for the configured appliances."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def screen(
        self,
        appliance_id: str,
        *,
        peer: str | None,
        forwarded_for: str | None = None,
        query_token: str | None = None,
    ) -> IntakeResult | None:
        """The refusal of a delivery that can be refused before its body is read (unknown
        appliance, refused address, wrong token in the query), or None.

        Called before reading the body, so that a sender nobody configured cannot hold a
        connection open while it trickles one.
        """
        appliance = self.config.appliance(appliance_id)
        source = client_address(peer, forwarded_for, self.config.engine.trusted_proxies)
        if appliance is None:
            log.warning(
                "event refused: unknown appliance id %r (from %s); the outbound-event URL must "
                "name a configured appliance: /ERSPost?appliance=ID or /events/ID",
                appliance_id,
                source,
            )
            return IntakeResult(401, REFUSED)
        if source is None or not _within(source, appliance.accepted_addresses):
            log.warning(
                "event refused: address %s not accepted for appliance %s", source, appliance_id
            )
            return IntakeResult(401, REFUSED)
        if query_token is not None and not _token_ok(appliance, query_token):
            log.warning("event refused: wrong outbound event token from %s", source)
            return IntakeResult(401, REFUSED)
        return None

    async def receive(
        self,
        appliance_id: str,
        body: bytes,
        *,
        peer: str | None,
        forwarded_for: str | None = None,
        query_token: str | None = None,
        screened: bool = False,
    ) -> IntakeResult:
        """Handle one delivery; see the module docstring for the answers.

        ``screened``: the caller already had :meth:`screen` pass the same sender (the web
        app does, before reading the body), so it is not checked twice.
        """
        if not screened:
            refused = self.screen(
                appliance_id, peer=peer, forwarded_for=forwarded_for, query_token=query_token
            )
            if refused is not None:
                return refused
        appliance = self.config.appliance(appliance_id)
        assert appliance is not None  # screen() refused an unknown one
        source = client_address(peer, forwarded_for, self.config.engine.trusted_proxies)
        limit = self.config.engine.max_event_bytes
        if len(body) > limit:
            log.warning("event refused: %d bytes from %s is over the limit", len(body), source)
            return IntakeResult(413, f"event body over the {limit}-byte limit")
        form: OutboundForm | None
        try:
            form = parse_outbound_form(body, max_bytes=limit)
            problem = None
        except OutboundFormError as exc:
            form, problem = None, exc.message
        token = (
            query_token if query_token is not None else (form.get(TOKEN_VARIABLE) if form else None)
        )
        if not _token_ok(appliance, token):
            log.warning(
                "event refused: %s outbound event token from %s",
                "missing" if token is None else "wrong",
                source,
            )
            return IntakeResult(401, REFUSED)
        if form is not None and form.event in _NEEDS_LSID and form.lsid is None:
            problem = f"{form.event} without an lsid"
            form = None
        event = self._incoming(appliance_id, form, body, problem)
        jobs = (
            [] if form is None else job_specs(self.config, appliance_id, form.event, polled=False)
        )
        try:
            result = await self.store.record_event(event, jobs)
        except Exception:
            log.exception("event from %s could not be recorded; answering 503", source)
            return IntakeResult(503, "the event could not be stored; retry later")
        if problem is not None:
            log.warning("event %d parked as malformed: %s", result.event_id, problem)
            return IntakeResult(200, f"recorded as malformed: {problem}", result.event_id)
        if result.duplicate:
            log.info("event %d delivered again (duplicate)", result.event_id)
            return IntakeResult(200, "duplicate", result.event_id, duplicate=True)
        if not jobs:
            log.info(
                "event %d (%s) recorded as ignored: no integration processes it",
                result.event_id,
                event.event_type,
            )
            return IntakeResult(200, "ignored", result.event_id)
        return IntakeResult(200, "OK", result.event_id)

    @staticmethod
    def _incoming(
        appliance_id: str, form: OutboundForm | None, body: bytes, problem: str | None
    ) -> IncomingEvent:
        if form is None:
            # Kept as received (decoded leniently) so that nothing an appliance sent is
            # lost, except the token, which must not rest in the store.
            # surrogateescape: bytes that are not UTF-8 survive the stripping unchanged, so
            # that bodies differing only in them are still told apart.
            kept = strip_token(body.decode("utf-8", errors="surrogateescape"))
            kept_bytes = kept.encode("utf-8", errors="surrogateescape")
            raw = _storable(kept_bytes.decode("utf-8", errors="replace"))
            digest = hashlib.sha256(appliance_id.encode() + b"\0" + kept_bytes).hexdigest()
            return IncomingEvent(
                appliance_id,
                MALFORMED_EVENT,
                "outbound",
                digest,
                form=(("body", raw), ("problem", problem or "")),
            )
        variables = tuple(
            (_storable(k), _storable(v)) for k, v in form.variables if not _is_token_variable(k)
        )
        external_key = form.get("external_key")
        return IncomingEvent(
            appliance_id,
            form.event,
            "outbound",
            form.dedup_key(appliance_id),
            lsid=form.lsid,
            external_key=None if external_key is None else _storable(external_key),
            timestamp=form.timestamp,
            form=variables,
        )


def _storable(text: str) -> str:
    """``text`` with NUL characters replaced by U+FFFD. A customer can put one in the
    external key or a custom attribute (``%00`` in a start URL); PostgreSQL's text and
    jsonb refuse it, which would answer the appliance 503 and hold its queue until it drops
    the event. Both stores keep the same value, so a store copy loses nothing."""
    return text.replace("\x00", "\ufffd")
