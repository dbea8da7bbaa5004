"""The Named Credential and External Credential of the Salesforce package.

What the checks compare against: the Metadata API Developer Guide's NamedCredential and
ExternalCredential field tables (transcribed into salesforce_data/metadata.xsd), the
Apex class that calls ``callout:<name>``, and rsbridge's actions API, which takes
``Authorization: Bearer <token>``. Each check reads the generated XML back rather than
trusting the generator's constants.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from pydantic import SecretStr

from rsbridge.config import ActionsConfig
from rsbridge.connectors.salesforce.components import APEX_CLASS
from rsbridge.connectors.salesforce.mdxml import NS
from rsbridge.connectors.salesforce.package import SOURCE_DIR, package_files
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.errors import ConfigurationError
from rsbridge.web.actions import bearer_opens

DATA = Path(__file__).parent / "salesforce_data"
XSD = etree.XMLSchema(etree.parse(str(DATA / "metadata.xsd")))
M = f"{{{NS}}}"
URL = "https://rsbridge.acme.example/bridge"


def _files(url: str = URL) -> dict[str, bytes]:
    return package_files(Schema.build(), actions_url=url)


def _one(files: dict[str, bytes], folder: str, suffix: str) -> tuple[str, etree._Element]:
    found = [p for p in files if p.startswith(f"{SOURCE_DIR}/{folder}/") and p.endswith(suffix)]
    assert len(found) == 1, found
    name = found[0].rsplit("/", 1)[1].removesuffix(suffix)
    return name, etree.fromstring(files[found[0]])


def _params(root: etree._Element, tag: str) -> dict[str, dict[str, str | None]]:
    """A credential's parameters by parameterType, each as its elements' text (principals
    by ``NamedPrincipal:<name>``)."""
    found: dict[str, dict[str, str | None]] = {}
    for p in root.iter(M + tag):
        values = {etree.QName(e).localname: e.text for e in p}
        kind = values.get("parameterType") or ""
        if kind == "NamedPrincipal":
            kind = f"{kind}:{values.get('parameterName')}"
        found[kind] = values
    return found


def test_both_credentials_validate_and_point_at_each_other() -> None:
    files = _files()
    named, nc = _one(files, "namedCredentials", ".namedCredential-meta.xml")
    external, ec = _one(files, "externalCredentials", ".externalCredential-meta.xml")
    for root in (nc, ec):
        assert XSD.validate(root.getroottree()), XSD.error_log
    assert nc.findtext(M + "namedCredentialType") == "SecuredEndpoint"
    assert nc.findtext(M + "calloutStatus") == "Enabled"
    assert nc.find(M + "endpoint") is None  # legacy only: the URL is a parameter
    params = _params(nc, "namedCredentialParameters")
    assert params["Url"]["parameterValue"] == URL
    assert params["Authentication"]["externalCredential"] == external
    # The Apex calls exactly this Named Credential.
    apex = files[f"{SOURCE_DIR}/classes/{APEX_CLASS}.cls"].decode()
    assert f"'callout:{named}'" in apex
    assert ec.findtext(M + "authenticationProtocol") == "Custom"


def test_the_header_is_a_bearer_token_the_actions_api_accepts() -> None:
    files = _files()
    external, ec = _one(files, "externalCredentials", ".externalCredential-meta.xml")
    params = _params(ec, "externalCredentialParameters")
    # Technicians' principal first: a user granted both keeps the Case buttons' routes.
    assert params["NamedPrincipal:rsbridge"]["sequenceNumber"] == "1"
    assert params["NamedPrincipal:rsbridge_portal"]["sequenceNumber"] == "2"
    header = params["AuthHeader"]
    assert header["parameterName"] == "Authorization"
    formula = re.fullmatch(
        r"\{!'Bearer ' & \$Credential\.(\w+)\.(\w+)\}", header["parameterValue"] or ""
    )
    assert formula is not None, header["parameterValue"]
    assert formula.group(1) == external
    # What Salesforce sends once the principal's parameter holds the client token:
    token = "a-client-token-0123456789"
    sent = f"Bearer {token}"
    assert bearer_opens(ActionsConfig(tokens=[SecretStr(token)]), sent, "session_key")
    _, nc = _one(files, "namedCredentials", ".namedCredential-meta.xml")
    assert nc.findtext(M + "allowMergeFieldsInHeader") == "true"  # the formula is evaluated
    assert nc.findtext(M + "allowMergeFieldsInBody") == "false"


def test_technicians_and_portal_users_reach_their_own_principal() -> None:
    files = _files()
    external, ec = _one(files, "externalCredentials", ".externalCredential-meta.xml")
    principals = [
        p["parameterName"]
        for kind, p in _params(ec, "externalCredentialParameters").items()
        if kind.startswith("NamedPrincipal:")
    ]
    sets = f"{SOURCE_DIR}/permissionsets"
    grants = {}
    for name in ("RS_Support_User", "RS_Portal_User", "RS_Integration"):
        root = etree.fromstring(files[f"{sets}/{name}.permissionset-meta.xml"])
        assert XSD.validate(root.getroottree()), XSD.error_log
        grants[name] = [
            (a.findtext(M + "externalCredentialPrincipal"), a.findtext(M + "enabled"))
            for a in root.iter(M + "externalCredentialPrincipalAccesses")
        ]
    assert grants == {
        "RS_Support_User": [(f"{external}-{principals[0]}", "true")],
        "RS_Portal_User": [(f"{external}-{principals[1]}", "true")],
        "RS_Integration": [],  # rsbridge's own user never calls rsbridge
    }


def test_no_secret_is_in_the_package() -> None:
    for path, content in _files().items():
        assert b"client_secret" not in content.lower(), path
        assert not re.search(rb"Bearer [A-Za-z0-9]", content), path  # only the formula


def test_a_trailing_slash_is_dropped_so_the_apex_paths_join() -> None:
    files = _files(URL + "/")
    _, nc = _one(files, "namedCredentials", ".namedCredential-meta.xml")
    assert _params(nc, "namedCredentialParameters")["Url"]["parameterValue"] == URL


@pytest.mark.parametrize("url", ["ftp://rsbridge.example", "https://h/x?y=1", "not a url"])
def test_an_address_salesforce_cannot_call_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        _files(url)


def test_the_schema_rejects_elements_out_of_order() -> None:
    _, nc = _one(_files(), "namedCredentials", ".namedCredential-meta.xml")
    label = nc.find(M + "label")
    assert label is not None
    nc.remove(label)
    nc.append(label)  # after namedCredentialType: not where the guide's sequence has it
    assert not XSD.validate(nc.getroottree())
