"""benchmarks/scale.py's quick mode, smallest configurations, run once for correctness
(every session delivered once, the figures printed), not for speed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres import server_url

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "scale.py"


@pytest.mark.slow
def test_the_quick_scale_benchmark_drains_and_delivers_every_session(
    postgres_database: str, tmp_path: Path
) -> None:
    # postgres_database: skipped (or failed, in CI) like the other PostgreSQL tests.
    result = subprocess.run(  # noqa: S603 (the project's own script)
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--only",
            "sqlite,pg1",
            "--backlog",
            "20",
            "--rate",
            "5",
            "--duration",
            "1",
            "--postgres",
            server_url(),
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sqlite: 20 sessions in" in out and "pg1: 20 sessions in" in out
    assert "steady 5/5" in out
    assert "INCOMPLETE" not in out
    assert "target: PostgreSQL one node >= 0.8x SQLite" in out
    assert "where the time goes" in out and "finish" in out
    # How busy the machine was, per configuration, and what that says about the figures.
    assert "machine busy" in out and "machine-bound" in out


@pytest.mark.slow
def test_the_worker_bound_table_is_measured_and_labelled(
    postgres_database: str, tmp_path: Path
) -> None:
    result = subprocess.run(  # noqa: S603 (the project's own script)
        [
            sys.executable,
            str(SCRIPT),
            *("--quick", "--only", "pg1,pg2", "--backlog", "10", "--rate", "5"),
            *("--duration", "1", "--worker-bound", "1"),
            *("--postgres", server_url(), "--workdir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "8 workers a node: where this" in out
    assert "1 worker a node: nodes bound by their workers" in out
    assert out.count("target: two nodes >= 1.6x one") == 2
    assert "INCOMPLETE" not in out
