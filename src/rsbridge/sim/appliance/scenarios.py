"""Seeded, realistic support sessions for the simulated appliance, tests and benchmarks.

:class:`SessionGenerator` turns a seed into an endless, reproducible series of
:class:`~rsbridge.appliance.report_model.SupportSession` objects that look like what a
busy appliance reports: attended and Jump sessions, several customers and
representatives, invitations and transfers, chat in many scripts (with the odd control
character that only ``encoded_body`` can carry), file transfers, system information,
registry edits, recordings, exit surveys and the external keys / custom attributes the
ticketing integrations associate sessions by.

Every value respects what the report XML can carry back exactly: UTC times in whole
seconds, ``None`` rather than empty or ``Unknown`` strings, identifier keys in mappings,
no surrounding whitespace, and event actors that resolve to the session's customers and
representatives (the system actor is ``Actor("system", <site name>, 0)``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from rsbridge.appliance.custom_fields import custom_field_params
from rsbridge.appliance.report_model import (
    SupportSession,
)
from rsbridge.sim.appliance.seed_data import (
    OTHER_OS,
    PRESTART_OWNER,
    REP_NAMES,
    TEAMS,
    WINDOWS_OS,
    random_alnum,
    random_hex,
    random_ticket_number,
)
from rsbridge.sim.appliance.session_builder import (
    GeneratorOptions,
    KeySpec,
    RepProfile,
    SessionBuilder,
)

DEFAULT_START = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)
"""Start time of the first generated session unless ``start`` is given."""

__all__ = ["DEFAULT_START", "PRESTART_OWNER", "SessionGenerator"]


def _random_key(rng: random.Random) -> tuple[str | None, dict[str, str]]:
    """An external key and custom attributes, as the ticketing integrations set them."""
    kind = rng.choices(("none", "inc", "chg", "sys_id", "sf"), weights=(25, 25, 10, 20, 20))[0]
    if kind == "none":
        return None, {}
    if kind == "sf":
        number = f"{rng.randint(1000, 99999):08d}"
        return number, {"sf_case_id": "5003h00001" + random_alnum(rng, 5)}
    custom: dict[str, str] = {}
    if kind == "sys_id":
        key = custom["snow_task_id"] = random_hex(rng, 32)
    else:
        key = custom["ticket_id"] = random_ticket_number(rng, kind.upper())
        custom["snow_task_id"] = random_hex(rng, 32)
    if rng.random() < 0.5:
        custom["snow_cmdb_ci_id"] = random_hex(rng, 32)
    return key, custom


class SessionGenerator:
    """Deterministic generator of realistic ended support sessions.

    The same ``seed`` and options always give the same series: all randomness comes
    from a private :class:`random.Random`. Sessions follow each other in time (``lseq``
    and ``start_time`` increase) and each one is complete (it has ended).

    Args:
        seed: seed of the series.
        hostname: appliance host name used in the chat and recording URLs.
        start: start time of the first session (tz-aware; rounded down to the second).
        site_name: public site name, also the name of the system actor.
        large: benchmark-sized sessions (hundreds of chat messages and system
            information rows, roughly 250 KB of report XML each).
        chat_messages: (min, max) chat messages per session; overrides ``large``.
        system_info_rows: (min, max) rows of the Processes category; Services and
            Installed Programs get half and a third as many. Overrides ``large``.
        jump_ratio: share of Jump sessions (started by a rep on an unattended endpoint).
        include_unknown_events: also emit a few events with types that are not among
            the 53 documented ones, to prove consumers keep them.
    """

    def __init__(
        self,
        seed: int,
        *,
        hostname: str = "support.example.com",
        start: datetime = DEFAULT_START,
        site_name: str = "Default",
        large: bool = False,
        chat_messages: tuple[int, int] | None = None,
        system_info_rows: tuple[int, int] | None = None,
        jump_ratio: float = 0.3,
        include_unknown_events: bool = False,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._rng = random.Random(seed)
        self._clock = start.astimezone(UTC).replace(microsecond=0)
        self._lseq = 0
        self._options = GeneratorOptions(
            hostname=hostname,
            site=site_name,
            chat_messages=chat_messages or ((250, 450) if large else (2, 24)),
            system_info_rows=system_info_rows or ((250, 400) if large else (5, 40)),
            system_info_ratio=1.0 if large else 0.5,
            jump_ratio=jump_ratio,
            include_unknown_events=include_unknown_events,
        )
        self._roster = [self._rep_profile(i, *names) for i, names in enumerate(REP_NAMES)]

    def _rep_profile(self, index: int, name: str, username: str) -> RepProfile:
        rng = self._rng
        web_console = rng.random() < 0.2
        return RepProfile(
            id=str(index + 2),
            name=name,
            username=username,
            team=rng.choice(TEAMS),
            hostname=None if web_console else f"WS-{username.upper()}",
            os=None if web_console else rng.choice((*WINDOWS_OS, OTHER_OS[0])),
        )

    def session(self) -> SupportSession:
        """The next session of the series, with a random external key and attributes."""
        return self._build(KeySpec(*_random_key(self._rng)))

    def sessions(self, n: int) -> Iterator[SupportSession]:
        """The next ``n`` sessions of the series."""
        for _ in range(n):
            yield self.session()

    def session_from_key(
        self,
        external_key: str | None = None,
        custom_attributes: Mapping[str, str] | None = None,
        *,
        customer_info: Mapping[str, str] | None = None,
    ) -> SupportSession:
        """The next session, started from a key generated with these values.

        ``custom_attributes`` maps code names to values; ``customer_info`` (keys
        ``name``, ``company``, ``company_code``, ``issue``, ``details``) replaces the
        primary customer's front-end survey answers. Empty values are not reported.
        The session is attended (not a Jump session).

        Raises:
            ClientScriptError: the values break the appliance's custom field limits.
        """
        custom = dict(custom_attributes or {})
        custom_field_params(custom, external_key=external_key)
        return self._build(
            KeySpec(external_key or None, {k: v for k, v in custom.items() if v}, customer_info),
            jump=False,
        )

    def _build(self, key: KeySpec, jump: bool | None = None) -> SupportSession:
        rng = random.Random(self._rng.getrandbits(64))
        self._lseq += 1
        start = self._clock
        self._clock += timedelta(seconds=self._rng.randint(30, 1200))
        if jump is None:
            jump = rng.random() < self._options.jump_ratio
        builder = SessionBuilder(rng, self._options, self._lseq, start, jump=jump)
        return builder.build(key, rng.sample(self._roster, k=4))
