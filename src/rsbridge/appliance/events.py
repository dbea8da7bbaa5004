"""Outbound events: the names the appliance sends and the form they arrive in.

The appliance POSTs each event as ``application/x-www-form-urlencoded`` variables
(reference §5): ``event``, ``version``, ``timestamp`` always; ``appliance_id``, ``lsid``
and ``external_key`` for session events; ``type``, ``name``, ``username``, ``user_id``,
``display_name`` for member events; custom fields when the recipient sends them.
:func:`parse_outbound_form` turns a body into an :class:`OutboundForm`, refusing what
is not a well-formed event with a clear :class:`OutboundFormError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qsl

from rsbridge.errors import RsbridgeError

BEGIN = "support_conference_begin"
END = "support_conference_end"
OWNER_CHANGED = "support_conference_owner_changed"
MEMBER_ADDED = "support_conference_member_added"
MEMBER_DEPARTED = "support_conference_member_departed"
CUSTOMER_SURVEY = "support_conference_customer_exit_survey_completed"
REP_SURVEY = "support_conference_rep_exit_survey_completed"
EVENT_NAMES: frozenset[str] = frozenset(
    {BEGIN, END, OWNER_CHANGED, MEMBER_ADDED, MEMBER_DEPARTED, CUSTOMER_SURVEY, REP_SURVEY}
)
"""Every outbound event name, the choices of a recipient's "Events to Send"."""

IMPORTABLE_EVENTS: tuple[str, ...] = (END, CUSTOMER_SURVEY, REP_SURVEY)
"""The events an integration can process: they write into tickets."""

SURVEY_EVENTS: dict[str, str] = {CUSTOMER_SURVEY: "customer", REP_SURVEY: "rep"}

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

#: Form variables that may legitimately repeat are none; a repeated one is refused.
MAX_VARIABLES = 200


class OutboundFormError(RsbridgeError):
    """An outbound event body is not a well-formed event form (permanent)."""


@dataclass(frozen=True, slots=True)
class OutboundForm:
    """A parsed outbound event."""

    event: str
    variables: tuple[tuple[str, str], ...]
    """Every variable as received, in order (``event`` included)."""

    def get(self, name: str) -> str | None:
        """The value of variable ``name``, or ``None``; an empty value counts as none."""
        value = next((v for k, v in self.variables if k == name), None)
        return value or None

    @property
    def lsid(self) -> str | None:
        """The session id."""
        return self.get("lsid")

    @property
    def timestamp(self) -> int | None:
        """When the event originated (UNIX seconds), if sent as a number."""
        raw = self.get("timestamp")
        return int(raw) if raw is not None and raw.isdigit() else None

    def dedup_key(self, appliance_id: str) -> str:
        """Identifies this delivery: a re-sent event has the same key.

        The appliance re-sends an unacknowledged event unchanged, so every variable
        counts (sorted, so that order does not). The appliance id is ours (from the URL).
        """
        digest = hashlib.sha256(appliance_id.encode())
        for name, value in sorted(self.variables):
            digest.update(b"\0" + name.encode() + b"=" + value.encode())
        return digest.hexdigest()


def parse_outbound_form(body: bytes, *, max_bytes: int) -> OutboundForm:
    """Parse an outbound event body; raise OutboundFormError saying what is wrong."""
    if len(body) > max_bytes:
        raise OutboundFormError(f"event body of {len(body)} bytes is over the {max_bytes} limit")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OutboundFormError("event body is not UTF-8") from None
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_VARIABLES
        )
    except ValueError as exc:
        # Not the parser's text: it quotes the offending part, which may hold the token.
        reason = "too many variables" if "max" in str(exc).lower() else "a part without '='"
        raise OutboundFormError(f"event body is not a URL-encoded form: {reason}") from None
    names = [name for name, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OutboundFormError(f"form variables sent more than once: {', '.join(repeated)}")
    event = dict(pairs).get("event", "")
    if not event:
        raise OutboundFormError("the form has no 'event' variable")
    return OutboundForm(event, tuple(pairs))
