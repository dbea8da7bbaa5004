"""Compile-check Salesforce sources offline with the real parsers (salesforce_check/).

``compile_problems`` sends Apex classes and Lightning web component files to one node
process (salesforce_check/check.mjs): Apex through prettier-plugin-apex, whose parser is
Salesforce's own Apex front end, components through ``@lwc/compiler``. The npm packages
are pinned by salesforce_check/package-lock.json and installed with ``npm ci`` into
``.cache/node/`` at the repository root (git ignores it) the first time they are needed.

When node or npm is missing or the install fails, the caller's test is skipped with the
reason, or fails when ``CI=true``: CI must run the check, a laptop without node need not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NoReturn

import pytest

CHECK = Path(__file__).parent / "salesforce_check"
ROOT = Path(__file__).parents[2]
CACHE = ROOT / ".cache" / "node"
INSTALL_TIMEOUT = 600
CHECK_TIMEOUT = 300


def _unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI, where the check must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Salesforce compile check cannot run under CI: {reason}")
    pytest.skip(f"Salesforce compile check not run: {reason}")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    # pytest-xdist workers may install at the same time; one does, the other waits.
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _installed() -> bool:
    lock = (CHECK / "package-lock.json").read_bytes()
    cached = CACHE / "package-lock.json"
    return (
        cached.exists()
        and cached.read_bytes() == lock
        and (CACHE / "node_modules" / ".package-lock.json").exists()
    )


def ensure_tools() -> str:
    """The node executable, with the pinned packages installed in ``.cache/node``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are not both on PATH")
    with _locked():
        if not _installed():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(CHECK / name, CACHE / name)
            try:
                result = subprocess.run(  # noqa: S603 (npm with fixed arguments)
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=CACHE,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                _unavailable(f"npm ci took more than {INSTALL_TIMEOUT} s")
            if result.returncode != 0:
                (CACHE / "package-lock.json").unlink()  # try again next time
                _unavailable(f"npm ci failed: {result.stderr.strip()[-2000:]}")
    return node


def compile_problems(sources: Mapping[str, str]) -> dict[str, list[str]]:
    """What the parsers say about each of ``sources`` (path: text), in one invocation;
    an empty list for a file that compiles."""
    node = ensure_tools()
    result = subprocess.run(  # noqa: S603 (node with our script)
        [node, str(CHECK / "check.mjs"), str(CACHE)],
        input=json.dumps(dict(sources)),
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    problems: dict[str, list[str]] = json.loads(result.stdout)
    assert set(problems) == set(sources)
    return problems
