#!/usr/bin/env python3
"""Set-up and task runner that needs nothing but Python 3.11+.

    python3 dev.py demo [ARGS]   create .venv if needed, install rsbridge, run `rsbridge demo`
    python3 dev.py test [ARGS]   install with the dev extras, then ruff, mypy and pytest
                                 (4 pytest-xdist workers; RSBRIDGE_TEST_WORKERS=N to change)
    python3 dev.py bench NAME    run benchmarks/NAME.py in the venv
    python3 dev.py wheel         build dist/rsbridge-VERSION-py3-none-any.whl (with the locked
                                 build backend), for deploy/install.sh and the container image
    python3 dev.py lock [--upgrade]
                                 re-resolve requirements/lock.txt and lock-dev.txt after
                                 changing the dependencies in pyproject.toml: locked versions
                                 that still fit stay; --upgrade takes the newest of everything

Installs take exact versions from the locks, every file checked against its hash, so a
machine set up next year gets what was tested: requirements/lock.txt (rsbridge's
dependencies and its build backend) for `demo`, requirements/lock-dev.txt (plus the dev
tools) for `test` and `bench`. The venv is re-installed only when pyproject.toml or the
lock changes (a hash stamp is kept inside .venv), so repeated runs start at once.
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
REQUIREMENTS = ROOT / "requirements"
LOCK = REQUIREMENTS / "lock.txt"
DEV_LOCK = REQUIREMENTS / "lock-dev.txt"
# The resolver that writes the locks (only `dev.py lock` installs it).
UV_VERSION = "0.13.9"


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def _create_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on any system python3)
        raise SystemExit("rsbridge needs Python 3.11 or newer")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)


def ensure_venv(extras: str) -> None:
    """Create the venv and install the project (``extras``: "" or "dev") when out of date."""
    _create_venv()
    lock = DEV_LOCK if extras else LOCK
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + lock.read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = (PY, "-m", "pip")
    # Exactly the locked versions, each file checked against its hash; then rsbridge itself,
    # which adds nothing (its build backend is in the lock too).
    _run(*pip, "install", "--quiet", "--require-hashes", "--no-deps", "-r", lock)
    _run(*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".")
    check = subprocess.run([*map(str, pip), "check"], cwd=ROOT, check=False)  # noqa: S603
    if check.returncode != 0:
        raise SystemExit(
            f"{lock.relative_to(ROOT)} lacks what pyproject.toml asks for (above): "
            "run `python3 dev.py lock` and commit the locks"
        )
    stamp.write_text(digest)


def lock(args: list[str]) -> None:
    """Re-resolve both locks from pyproject.toml, universal (any OS, Python 3.11+), with the
    hashes of every file PyPI has for each version. uv keeps the versions already in a lock
    where they still fit (``--upgrade``: the newest of everything)."""
    if args not in ([], ["--upgrade"]):
        raise SystemExit("usage: python3 dev.py lock [--upgrade]")
    _create_venv()
    uv = BIN / "uv"
    if not uv.exists():
        _run(PY, "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")
    common = ["--universal", "--python-version", "3.11", "--generate-hashes", "--quiet"]
    common += ["--custom-compile-command", "python3 dev.py lock", *args]
    build = REQUIREMENTS / "build.in"
    _run(uv, "pip", "compile", "pyproject.toml", build, *common, "-o", LOCK)
    # The dev lock keeps the runtime lock's versions, so demo and test run the same code.
    _run(uv, "pip", "compile", "pyproject.toml", build, "--extra", "dev", "-c", LOCK,
         *common, "-o", DEV_LOCK)  # fmt: skip


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "bench", "lock", "wheel"}:
        raise SystemExit(__doc__)
    task, rest = argv[0], argv[1:]
    if task == "demo":
        ensure_venv("")
        _run(BIN / "rsbridge", "demo", *rest)
    elif task == "lock":
        lock(rest)
    elif task == "wheel":
        ensure_venv("")
        _run(PY, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", ROOT / "dist", ".")  # fmt: skip
    elif task == "test":
        ensure_venv("dev")
        _run(BIN / "ruff", "check", ".")
        _run(BIN / "ruff", "format", "--check", ".")
        _run(BIN / "mypy")
        # The suite waits on sockets more than on the CPU: four workers halve it even on
        # two cores. RSBRIDGE_TEST_WORKERS=0 runs it in one process.
        # loadgroup: the browser tests (xdist group "browser") share one worker, so one
        # Chromium and one engine per module serve them all.
        workers = os.environ.get("RSBRIDGE_TEST_WORKERS", "4")
        spread = ["-n", workers, "--dist", "loadgroup"] if workers != "0" else []
        _run(PY, "-m", "pytest", *spread, *rest)
    else:
        ensure_venv("dev")
        if not rest:
            raise SystemExit("usage: python3 dev.py bench NAME [ARGS]")
        _run(PY, ROOT / "benchmarks" / f"{rest[0]}.py", *rest[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
