"""A rehearsal scenario file: sessions to play on a running simulated appliance, in order.

TOML, one ``[[sessions]]`` table per session; each session generates its key (or uses
``key``), starts, plays its ``steps`` and, unless a step ends it, ends::

    [[sessions]]
    external_key = "INC0010001"      # put on the generated key (as the ticket's button does)
    queue = "general"                # the key's queue: general, rep:ID, team:ID ...
    customer = "Ann Smith"
    repeat = 3                       # play this session three times
    steps = [
      { join = "jsmith" },
      { chat = "My printer is jammed", from = "customer" },
      { chat = "Let me look", from = "rep" },
      { note = "Cleared the jam" },
      { file = "driver.zip", size = 120000, direction = "upload" },
      { attributes = { ticket_id = "INC0010001" } },
      { survey = "customer", answers = { rating = "5" } },
      { survey = "rep", answers = { task_number = "INC0010001" } },
      { end = true },
    ]

A step is a table with exactly one of ``join chat note file attributes survey end``; the
rest of the table are that step's options. The file is checked whole before anything is
played, and every error names the session and step.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsbridge.sim.appliance.control import STEPS

MAX_REPEAT = 10_000


class ScenarioError(ValueError):
    """The scenario file cannot be played; the message names the session and step."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step: its name and the JSON body the control API takes for it."""

    name: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScenarioSession:
    """One ``[[sessions]]`` table, checked."""

    key: str | None
    queue: str
    external_key: str | None
    custom: dict[str, str]
    customer: str
    repeat: int
    steps: list[Step] = field(default_factory=list)


# For each step: the option its own value goes to, and the other options it takes.
_SHAPES: dict[str, tuple[str | None, frozenset[str]]] = {
    "join": ("rep", frozenset()),
    "chat": ("text", frozenset({"from"})),
    "note": ("text", frozenset()),
    "file": ("name", frozenset({"size", "direction"})),
    "attributes": ("values", frozenset()),
    "survey": ("kind", frozenset({"answers"})),
    "end": (None, frozenset()),
}
assert set(_SHAPES) == set(STEPS)

_SESSION_KEYS = frozenset({"key", "queue", "external_key", "custom", "customer", "repeat", "steps"})


def load_scenario(path: Path) -> list[ScenarioSession]:
    """Read and check a scenario file; :class:`ScenarioError` says what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    tables = data.get("sessions")
    if not isinstance(tables, list) or not tables:
        raise ScenarioError(f"{path}: no [[sessions]]")
    return [_session(table, f"{path}: session {i}") for i, table in enumerate(tables, 1)]


def _session(table: Any, where: str) -> ScenarioSession:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: must be a table")
    unknown = set(table) - _SESSION_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    repeat = table.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
        raise ScenarioError(f"{where}: repeat must be a whole number from 1 to {MAX_REPEAT}")
    strings = {name: table.get(name) for name in ("key", "queue", "external_key", "customer")}
    for name, value in strings.items():
        if value is not None and not isinstance(value, str):
            raise ScenarioError(f"{where}: {name} must be a string")
    custom = table.get("custom", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        raise ScenarioError(f"{where}: custom must be a table of strings")
    steps = table.get("steps", [])
    if not isinstance(steps, list):
        raise ScenarioError(f"{where}: steps must be a list of tables")
    checked = [_step(step, f"{where}, step {n}") for n, step in enumerate(steps, 1)]
    if any(s.name == "end" for s in checked[:-1]):
        raise ScenarioError(f"{where}: only the last step may end the session")
    return ScenarioSession(
        key=strings["key"],
        queue=strings["queue"] or "general",
        external_key=strings["external_key"],
        custom=custom,
        customer=strings["customer"] or "Customer",
        repeat=repeat,
        steps=checked,
    )


def _step(table: Any, where: str) -> Step:
    if not isinstance(table, dict):
        raise ScenarioError(f'{where}: must be a table like {{ chat = "Hello" }}')
    names = [name for name in table if name in _SHAPES]
    if len(names) != 1:
        raise ScenarioError(f"{where}: give exactly one of {', '.join(_SHAPES)}")
    name = names[0]
    own, options = _SHAPES[name]
    unknown = set(table) - {name} - options
    if unknown:
        raise ScenarioError(f"{where}: {name} takes no {', '.join(sorted(unknown))}")
    body = {k: v for k, v in table.items() if k != name}
    if own is not None:
        body[own] = table[name]
    return Step(name, body)


def play(
    sessions: list[ScenarioSession],
    post: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> Iterator[str]:
    """Play ``sessions`` through ``post(path, body)`` (the control API); yields each lsid.

    ``post`` raises on an error answer; the lsids played so far have been yielded.
    """
    for session in sessions:
        for _ in range(session.repeat):
            key = session.key
            if key is None:
                body = {"queue": session.queue, "custom": session.custom}
                if session.external_key is not None:
                    body["external_key"] = session.external_key
                key = str(post("/sim/keys", body)["key"])
            lsid = str(post("/sim/sessions", {"key": key, "customer": session.customer})["lsid"])
            for step in session.steps:
                post(f"/sim/sessions/{lsid}/{step.name}", step.body)
            if not session.steps or session.steps[-1].name != "end":
                post(f"/sim/sessions/{lsid}/end", {})
            yield lsid
