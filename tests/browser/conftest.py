"""The console in a real browser: Playwright driving Debian's Chromium (headless) against
``rsbridge serve`` (a child process) with the simulated appliance and ServiceNow instance.

* :func:`browser` launches Chromium once per test module (``RSBRIDGE_CHROMIUM``, default
  ``/usr/bin/chromium``). Without it the tests are skipped with the reason, except under
  ``CI=true``, where they fail: a CI run must not report a console it never opened.
* :func:`make_stage` starts the simulators and the engine for one test (options:
  :class:`StageOptions`); :func:`stage` is one with the defaults for a whole module.
* :func:`tab` is a page at 1280 px whose :meth:`Tab.shot` saves each page a test visits,
  full-page, at 1280 px and at 375 px (a phone) into ``$RSBRIDGE_SCREENSHOTS`` (default
  ``build/screenshots``); ``docs/console/refresh.sh`` copies the chosen ones into the docs.

Every test here is in the xdist group "browser" (one worker opens the browser, the tests
run one after the other), see :data:`pytestmark` in each module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient
from rsbridge.sim.appliance.rehearsal import Rehearsal
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from tests.admin.conftest import HASHES, PASSWORDS, ROLES
from tests.conftest import SIGNING_SECRET, free_port
from tests.servicenow_helpers import Snow, running_instance

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ENV = "RSBRIDGE_CHROMIUM"
SCREENSHOTS_ENV = "RSBRIDGE_SCREENSHOTS"
WIDE, PHONE = 1280, 375
SIM_LINK = "Simulated appliance"
"""The label of the console's ``[admin] links`` entry to the simulated appliance."""

BROWSER_GROUP = pytest.mark.xdist_group("browser")


def chromium_path() -> Path:
    """Where Debian's Chromium is (``$RSBRIDGE_CHROMIUM`` to use another build)."""
    return Path(os.environ.get(CHROMIUM_ENV, "/usr/bin/chromium"))


def require_chromium() -> Path:
    """Chromium's path; skips the test saying why when it is missing, or fails it under
    ``CI=true``."""
    path = chromium_path()
    if path.exists():
        return path
    message = f"no Chromium at {path}: apt-get install chromium (Debian's), or set {CHROMIUM_ENV}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true requires the browser tests to run", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module.

    Not one per session: Playwright's sync API marks an event loop as running in the
    main thread while it is open, and the async tests of other modules (pytest-asyncio)
    cannot start their own loop meanwhile.
    """
    path = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(path), headless=True)
        try:
            yield launched
        finally:
            launched.close()


# --- the stage: simulators and `rsbridge serve` ------------------------------------------


@dataclass(frozen=True)
class StageOptions:
    """How a stage's engine is configured."""

    retry_limit: int = 20
    """Attempts of a ServiceNow job before it is a dead letter."""
    max_failed_sign_ins: int = 5
    trust: str = "any"
    """The integration's association trust: a rehearsed key is not signed by rsbridge."""


@dataclass
class Stage:
    """The running engine (``url``), the simulated appliance (``sim_url``, with its
    control API and rehearsal page at ``/sim/``) and the simulated ServiceNow instance."""

    url: str
    sim_url: str
    appliance: SimApplianceState
    emitter: OutboundEventEmitter
    snow: Snow
    config: Path
    log: Path
    incidents: list[str] = field(default_factory=list)
    """Numbers of incidents that exist on the simulated instance (seeded)."""

    def rehearse(self, external_key: str, *, customer: str = "Ann Example") -> str:
        """Play a whole session through the control API (JSON): key, start, join, a chat
        line, end; returns its lsid."""
        with httpx.Client(base_url=self.sim_url, timeout=10) as sim:

            def step(path: str, body: dict[str, Any]) -> dict[str, Any]:
                answer = sim.post(path, json=body)
                assert answer.status_code == 200, answer.text
                result: dict[str, Any] = answer.json()
                return result

            key = step("/sim/keys", {"external_key": external_key})["key"]
            lsid = str(step("/sim/sessions", {"key": key, "customer": customer})["lsid"])
            step(f"/sim/sessions/{lsid}/join", {"rep": "jsmith"})
            step(f"/sim/sessions/{lsid}/chat", {"text": "My printer is on fire."})
            step(f"/sim/sessions/{lsid}/end", {})
        return lsid

    def delivered(self, lsid: str) -> list[dict[str, Any]]:
        """The session records the instance holds for ``lsid``."""
        return [r for r in self.snow.state.query("u_rs_session") if r.get("u_lsid") == lsid]

    def wait(self, what: Callable[[], bool], message: str, limit: float = 30.0) -> None:
        """Wait until ``what()`` holds (a bound on waiting, not a speed assertion)."""
        deadline = time.monotonic() + limit
        while not what():
            if time.monotonic() > deadline:
                log = self.log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"{message} (waited {limit} s); engine log:\n{log}")
            time.sleep(0.05)


def _toml(value: object) -> str:
    # JSON strings, numbers, booleans, arrays and {k = v} tables are TOML as well.
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _config_text(
    store: Path, port: int, sim_host: str, appliance: SimApplianceState, snow: Snow, sim_url: str,
    options: StageOptions,
) -> str:  # fmt: skip
    account = appliance.accounts[0]
    user, password = snow.demo.integration
    users = "".join(
        f"\n[[admin.users]]\nname = {_toml(n)}\npassword_hash = {_toml(HASHES[n])}\n"
        f"role = {_toml(ROLES[n])}\n"
        for n in PASSWORDS
    )
    return f"""
[engine]
store = {_toml(str(store))}
listen_port = {port}
backoff_base_seconds = 0.05
backoff_max_seconds = 0.2
shutdown_grace_seconds = 1

[[appliances]]
id = "default"
host = {_toml(sim_host)}
client_id = {_toml(account.client_id)}
client_secret = {_toml(account.client_secret)}
use_plain_http = true

[signing]
secret = {_toml(SIGNING_SECRET)}

[[integrations]]
name = "servicenow"
connector = "servicenow"
retry_limit = {options.retry_limit}
association = {_toml({"trust": options.trust})}
settings = {_toml({"instance_url": snow.url, "username": user, "password": password})}

[admin]
enabled = true
max_failed_sign_ins = {options.max_failed_sign_ins}
links = {_toml({SIM_LINK: f"{sim_url}/sim/"})}
{users}"""


@contextmanager
def _serve(config: Path, port: int, log: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 (the test's own child)
            [sys.executable, "-m", "rsbridge", "serve", "--config", str(config)],
            cwd=config.parent,
            stdout=sink,
            stderr=sink,
        )
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"rsbridge serve did not start:\n{log.read_text()}")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def staged(tmp_path: Path, options: StageOptions) -> Iterator[Stage]:
    """The simulators on loopback threads and ``rsbridge serve`` as a child process."""
    port = free_port()
    appliance = SimApplianceState.default(seed=6)
    # The rehearsal's events go to the engine's intake, as an appliance's outbound
    # event recipient would be configured.
    emitter = OutboundEventEmitter(
        [Recipient(f"http://127.0.0.1:{port}/ERSPost?appliance=default", retry_interval=0.1)]
    )
    rehearsal = Rehearsal(appliance, emitter)
    sim_app = create_app(appliance, rate_per_second=1000, rate_per_hour=10**6, rehearsal=rehearsal)
    with (
        running_instance(11) as snow,
        serve_in_thread(sim_app) as sim_url,
    ):
        config = tmp_path / "rsbridge.toml"
        config.write_text(
            _config_text(
                tmp_path / "engine.db",
                port,
                sim_url.removeprefix("http://"),
                appliance,
                snow,
                sim_url,
                options,
            ),
            encoding="utf-8",
        )
        log = tmp_path / "serve.log"
        with _serve(config, port, log) as url:
            incidents = sorted(n for n in snow.demo.ids if n.startswith("INC"))
            yield Stage(url, sim_url, appliance, emitter, snow, config, log, incidents)


@pytest.fixture
def make_stage(tmp_path: Path) -> Iterator[Callable[..., Stage]]:
    """Starts a stage with :class:`StageOptions` given as keyword arguments."""
    with ExitStack() as stack:
        count = 0

        def make(**options: Any) -> Stage:
            nonlocal count
            count += 1
            where = tmp_path / f"stage{count}"
            where.mkdir()
            return stack.enter_context(staged(where, StageOptions(**options)))

        yield make


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """A stage with the default options, shared by a module's tests (starting the engine
    is the slow part); tests that change it (an instance taken down) put it back."""
    with staged(tmp_path_factory.mktemp("stage"), StageOptions()) as running:
        yield running


# --- the page ------------------------------------------------------------------------


def screenshots_dir() -> Path:
    """Where the tests save their screenshots (git-ignored)."""
    return Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "build" / "screenshots")


@dataclass
class Tab:
    """A browser tab on the console, and the screenshots it took."""

    page: Page
    shots: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> None:
        """Save the page as it is now, full-page, as ``name.png`` (1280 px wide) and
        ``name.phone.png`` (375 px)."""
        where = screenshots_dir()
        where.mkdir(parents=True, exist_ok=True)
        wide, phone = where / f"{name}.png", where / f"{name}.phone.png"
        size = self.page.viewport_size or {"width": WIDE, "height": 800}
        self.page.screenshot(path=str(wide), full_page=True)
        self.page.set_viewport_size({"width": PHONE, "height": 740})
        try:
            self.page.screenshot(path=str(phone), full_page=True)
        finally:
            self.page.set_viewport_size(size)
        self.shots += [wide, phone]

    def open(self, path: str, shot: str | None = None) -> None:
        """Go to ``path`` (which must answer 200) and save it as ``shot``."""
        answer = self.page.goto(path)
        assert answer is not None and answer.status == 200, (
            f"{path}: {answer.status if answer else 'no answer'}"
        )
        if shot:
            self.shot(shot)

    def overview_row(self, integration: str) -> list[str]:
        """The overview's cells for ``integration`` (appliance, integration, last success,
        last error, queued, waiting, running, dead), freshly loaded."""
        self.open("/admin/")
        row = self.page.get_by_role("row").filter(has_text=integration)
        return row.get_by_role("cell").all_inner_texts()

    def sign_in(self, name: str, password: str | None = None) -> None:
        """Fill in and send the sign-in form the browser is on (or is sent to)."""
        page = self.page
        if "/admin/sign-in" not in page.url:
            page.goto("/admin/sign-in")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(PASSWORDS[name] if password is None else password)
        page.get_by_role("button", name="Sign in").click()

    def signed_in(self, name: str) -> None:
        """Sign in as ``name`` with the right password and land on the overview."""
        self.sign_in(name)
        expect(self.page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


@pytest.fixture
def new_tab(browser: Browser) -> Iterator[Callable[[Stage], Tab]]:
    """Opens a tab in a fresh browser context (no cookies) on a stage's console, 1280 px
    wide; each is closed after the test."""
    contexts: list[BrowserContext] = []

    def open_tab(on: Stage) -> Tab:
        context = browser.new_context(
            base_url=on.url, viewport={"width": WIDE, "height": 800}, locale="en-GB"
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Tab(context.new_page())

    try:
        yield open_tab
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def tab(new_tab: Callable[[Stage], Tab], stage: Stage) -> Tab:
    """A tab on the default stage's console."""
    return new_tab(stage)
