"""Building appliance clients from the configuration, one way for every part of the engine."""

from __future__ import annotations

from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import ApplianceConfig
from rsbridge.tls import tls_verification


def make_appliance_client(appliance: ApplianceConfig) -> ApplianceClient:
    """An :class:`ApplianceClient` for ``appliance`` as configured.

    ``use_plain_http`` selects ``http`` (the configuration allows it for loopback hosts
    only); ``ca_file`` trusts a private CA and ``allow_invalid_certificates`` turns TLS
    verification off (both at once raise ConfigurationError); every call ends within
    ``call_deadline_seconds``. The caller owns
    the client and closes it (``async with`` or :meth:`ApplianceClient.aclose`); share
    one client per appliance, since the appliance keeps few live tokens per account.
    """
    return ApplianceClient(
        appliance.host,
        appliance.client_id,
        appliance.client_secret.get_secret_value(),
        scheme="http" if appliance.use_plain_http else "https",
        verify=tls_verification(
            verify=not appliance.allow_invalid_certificates,
            ca_file=appliance.ca_file,
            where=f"appliance {appliance.id}",
        ),
        deadline=appliance.call_deadline_seconds,
    )
