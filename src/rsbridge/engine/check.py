"""The connection test ("test button"): reach every configured system and say what happened.

:func:`run_checks` verifies each appliance that an enabled integration uses (token,
``get_api_info``, permissions) and runs each enabled integration's connector check (and,
when it has its own templates, compiles them). Every check yields one
:class:`CheckVerdict`; nothing raises for a failed check, so one broken system does not
hide the state of the others. ``rsbridge check`` prints these verdicts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from rsbridge.config import ApplianceConfig, Config, IntegrationConfig
from rsbridge.connectors.registry import connector_class
from rsbridge.engine.appliances import make_appliance_client
from rsbridge.errors import CheckFailedError, ConfigurationError, RsbridgeError

#: The longest one check may take; the appliance client's own per-request timeout is 30 s.
CHECK_TIMEOUT_SECONDS = 60.0

#: Secrets shorter than this are not scrubbed from messages: replacing every occurrence
#: of a two-letter string would garble the message and hide nothing worth hiding.
_MIN_REDACTED_LENGTH = 4


@dataclass(frozen=True, slots=True)
class CheckVerdict:
    """The outcome of one check.

    ``target`` names what was checked (``"appliance default"``,
    ``"integration servicenow-prod"``); ``summary`` says what was reached or, when ``ok``
    is false, what went wrong. ``skipped`` marks a target that was not tested (a disabled
    integration, an appliance no enabled integration uses); it counts as ok. A summary
    or warning never contains a secret.
    """

    target: str
    ok: bool
    summary: str
    skipped: bool = False
    warnings: tuple[str, ...] = ()
    """What works but should not stay as it is (an intake open to anyone, plain HTTP);
    warnings do not make a verdict fail."""
    details: tuple[str, ...] = ()
    """One line each: the findings of a failed check (each with its fix, from a
    :class:`~rsbridge.errors.CheckFailedError`), or what a passed check verified."""


async def run_checks(config: Config, *, only: str | None = None) -> list[CheckVerdict]:
    """Check the appliances and integrations of ``config``; one verdict per target.

    Appliances come first, then integrations, each in configuration order; the checks
    themselves run concurrently. ``only`` restricts the run to one integration (and the
    appliance it uses) or to one appliance, by name or id; ConfigurationError if nothing
    is called that.
    """
    appliances, integrations = _selection(config, only)
    used = {i.appliance for i in config.active_integrations()}
    checks: list[Awaitable[CheckVerdict]] = [
        _check_appliance(a, tested=only is not None or a.id in used) for a in appliances
    ]
    signing = config.signing is not None
    checks += [_check_integration(i, signing=signing) for i in integrations]
    verdicts = await asyncio.gather(*checks)
    secrets = _secret_values(config)
    return [
        replace(
            v,
            summary=_redact(v.summary, secrets),
            warnings=tuple(_redact(w, secrets) for w in v.warnings),
            details=tuple(_redact(d, secrets) for d in v.details),
        )
        for v in verdicts
    ]


def configuration_verdicts(config: Config) -> list[CheckVerdict]:
    """What can be said of ``config`` without reaching any system: one verdict per
    appliance and integration, as :func:`run_checks` gives them, from the configuration
    alone (its warnings, the connector settings validated, an integration's own templates
    compiled). Local files are read; no appliance or ticketing system is called.
    """
    used = {i.appliance for i in config.active_integrations()}
    verdicts = [
        CheckVerdict(
            f"appliance {a.id}",
            True,
            f"{a.host}: configured (not reached: run the check to reach it)"
            if a.id in used
            else "not used by an enabled integration",
            a.id not in used,
            _appliance_warnings(a),
        )
        for a in config.appliances
    ]
    signing = config.signing is not None
    for integration in config.integrations:
        target = f"integration {integration.name}"
        if integration.disabled:
            verdicts.append(CheckVerdict(target, True, "disabled; not tested", True))
            continue
        problems: list[str] = []
        found = [f"connector {integration.connector}: settings valid"]
        try:
            integration.connector_settings()
        except RsbridgeError as exc:
            problems.append(exc.message)
        templates = integration.templates
        if templates is not None:
            try:
                found.append(_check_templates(templates, integration.import_events))
            except RsbridgeError as exc:
                problems.append(exc.message)
        verdicts.append(
            CheckVerdict(
                target,
                not problems,
                "; ".join(problems or found),
                warnings=_integration_warnings(integration)
                + _trust_warnings(integration, signing=signing),
            )
        )
    secrets = _secret_values(config)
    return [
        replace(
            v,
            summary=_redact(v.summary, secrets),
            warnings=tuple(_redact(w, secrets) for w in v.warnings),
        )
        for v in verdicts
    ]


def _selection(
    config: Config, only: str | None
) -> tuple[list[ApplianceConfig], list[IntegrationConfig]]:
    if only is None:
        return list(config.appliances), list(config.integrations)
    integration = config.integration(only)
    appliances = [a for a in config.appliances if a.id == only]
    if integration is not None and not integration.disabled:
        appliances += [
            a for a in config.appliances if a.id == integration.appliance and a not in appliances
        ]
    if integration is None and not appliances:
        known = [f"integration {i.name}" for i in config.integrations]
        known += [f"appliance {a.id}" for a in config.appliances]
        raise ConfigurationError(
            f"nothing to check called {only!r} (known: {', '.join(known) or 'none'})"
        )
    return appliances, [integration] if integration is not None else []


def _appliance_warnings(appliance: ApplianceConfig) -> tuple[str, ...]:
    """The intake accepts this appliance's events from anyone: no token, every address.

    Said of an appliance no integration uses too: its events are still received and
    stored (as ignored), so a stranger can fill the store.
    """
    everyone = any(network.prefixlen == 0 for network in appliance.accepted_addresses)
    if appliance.outbound_event_token is not None or not everyone:
        return ()
    return (
        "no outbound_event_token and accepted_addresses is ALL: anyone who can reach the "
        "intake can post outbound events for this appliance; set outbound_event_token "
        "(and append it to the outbound event URL on the appliance), and list the "
        "appliance's addresses in accepted_addresses",
    )


async def _check_appliance(appliance: ApplianceConfig, *, tested: bool) -> CheckVerdict:
    target = f"appliance {appliance.id}"
    warnings = _appliance_warnings(appliance)
    if not tested:
        return CheckVerdict(
            target, True, "not used by an enabled integration; not tested", True, warnings
        )

    async def verify() -> str:
        async with make_appliance_client(appliance) as client:
            info = await client.verify()
        company = f", company {info.company_name}" if info.company_name else ""
        return (
            f"{appliance.host}: API {info.api_version}{company}; the API account has "
            "Command API full access and support session reports"
        )

    ok, summary, details = await _attempt(verify)
    # Errors raised outside a check (rsbridge serve) name the appliance; the line does here.
    return CheckVerdict(
        target, ok, summary.removeprefix(f"{target}: "), warnings=warnings, details=details
    )


def _integration_warnings(integration: IntegrationConfig) -> tuple[str, ...]:
    """Plain http:// URLs that ``allow_plain_http`` let through (refused otherwise)."""
    try:
        cls = connector_class(integration.connector)
        plain = cls.plain_http_urls(integration.connector_settings())
    except (RsbridgeError, ImportError):
        return ()  # the connector check reports the problem
    return tuple(
        f"settings.{name} is plain http:// to {host} (allowed by allow_plain_http): "
        "credentials and session reports cross the network in clear text"
        for name, host in plain
    )


def _trust_warnings(
    integration: IntegrationConfig, *, signing: bool, now: datetime | None = None
) -> tuple[str, ...]:
    """What the association's trust policy lets a customer do (docs/security.md)."""
    rules = integration.association
    found: list[str] = []
    if rules.trust == "any":
        found.append(
            'association.trust = "any": a customer can send a session to any ticket through a '
            "start-session URL (as work notes, without state changes)"
        )
    elif not signing:
        found.append(
            "no [signing] secret: custom attributes and the external key count only when a "
            "representative set them; keys made by rsbridge carry no signature"
        )
    grace = rules.unsigned_grace_until
    if grace is not None:
        moment = grace.isoformat()
        if grace <= (now or datetime.now(UTC)):
            found.append(f"association.unsigned_grace_until ({moment}) has passed: remove it")
        else:
            found.append(
                f"association.unsigned_grace_until: unsigned references of sessions started "
                f"before {moment} are accepted"
            )
    return tuple(found)


async def _check_integration(integration: IntegrationConfig, *, signing: bool) -> CheckVerdict:
    target = f"integration {integration.name}"
    if integration.disabled:
        return CheckVerdict(target, True, "disabled; not tested", True)

    async def connector_check() -> Checked:
        cls = connector_class(integration.connector)
        connector = cls(integration.connector_settings())
        if integration.association.on_unmatched == "create":
            connector.check_create_fields = dict(integration.association.create_fields)
        try:
            result = await connector.check()
        finally:
            await connector.aclose()
        return Checked(f"{cls.title}: {result.summary}", result.details)

    results = [await _attempt(connector_check)]
    templates = integration.templates
    if templates is not None:
        # Blocking file reads and compilation: off the event loop.
        results.append(
            await _attempt(
                lambda: asyncio.to_thread(_check_templates, templates, integration.import_events)
            )
        )
    return CheckVerdict(
        target,
        all(ok for ok, _, _ in results),
        "; ".join(s for _, s, _ in results),
        warnings=_integration_warnings(integration) + _trust_warnings(integration, signing=signing),
        details=tuple(d for _, _, found in results for d in found),
    )


def _check_templates(directory: Path, import_events: list[str] | None) -> str:
    """Compile the overrides in ``directory`` and the defaults they complete."""
    # Imported here: only integrations with their own templates need Jinja2 loaded.
    from rsbridge.engine.render import Renderer

    names = Renderer(directory, import_events=import_events).check()
    return f"templates {directory}: {len(names)} templates compile"


@dataclass(frozen=True, slots=True)
class Checked:
    """What a passed check reached, and its detail lines."""

    summary: str
    details: tuple[str, ...] = ()


async def _attempt(
    check: Callable[[], Awaitable[str | Checked]],
) -> tuple[bool, str, tuple[str, ...]]:
    """Run one check: (True, what was reached, details) or (False, what went wrong,
    findings). A :class:`CheckFailedError` gives its headline and one finding per line;
    any other error its whole message (other connectors join their problems with "; ")."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            done = await check()
    except CheckFailedError as exc:
        return False, exc.headline, exc.findings
    except RsbridgeError as exc:
        return False, exc.message, ()
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s", ()
    except Exception as exc:  # the test reports, it never crashes
        # The type only: the text of an unexpected exception may quote anything.
        return False, f"unexpected error: {type(exc).__name__}", ()
    if isinstance(done, Checked):
        return True, done.summary, done.details
    return True, done, ()


def _secret_values(config: Config) -> list[str]:
    """Every secret of ``config`` long enough to scrub, longest first."""
    found: list[SecretStr | None] = []
    for appliance in config.appliances:
        found += [appliance.client_secret, appliance.outbound_event_token]
    if config.signing is not None:
        found += [config.signing.secret, *config.signing.previous_secrets]
    for integration in config.integrations:
        try:
            settings = integration.connector_settings()
        except Exception:  # noqa: S112 - its own check reports the problem
            continue
        found += [v for v in settings.model_dump().values() if isinstance(v, SecretStr)]
    values = {s.get_secret_value() for s in found if s is not None}
    return sorted((v for v in values if len(v) >= _MIN_REDACTED_LENGTH), key=len, reverse=True)


def _redact(text: str, secrets: Iterable[str]) -> str:
    # Defence in depth: errors are written not to quote secrets, but a peer's answer
    # quoted in a message could echo one back.
    for secret in secrets:
        text = text.replace(secret, "********")
    return text
