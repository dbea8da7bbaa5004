"""The parts every ``rsbridge demo`` story is made of, whatever the ticketing system.

A connector's story (its plugin's ``demo`` hook, e.g.
:mod:`rsbridge.connectors.servicenow.demo`) serves its own simulator and builds its
integration; the rest is here: the simulated appliance and webhook receiver, the shared
configuration (the ``audit`` jsonl file and the ``webhook`` integrations beside the
system's), sessions whose keys a technician generates from a ticket, sessions that get a
ticket created as the representative joins, a customer's forged start URL, the outbound
events sent twice, and the columns of what reached the file and the webhook.

With ``rsbridge demo --keep`` the story ends with everything still running: the stage's
:meth:`Stage.kept` (called by the story while its engine serves) hands over to a
:data:`Keep`; the command line's (:func:`linger`) prints :meth:`Stage.links` and the
``rsbridge rehearse`` lines of :func:`rehearsal_lines`, and waits for Ctrl-C.

A story may also seat *side systems* beside its own (:class:`SideSystem`, from
:data:`DEFAULT_SIDES` in the default story): another ticketing system's simulator with an
integration that imports every session without a ticket ("import all"), one more column
of the table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import secrets
import shlex
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console

from rsbridge.appliance.events import MEMBER_ADDED
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.rehearsal import Rehearsal
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as create_webhook_app
from rsbridge.web.serve import serving

APPLIANCE = "default"
"""The appliance id of the demo configuration."""
DEFAULT_SIDES = ("rsbridge.connectors.salesforce.demo:import_all_side",)
"""The side systems of the default story (``module:function``, each a :data:`SideFactory`)."""


@dataclasses.dataclass
class SideSystem:
    """A ticketing system beside the story's: its integration (every session imported,
    without a ticket) and what reached it for a session, as a table column."""

    title: str
    integration: Mapping[str, Any]
    cell: Callable[[str], str]
    """What arrived for an lsid (e.g. "1 record, 3 answers")."""
    imported: Callable[[str], int]
    """How many session records an lsid has there (once-only: 1)."""
    url: str = ""
    """Where its simulator answers (listed by ``demo --keep``)."""


SideFactory = Callable[[int, Path], AbstractContextManager[SideSystem]]
"""Serves a side system's simulator for the story (seed, work directory)."""


def default_sides() -> list[SideFactory]:
    """The side system factories of :data:`DEFAULT_SIDES`."""
    factories: list[SideFactory] = []
    for spec in DEFAULT_SIDES:
        module, _, name = spec.partition(":")
        factories.append(getattr(importlib.import_module(module), name))
    return factories


@dataclasses.dataclass
class DemoSession:
    """One session of a story: how it got its ticket."""

    session: SupportSession
    ticket: str | None
    """The ticket its key was generated from, None for an auto-created one."""


Keep = Callable[["Stage", str], Awaitable[None]]
"""What ``demo --keep`` does once the story is told, with the simulators and the engine
still running (given the stage and the engine's URL): the command line's :func:`linger`
lists the URLs and waits for Ctrl-C; a test uses the running demo and returns."""

REHEARSAL_REP = "jsmith"
"""The simulated appliance's representative the rehearsal lines join as."""


@dataclasses.dataclass
class Stage:
    """The peers every story shares, served on loopback for the story's duration."""

    appliance: SimApplianceState
    appliance_url: str
    receiver: WebhookReceiverState
    webhook_url: str
    workdir: Path
    token: str
    """The actions API bearer token of the demo configuration."""
    sides: list[SideSystem] = dataclasses.field(default_factory=list)
    keep: Keep | None = None
    """Set by ``demo --keep``: see :meth:`kept`."""
    intake: Recipient | None = None
    """With :attr:`keep`: the recipient of the rehearsed sessions' outbound events, aimed
    at the engine's intake once it serves."""
    systems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """The story's own simulated systems, (label, URL), from :meth:`announce`."""
    admin_password: str | None = None
    """With :attr:`keep`: the password of the console's ``admin`` user (an operator)."""

    def announce(self, console: Console, label: str, url: str) -> None:
        """Say that the story's simulated system ``label`` serves on ``url`` (and list it
        among :meth:`links`)."""
        console.print(f"[bold]{label}[/] on {url}")
        self.systems.append((label, url))

    def links(self, engine_url: str) -> list[tuple[str, str]]:
        """What a newcomer can open while the demo is kept running: (label, URL), the
        engine's pages first. The one list to extend with a new page."""
        console = [("Admin console", f"{engine_url}/admin/")] if self.admin_password else []
        return [
            *console,
            ("Engine status", f"{engine_url}/status"),
            ("Engine metrics", f"{engine_url}/metrics"),
            ("Engine health", f"{engine_url}/health"),
            ("Engine intake (POST)", f"{engine_url}/ERSPost?appliance={APPLIANCE}"),
            ("Simulated appliance", f"{self.appliance_url}/check_health"),
            ("Its rehearsal page", f"{self.appliance_url}/sim/"),
            ("Its control API (outbound events)", f"{self.appliance_url}/sim/outbound"),
            *self.ticketing_systems(),
            ("Simulated webhook receiver", f"{self.webhook_url}/hook"),
        ]

    def ticketing_systems(self) -> list[tuple[str, str]]:
        """The simulated ticketing systems: the story's own, then the side systems."""
        sides = [(f"Simulated {side.title}", side.url) for side in self.sides if side.url]
        return [*self.systems, *sides]

    async def kept(self, engine_url: str) -> None:
        """With :attr:`keep` (``demo --keep``): aim the simulated appliance's outbound
        events at the engine serving on ``engine_url`` and hand over to :attr:`keep`;
        otherwise nothing. A story calls it once told, while its engine serves."""
        if self.keep is None:
            return
        if self.intake is not None:
            # Read by the simulator's emitter thread at each POST: a plain attribute.
            self.intake.url = f"{engine_url}/ERSPost?appliance={APPLIANCE}"
        await self.keep(self, engine_url)

    def console_section(self) -> dict[str, Any]:
        """``[admin]`` for a kept demo: user ``admin`` (an operator) with
        :attr:`admin_password`, and the simulators in the console's menu; off otherwise."""
        if self.admin_password is None:
            return {}
        from rsbridge.web.admin.auth import hash_password

        simulators = [
            ("Rehearse a session", f"{self.appliance_url}/sim/"),
            *self.ticketing_systems(),
        ]
        return {
            "enabled": True,
            "users": [
                {
                    "name": "admin",
                    "password_hash": hash_password(self.admin_password),
                    "role": "operator",
                }
            ],
            "links": dict(simulators),
        }

    def config(self, integration: Mapping[str, Any]) -> Config:
        """The demo configuration: ``integration`` (named like the story), then ``audit``
        (a jsonl file) and ``webhook``; the actions API on, references signed; with
        ``demo --keep`` the console too (:meth:`console_section`)."""
        account = self.appliance.accounts[0]
        admin = self.console_section()
        return parse_config(
            {
                **({"admin": admin} if admin else {}),
                "engine": {"store": str(self.workdir / "rsbridge.db")},
                "appliances": [
                    {
                        "id": APPLIANCE,
                        "host": self.appliance_url.removeprefix("http://"),
                        "client_id": account.client_id,
                        "client_secret": account.client_secret,
                        "use_plain_http": True,
                    }
                ],
                "actions": {
                    "enabled": True,
                    "tokens": [self.token],
                    "public_url": "http://127.0.0.1",
                },
                # Keys and write-backs are signed: the association trusts them, not a value
                # a customer typed into a start URL.
                "signing": {"secret": secrets.token_hex(32)},
                # The file and the webhook keep every session, without a ticket of their
                # own: a signature counts for the integration it was made for only.
                "integrations": [
                    dict(integration),
                    {
                        "name": "audit",
                        "connector": "jsonl",
                        "association": {"on_unmatched": "import"},
                        "settings": {"path": str(self.jsonl_path)},
                    },
                    {
                        "name": "webhook",
                        "connector": "webhook",
                        "association": {"on_unmatched": "import"},
                        "settings": {"url": f"{self.webhook_url}/hook"},
                    },
                    *(dict(side.integration) for side in self.sides),
                ],
            }
        )

    @property
    def jsonl_path(self) -> Path:
        """The ``audit`` integration's file."""
        return self.workdir / "deliveries.jsonl"


@contextmanager
def stage(
    seed: int, *, sides: Sequence[SideFactory] = (), keep: Keep | None = None
) -> Iterator[Stage]:
    """Serve the simulated appliance and webhook receiver, and the ``sides``; a temporary
    work directory. With ``keep`` (``demo --keep``) the appliance also serves its control
    API (``rsbridge rehearse``), whose sessions' events go to the engine (:meth:`Stage.kept`)."""
    state = SimApplianceState.default(seed=seed)
    receiver = WebhookReceiverState()
    intake: Recipient | None = None
    rehearsal: Rehearsal | None = None
    if keep is not None:
        # No URL until the engine serves; nothing is sent before (no rehearsal yet).
        intake = Recipient("", retry_interval=1)
        rehearsal = Rehearsal(state, OutboundEventEmitter([intake]))
    with (
        serve_in_thread(create_app(state, rehearsal=rehearsal)) as appliance_url,
        serve_in_thread(create_webhook_app(receiver)) as webhook_url,
        tempfile.TemporaryDirectory(prefix="rsbridge-demo-") as workdir,
        ExitStack() as stack,
    ):
        seated = [stack.enter_context(side(seed, Path(workdir))) for side in sides]
        yield Stage(
            state,
            appliance_url,
            receiver,
            webhook_url,
            Path(workdir),
            secrets.token_urlsafe(24),
            seated,
            keep,
            intake,
            admin_password=secrets.token_urlsafe(12) if keep is not None else None,
        )


async def keyed_session(
    url: str,
    http: httpx.AsyncClient,
    state: SimApplianceState,
    generator: SessionGenerator,
    *,
    integration: str,
    ticket: str,
    console: Console,
) -> DemoSession:
    """A technician generates a key from ``ticket``; a customer uses it; it ends."""
    answer = await http.post(
        f"{url}/actions/session-key",
        json={"integration": integration, "ticket": ticket, "user": "jsmith"},
    )
    body = answer.json()
    if answer.status_code != 200:
        raise RuntimeError(f"the actions API refused a key for {ticket}: {body}")
    custom = dict(state.session_keys[body["short_key"]].custom)
    console.print(f"session key {body['short_key']} generated from {ticket}")
    lsid = state.start_session(body["short_key"])
    external_key = custom.pop("external_key", None)
    report = generator.session_from_key(external_key, custom)
    session = state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
    return DemoSession(session, ticket)


async def auto_created_session(
    url: str,
    engine: Engine,
    state: SimApplianceState,
    generator: SessionGenerator,
    *,
    attribute: str,
    noun: str,
    console: Console,
) -> DemoSession:
    """A session without a ticket: the rep joins, a ``noun`` is created and its reference
    written back to the session's custom ``attribute``; it ends."""
    key = state.generate_session_key(queue_id="general")
    lsid = state.start_session(key.short_key)
    form = {
        "event": MEMBER_ADDED,
        "version": "1",
        "timestamp": str(int(time.time())),
        "appliance_id": state.appliance_id,
        "lsid": lsid,
        "type": "representative",
        "username": "jsmith",
    }
    async with httpx.AsyncClient() as appliance_side:
        answer = await appliance_side.post(f"{url}/ERSPost?appliance={APPLIANCE}", data=form)
        answer.raise_for_status()
    await engine.wait_idle()
    custom = dict(state.active_sessions[lsid].custom)
    console.print(
        f"session {lsid[:8]} had no ticket: {noun} created on join, "
        f"{attribute}={custom.get(attribute, '(none)')} written back"
    )
    report = generator.session_from_key(custom.pop("external_key", None), custom)
    session = state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))
    return DemoSession(session, None)


def forged_session(
    state: SimApplianceState, generator: SessionGenerator, *, attribute: str, target: str
) -> SupportSession:
    """A customer starts a session from a public start URL of their own making, naming
    someone else's ticket ``target`` in the custom ``attribute`` (or the external key,
    ``external_key``); it ends."""
    custom = {attribute: target}
    key = state.generate_session_key(queue_id="general", custom=custom.items())
    lsid = state.start_session(key.short_key)
    report = generator.session_from_key(custom.pop("external_key", None), custom)
    return state.complete_session(lsid, dataclasses.replace(report, lsid=lsid))


async def end_twice(url: str, state: SimApplianceState, sessions: list[SupportSession]) -> int:
    """POST every session's outbound events to the intake, each twice, as the appliance
    does (one at a time, waiting for the 200); the number acknowledged."""
    recipient = Recipient(f"{url}/ERSPost?appliance={APPLIANCE}", retry_interval=0.2)
    async with OutboundEventEmitter([recipient]) as emitter:
        for session in sessions:
            for event in events_for_session(session, state.appliance_id) * 2:
                emitter.enqueue(event)
        await emitter.run_until_idle()
    return recipient.sent


@dataclasses.dataclass
class Story:
    """What :func:`tell` did: the sessions that ended, the forged one, the final counts."""

    sessions: list[DemoSession]
    forged: SupportSession
    counts: dict[str, int]


async def tell(
    url: str,
    engine: Engine,
    http: httpx.AsyncClient,
    state: SimApplianceState,
    generator: SessionGenerator,
    *,
    integration: str,
    tickets: Sequence[str],
    attribute: str,
    noun: str,
    forged_target: str,
    count: int,
    console: Console,
) -> Story:
    """The story every target tells: ``count`` sessions (every third one created on join,
    the others keyed from ``tickets`` in turn), a customer's forged start URL naming
    ``forged_target`` in ``attribute``, every outbound event sent twice, the engine idle."""
    finished: list[DemoSession] = []
    for n in range(count):
        if n % 3 == 2:
            made = await auto_created_session(
                url, engine, state, generator, attribute=attribute, noun=noun, console=console
            )
        else:
            ticket = tickets[(n - n // 3) % len(tickets)]
            made = await keyed_session(
                url, http, state, generator, integration=integration, ticket=ticket, console=console
            )
        finished.append(made)
    forged = forged_session(state, generator, attribute=attribute, target=forged_target)
    sent = await end_twice(url, state, [*(item.session for item in finished), forged])
    console.print(
        f"{len(finished)} sessions ended; {sent} outbound events (each sent twice) "
        "acknowledged by the intake"
    )
    counts = await engine.wait_idle()
    console.print(
        f"session {forged.lsid[:8]} was started from a URL whose customer set "
        f"{attribute}={forged_target} (unsigned): refused, the session got its own {noun}"
    )
    return Story(finished, forged, counts)


R = TypeVar("R")


@dataclasses.dataclass
class Told:
    """What :func:`run_story` did: the story, the closed ticket's refusal, what reached
    the file and the webhook."""

    story: Story
    refused: str
    jsonl: list[dict[str, Any]]
    webhook: list[dict[str, Any]]


async def run_story(
    config: Config,
    peers: Stage,
    seed: int,
    *,
    integration: str,
    tickets: Sequence[str],
    closed: str,
    forged_target: str,
    noun: str,
    user: str,
    count: int,
    console: Console,
    report: Callable[[Told], R],
    attribute: str = "external_key",
) -> R:
    """The engine with its intake and actions API, a session key refused for the
    ``closed`` ticket (asked as ``user``), then :func:`tell`; ``report`` says what
    arrived (its value is returned) before :meth:`Stage.kept`, while the engine serves."""
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {peers.token}"}, timeout=30) as http,
    ):
        console.print(f"[bold]Engine[/] intake {url}/ERSPost, actions {url}/actions/...")
        answer = await http.post(
            f"{url}/actions/session-key",
            json={"integration": integration, "ticket": closed, "user": user},
        )
        refused = str(answer.json().get("message", ""))
        console.print(f"session key for closed {noun} {closed}: {refused}")
        story = await tell(
            url,
            engine,
            http,
            peers.appliance,
            SessionGenerator(seed),
            integration=integration,
            tickets=tickets,
            attribute=attribute,
            noun=noun,
            forged_target=forged_target,
            count=count,
            console=console,
        )
        told = Told(
            story,
            refused,
            read_deliveries(peers.jsonl_path),
            [r.body for r in peers.receiver.received],
        )
        result = report(told)
        await peers.kept(url)
    return result


def file_counts(lines: list[dict[str, Any]]) -> Counter[tuple[Any, Any]]:
    """The ``audit`` file's lines counted by (lsid, kind); a note names its lsid in its key."""
    return Counter((d.get("lsid") or d["key"].split("/")[1], d["kind"]) for d in lines)


def webhook_counts(bodies: list[dict[str, Any]]) -> Counter[tuple[Any, Any]]:
    """The webhook receiver's bodies counted by (lsid, kind)."""
    return Counter((d.get("lsid"), d.get("kind")) for d in bodies)


def describe(counts: Counter[tuple[Any, Any]], lsid: str) -> str:
    """One table cell: what reached a destination for ``lsid`` (e.g. "1 report, 1 survey")."""
    parts = [
        f"{n} {kind.replace('session_report', 'report')}"
        for (who, kind), n in sorted(counts.items(), key=str)
        if who == lsid
    ]
    return ", ".join(parts) or "-"


# --- demo --keep ----------------------------------------------------------------------


def rehearsal_lines(appliance_url: str) -> list[str]:
    """Shell lines that rehearse one session on the kept demo's simulated appliance: a
    key, a customer, a representative joining (its ticket is created on join), a chat
    line, a note, the end. Each command prints what the next one reads."""
    return [
        f"export RSBRIDGE_SIM_URL={shlex.quote(appliance_url)}",
        "KEY=$(rsbridge rehearse key)",
        'LSID=$(rsbridge rehearse start "$KEY" --customer "Pat Doe")',
        f'rsbridge rehearse join "$LSID" --rep {REHEARSAL_REP}',
        'rsbridge rehearse chat "$LSID" "The printer jams on page two"',
        'rsbridge rehearse note "$LSID" "Cleared the jam"',
        'rsbridge rehearse end "$LSID"',
    ]


def _private_file(path: Path, secret: str) -> Path:
    """Write ``secret`` to ``path``, readable by its owner only; the path."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(secret)
    return path


async def linger(peers: Stage, engine_url: str, console: Console) -> None:
    """``rsbridge demo --keep``: print :meth:`Stage.links` (one URL a line) and the
    :func:`rehearsal_lines`, then wait for Ctrl-C (SIGINT) or SIGTERM and return, so that
    the story shuts the engine and the simulators down in order."""

    def say(text: str) -> None:
        # One line each, never wrapped or read as markup: they are copied and pasted.
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    links = peers.links(engine_url)
    width = max(len(label) for label, _ in links) + 1
    say("\nEverything keeps running. Open:")
    for label, url in links:
        say(f"  {label + ':':<{width}} {url}")
    # The token itself stays off the screen (and out of terminal logs): a file only the
    # user can read holds it.
    token_file = _private_file(peers.workdir / "actions-token", peers.token)
    say(
        "The engine's status and actions API take the demo's bearer token, e.g.:\n"
        f'  curl -H "Authorization: Bearer $(cat {shlex.quote(str(token_file))})" '
        f"{engine_url}/status"
    )
    if peers.admin_password is not None:
        password_file = _private_file(peers.workdir / "admin-password", peers.admin_password)
        say(
            f"\nThe admin console ({engine_url}/admin/): sign in as admin with the password "
            f"in {shlex.quote(str(password_file))}; its menu links to the simulators, whose "
            "rehearsal page plays a session into the engine."
        )
    say(f"\nRehearse a session in a shell (it lands in {peers.jsonl_path} too):")
    for line in rehearsal_lines(peers.appliance_url):
        say(f"  {line}")
    say("\nPress Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stopping = (signal.SIGINT, signal.SIGTERM)
    for signum in stopping:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in stopping:
            loop.remove_signal_handler(signum)
    say("Stopping the engine and the simulators.")
