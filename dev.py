#!/usr/bin/env python3
"""Set-up and task runner that needs nothing but Python 3.11+.

    python3 dev.py demo [ARGS]   create .venv if needed, install rsbridge, run `rsbridge demo`
    python3 dev.py test [ARGS]   install with the dev extras, then ruff, mypy and pytest
                                 (4 pytest-xdist workers; RSBRIDGE_TEST_WORKERS=N to change)
    python3 dev.py bench NAME    run benchmarks/NAME.py in the venv

The venv is re-installed only when pyproject.toml changes (a hash stamp is kept
inside .venv), so repeated runs start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def ensure_venv(extras: str) -> None:
    """Create the venv and install the project (with ``extras``) when out of date."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on any system python3)
        raise SystemExit("rsbridge needs Python 3.11 or newer")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    _run(PY, "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(digest)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "bench"}:
        raise SystemExit(__doc__)
    task, rest = argv[0], argv[1:]
    if task == "demo":
        ensure_venv("")
        _run(BIN / "rsbridge", "demo", *rest)
    elif task == "test":
        ensure_venv("dev")
        _run(BIN / "ruff", "check", ".")
        _run(BIN / "ruff", "format", "--check", ".")
        _run(BIN / "mypy")
        # The suite waits on sockets more than on the CPU: four workers halve it even on
        # two cores. RSBRIDGE_TEST_WORKERS=0 runs it in one process.
        workers = os.environ.get("RSBRIDGE_TEST_WORKERS", "4")
        _run(PY, "-m", "pytest", *(["-n", workers] if workers != "0" else []), *rest)
    else:
        ensure_venv("dev")
        if not rest:
            raise SystemExit("usage: python3 dev.py bench NAME [ARGS]")
        _run(PY, ROOT / "benchmarks" / f"{rest[0]}.py", *rest[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
