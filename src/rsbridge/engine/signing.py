"""Signed session references: what rsbridge put on a session, it can later recognise.

A customer can set any custom attribute and the external key of a session through a
public start-session URL, so those values alone must never choose a ticket. Whatever
rsbridge itself puts on a session (keys, Jump, Get Support Now, the auto-create
write-back) therefore carries one more custom attribute, :data:`SIGNATURE_ATTRIBUTE`,
holding one entry per reference::

    rsb_sig = "v2;servicenow/external_key/1764650000:<mac>;servicenow/snow_task_id/1764650000:<mac>"

Each entry is ``<integration>/<code name>/<issued>:<mac>``: an HMAC-SHA256 over the
appliance id, the integration, the issue time (UNIX seconds), the attribute's code name
and its value, under ``[signing] secret``, cut to 128 bits (base64url). So a signature

* vouches for one value of one attribute: an attribute changed later (a representative
  retyping the external key) voids its own entry, not the others;
* counts for one integration only: ``INC0010003`` signed for one ServiceNow instance names
  nothing in another integration's instance, whose ``INC0010003`` is someone else's;
* counts only for sessions that start within ``max_age`` of its issue (a key lives at most
  seven days): a start URL forwarded or kept does not start trusted sessions forever.

A customer who copies a signature from their own start URL into another session reaches
nothing but their own ticket, for as long as the signature is young. Several secrets may
verify (``previous_secrets``) so that the secret can be rotated without refusing sessions
that run on keys made before the rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

from rsbridge.config import SigningConfig

SIGNATURE_ATTRIBUTE = "rsb_sig"
"""Code name of the custom attribute that carries the signature (configure it on the
appliance under Management > API Configuration > Custom Fields)."""

DEFAULT_MAX_AGE = timedelta(hours=192)
"""A signature counts for sessions that start within 8 days of it (keys live 7 days)."""

_VERSION = "v2"
_DOMAIN = "rsbridge-association/2"
_MAC_BYTES = 16
_SKEW = timedelta(minutes=10)  # clocks of rsbridge and the appliance may disagree a little
_ENTRY = re.compile(r"([A-Za-z0-9._-]+)/([A-Za-z0-9_]+)/(\d{1,12}):([A-Za-z0-9_-]{22})")
MAX_SIGNATURE_CHARS = 1024
"""The appliance's limit for one custom attribute value."""


@dataclass(frozen=True, slots=True)
class _Entry:
    integration: str
    name: str
    issued: int
    mac: str

    def __str__(self) -> str:
        return f"{self.integration}/{self.name}/{self.issued}:{self.mac}"


class Signer:
    """Signs and verifies session references under one secret (and older ones)."""

    def __init__(
        self,
        secret: SecretStr,
        previous: Sequence[SecretStr] = (),
        *,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._keys = [s.get_secret_value().encode() for s in (secret, *previous)]
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"Signer({len(self._keys)} key(s))"

    def _mac(
        self, key: bytes, appliance_id: str, integration: str, issued: int, name: str, value: str
    ) -> str:
        message = json.dumps(
            [_DOMAIN, appliance_id, integration, issued, name, value], ensure_ascii=False
        )
        digest = hmac.new(key, message.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(
        self,
        appliance_id: str,
        integration: str,
        attributes: Mapping[str, str],
        *,
        now: datetime,
        keep: str | None = None,
    ) -> str:
        """The signature attribute's value for ``attributes`` (code name to value).

        ``keep`` is the session's signature so far (an auto-create write-back): its
        entries stay, but this integration's entries of the attributes signed now, which
        are replaced. (An entry whose value changes stops verifying by itself.) Oldest
        entries go first if the value would pass the appliance's length limit.
        """
        issued = int(now.timestamp())
        fresh = [
            _Entry(
                integration,
                name,
                issued,
                self._mac(self._keys[0], appliance_id, integration, issued, name, value),
            )
            for name, value in sorted(attributes.items())
            if name != SIGNATURE_ATTRIBUTE and value
        ]
        kept = [
            e for e in _parse(keep) if not (e.integration == integration and e.name in attributes)
        ]
        entries = sorted(kept, key=lambda e: e.issued) + fresh
        while len(_format(entries)) > MAX_SIGNATURE_CHARS and len(entries) > len(fresh):
            entries.pop(0)
        return _format(entries)

    def signed(
        self,
        appliance_id: str,
        integration: str,
        attributes: Mapping[str, str],
        *,
        now: datetime,
        keep: str | None = None,
    ) -> dict[str, str]:
        """``attributes`` with the signature attribute added (nothing to sign: unchanged)."""
        out = {k: v for k, v in attributes.items() if k != SIGNATURE_ATTRIBUTE}
        if any(out.values()):
            out[SIGNATURE_ATTRIBUTE] = self.sign(appliance_id, integration, out, now=now, keep=keep)
        return out

    def verified(
        self,
        appliance_id: str,
        integration: str,
        signature: str | None,
        values: Mapping[str, str | None],
        *,
        started: datetime | None,
    ) -> frozenset[str]:
        """The code names in ``values`` whose current value ``signature`` vouches for, for
        ``integration``, on a session that ``started`` then.

        ``values`` maps code names to the session's current values. A malformed, foreign,
        outdated or too old signature vouches for nothing; it is never an error.
        """
        if started is None:
            return frozenset()
        good: set[str] = set()
        for entry in _parse(signature):
            value = values.get(entry.name)
            if entry.integration != integration or not value:
                continue
            issued = datetime.fromtimestamp(entry.issued, started.tzinfo)
            if not issued - _SKEW <= started <= issued + self.max_age:
                continue
            for key in self._keys:
                mac = self._mac(key, appliance_id, integration, entry.issued, entry.name, value)
                if hmac.compare_digest(entry.mac, mac):
                    good.add(entry.name)
                    break
        return frozenset(good)


def signer_for(config: SigningConfig | None) -> Signer | None:
    """The signer of a ``[signing]`` section (None: signing is not configured)."""
    if config is None:
        return None
    max_age = timedelta(hours=config.max_age_hours)
    return Signer(config.secret, config.previous_secrets, max_age=max_age)


def _format(entries: Sequence[_Entry]) -> str:
    return ";".join([_VERSION, *(str(e) for e in entries)])


def _parse(signature: str | None) -> list[_Entry]:
    """The entries of a signature value; none when it is not one of ours."""
    if not signature or len(signature) > MAX_SIGNATURE_CHARS:
        return []
    version, _, rest = signature.strip().partition(";")
    if version != _VERSION or not rest:
        return []
    entries = []
    for item in rest.split(";"):
        match = _ENTRY.fullmatch(item)
        if match is None:
            return []
        entries.append(_Entry(match[1], match[2], int(match[3]), match[4]))
    return entries
