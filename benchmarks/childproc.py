"""A peer served by a child process of the benchmark script itself.

The benchmarks run their simulated peers in a child process so that the peers do not
share a core with the code under test. The child is the same script started with an
option that makes it serve; it prints one JSON line (its URLs, credentials) when ready
and serves until terminated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import TracebackType
from typing import Any, Self


class ChildPeer:
    """``with ChildPeer([script, "--serve-x", ...], "x") as peer:`` then ``peer.info``."""

    def __init__(self, args: list[str], what: str) -> None:
        self._argv = [sys.executable, *args]
        self._what = what
        self._child: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Self:
        self._child = subprocess.Popen(  # noqa: S603 (the benchmark script, as a child)
            self._argv, stdout=subprocess.PIPE, text=True
        )
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            self._child.wait()
            raise SystemExit(f"the {self._what} process did not start")
        self.info = json.loads(line)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._child is not None:
            self._child.terminate()
            self._child.wait()
