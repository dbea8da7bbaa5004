"""deploy/: the systemd unit passes systemd-analyze, the nginx example runs and logs no tokens.

The tools come from Debian (systemd, nginx-light); .ci/run installs nginx. Without them a test
skips, except in CI (CI=true), where it fails. The container image and the compose file are not
checked here (no container runtime): docs/operations.md says so.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
TOKEN = "s3cret-token-in-the-query"


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := f"{d}/{name}", os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed (Debian: apt-get install nginx-light / systemd)")
    return found


# -- systemd --------------------------------------------------------------------------------


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's rsbridge (verify checks it exists)."""
    text = (DEPLOY / "rsbridge.service").read_text()
    rsbridge = Path(sys.executable).parent / "rsbridge"
    unit = tmp_path / "rsbridge.service"
    unit.write_text(text.replace("/opt/rsbridge/bin/rsbridge", str(rsbridge)))
    return unit


def test_systemd_unit_verifies_without_warnings(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = _unit_here(tmp_path)
    result = subprocess.run(  # noqa: S603
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    # Unknown or misspelt directives are only warnings: none may mention the unit.
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "rsbridge.service" in line] == []


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    text = (DEPLOY / "rsbridge.service").read_text()
    for directive in (
        "User=rsbridge",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "StateDirectory=rsbridge",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ):
        assert f"\n{directive}" in text, directive
    analyze = tool("systemd-analyze")
    result = subprocess.run(  # noqa: S603
        [analyze, "security", "--offline=yes", str(_unit_here(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    # systemd's own exposure score: 0 (locked down) to 10 (unprotected); "OK" is below 4.
    found = re.search(r"Overall exposure level for rsbridge.service: ([0-9.]+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0


# -- nginx ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsbridge.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem, key_file = directory / "rsbridge.pem", directory / "rsbridge.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, key_file


class _Backend(http.server.BaseHTTPRequestHandler):
    """Stands in for an rsbridge node: 200 to anything, remembering the request lines."""

    seen: list[str] = []  # noqa: RUF012 - one backend per test run

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append(self.path)
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Backend.seen = []
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _config_here(tmp_path: Path, backend: int, https: int, http_port: int) -> Path:
    """deploy/nginx.conf with this test's certificate, ports, backend and log directory."""
    pem, key = _certificate(tmp_path)
    text = (DEPLOY / "nginx.conf").read_text()
    replacements = {
        "/etc/ssl/rsbridge/rsbridge.pem": str(pem),
        "/etc/ssl/rsbridge/rsbridge.key": str(key),
        "/var/log/nginx/": f"{tmp_path}/",
        "server 127.0.0.1:8180": f"server 127.0.0.1:{backend}",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "worker_processes auto;": "worker_processes 1;",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return conf


def test_nginx_example_terminates_tls_and_keeps_tokens_out_of_its_log(
    tmp_path: Path, backend: int
) -> None:
    nginx = tool("nginx")
    https, http_port = _free_port(), _free_port()
    conf = _config_here(tmp_path, backend, https, http_port)
    base = [nginx, "-p", f"{tmp_path}/", "-e", str(tmp_path / "startup.log"), "-c", str(conf)]
    pid = f"pid {tmp_path}/nginx.pid;"
    check = subprocess.run(  # noqa: S603
        [*base, "-t", "-g", pid], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr

    proc = subprocess.Popen([*base, "-g", f"daemon off; {pid}"])  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        url = f"https://127.0.0.1:{https}/ERSPost?appliance=default&outbound_event_token={TOKEN}"
        with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 - a test certificate
            posted = client.post(url, data={"type": "support_conference_end", "lsid": "abc"})
            assert posted.status_code == 200
            too_big = client.post(url, content=b"x" * (65 * 1024))
            assert too_big.status_code == 413
            plain = client.get(f"http://127.0.0.1:{http_port}/events/default?token={TOKEN}")
            assert plain.status_code == 301
            assert plain.headers["location"] == "https://127.0.0.1/events/default"
            # An encoded CR LF stays encoded: no header of the client's choosing.
            split = client.get(f"http://127.0.0.1:{http_port}/x%0d%0aSet-Cookie:%20a=b")
            assert split.status_code == 301 and "set-cookie" not in split.headers
            assert split.headers["location"] == "https://127.0.0.1/x%0d%0aSet-Cookie:%20a=b"
        # The node got the token (it checks it); nginx passed it on untouched.
        assert _Backend.seen == [f"/ERSPost?appliance=default&outbound_event_token={TOKEN}"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    access = (tmp_path / "rsbridge-access.log").read_text()
    assert '"POST /ERSPost HTTP/1.1" 200' in access
    assert '"GET /events/default HTTP/1.1" 301' in access
    assert TOKEN not in access


# -- container image (no runtime here: the file is read, not built) --------------------------


def test_containerfile_installs_with_install_sh_as_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    final = text[text.rindex("\nFROM ") :]  # the runtime stage
    # It installs by the script tests/test_packaging.py runs, with the runtime lock.
    assert "COPY requirements/lock.txt deploy/install.sh /tmp/" in final
    assert "sh /tmp/install.sh /tmp/dist/rsbridge-*.whl /tmp/lock.txt /opt/rsbridge" in final
    [user] = re.findall(r"^USER (\S+)$", final, flags=re.MULTILINE)
    assert user.split(":")[0] not in {"root", "0"}
    # The HEALTHCHECK instruction with its continuation lines, up to the next instruction.
    healthcheck = re.search(r"^HEALTHCHECK .*?(?=^[A-Z])", final, re.MULTILINE | re.DOTALL)
    assert healthcheck is not None and "http://127.0.0.1:8180/health" in healthcheck.group()
    assert '\nENTRYPOINT ["rsbridge"]\n' in final
