"""Validation of the appliance host name given in settings and builders."""

from __future__ import annotations

import re

from rsbridge.appliance.custom_fields import preview
from rsbridge.errors import RsbridgeError

_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")


def check_host(value: str, error: type[RsbridgeError], what: str = "host") -> str:
    """Return ``value`` if it is ``host`` or ``host:port``; raise ``error`` otherwise.

    ``what`` names the setting in the message.
    """
    if "://" in value:
        raise error(
            f"{what} {preview(value)} has a scheme; give the appliance host name only, "
            "e.g. support.example.com"
        )
    match = _HOST.fullmatch(value)
    if match is None:
        raise error(
            f"{what} {preview(value)} is not a host name; give host or host:port only, "
            "without path, query or user name"
        )
    if match[1] is not None and not 1 <= int(match[1]) <= 65535:
        raise error(f"{what} {preview(value)} has port {match[1]}; use 1 to 65535")
    return value
