"""``rsbridge serve`` as an operator runs it: JSON logs, a client that drops, a busy port.

Each test runs ``rsbridge serve`` as a child process and reads what it wrote to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from rsbridge.appliance.events import END, FORM_CONTENT_TYPE
from rsbridge.eventloop import uvloop_installed
from rsbridge.log_setup import configure
from rsbridge.sim.appliance.emitter import events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from tests.conftest import SIGNING_SECRET, free_port

CONFIG = """
[engine]
store = "{store}"
shutdown_grace_seconds = 1

[[appliances]]
id = "default"
host = "{host}"
client_id = "{client_id}"
client_secret = "{secret}"
use_plain_http = true

[signing]
secret = "{signing}"

[[integrations]]
name = "audit"
connector = "jsonl"
{polling}
association = {{ on_unmatched = "import" }}
settings = {{ path = "{out}", fsync = false }}
"""


def _config(tmp_path: Path, host: str, client_id: str, secret: str, *, polling: str = "") -> Path:
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        CONFIG.format(
            store=tmp_path / "engine.db",
            host=host,
            client_id=client_id,
            secret=secret,
            signing=SIGNING_SECRET,
            polling=polling,
            out=tmp_path / "out.jsonl",
        ),
        encoding="utf-8",
    )
    return path


@contextmanager
def _serve(config: Path, port: int, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 (the test's own child)
            [
                *(sys.executable, "-m", "rsbridge", "serve", "--config", str(config)),
                *("--port", str(port), *extra),
            ],
            cwd=config.parent,
            env=dict(os.environ),
            stdout=sink,
            stderr=sink,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    with httpx.Client(base_url=base, timeout=5) as http:
        for _ in range(1200):
            try:
                if http.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(0.025)
    raise AssertionError(log.read_text(errors="replace"))


def test_json_logs_carry_the_job_fields_and_a_dropped_client_is_one_warning(
    tmp_path: Path,
) -> None:
    state = SimApplianceState.default(seed=9)
    account = state.accounts[0]
    session = SessionGenerator(12).session()
    state.add_report(session)
    form = next(e.form() for e in events_for_session(session, "default") if e.event == END)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with serve_in_thread(create_app(state, rate_per_second=1000, rate_per_hour=10**6)) as url:
        config = _config(tmp_path, url.removeprefix("http://"), account.client_id, "x")
        config.write_text(
            config.read_text().replace(
                'client_secret = "x"', f'client_secret = "{account.client_secret}"'
            )
        )
        with _serve(config, port, log, "--log-format", "json") as proc:
            _wait_ready(proc, base, log)
            with httpx.Client(base_url=base, timeout=5) as http:
                answer = http.post(
                    "/ERSPost?appliance=default",
                    content=urlencode(form),
                    headers={"Content-Type": FORM_CONTENT_TYPE},
                )
                assert answer.status_code == 200
                # A client that announces a body and closes halfway through it.
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    raw.sendall(
                        b"POST /ERSPost?appliance=default HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: 500\r\n\r\nevent=support_conference_end&ls"
                    )
                    time.sleep(0.2)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if "imported without a ticket" in log.read_text(errors="replace"):
                        break
                    time.sleep(0.05)
                for _ in range(100):  # the warning follows the close at once
                    if "went away" in log.read_text(errors="replace"):
                        break
                    time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")
    text = log.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    assert {"time", "level", "logger", "message"} <= lines[0].keys()
    [imported] = [e for e in lines if "imported without a ticket" in e["message"]]
    assert imported["integration"] == "audit" and imported["appliance"] == "default"
    assert imported["lsid"] == session.lsid and isinstance(imported["job"], int)
    gone = [e for e in lines if "went away" in e["message"]]
    assert [e["level"] for e in gone] == ["WARNING"], text
    assert gone[0]["appliance"] == "default"
    assert "Traceback" not in text and not any("exception" in e for e in lines)
    # httpx's per-request lines are DEBUG: not shown at the default level.
    assert not any(e["logger"] == "httpx" for e in lines)
    # uvicorn's own lines come through the same formatter.
    assert any(e["logger"].startswith("uvicorn") for e in lines)
    # Served on uvloop where it is installed (engine.event_loop = "auto").
    loop = "uvloop" if uvloop_installed() else "asyncio"
    assert any(e["message"] == f"starting 8 workers on {loop}'s event loop" for e in lines)


def test_event_loop_asyncio_keeps_serve_on_asyncio_loop(tmp_path: Path) -> None:
    config = _config(tmp_path, "127.0.0.1:9", "id", "secret")
    config.write_text(
        config.read_text().replace("[engine]\n", '[engine]\nevent_loop = "asyncio"\n', 1)
    )
    port = free_port()
    log = tmp_path / "serve.log"
    with _serve(config, port, log) as proc:
        _wait_ready(proc, f"http://127.0.0.1:{port}", log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")
    assert "starting 8 workers on asyncio's event loop" in log.read_text(errors="replace")


def test_httpx_request_lines_show_at_debug() -> None:
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    saved = (list(root.handlers), root.level, list(httpx_logger.filters))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    try:
        configure("debug", "json")
        root.addHandler(Keep())
        logging.getLogger("httpx").info("HTTP Request: GET %s", "http://x/")
        root.setLevel(logging.INFO)
        logging.getLogger("httpx").info("HTTP Request: GET %s", "http://y/")
    finally:
        # configure() is for the serve process: leave this test process as it was.
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        httpx_logger.filters[:] = saved[2]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("DEBUG", "HTTP Request: GET http://x/")
    ]


def test_a_second_serve_on_a_busy_port_fails_before_starting_anything(tmp_path: Path) -> None:
    # The "appliance" is a socket that counts who connects: a poller that started would.
    appliance = socket.create_server(("127.0.0.1", 0))
    appliance.settimeout(0.5)
    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    host = f"127.0.0.1:{appliance.getsockname()[1]}"
    polling = 'outbound_events = []\npolling_events = ["support_conference_end"]'
    config = _config(tmp_path, host, "id", "secret", polling=polling)
    log = tmp_path / "serve.log"
    with busy, appliance, _serve(config, port, log) as proc:
        assert proc.wait(timeout=60) == 1
        with pytest.raises(TimeoutError):
            appliance.accept()
    text = log.read_text(errors="replace")
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in " ".join(text.split())
    assert "Traceback" not in text
    assert not (tmp_path / "engine.db").exists()  # the store was never opened
