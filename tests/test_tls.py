"""TLS verification against simulators served over HTTPS on loopback.

The appliance and ServiceNow simulators run behind a self-signed certificate for
127.0.0.1: the clients must refuse it by default with a clear, permanent error, trust it
through ``ca_file``, and accept anything only where the configuration says so.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.config import ApplianceConfig, load_config
from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.connectors.webhook import WebhookConnector
from rsbridge.engine.appliances import make_appliance_client
from rsbridge.errors import (
    ApplianceConnectionError,
    ConfigurationError,
    ConnectorPermanentError,
)
from rsbridge.sim.appliance.server import create_app as appliance_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as webhook_app
from rsbridge.tls import tls_verification
from tests.conftest import free_port
from tests.servicenow_helpers import Snow, running_instance

Certificate = tuple[Path, Path]


@pytest.fixture(scope="module")
def appliance_state() -> SimApplianceState:
    return SimApplianceState.default(seed=3)


@pytest.fixture(scope="module")
def appliance_host(certificate: Certificate, appliance_state: SimApplianceState) -> Iterator[str]:
    with serve_in_thread(appliance_app(appliance_state), tls=certificate) as url:
        assert url.startswith("https://")
        yield url.removeprefix("https://")


def appliance(host: str, state: SimApplianceState, **options: Any) -> ApplianceConfig:
    account = state.accounts[0]
    return ApplianceConfig(
        host=host,
        client_id=account.client_id,
        client_secret=account.client_secret,
        **options,
    )


# --- the verify value ---------------------------------------------------------------


def test_no_ca_file_keeps_the_verify_flag() -> None:
    assert tls_verification(verify=True, ca_file=None, where="x") is True
    assert tls_verification(verify=False, ca_file=None, where="x") is False


def test_a_ca_file_gives_a_context_that_trusts_it(certificate: Certificate) -> None:
    context = tls_verification(verify=True, ca_file=certificate[0], where="x")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    [trusted] = context.get_ca_certs()
    assert (("commonName", "127.0.0.1"),) in trusted["subject"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "no PEM"),
    ],
)
def test_a_bad_ca_file_is_a_configuration_error(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        tls_verification(verify=True, ca_file=path, where="appliance main")
    assert caught.value.message.startswith("appliance main: ")
    assert str(path) in caught.value.message


def test_a_directory_is_not_a_ca_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the CA file"):
        tls_verification(verify=True, ca_file=tmp_path, where="x")


def test_a_ca_file_with_verification_off_is_contradictory(certificate: Certificate) -> None:
    with pytest.raises(ConfigurationError, match="verification is turned off"):
        tls_verification(verify=False, ca_file=certificate[0], where="x")


# --- the appliance --------------------------------------------------------------------


async def test_appliance_certificate_from_an_unknown_ca_is_refused_permanently(
    appliance_host: str, appliance_state: SimApplianceState
) -> None:
    config = appliance(appliance_host, appliance_state)
    async with make_appliance_client(config) as client:
        with pytest.raises(ApplianceConnectionError) as caught:
            await client.verify()
    error = caught.value
    assert error.retryable is False
    assert f"TLS certificate of the appliance {appliance_host!r} could not be verified" in (
        error.message
    )
    assert "self-signed certificate" in error.message
    assert "set ca_file" in error.message
    assert config.client_secret.get_secret_value() not in error.message


async def test_appliance_ca_file_makes_the_certificate_trusted(
    appliance_host: str, appliance_state: SimApplianceState, certificate: Certificate
) -> None:
    config = appliance(appliance_host, appliance_state, ca_file=certificate[0])
    async with make_appliance_client(config) as client:
        info = await client.verify()
    assert info.api_version


async def test_appliance_host_name_must_match_the_certificate(
    appliance_host: str, appliance_state: SimApplianceState, certificate: Certificate
) -> None:
    # Trusted CA, wrong name: the certificate is issued for 127.0.0.1, not localhost.
    port = appliance_host.rpartition(":")[2]
    config = appliance(f"localhost:{port}", appliance_state, ca_file=certificate[0])
    async with make_appliance_client(config) as client:
        with pytest.raises(ApplianceConnectionError, match="Hostname mismatch") as caught:
            await client.verify()
    assert caught.value.retryable is False


async def test_appliance_allow_invalid_certificates_accepts_it(
    appliance_host: str, appliance_state: SimApplianceState
) -> None:
    config = appliance(appliance_host, appliance_state, allow_invalid_certificates=True)
    async with make_appliance_client(config) as client:
        assert (await client.verify()).api_version


def test_appliance_refuses_both_ca_file_and_invalid_certificates(
    appliance_state: SimApplianceState, certificate: Certificate
) -> None:
    config = appliance(
        "127.0.0.1:1",
        appliance_state,
        ca_file=certificate[0],
        allow_invalid_certificates=True,
    )
    with pytest.raises(ConfigurationError, match=r"^appliance default: a CA file is set"):
        make_appliance_client(config)


def test_appliance_ca_file_is_relative_to_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "rsbridge.toml"
    path.write_text(
        '[[appliances]]\nhost = "support.example.com"\nclient_id = "a"\nclient_secret = "b"\n'
        'ca_file = "certs/ca.pem"\n'
    )
    [loaded] = load_config(path).appliances
    assert loaded.ca_file == tmp_path / "conf" / "certs" / "ca.pem"


# --- ServiceNow ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_instance(certificate: Certificate) -> Iterator[Snow]:
    with running_instance(11, tls=certificate) as instance:
        yield instance


def servicenow(instance: Snow, **settings: Any) -> ServiceNowConnector:
    user, password = instance.demo.integration
    raw = {"instance_url": instance.url, "username": user, "password": password, **settings}
    return ServiceNowConnector(ServiceNowConnector.validate_settings(raw))


async def test_servicenow_certificate_from_an_unknown_ca_is_a_permanent_error(
    https_instance: Snow,
) -> None:
    connector = servicenow(https_instance)
    try:
        with pytest.raises(ConnectorPermanentError) as caught:
            await connector.check()
    finally:
        await connector.aclose()
    assert "the TLS certificate could not be verified (self-signed certificate)" in str(
        caught.value
    )
    assert https_instance.demo.integration[1] not in str(caught.value)


async def test_servicenow_ca_file_makes_the_certificate_trusted(
    https_instance: Snow, certificate: Certificate
) -> None:
    connector = servicenow(https_instance, ca_file=str(certificate[0]))
    try:
        result = await connector.check()
    finally:
        await connector.aclose()
    assert result.summary


async def test_servicenow_verify_tls_off_accepts_it(https_instance: Snow) -> None:
    connector = servicenow(https_instance, verify_tls=False)
    try:
        assert (await connector.check()).summary
    finally:
        await connector.aclose()


def test_servicenow_refuses_ca_file_with_verification_off(
    https_instance: Snow, certificate: Certificate
) -> None:
    with pytest.raises(ConfigurationError, match="verification is turned off"):
        servicenow(https_instance, ca_file=str(certificate[0]), verify_tls=False)


def test_path_settings_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        '[[appliances]]\nhost = "support.example.com"\nclient_id = "a"\nclient_secret = "b"\n'
        '[[integrations]]\nname = "files"\nconnector = "jsonl"\n'
        '[integrations.settings]\npath = "out/deliveries.jsonl"\n'
        '[[integrations]]\nname = "snow"\nconnector = "servicenow"\n'
        '[integrations.settings]\ninstance_url = "https://acme.service-now.com"\n'
        'username = "u"\npassword = "p"\nca_file = "ca.pem"\n'
    )
    files, snow = load_config(path).integrations
    assert files.connector_settings().path == str(tmp_path / "out" / "deliveries.jsonl")  # type: ignore[attr-defined]
    assert snow.connector_settings().ca_file == str(tmp_path / "ca.pem")  # type: ignore[attr-defined]


# --- webhook -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_receiver(certificate: Certificate) -> Iterator[str]:
    with serve_in_thread(webhook_app(WebhookReceiverState()), tls=certificate) as url:
        yield url + "/deliveries"


def webhook(url: str, **settings: Any) -> WebhookConnector:
    raw = {"url": url, "max_attempts": 3, "backoff_seconds": 0.01, **settings}
    return WebhookConnector(WebhookConnector.validate_settings(raw))


async def test_webhook_certificate_from_an_unknown_ca_is_a_permanent_error(
    https_receiver: str,
) -> None:
    connector = webhook(https_receiver)
    try:
        with pytest.raises(ConnectorPermanentError, match=r"\(self-signed certificate\)"):
            await connector.check()
    finally:
        await connector.aclose()


async def test_webhook_ca_file_and_verify_tls(
    https_receiver: str, certificate: Certificate
) -> None:
    for settings in ({"ca_file": str(certificate[0])}, {"verify_tls": False}):
        connector = webhook(https_receiver, **settings)
        try:
            assert (await connector.check()).summary
        finally:
            await connector.aclose()


# --- the simulators' command line ----------------------------------------------------


def test_sim_appliance_serves_https_with_the_given_certificate(
    tmp_path: Path, certificate: Certificate
) -> None:
    port = free_port()
    log = tmp_path / "sim.log"
    command = [sys.executable, "-m", "rsbridge", "sim", "appliance", "--port", str(port)]
    tls = ["--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1])]
    with log.open("wb") as sink:
        proc = subprocess.Popen([*command, *tls], stdout=sink, stderr=sink)  # noqa: S603
    try:
        context = tls_verification(verify=True, ca_file=certificate[0], where="test")
        with httpx.Client(verify=context, timeout=5) as http:
            for _ in range(400):
                try:
                    answer = http.post(f"https://127.0.0.1:{port}/oauth2/token")
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None, log.read_text(errors="replace")
                    time.sleep(0.025)
            else:
                pytest.fail("the simulator did not start: " + log.read_text(errors="replace"))
        assert answer.status_code == 401  # reached over verified TLS; no credentials sent
        assert f"Simulated appliance: https://127.0.0.1:{port}" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_refuses_half_a_tls_pair(certificate: Certificate) -> None:
    result = CliRunner().invoke(app, ["sim", "servicenow", "--tls-cert", str(certificate[0])])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output
