"""``rsbridge report``: inspect saved session reports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rsbridge.appliance.report_json import session_json
from rsbridge.appliance.report_model import EventType, SupportSession
from rsbridge.appliance.report_parser import ReportLimits, iter_sessions
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

report_app = typer.Typer(help="Inspect session reports.", no_args_is_help=True)


@report_app.command("parse")
def report_parse(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A saved Reporting API response.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the model as JSON.")] = False,
    max_session_mb: Annotated[
        int, typer.Option(help="Refuse a single session larger than this (MiB).")
    ] = 64,
) -> None:
    """Print the model of a saved SupportSession report, one session at a time."""
    limits = ReportLimits(max_item_bytes=max_session_mb * 1024 * 1024)
    console = Console(highlight=False)
    count = 0
    try:
        if as_json:
            _write_json(iter_sessions(file, limits))
            return
        for session in iter_sessions(file, limits):
            count += 1
            console.print(session_table(session))
        console.print(f"{count} session(s) in {file}")
    except RsbridgeError as exc:
        raise fail(f"{file}: {exc.message}") from None


def _write_json(sessions: Iterator[SupportSession]) -> None:
    """Stream ``sessions`` as one JSON array, a session at a time, so a huge report never
    sits in memory (orjson: the standard library's encoder cost more than the parsing)."""
    out = sys.stdout.buffer
    count = 0
    out.write(b"[")
    for count, session in enumerate(sessions, start=1):
        out.write(b",\n" if count > 1 else b"\n")
        out.write(session_json(session))
    # Closed only on success: a report that fails half-way leaves JSON that no reader
    # mistakes for the whole report (the error goes to stderr with a non-zero exit).
    out.write(b"\n]\n" if count else b"]\n")
    out.flush()


def session_table(s: SupportSession) -> Table:
    """A one-screen summary of a session for people (``report parse``, the demo)."""
    table = Table(title=f"session {s.lsid}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    ended = s.end_time.isoformat() if s.end_time else "in progress (no end time yet)"
    table.add_row("time", f"{s.start_time.isoformat() if s.start_time else '?'} -> {ended}")
    table.add_row("site", s.public_site.name if s.public_site else "-")
    table.add_row("external key", s.external_key or "-")
    table.add_row(
        "custom attributes",
        ", ".join(f"{a.code_name}={a.value}" for a in s.custom_attributes) or "-",
    )
    table.add_row("customers", ", ".join(_customer_label(c.info, c.username) for c in s.customers))
    table.add_row(
        "representatives",
        ", ".join(
            f"{r.display_name or r.username}{' (owner)' if r.session_owner else ''}"
            for r in s.representatives
        ),
    )
    counts: dict[str, int] = {}
    for ev in s.events:
        counts[ev.event_type] = counts.get(ev.event_type, 0) + 1
    chats, notes = (
        counts.get(EventType.CHAT_MESSAGE, 0),
        counts.get(EventType.SESSION_NOTE_ADDED, 0),
    )
    table.add_row("chat / notes", f"{chats} / {notes}")
    table.add_row("events", f"{len(s.events)} ({len(counts)} types)")
    table.add_row("files", f"{s.file_transfer_count} transferred")
    table.add_row(
        "surveys",
        f"{len(s.customer_surveys)} customer, {len(s.rep_surveys)} representative",
    )
    if s.recording:
        table.add_row("recording", s.recording.view_url or "-")
    return table


def _customer_label(info: dict[str, str], username: str | None) -> str:
    name = info.get("name") or username or "?"
    company = info.get("company")
    return f"{name} ({company})" if company else name
