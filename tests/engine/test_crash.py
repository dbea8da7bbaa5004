"""Crash safety: ``rsbridge serve`` killed with SIGKILL at random points while 1,000
sessions flow in; after restarts every acknowledged event is delivered exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rsbridge.appliance.events import IMPORTABLE_EVENTS
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import SimAppliance, serve_config

SESSIONS = 1000
KILLS = 4
STATUS_TOKEN = "crash-test-status-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, sim: SimAppliance) -> Path:
    return serve_config(
        tmp_path / "rsbridge.toml",
        sim,
        store="engine.db",
        secret_env="CRASH_TEST_SECRET",
        integration='connector = "jsonl"\nsettings = { path = "deliveries.jsonl", fsync = true }',
        extra=f'[actions]\ntokens = ["{STATUS_TOKEN}"]\n',
    )


class ServeProcess:
    def __init__(self, config: Path, port: int, env: dict[str, str]) -> None:
        self.config, self.port, self.env = config, port, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "serve.log"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220, S603 (the test's own child)
                [
                    sys.executable,
                    "-m",
                    "rsbridge",
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "info",
                ],
                cwd=self.config.parent,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        # Up to a minute: on a loaded 2-core machine Python's start alone can take 15 s.
        async with httpx.AsyncClient() as http:
            for _ in range(1200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        code = self.proc.poll() if self.proc else None
        output = self.log.read_text(errors="replace")
        raise AssertionError(f"serve did not start (exit status {code}): {output}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.mark.slow
async def test_sigkill_loses_and_duplicates_nothing(tmp_path: Path, sim: SimAppliance) -> None:
    rng = random.Random(20261121)
    now = datetime.now(UTC)
    sessions = []
    for index, session in enumerate(SessionGenerator(31).sessions(SESSIONS)):
        assert session.start_time and session.end_time
        shift = now - timedelta(seconds=3600 - index) - session.end_time
        session = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        sim.state.add_report(session)
        sessions.append(session)
    env = {**os.environ, "CRASH_TEST_SECRET": sim.client_secret}
    serve = ServeProcess(_config(tmp_path, sim), _free_port(), env)
    await serve.start()
    recipient = Recipient(
        f"http://127.0.0.1:{serve.port}/ERSPost?appliance=default",
        retry_interval=0.05,
        retry_duration=600,
        timeout=5,
        events=set(IMPORTABLE_EVENTS),
    )
    emitter = OutboundEventEmitter([recipient])
    expected: Counter[str] = Counter()
    for session in sessions:
        for event in events_for_session(session, sim.state.appliance_id):
            emitter.enqueue(event)
        expected[session.lsid] = 1 + len(session.customer_surveys) + len(session.rep_surveys)
    try:
        sending = asyncio.create_task(emitter.run_until_idle())
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            serve.kill()
            await serve.start()
        await asyncio.wait_for(sending, 300)
        assert recipient.dropped == 0
        async with httpx.AsyncClient() as http:
            for _ in range(1200):
                jobs = (
                    await http.get(
                        f"http://127.0.0.1:{serve.port}/status",
                        headers={"Authorization": f"Bearer {STATUS_TOKEN}"},
                    )
                ).json()["jobs"]
                if jobs.get("queued", 0) + jobs.get("running", 0) == 0:
                    break
                await asyncio.sleep(0.1)
        assert jobs.get("dead", 0) == 0, jobs
    finally:
        serve.terminate()
        await emitter.aclose()
    deliveries = [
        d for d in read_deliveries(tmp_path / "deliveries.jsonl") if d["kind"] != "ticket"
    ]
    by_key = Counter(d["key"] for d in deliveries)
    assert max(by_key.values()) == 1, [k for k, n in by_key.items() if n > 1][:5]
    per_session = Counter(key.split("/")[1] for key in by_key)
    assert per_session == expected
