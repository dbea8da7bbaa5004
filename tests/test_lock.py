"""The dependency locks (requirements/lock.txt, lock-dev.txt) pin what pyproject.toml asks for.

When this fails after a dependency was added or changed: `python3 dev.py lock`, then commit
both locks.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements" / "lock.txt"
DEV_LOCK = ROOT / "requirements" / "lock-dev.txt"
BUILD_IN = ROOT / "requirements" / "build.in"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock_text: str) -> dict[str, str]:
    """``{canonical name: version}`` of a lock; each pin must carry at least one hash."""
    found: dict[str, str] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock_text)
    for block in blocks:
        match = _PIN.match(block)
        if match is None:
            continue
        if "--hash=sha256:" not in block:
            raise ValueError(f"{match.group(1)} has no hash in the lock")
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def unpinned(requirements: list[str], locked: dict[str, str]) -> list[str]:
    """The requirements that ``locked`` does not pin to a version they allow."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        version = locked.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append(text)
    return missing


def _build_requirements() -> list[str]:
    lines = BUILD_IN.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_runtime_lock_pins_every_dependency_and_the_build_backend() -> None:
    wanted = PYPROJECT["project"]["dependencies"] + _build_requirements()
    assert unpinned(wanted, pins(LOCK.read_text())) == []
    backend = [Requirement(r).name for r in PYPROJECT["build-system"]["requires"]]
    assert {canonicalize_name(n) for n in backend} <= set(pins(LOCK.read_text()))


def test_dev_lock_pins_the_dev_tools_too_at_the_same_versions() -> None:
    dev = pins(DEV_LOCK.read_text())
    wanted = (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    )
    assert unpinned(wanted + _build_requirements(), dev) == []
    runtime = pins(LOCK.read_text())
    assert {name: dev[name] for name in runtime} == runtime  # demo and test run the same code


def test_the_check_notices_a_new_dependency_and_a_stale_pin() -> None:
    locked = pins(LOCK.read_text())
    # A package rsbridge does not depend on stands for a newly added dependency.
    assert "left-pad-for-tests" not in locked
    assert unpinned(["left-pad-for-tests>=1.0", "httpx>=0.27"], locked) == [
        "left-pad-for-tests>=1.0"
    ]
    assert unpinned([f"httpx>{locked['httpx']}"], locked) == [f"httpx>{locked['httpx']}"]


def test_a_pin_without_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="httpx has no hash"):
        pins("httpx==0.28.1\n    # via rsbridge\n")
