"""``rsbridge demo --help`` says what the story shows and names every built-in target."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.cli.plugins import hooks


def _help() -> str:
    result = CliRunner().invoke(app, ["demo", "--help"], prog_name="rsbridge", terminal_width=200)
    assert result.exit_code == 0, result.output
    # Rich draws boxes and wraps lines: compare words, not layout.
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def test_the_help_lists_every_target_that_brings_a_story() -> None:
    text = _help()
    stories = sorted(n for n, h in hooks("demo").items() if not isinstance(h, Exception))
    assert {"servicenow", "salesforce", "remedy", "agiloft"} <= set(stories)
    targets = text.split("Targets:", 1)[1]
    for name in stories:
        assert name in targets, f"{name} brings a demo but `rsbridge demo --help` omits it"


def test_the_help_says_what_the_story_shows() -> None:
    text = _help()
    for part in (
        "simulated appliance",
        "the target's simulated system",
        "session keys from open tickets",
        "created as the representative joins",
        "Every outbound event is sent twice",
        "each session is imported once",
        "start URL",
        "a table of what arrived where",
    ):
        assert part in text, part
