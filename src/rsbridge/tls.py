"""How rsbridge verifies the TLS certificates of its peers (appliance, ticketing systems).

One place decides what httpx gets as ``verify``: the public CAs by default, a private
CA's PEM file when one is configured (an appliance or instance behind an internal CA is
common), or no verification when the configuration explicitly allows it for a test peer.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from rsbridge.errors import ConfigurationError, exception_chain

_LOOPBACK_NAMES = frozenset({"localhost"})


def tls_verification(
    *, verify: bool, ca_file: str | Path | None, where: str
) -> ssl.SSLContext | bool:
    """The httpx ``verify`` value: ``True``, ``False`` or a context trusting ``ca_file``.

    ``where`` names the configuration section in errors. A CA file that cannot be read
    or holds no PEM certificate raises :class:`ConfigurationError` now, not as a
    confusing TLS failure on the first request; turning verification off while naming a
    CA file is refused as contradictory.
    """
    if ca_file is None or str(ca_file) == "":
        return verify
    if not verify:
        raise ConfigurationError(
            f"{where}: a CA file is set but certificate verification is turned off; "
            "remove one of the two settings"
        )
    try:
        # cafile replaces the default trust store: only certificates issued by this CA
        # (or the certificates themselves, if self-signed) are accepted.
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: the CA file {str(ca_file)!r} does not exist") from None
    except ssl.SSLError:  # an OSError too: caught first
        raise ConfigurationError(
            f"{where}: the CA file {str(ca_file)!r} holds no PEM certificate "
            "(expected -----BEGIN CERTIFICATE----- blocks)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"{where}: cannot read the CA file {str(ca_file)!r}: {exc.strerror}"
        ) from None


def certificate_problem(exc: BaseException) -> str | None:
    """What to say when a certificate failure lies behind ``exc`` (httpx wraps it), else None.

    The phrase follows "the TLS certificate ...": OpenSSL's short reason
    (``self-signed certificate``, ``Hostname mismatch ...``) and the setting that fixes it.
    """
    for cause in exception_chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = str(cause.verify_message or cause.reason or cause).rstrip(".")
            return f"could not be verified ({reason}); for a private CA set ca_file to its PEM file"
    return None


def is_loopback_host(name: str) -> bool:
    """Whether ``name`` (a host name or IP address, IPv6 without brackets) is this machine.

    Plain ``http://`` is acceptable only there: nothing sent can be read on the way.
    """
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
