"""One update set that sets an instance up for rsbridge: ``rsbridge servicenow update-set``.

An administrator loads the document with *System Update Sets > Retrieved Update Sets >
Import Update Set from XML*, previews it and commits it. It is an ``<unload>`` document
holding one ``sys_remote_update_set`` record and one ``sys_update_xml`` record per
configuration record; each ``sys_update_xml`` carries the record itself, as the
``<record_update>`` document ServiceNow stores in ``payload``::

    <unload unload_date="...">
      <sys_remote_update_set action="INSERT_OR_UPDATE">
        <name>rsbridge (servicenow)</name><state>loaded</state><sys_id>...</sys_id> ...
      </sys_remote_update_set>
      <sys_update_xml action="INSERT_OR_UPDATE">
        <action>INSERT_OR_UPDATE</action><name>sys_properties_<sys_id></name>
        <payload>&lt;?xml ...?&gt;&lt;record_update table="sys_properties"&gt;...</payload>
        <remote_update_set display_value="rsbridge (servicenow)">...</remote_update_set>
        <target_name>rsbridge.url</target_name><type>System Property</type> ...
      </sys_update_xml>
    </unload>

Contents, from one integration's settings (its table and column names):

- the session tables (``sys_db_object``) and their columns, references and labels
  (``sys_dictionary``), taken from :func:`~.schema.unload_xml`, what ``rsbridge
  servicenow tables`` prints;
- the roles ``rsbridge_user`` and ``rsbridge_admin`` (``sys_user_role``);
- per session table, record ACLs (``sys_security_acl`` with its ``sys_security_acl_role``
  rows in the same payload): read for both roles, create, write and delete for
  ``rsbridge_admin``, the role the integration user is given;
- the properties ``rsbridge.url`` (rsbridge's public URL) and ``rsbridge.actions.token``
  (``password2``, empty: the administrator types the token in);
- the REST message ``rsbridge`` (``sys_rest_message``) with one HTTP method
  (``sys_rest_message_fn``) per action, its ``Authorization: Bearer ${token}`` header
  and the variables of its JSON body (``sys_rest_message_fn_param_defs``);
- the UI actions, Script Include, portal widget, UI page, application menu and related
  lists of :mod:`.instance_ui`.

Every sys_id is derived from what the record is (a table's name, a role's name, a
method's route ...), so the same settings give the same records and re-importing a
newer update set updates them instead of adding copies; a renamed table gets new ids.
The structure was checked against real exports (see docs/servicenow.md, "The update
set"); where a detail was inferred it says so there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from lxml import etree

from rsbridge.connectors.servicenow.instance_ui import instance_ui_updates
from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES, Schema, unload_xml
from rsbridge.connectors.servicenow.update_records import (
    UPDATE_TYPES,
    Update,
    fields,
    record,
    stable_sys_id,
)

ROLES = {
    "rsbridge_user": "Reads Remote Support sessions imported by rsbridge and calls its actions.",
    "rsbridge_admin": "Manages rsbridge's tables and settings; give it to the integration user.",
}
"""The roles of the update set, by name, with their descriptions."""

URL_PROPERTY = "rsbridge.url"
TOKEN_PROPERTY = "rsbridge.actions.token"  # noqa: S105 (a property name)
REST_MESSAGE = "rsbridge"


@dataclass(frozen=True, slots=True)
class Method:
    """One HTTP method of the REST message: one action route of rsbridge."""

    name: str
    http_method: str
    path: str
    variables: tuple[str, ...]
    """The JSON body's variables besides ``integration`` (fixed): ``${name}`` in the body."""


METHODS: tuple[Method, ...] = (
    Method("session-key", "post", "/actions/session-key", ("ticket", "user", "request_id")),
    Method("jump", "post", "/actions/jump", ("ticket", "ci")),
    Method(
        "support-now",
        "post",
        "/actions/support-now",
        ("ticket", "issue", "requester_email", "request_id"),
    ),
    # The issue list is a GET with the integration in the query (docs/actions.md).
    Method("issues", "get", "/actions/issues", ()),
    Method("pull-now", "post", "/actions/pull", ()),
)
"""The actions a ServiceNow instance calls (docs/actions.md), one method each."""


def update_set_xml(
    schema: Schema,
    *,
    url: str,
    integration: str,
    now: datetime | None = None,
) -> str:
    """The update set for ``schema``'s tables and the actions at ``url`` (rsbridge's public
    URL) for ``integration`` (its name in rsbridge's configuration)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")
    url = url.rstrip("/")
    name = f"rsbridge ({integration})"
    updates = [
        *_table_updates(schema),
        *_role_updates(),
        *_acl_updates(schema),
        *_property_updates(url),
        *_rest_updates(url, integration),
        *instance_ui_updates(
            schema,
            integration=integration,
            rest_message=REST_MESSAGE,
            token_property=TOKEN_PROPERTY,
        ),
    ]
    set_id = stable_sys_id("sys_remote_update_set", integration)
    root = etree.Element("unload", unload_date=stamp)
    remote = etree.SubElement(root, "sys_remote_update_set", action="INSERT_OR_UPDATE")
    fields(
        remote,
        application=("global", "Global"),
        application_name="Global",
        application_scope="global",
        application_version="",
        collisions="",
        commit_date="",
        deleted="",
        inserted="",
        parent=("", ""),
        release_date="",
        remote_base_update_set=("", ""),
        remote_parent_id="",
        summary="",
        update_set=("", ""),
        update_source=("", ""),
        updated="",
        description=(
            f"rsbridge's tables, roles, ACLs, properties, REST message, UI actions, portal "
            f"widget, menu and related lists for the integration {integration}. Generated "
            "by rsbridge servicenow update-set."
        ),
        name=name,
        origin_sys_id="",
        remote_sys_id=set_id,
        state="loaded",
        sys_class_name="sys_remote_update_set",
        sys_created_by="admin",
        sys_created_on=stamp,
        sys_id=set_id,
        sys_mod_count="0",
        sys_updated_by="admin",
        sys_updated_on=stamp,
    )
    for update in updates:
        element = etree.SubElement(root, "sys_update_xml", action="INSERT_OR_UPDATE")
        fields(
            element,
            action="INSERT_OR_UPDATE",
            application=("global", "Global"),
            category="customer",
            comments="",
            name=update.update_name,
            payload=_payload(update),
            remote_update_set=(set_id, name),
            replace_on_upgrade="false",
            sys_created_by="admin",
            sys_created_on=stamp,
            sys_id=stable_sys_id("sys_update_xml", update.update_name),
            sys_mod_count="0",
            sys_updated_by="admin",
            sys_updated_on=stamp,
            table="",
            target_name=update.target,
            type=UPDATE_TYPES[update.table],
            update_domain="global",
            update_set=("", ""),
            view="",
        )
    body: str = etree.tostring(root, encoding="unicode", pretty_print=True)
    return _DECLARATION + "\n" + body


_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _payload(update: Update) -> str:
    """The ``<record_update>`` document stored (escaped, as exports do) in ``payload``."""
    # A form's related lists travel as one <sys_ui_related> group, in a <record_update>
    # without a table, as the platform exports them.
    grouped = update.records[0].tag == "sys_ui_related"
    wrapper = etree.Element("record_update", {} if grouped else {"table": update.table})
    for element in update.records:
        wrapper.append(element)
    inner: str = etree.tostring(wrapper, encoding="unicode")
    return _DECLARATION + inner


# --- the records ------------------------------------------------------------------------


def _table_updates(schema: Schema) -> Iterable[Update]:
    """The session tables, from the ``<unload>`` document ``rsbridge servicenow tables``
    prints: a sys_db_object update per table, a sys_dictionary update per column."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    document = etree.fromstring(unload_xml(schema, now=datetime(2000, 1, 1)).encode(), parser)
    for element in document:
        table = str(element.tag)
        name = element.findtext("name") or ""
        element.attrib["action"] = "INSERT_OR_UPDATE"
        if table == "sys_db_object":
            sys_id = stable_sys_id("sys_db_object", name)
            etree.SubElement(element, "sys_id").text = sys_id
            yield Update(table, sys_id, f"sys_db_object_{sys_id}", name, [element])
            continue
        column = element.findtext("element") or ""
        sys_id = stable_sys_id("sys_dictionary", name, column)
        etree.SubElement(element, "sys_id").text = sys_id
        # The platform names a column's update <table>_<column>, the table's own
        # (collection) entry <table>_null.
        update_name = f"sys_dictionary_{name}_{column or 'null'}"
        target = f"{name}.{column}" if column else name
        yield Update(table, sys_id, update_name, target, [element])


def _role_updates() -> Iterable[Update]:
    for role, description in ROLES.items():
        sys_id = stable_sys_id("sys_user_role", role)
        element = record(
            "sys_user_role",
            sys_id,
            description=description,
            elevated_privilege="false",
            name=role,
            suffix=role,
        )
        yield Update("sys_user_role", sys_id, f"sys_user_role_{sys_id}", role, [element])


def _acl_roles(operation: str) -> tuple[str, ...]:
    return ("rsbridge_user", "rsbridge_admin") if operation == "read" else ("rsbridge_admin",)


def _acl_updates(schema: Schema) -> Iterable[Update]:
    for table in DEFAULT_TABLES:
        name = schema.table(table.logical)
        for operation in ("read", "create", "write", "delete"):
            sys_id = stable_sys_id("sys_security_acl", name, operation)
            records = [
                record(
                    "sys_security_acl",
                    sys_id,
                    active="true",
                    admin_overrides="true",
                    advanced="false",
                    description=f"rsbridge: {operation} {table.label} records",
                    name=name,
                    operation=(operation, operation.capitalize()),
                    type=("record", "record"),
                )
            ]
            for role in _acl_roles(operation):
                role_id = stable_sys_id("sys_user_role", role)
                records.append(
                    record(
                        "sys_security_acl_role",
                        stable_sys_id("sys_security_acl_role", name, operation, role),
                        sys_security_acl=(sys_id, name),
                        sys_user_role=(role_id, role),
                    )
                )
            target = f"{name}.{operation}"
            yield Update("sys_security_acl", sys_id, f"sys_security_acl_{sys_id}", target, records)


def _property_updates(url: str) -> Iterable[Update]:
    properties = (
        (URL_PROPERTY, "string", url, "rsbridge's public URL: where the instance calls it."),
        (
            TOKEN_PROPERTY,
            "password2",
            "",  # the administrator types the bearer token in; it is never exported
            "The bearer token of rsbridge's actions API ([[actions.clients]] token).",
        ),
    )
    for name, kind, value, description in properties:
        sys_id = stable_sys_id("sys_properties", name)
        element = record(
            "sys_properties",
            sys_id,
            description=description,
            ignore_cache="false",
            is_private="true" if kind == "password2" else "false",
            name=name,
            read_roles="rsbridge_admin",
            type=(kind, kind),
            value=value,
            write_roles="rsbridge_admin",
        )
        yield Update("sys_properties", sys_id, f"sys_properties_{sys_id}", name, [element])


def method_endpoint(url: str, method: Method, integration: str) -> str:
    """The endpoint of ``method`` for rsbridge at ``url`` (GET: the integration in the query)."""
    endpoint = url.rstrip("/") + method.path
    if method.http_method == "get":
        endpoint += "?" + urlencode({"integration": integration})
    return endpoint


def method_body(method: Method, integration: str) -> str:
    """The JSON body of ``method``: the integration's name and a ``${variable}`` per variable
    (the caller sets them; a value is a JSON string, so the caller escapes quotes)."""
    if method.http_method == "get":
        return ""
    fields = {"integration": integration} | {v: f"${{{v}}}" for v in method.variables}
    return json.dumps(fields)


def _rest_updates(url: str, integration: str) -> Iterable[Update]:
    message_id = stable_sys_id("sys_rest_message", REST_MESSAGE)
    message = record(
        "sys_rest_message",
        message_id,
        authentication_type="no_authentication",
        description=(
            f"rsbridge's actions API. The token comes from the property {TOKEN_PROPERTY}: "
            "set the method's variable token to gs.getProperty('" + TOKEN_PROPERTY + "')."
        ),
        name=REST_MESSAGE,
        rest_endpoint=url,
    )
    yield Update(
        "sys_rest_message", message_id, f"sys_rest_message_{message_id}", REST_MESSAGE, [message]
    )
    for method in METHODS:
        fn_id = stable_sys_id("sys_rest_message_fn", REST_MESSAGE, method.name)
        records = [
            record(
                "sys_rest_message_fn",
                fn_id,
                authentication_type="inherit_from_parent",
                content=method_body(method, integration),
                function_name=method.name,
                http_method=(method.http_method, method.http_method.upper()),
                rest_endpoint=method_endpoint(url, method, integration),
                rest_message=(message_id, REST_MESSAGE),
            )
        ]
        headers = (
            ("Authorization", "Bearer ${token}"),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        )
        for header, value in headers:
            records.append(
                record(
                    "sys_rest_message_fn_headers",
                    stable_sys_id("sys_rest_message_fn_headers", method.name, header),
                    name=header,
                    rest_message_function=(fn_id, method.name),
                    value=value,
                )
            )
        # Variable substitutions: the caller sets each (token from the property).
        for variable in ("token", *method.variables):
            records.append(
                record(
                    "sys_rest_message_fn_param_defs",
                    stable_sys_id("sys_rest_message_fn_param_defs", method.name, variable),
                    name=variable,
                    rest_message_function=(fn_id, method.name),
                    value="",
                )
            )
        target = f"{REST_MESSAGE}.{method.name}"
        yield Update("sys_rest_message_fn", fn_id, f"sys_rest_message_fn_{fn_id}", target, records)
