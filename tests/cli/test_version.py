"""``rsbridge --version`` and ``rsbridge version``."""

from __future__ import annotations

from typer.testing import CliRunner

from rsbridge import __version__
from rsbridge.cli import app


def test_version_option_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"{__version__}\n"


def test_version_option_runs_no_command() -> None:
    result = CliRunner().invoke(app, ["--version", "report", "parse", "/nonexistent"])
    assert result.exit_code == 0 and result.stdout == f"{__version__}\n"
