"""Sign-in: the OAuth token endpoint and the SOAP ``login()`` call.

Token endpoint (``POST /services/oauth2/token``, form-encoded), per the OAuth flow pages of
the REST API guide and Salesforce Help (see shared reference section 2.1):

* ``password``: ``client_id`` / ``client_secret`` form fields, ``username`` and the password
  followed by the security token. When the org blocks the flow it answers
  ``400 {"error": "invalid_grant", "error_description": "authentication failure"}``.
* ``client_credentials``: client id and secret as HTTP Basic (as simple-salesforce sends
  them) or form fields; only on the My Domain host, runs as the app's run-as user.
* ``urn:ietf:params:oauth:grant-type:jwt-bearer``: an RS256 assertion with ``iss`` (the
  consumer key), ``sub`` (username), ``aud`` (login URL or My Domain) and ``exp``.

Answer: ``access_token``, ``instance_url``, ``id`` (``.../id/<org>/<user>``),
``token_type``, ``issued_at`` (milliseconds) and ``signature`` (base64 HMAC-SHA256 of
``id + issued_at`` keyed with the client secret, as documented for the web server flow).
Error texts ``client identifier invalid``, ``invalid client credentials`` and
``request not supported on this domain`` are as community reports quote them.

SOAP ``login`` (``POST /services/Soap/u/<version>``): the partner WSDL's
``loginResponse`` (``serverUrl``, ``sessionId``, ``userId``) or an ``INVALID_LOGIN``
fault with HTTP 500; simple-salesforce's default sign-in with a security token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from lxml import etree

from rsbridge.sim.salesforce.state import SimSalesforceState
from rsbridge.sim.salesforce.wire import SimRequest, SimResponse, json_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
_PARTNER = "urn:partner.soap.sforce.com"


def instance_url(state: SimSalesforceState, req: SimRequest) -> str:
    """Where data calls go after a sign-in through ``req``'s host."""
    if state.instance_url:
        return state.instance_url
    if req.host.endswith(".salesforce.com"):
        return f"https://{state.my_domain}.my.salesforce.com"
    return req.base_url


def _oauth_error(error: str, description: str) -> SimResponse:
    return json_response(400, {"error": error, "error_description": description})


def token(state: SimSalesforceState, req: SimRequest) -> SimResponse:
    """``POST /services/oauth2/token``."""
    form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
    grant = form.get("grant_type", "")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
    if not client_id and scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error("invalid_client", "invalid client credentials")
        client_id, _, secret = decoded.partition(":")
    with state.lock:
        if grant == JWT_GRANT:
            return _jwt(state, req, form.get("assertion", ""))
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        app = state.apps.get(client_id)
        if app is None:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(app.client_secret, secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password":
            if not state.password_flow_enabled:
                return _oauth_error("invalid_grant", "authentication failure")
            user_id = state.check_password(form.get("username", ""), form.get("password", ""))
            if user_id is None:
                return _oauth_error("invalid_grant", "authentication failure")
            return _granted(state, req, user_id, app.client_id, app.client_secret)
        if req.host in LOGIN_HOSTS:
            return _oauth_error("invalid_grant", "request not supported on this domain")
        run_as = state.get("User", app.run_as) if app.run_as else None
        if app.run_as is None or run_as is None or not run_as.get("IsActive"):
            return _oauth_error("invalid_grant", "no client credentials user enabled")
        return _granted(state, req, app.run_as, app.client_id, app.client_secret, scope="api")


def _granted(
    state: SimSalesforceState,
    req: SimRequest,
    user_id: str,
    client_id: str,
    secret: str | None,
    *,
    scope: str | None = None,
) -> SimResponse:
    session = state.open_session(user_id, client_id)
    url = instance_url(state, req)
    login = f"https://{req.host}" if req.host in LOGIN_HOSTS else url
    identity = f"{login}/id/{state.org_id}/{user_id}"
    issued = str(int(session.issued_at * 1000))
    payload: dict[str, Any] = {"access_token": session.token}
    if secret is not None:
        digest = hmac.new(secret.encode(), (identity + issued).encode(), hashlib.sha256)
        payload["signature"] = base64.b64encode(digest.digest()).decode("ascii")
    if scope:
        payload["scope"] = scope
    payload |= {
        "instance_url": url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued,
    }
    return json_response(200, payload)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt(state: SimSalesforceState, req: SimRequest, assertion: str) -> SimResponse:
    refused = _oauth_error("invalid_grant", "invalid assertion")
    try:
        head_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64url(head_b64))
        claims = json.loads(_b64url(claims_b64))
        signature = _b64url(signature_b64)
    except (ValueError, binascii.Error):
        return refused
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return refused
    app = state.apps.get(str(claims.get("iss", "")))
    if app is None:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if header.get("alg") != "RS256" or app.certificate is None:
        return refused
    if not _rs256_valid(app.certificate, f"{head_b64}.{claims_b64}".encode(), signature):
        return refused
    audiences = {
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        f"https://{state.my_domain}.my.salesforce.com",
        req.base_url,
    }
    if str(claims.get("aud", "")).rstrip("/") not in audiences:
        return _oauth_error("invalid_grant", "audience is invalid")
    try:
        expires = float(claims.get("exp", 0))
    except (TypeError, ValueError):
        return refused
    if expires <= state.clock():
        return _oauth_error("invalid_grant", "expired authorization code")
    user = state.user_by_name(str(claims.get("sub", "")))
    if user is None:
        return _oauth_error("invalid_grant", "user hasn't approved this consumer")
    return _granted(state, req, user["Id"], app.client_id, None, scope="api")


def _rs256_valid(certificate: str, signed: bytes, signature: bytes) -> bool:
    """Verify with the app's key: a PEM certificate or public key (needs ``cryptography``)."""
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:  # pragma: no cover - the JWT flow then refuses every assertion
        return False
    pem = certificate.encode()
    try:
        key: object = (
            x509.load_pem_x509_certificate(pem).public_key()
            if b"CERTIFICATE" in pem
            else serialization.load_pem_public_key(pem)
        )
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


_SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
    "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, "
    "password, security token; or user locked out.</faultstring><detail>"
    '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
    "<sf:exceptionMessage>Invalid username, password, security token; or user locked out."
    "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
    "</soapenv:Envelope>"
)


def soap_login(state: SimSalesforceState, req: SimRequest, version: str) -> SimResponse:
    """``POST /services/Soap/u/<version>`` with a ``login`` body."""
    xml_type = {"Content-Type": "text/xml;charset=UTF-8"}
    fault = SimResponse(500, _SOAP_FAULT.encode(), xml_type)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(req.body, parser)
    except etree.XMLSyntaxError:
        return fault
    username = root.findtext(f".//{{{_PARTNER}}}username") or ""
    password = root.findtext(f".//{{{_PARTNER}}}password") or ""
    with state.lock:
        user_id = state.check_password(username, password)
        if user_id is None:
            return fault
        session = state.open_session(user_id, None)
        url = instance_url(state, req)
        user = state.get("User", user_id) or {}
        valid = int(state.session_timeout or 86400)
    server = f"{url}/services/Soap/u/{version}/{state.org_id[:15]}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns="{_PARTNER}"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>{escape(url)}/services/Soap/m/{version}/{state.org_id[:15]}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(server)}</serverUrl><sessionId>{escape(session.token)}</sessionId>"
        f"<userId>{user_id}</userId><userInfo><organizationId>{state.org_id}</organizationId>"
        f"<sessionSecondsValid>{valid}</sessionSecondsValid>"
        f"<userEmail>{escape(str(user.get('Email') or ''))}</userEmail>"
        f"<userFullName>{escape(str(user.get('Name') or ''))}</userFullName>"
        f"<userId>{user_id}</userId><userName>{escape(str(user.get('Username') or ''))}"
        "</userName></userInfo></result></loginResponse>"
        "</soapenv:Body></soapenv:Envelope>"
    )
    return SimResponse(200, body.encode(), xml_type)
