"""``rsbridge demo --keep`` as a newcomer runs it: a subprocess that tells the story, then
keeps the simulators and the engine running. The URLs it prints answer; the rehearsal
lines it prints, run verbatim in a shell, play a session that the engine delivers; Ctrl-C
(SIGINT) stops everything with exit status 0."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

READY = "Press Ctrl-C to stop."
LINK = re.compile(r"^  (?P<label>[^:]+): +(?P<url>http://\S+)$")
STARTUP = 120.0
"""Seconds the story may take on a loaded machine before the test gives up."""


class Demo:
    """The running ``demo --keep`` process and what it printed so far."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if line == text:
                return
        ended = self.process.poll() is not None and self.process.stderr is not None
        stderr = self.process.stderr.read() if ended and self.process.stderr else ""
        pytest.fail(f"no {text!r} in the output:\n" + "\n".join(self.lines) + stderr)

    def section(self, title: str) -> list[str]:
        """The indented lines under the line that starts with ``title``."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith(title))
        found: list[str] = []
        for line in self.lines[start + 1 :]:
            if not line.startswith("  "):
                break
            found.append(line)
        return found


@pytest.fixture
def demo() -> Iterator[Demo]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rsbridge", "demo", "--keep", "--sessions", "1", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield Demo(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _delivered(path: Path, lsid: str) -> bool:
    if not path.exists():
        return False
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return any(d.get("lsid") == lsid and d.get("kind") == "session_report" for d in lines)


def _signs_in_to_the_console(demo: Demo, links: dict[str, str]) -> None:
    """The console link: the demo's admin signs in with the password from the file it
    names (never printed), and the menu links to the rehearsal page."""
    [password_file] = re.findall(r"password in (\S+);", "\n".join(demo.lines))
    password = Path(password_file).read_text(encoding="utf-8")
    assert password not in "\n".join(demo.lines)
    assert Path(password_file).stat().st_mode & 0o077 == 0
    with httpx.Client(base_url=links["Admin console"], timeout=30) as browser:
        page = browser.get("sign-in")
        [csrf] = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
        form = {"csrf_token": csrf, "username": "admin", "password": password}
        assert browser.post("sign-in", data=form).status_code == 303
        overview = browser.get("")
    assert overview.status_code == 200 and "admin <small>(operator)</small>" in overview.text
    assert f'href="{links["Its rehearsal page"]}"' in overview.text


def test_demo_keep_serves_until_ctrl_c(demo: Demo, tmp_path: Path) -> None:
    demo.wait_for(READY)
    links = {m["label"]: m["url"] for m in map(LINK.match, demo.section("Everything")) if m}
    assert {"Engine status", "Engine metrics", "Simulated appliance"} <= set(links), links
    assert "Simulated ServiceNow" in links and "Simulated webhook receiver" in links
    # Every page a browser can open answers (the intake and the webhook take POSTs).
    [token_file] = re.findall(r"Bearer \$\(cat (\S+)\)", "\n".join(demo.lines))
    token = Path(token_file).read_text(encoding="utf-8")
    assert token not in "\n".join(demo.lines)
    for label, url in links.items():
        if "POST" in label or label in ("Simulated webhook receiver", "Admin console"):
            continue
        if label.startswith("Simulated") and label != "Simulated appliance":
            # A ticketing system's base URL: up, whatever it answers to a bare GET.
            httpx.get(url, timeout=10)
            continue
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, (label, url)
    assert httpx.get(links["Engine status"], timeout=10).status_code == 401
    _signs_in_to_the_console(demo, links)

    # The rehearsal lines, run as printed; the session's lsid is their last output line.
    lines = [line.strip() for line in demo.section("Rehearse a session")]
    assert lines[0].startswith("export RSBRIDGE_SIM_URL=")
    script = tmp_path / "rehearse.sh"
    script.write_text(
        "set -eu\n"
        f'rsbridge() {{ "{sys.executable}" -m rsbridge "$@"; }}\n'
        + "\n".join(lines)
        + '\necho "$LSID"\n',
        encoding="utf-8",
    )
    bash = shutil.which("bash")
    assert bash is not None
    played = subprocess.run(  # noqa: S603 (the lines the demo printed, as a user runs them)
        [bash, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert played.returncode == 0, played.stderr
    lsid = played.stdout.split()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", lsid), played.stdout

    [audit] = re.findall(r"it lands in (\S+) too", "\n".join(demo.lines))
    deadline = time.monotonic() + STARTUP
    while not _delivered(Path(audit), lsid):
        assert time.monotonic() < deadline, f"session {lsid} was not delivered to {audit}"
        time.sleep(0.2)
    status = httpx.get(
        links["Engine status"], headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert status.json()["jobs"].get("dead", 0) == 0, status.json()

    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=60) == 0
    assert demo.process.stderr is not None
    stderr = demo.process.stderr.read()
    assert "Traceback" not in stderr, stderr
    # Everything it served is down.
    with pytest.raises(httpx.ConnectError):
        httpx.get(links["Engine health"], timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(links["Simulated appliance"], timeout=5)
