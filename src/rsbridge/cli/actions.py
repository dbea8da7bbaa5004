"""``rsbridge actions ...``: the actions API from the command line.

Each command runs the same :class:`~rsbridge.actions.service.ActionService` as the HTTP
API, with the engine's appliances, connectors and store opened from the configuration
file (the HTTP API's bearer tokens are not needed: whoever can read the configuration
file holds its secrets anyway). ``--json`` prints the HTTP API's answer body. Reference:
docs/cli.md and docs/actions.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from rsbridge.cli.common import DEFAULT_CONFIG, ConfigOption
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

if TYPE_CHECKING:
    from rsbridge.actions.models import EffectOutcome
    from rsbridge.actions.service import ActionService

T = TypeVar("T")

actions_app = typer.Typer(
    help="Technician and customer actions: session keys, Jump, get support now, links.",
    no_args_is_help=True,
)

IntegrationOption = Annotated[
    str, typer.Option("--integration", "-i", help="The integration (its name).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the HTTP API's JSON answer instead.")
]
RequestIdOption = Annotated[
    str | None,
    typer.Option(help="An id for this request: repeating it repeats no key, note or e-mail."),
]


def _run(config: Path, action: Callable[[ActionService], Awaitable[T]]) -> T:
    """Open the engine's parts from ``config``, run ``action``, report errors as ``fail``."""
    from rsbridge.actions.problems import describe
    from rsbridge.config import load_config
    from rsbridge.engine.runtime import Engine

    async def go() -> T:
        async with Engine(settings) as engine:
            assert engine.actions is not None
            return await action(engine.actions)

    try:
        settings = load_config(config)
        return asyncio.run(go())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise fail(problems) from None
    except RsbridgeError as exc:
        raise fail(describe(exc).message) from None


def _print_json(body: dict[str, Any]) -> None:
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False))


def _effect(label: str, outcome: EffectOutcome | None, done: str, *, quiet: bool) -> bool:
    """Print what became of a side effect; False if it failed.

    With ``quiet`` (``--json``) a success prints nothing: the JSON document already says
    it, and stdout must hold that document alone for scripts to parse. A failure always
    goes to stderr.
    """
    if outcome is None:
        return True
    if outcome.done:
        if not quiet:
            typer.echo(f"{label}: {done} ({outcome.detail})")
        return True
    typer.echo(f"{label}: FAILED: {outcome.detail}", err=True)
    return False


def _save(path: Path | None, content: str) -> None:
    if path is not None:
        path.write_text(content, encoding="utf-8")
        typer.echo(f"BRCS file written to {path}")
    else:
        typer.echo(content)


@actions_app.command("session-key")
def session_key(
    integration: IntegrationOption,
    ticket: Annotated[str, typer.Option(help="The ticket (its number or id).")],
    config: ConfigOption = DEFAULT_CONFIG,
    user: Annotated[
        str | None, typer.Option(help="Your user in the ticketing system (technician mode).")
    ] = None,
    assignment: Annotated[
        str | None,
        typer.Option(help="technician, assigned_user, assigned_team, general or queue."),
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="For --assignment queue: rep:<username> or team:<name>.")
    ] = None,
    email: Annotated[
        bool | None,
        typer.Option("--email/--no-email", help="E-mail the key (default: actions.email_key)."),
    ] = None,
    email_to: Annotated[
        str | None, typer.Option(help="E-mail it to this address (default: the caller).")
    ] = None,
    note: Annotated[
        bool | None,
        typer.Option("--note/--no-note", help="Log a work note (default: log_session_key)."),
    ] = None,
    request_id: RequestIdOption = None,
    save: Annotated[
        Path | None, typer.Option(help="rep_console source: write the BRCS file here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a session key for a ticket (or the rep console URL that opens the dialog)."""
    from rsbridge.actions.models import SessionKeyRequest

    def request() -> SessionKeyRequest:
        return SessionKeyRequest.model_validate(
            {
                "integration": integration,
                "ticket": ticket,
                "user": user,
                "assignment": assignment,
                "queue": queue,
                "email": email,
                "email_to": email_to,
                "note": note,
                "request_id": request_id,
            }
        )

    result = _run(config, lambda actions: actions.session_key(request()))
    if as_json:
        _print_json(result.to_json())
    elif result.short_key is not None:
        typer.echo(f"session key {result.short_key} (queue {result.queue})")
        typer.echo(f"URL: {result.key_url}")
        if result.expires is not None:
            typer.echo(f"expires: {result.expires.isoformat()}")
        if result.console_url:
            typer.echo(f"web console: {result.console_url}")
    else:
        typer.echo(f"console URL: {result.console_url}")
        if result.brcs is not None:
            _save(save, result.brcs.content)
    ok = _effect("work note", result.note, "written", quiet=as_json)
    ok = _effect("e-mail", result.email, "sent", quiet=as_json) and ok
    if not ok:
        raise typer.Exit(code=1)


@actions_app.command("jump")
def jump(
    integration: IntegrationOption,
    config: ConfigOption = DEFAULT_CONFIG,
    ticket: Annotated[
        str | None, typer.Option(help="Jump to this ticket's configuration item.")
    ] = None,
    ci: Annotated[str | None, typer.Option(help="Jump to this configuration item.")] = None,
    kind: Annotated[
        str,
        typer.Option(help="jump_item, push_local, push_remote, rdp, vnc, shell or vpro."),
    ] = "jump_item",
    method: Annotated[
        str | None,
        typer.Option(help="jump_item: push, local_push, pinned, rdp, vnc or shelljump."),
    ] = None,
    jumpoint: Annotated[str | None, typer.Option(help="The Jumpoint to go through.")] = None,
    console: Annotated[
        str | None, typer.Option(help="rep or web (default: actions.jump_console).")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="url or brcs (default: actions.jump_output).")
    ] = None,
    username: Annotated[str | None, typer.Option(help="rdp and shell: the user name.")] = None,
    protocol: Annotated[str | None, typer.Option(help="shell: ssh or telnet.")] = None,
    port: Annotated[int | None, typer.Option(help="shell and vnc: the port.")] = None,
    save: Annotated[Path | None, typer.Option(help="brcs output: write the file here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the console URL or BRCS file that Jumps to a configuration item."""
    from rsbridge.actions.models import JumpRequest

    def request() -> JumpRequest:
        return JumpRequest.model_validate(
            {
                "integration": integration,
                "ticket": ticket,
                "ci": ci,
                "kind": kind,
                "method": method,
                "jumpoint": jumpoint,
                "console": console,
                "output": output,
                "username": username,
                "protocol": protocol,
                "port": port,
            }
        )

    result = _run(config, lambda actions: actions.jump(request()))
    if as_json:
        _print_json(result.to_json())
    elif result.url is not None:
        typer.echo(result.url)
    elif result.brcs is not None:
        _save(save, result.brcs.content)


@actions_app.command("issues")
def issues(
    integration: IntegrationOption,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Load the self-service issues from the appliance (the vendor's "Load Issues")."""
    result = _run(config, lambda actions: actions.issues(integration))
    if as_json:
        _print_json(result.to_json())
        return
    for issue in result.issues:
        typer.echo(f"{issue.code_name}\t{issue.description or ''}\t(team {issue.team})")
    typer.echo(
        f"{len(result.issues)} issue(s) offered, {result.appliance_issue_count} on the appliance"
    )
    if result.missing:
        typer.echo(f"not on the appliance: {', '.join(result.missing)}", err=True)


@actions_app.command("support-now")
def support_now(
    integration: IntegrationOption,
    ticket: Annotated[str, typer.Option(help="The self-service user's ticket.")],
    config: ConfigOption = DEFAULT_CONFIG,
    issue: Annotated[str | None, typer.Option(help="The issue's code name.")] = None,
    start_type: Annotated[
        str | None, typer.Option(help="chat or full (default: session_start_type).")
    ] = None,
    customer_name: Annotated[
        str | None, typer.Option(help="The customer's name (default: the caller).")
    ] = None,
    details: Annotated[str | None, typer.Option(help="The problem description.")] = None,
    note: Annotated[
        bool | None,
        typer.Option("--note/--no-note", help="Log a work note (default: log_customer_initiated)."),
    ] = None,
    request_id: RequestIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the URL that starts a customer's chat or session for their ticket."""
    from rsbridge.actions.models import SupportNowRequest

    def request() -> SupportNowRequest:
        return SupportNowRequest.model_validate(
            {
                "integration": integration,
                "ticket": ticket,
                "issue": issue,
                "start_type": start_type,
                "customer_name": customer_name,
                "details": details,
                "note": note,
                "request_id": request_id,
            }
        )

    result = _run(config, lambda actions: actions.support_now(request()))
    if as_json:
        _print_json(result.to_json())
    else:
        typer.echo(result.url)
    if not _effect("work note", result.note, "written", quiet=as_json):
        raise typer.Exit(code=1)


@actions_app.command("links")
def links(
    integration: IntegrationOption,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Print the rep-console custom links to add on the appliance."""

    async def go(actions: ActionService) -> Any:
        return actions.links(integration)

    result = _run(config, go)
    if as_json:
        _print_json(result.to_json())
        return
    for link in result.links:
        typer.echo(f"{link.name}\n  {link.url}")
    if not result.links:
        typer.echo("no custom links (set actions.public_url and actions.link_secret)", err=True)


@actions_app.command("auto-create")
def auto_create(
    integration: IntegrationOption,
    lsid: Annotated[str, typer.Option(help="The live session's id.")],
    config: ConfigOption = DEFAULT_CONFIG,
    username: Annotated[
        str | None, typer.Option(help="The representative asking (for the log).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Find or create the ticket of a live session and write it back to the session."""
    result = _run(config, lambda actions: actions.auto_create(integration, lsid, username))
    if as_json:
        _print_json(result.to_json())
    else:
        ticket = result.ticket
        typer.echo(
            f"ticket {ticket.number or ticket.id}" + (f": {ticket.url}" if ticket.url else "")
        )


@actions_app.command("pull")
def pull_now(
    integration: IntegrationOption,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Pull now: queue the sessions that ended since the last pull (the first: 24 hours)."""
    result = _run(config, lambda actions: actions.pull_now(integration))
    if as_json:
        _print_json(result.to_json())
        return
    first = " (first pull)" if result.first_run else ""
    typer.echo(
        f"{result.integration}: since {result.since.isoformat()}{first}: "
        f"{result.sessions_listed} session(s) ended, {result.sessions_queued} queued, "
        f"{result.surveys_queued} survey(s) queued"
    )
    typer.echo("rsbridge serve imports what is queued (or rsbridge pull, which also works it off)")
