"""``rsbridge rehearse``: play live sessions on a running ``rsbridge sim appliance``.

Each command is one call to the simulator's control API (:mod:`rsbridge.sim.appliance.
control`); the simulator sends the outbound events to the recipients it was started with
(``rsbridge sim appliance --recipient URL``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from rsbridge.console import fail

rehearse_app = typer.Typer(
    help="Rehearse live sessions on a running simulated appliance (rsbridge sim appliance).",
    no_args_is_help=True,
)

SimOption = Annotated[
    str,
    typer.Option("--sim", envvar="RSBRIDGE_SIM_URL", help="The simulated appliance's URL."),
]
DEFAULT_SIM = "http://127.0.0.1:8443"
LsidArgument = Annotated[str, typer.Argument(help="The session (from rehearse start).")]


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{what} must be NAME=VALUE, not {item!r}")
        pairs[name] = value
    return pairs


def _post(sim: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = sim.rstrip("/") + path
    try:
        response = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the simulated appliance at {sim}: {exc}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise fail(
            f"{sim} answered {response.status_code} without JSON: is it `rsbridge sim appliance`?"
        )
    if response.status_code != 200:
        raise fail(str(answer.get("error") or f"{response.status_code} from {url}"))
    return answer


def _step(sim: str, lsid: str, step: str, body: dict[str, Any]) -> None:
    _post(sim, f"/sim/sessions/{lsid}/{step}", body)
    typer.echo(f"{step}: ok")


@rehearse_app.command("key")
def key(
    sim: SimOption = DEFAULT_SIM,
    queue: Annotated[str, typer.Option(help="general, rep:ID, team:ID, rep_username:NAME.")] = (
        "general"
    ),
    external_key: Annotated[str | None, typer.Option(help="The key's external key.")] = None,
    custom: Annotated[
        list[str] | None, typer.Option(help="A custom attribute, CODE=VALUE (repeatable).")
    ] = None,
) -> None:
    """Generate a session key (as a ticket's Session Key button would); prints the short key."""
    body: dict[str, Any] = {"queue": queue, "custom": _pairs(custom, "--custom")}
    if external_key is not None:
        body["external_key"] = external_key
    typer.echo(_post(sim, "/sim/keys", body)["key"])


@rehearse_app.command("start")
def start(
    session_key: Annotated[str, typer.Argument(help="The short key (or access key) to use.")],
    sim: SimOption = DEFAULT_SIM,
    customer: Annotated[str, typer.Option(help="The customer's name.")] = "Customer",
) -> None:
    """The customer uses a session key; prints the new session's lsid."""
    typer.echo(_post(sim, "/sim/sessions", {"key": session_key, "customer": customer})["lsid"])


@rehearse_app.command("join")
def join(
    lsid: LsidArgument,
    rep: Annotated[str, typer.Option(help="The representative's username.")],
    sim: SimOption = DEFAULT_SIM,
) -> None:
    """A representative joins (the first one owns the session)."""
    _step(sim, lsid, "join", {"rep": rep})


@rehearse_app.command("chat")
def chat(
    lsid: LsidArgument,
    text: Annotated[str, typer.Argument(help="The chat line.")],
    sim: SimOption = DEFAULT_SIM,
    sender: Annotated[str, typer.Option("--from", help="customer or rep.")] = "customer",
) -> None:
    """A chat line between the customer and the session's owner."""
    _step(sim, lsid, "chat", {"text": text, "from": sender})


@rehearse_app.command("note")
def note(
    lsid: LsidArgument,
    text: Annotated[str, typer.Argument(help="The note.")],
    sim: SimOption = DEFAULT_SIM,
) -> None:
    """The owner adds a session note."""
    _step(sim, lsid, "note", {"text": text})


@rehearse_app.command("file")
def file(
    lsid: LsidArgument,
    name: Annotated[str, typer.Argument(help="The file's name or path.")],
    sim: SimOption = DEFAULT_SIM,
    size: Annotated[int, typer.Option(min=0, help="Its size in bytes.")] = 0,
    direction: Annotated[
        str, typer.Option(help="upload (rep to customer) or download (customer to rep).")
    ] = "upload",
) -> None:
    """A file transfer."""
    _step(sim, lsid, "file", {"name": name, "size": size, "direction": direction})


@rehearse_app.command("attributes")
def attributes(
    lsid: LsidArgument,
    values: Annotated[list[str], typer.Argument(help="CODE=VALUE (external_key too).")],
    sim: SimOption = DEFAULT_SIM,
) -> None:
    """Set custom attributes on the live session."""
    _step(sim, lsid, "attributes", {"values": _pairs(values, "an attribute")})


@rehearse_app.command("survey")
def survey(
    lsid: LsidArgument,
    kind: Annotated[str, typer.Argument(help="customer or rep.")],
    answers: Annotated[list[str], typer.Argument(help="QUESTION=ANSWER ...")],
    sim: SimOption = DEFAULT_SIM,
) -> None:
    """An exit survey (before the end, or after it as a late survey)."""
    _step(sim, lsid, "survey", {"kind": kind, "answers": _pairs(answers, "an answer")})


@rehearse_app.command("end")
def end(lsid: LsidArgument, sim: SimOption = DEFAULT_SIM) -> None:
    """End the session: its report is ready and the end event goes out."""
    _step(sim, lsid, "end", {})


@rehearse_app.command("show")
def show(lsid: LsidArgument, sim: SimOption = DEFAULT_SIM) -> None:
    """What a rehearsed session holds so far, and the outbound events sent (JSON)."""
    url = sim.rstrip("/")
    try:
        session = httpx.get(f"{url}/sim/sessions/{lsid}", timeout=30)
        outbound = httpx.get(f"{url}/sim/outbound", timeout=30)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the simulated appliance at {sim}: {exc}") from None
    if session.status_code != 200:
        raise fail(str(session.json().get("error")))
    typer.echo(json.dumps({"session": session.json(), "outbound": outbound.json()}, indent=2))


@rehearse_app.command("play")
def play_file(
    scenario: Annotated[Path, typer.Argument(help="The scenario file (TOML).")],
    sim: SimOption = DEFAULT_SIM,
) -> None:
    """Play every session of a scenario file, in order; prints each lsid."""
    from rsbridge.sim.appliance.scenario_file import ScenarioError, load_scenario, play

    try:
        sessions = load_scenario(scenario)
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    count = 0
    for lsid in play(sessions, lambda path, body: _post(sim, path, body)):
        typer.echo(lsid)
        count += 1
    typer.echo(f"played {count} session(s)", err=True)


def register(app: typer.Typer) -> None:
    """Add ``rsbridge rehearse`` to the root app."""
    app.add_typer(rehearse_app, name="rehearse")
