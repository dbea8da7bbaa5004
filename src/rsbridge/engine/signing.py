"""Signed session references: what rsbridge put on a session, it can later recognise.

A customer can set any custom attribute and the external key of a session through a
public start-session URL, so those values alone must never choose a ticket. Whatever
rsbridge itself puts on a session (keys, Jump, Get Support Now, the auto-create
write-back) therefore carries one more custom attribute, :data:`SIGNATURE_ATTRIBUTE`,
holding an HMAC of each reference under ``[signing] secret``, bound to the appliance::

    rsb_sig = "v1;external_key:<mac>;snow_task_id:<mac>"

Each reference has a MAC of its own (HMAC-SHA256 over the appliance id, the attribute's
code name and its value, cut to 128 bits, base64url), so one attribute changed later (a
representative retyping the external key) does not void the others. A signature proves
only that rsbridge issued that value for that appliance: a customer who copies it from
their own start URL into another session still reaches nothing but their own ticket.

Several secrets may verify (``previous_secrets``) so that the secret can be rotated
without refusing sessions that are still running on keys made before the rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from rsbridge.config import SigningConfig

SIGNATURE_ATTRIBUTE = "rsb_sig"
"""Code name of the custom attribute that carries the signature (configure it on the
appliance under Management > API Configuration > Custom Fields)."""

_VERSION = "v1"
_DOMAIN = "rsbridge-association/1"
_MAC_BYTES = 16
_ENTRY = re.compile(r"([A-Za-z0-9_]+):([A-Za-z0-9_-]{22})")
_MAX_CHARS = 1024  # the appliance's limit for one custom attribute value


class Signer:
    """Signs and verifies session references under one secret (and older ones)."""

    def __init__(self, secret: SecretStr, previous: Sequence[SecretStr] = ()) -> None:
        self._keys = [s.get_secret_value().encode() for s in (secret, *previous)]

    def __repr__(self) -> str:
        return f"Signer({len(self._keys)} key(s))"

    def _mac(self, key: bytes, appliance_id: str, name: str, value: str) -> str:
        message = json.dumps([_DOMAIN, appliance_id, name, value], ensure_ascii=False)
        digest = hmac.new(key, message.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, appliance_id: str, attributes: Mapping[str, str]) -> str:
        """The signature attribute's value for ``attributes`` (code name to value)."""
        entries = [
            f"{name}:{self._mac(self._keys[0], appliance_id, name, value)}"
            for name, value in sorted(attributes.items())
            if name != SIGNATURE_ATTRIBUTE and value
        ]
        return ";".join([_VERSION, *entries])

    def signed(self, appliance_id: str, attributes: Mapping[str, str]) -> dict[str, str]:
        """``attributes`` with the signature attribute added (nothing to sign: unchanged)."""
        out = {k: v for k, v in attributes.items() if k != SIGNATURE_ATTRIBUTE}
        if any(out.values()):
            out[SIGNATURE_ATTRIBUTE] = self.sign(appliance_id, out)
        return out

    def verified(
        self, appliance_id: str, signature: str | None, values: Mapping[str, str | None]
    ) -> frozenset[str]:
        """The code names in ``values`` whose current value ``signature`` vouches for.

        ``values`` maps code names to the session's current values. A malformed, foreign
        or outdated signature vouches for nothing; it is never an error.
        """
        macs = _parse(signature)
        good: set[str] = set()
        for name, mac in macs.items():
            value = values.get(name)
            if not value:
                continue
            for key in self._keys:
                if hmac.compare_digest(mac, self._mac(key, appliance_id, name, value)):
                    good.add(name)
                    break
        return frozenset(good)


def signer_for(config: SigningConfig | None) -> Signer | None:
    """The signer of a ``[signing]`` section (None: signing is not configured)."""
    return Signer(config.secret, config.previous_secrets) if config is not None else None


def _parse(signature: str | None) -> dict[str, str]:
    """``{code name: mac}`` of a signature value; empty when it is not one of ours."""
    if not signature or len(signature) > _MAX_CHARS:
        return {}
    version, _, rest = signature.strip().partition(";")
    if version != _VERSION:
        return {}
    macs: dict[str, str] = {}
    for entry in rest.split(";"):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            return {}
        macs[match.group(1)] = match.group(2)
    return macs
