"""The Named Credential through which the org's Apex calls rsbridge, and its External Credential.

Salesforce's current model (API 56.0 and later; Metadata API Developer Guide,
NamedCredential and ExternalCredential): the Named Credential ``rsbridge`` holds the URL
(a ``Url`` parameter) and points at the External Credential ``rsbridge`` (an
``Authentication`` parameter), which says how to authenticate: protocol ``Custom``, one
named principal ``rsbridge`` for technicians and one, ``rsbridge_portal``, for a
self-service portal's customers (each the same identity for all its users, each with its
own token, so each rsbridge client opens only its routes), and an ``Authorization`` header
computed from the principal's ``Token`` at callout time. The token itself is the
one thing not in the package: secrets cannot be deployed, so an administrator enters it on
the principal once (docs/salesforce.md, step 6). Users reach a principal through a permission
set's ``externalCredentialPrincipalAccesses`` (``rsbridge-rsbridge``).
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from rsbridge.connectors.salesforce.mdxml import add, document, element

NAMED_CREDENTIAL: Final = "rsbridge"
EXTERNAL_CREDENTIAL: Final = "rsbridge"
PRINCIPAL: Final = "rsbridge"
"""The technicians' principal: a token for the Case buttons' routes."""
PORTAL_PRINCIPAL: Final = "rsbridge_portal"
"""The self-service portal's principal: its own token, for the issues and support-now routes."""
TOKEN_PARAMETER: Final = "Token"  # noqa: S105 (a parameter name, not a token)
"""The principal's authentication parameter an administrator sets to rsbridge's client token."""
PRINCIPAL_ACCESS: Final = f"{EXTERNAL_CREDENTIAL}-{PRINCIPAL}"
"""How a permission set names the principal (``<external credential>-<principal>``)."""
PORTAL_PRINCIPAL_ACCESS: Final = f"{EXTERNAL_CREDENTIAL}-{PORTAL_PRINCIPAL}"
AUTHORIZATION: Final = f"{{!'Bearer ' & $Credential.{EXTERNAL_CREDENTIAL}.{TOKEN_PARAMETER}}}"
"""The formula of the ``Authorization`` header: rsbridge's actions API takes a bearer token."""


def credential_files(url: str, *, source_dir: str) -> dict[str, bytes]:
    """The two credential files, by path under the project; ``url`` is rsbridge's public
    URL (checked by the caller), to which the Apex appends ``/actions/...``."""
    return {
        f"{source_dir}/externalCredentials/{EXTERNAL_CREDENTIAL}.externalCredential-meta.xml": (
            document(_external_credential())
        ),
        f"{source_dir}/namedCredentials/{NAMED_CREDENTIAL}.namedCredential-meta.xml": (
            document(_named_credential(url.rstrip("/")))
        ),
    }


def _external_credential() -> etree._Element:
    root = element("ExternalCredential")
    add(root, "authenticationProtocol", "Custom")
    add(root, "description", "rsbridge's client token, sent as a bearer token to its actions API.")
    # A user granted both uses the lower sequence number: technicians keep their routes.
    for sequence, name in enumerate((PRINCIPAL, PORTAL_PRINCIPAL), start=1):
        principal = add(root, "externalCredentialParameters")
        add(principal, "parameterName", name)
        add(principal, "parameterType", "NamedPrincipal")
        add(principal, "sequenceNumber", str(sequence))
    header = add(root, "externalCredentialParameters")
    add(header, "parameterName", "Authorization")
    add(header, "parameterType", "AuthHeader")
    add(header, "parameterValue", AUTHORIZATION)
    add(header, "sequenceNumber", "1")
    add(root, "label", "rsbridge")
    return root


def _named_credential(url: str) -> etree._Element:
    root = element("NamedCredential")
    # The header formula reads $Credential; nothing else may merge org data into requests.
    add(root, "allowMergeFieldsInBody", "false")
    add(root, "allowMergeFieldsInHeader", "true")
    add(root, "calloutStatus", "Enabled")
    add(root, "description", "rsbridge's actions API, for the Case components' Apex.")
    # The Custom protocol has no header of its own to generate: the AuthHeader parameter is it.
    add(root, "generateAuthorizationHeader", "false")
    add(root, "label", "rsbridge")
    address = add(root, "namedCredentialParameters")
    add(address, "parameterName", "Url")
    add(address, "parameterType", "Url")
    add(address, "parameterValue", url)
    authentication = add(root, "namedCredentialParameters")
    add(authentication, "externalCredential", EXTERNAL_CREDENTIAL)
    add(authentication, "parameterName", "ExternalCredential")
    add(authentication, "parameterType", "Authentication")
    add(root, "namedCredentialType", "SecuredEndpoint")
    return root
