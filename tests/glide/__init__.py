"""Node and a stand-in for the Glide APIs, to check and run the instance scripts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "glide_standin.js"


def node_or_skip() -> str:
    """The ``node`` executable; without it the test is skipped, visibly, except on CI
    (``CI=true``), where it fails: the CI machine has Node."""
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required on CI to check and run the instance scripts")
        pytest.skip("node is not installed: the instance scripts are not checked or run")
    return found
