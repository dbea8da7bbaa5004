"""The PostgreSQL tests skip, saying why, where no server runs, but fail in CI (CI=true)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres import SERVER_ENV

ROOT = Path(__file__).resolve().parents[1]
NEEDS_SERVER = "tests/engine/test_store_postgresql.py::test_nodes_starting_together_migrate_once"
NOWHERE = "postgresql://postgres@127.0.0.1:1/test"  # port 1: nothing listens


def run_without_server(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env[SERVER_ENV] = NOWHERE
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(  # noqa: S603 (fixed arguments)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", NEEDS_SERVER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [None])
def test_without_a_server_they_skip_with_the_reason(ci: str | None) -> None:
    result = run_without_server(ci)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert f"PostgreSQL not reachable at {NOWHERE}" in result.stdout


def test_without_a_server_in_ci_they_fail() -> None:
    result = run_without_server("true")
    assert result.returncode == 1, result.stdout
    assert "CI=true requires the PostgreSQL tests to run" in result.stdout
