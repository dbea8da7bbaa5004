"""Update sets: what the simulated instance does with "Import Update Set from XML".

An update set is an ``<unload>`` document (see :mod:`.unload`) holding a
``sys_remote_update_set`` record and ``sys_update_xml`` records, each carrying a
``<record_update table="...">`` document in its ``payload`` whose children are the
records the update writes (an ACL's payload holds the ACL and its role rows, an HTTP
method's its headers and variables). On an instance the administrator loads the file,
previews it and commits it; the simulated instance does all three at once: it stores
the update set's records (the set marked ``committed``), then writes every payload
record as an ``<unload>`` import would (tables and columns defined, other records
inserted or updated by sys_id).

Committed ``sys_security_acl`` record ACLs (a table name, no field) with their
``sys_security_acl_role`` rows become the table's ACL: the roles of each operation, so
a user without them is refused as on an instance.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from rsbridge.sim.servicenow.tables import Column, col
from rsbridge.sim.servicenow.unload import UnloadError, UnloadRow, parse_records

if TYPE_CHECKING:
    from rsbridge.sim.servicenow.state import SimServiceNowState

_PAYLOAD = 16_000_000
_SCRIPT = 65_000

#: The tables an update set of rsbridge's writes to (besides sys_db_object and
#: sys_dictionary), with the columns the simulator keeps; only admins read or write them.
UPDATE_SET_TABLES: dict[str, tuple[str, list[Column]]] = {
    "sys_remote_update_set": (
        "Retrieved Update Set",
        [
            col("name", max_length=80, display=True),
            col("description", max_length=4000),
            col("state", max_length=40),
            col("remote_sys_id", max_length=32),
            col("origin_sys_id", max_length=32),
            col("application", max_length=32),
            col("application_name"),
            col("application_scope"),
            col("sys_class_name", max_length=80),
        ],
    ),
    "sys_update_xml": (
        "Customer Update",
        [
            col("name", max_length=250, display=True),
            col("action", max_length=40),
            col("type", max_length=40),
            col("target_name", max_length=250),
            col("category", max_length=40),
            col("payload", max_length=_PAYLOAD),
            col("remote_update_set", "reference", ref="sys_remote_update_set"),
            col("application", max_length=32),
            col("replace_on_upgrade", "boolean"),
            col("update_domain", max_length=32),
        ],
    ),
    "sys_user_role": (
        "Role",
        [
            col("name", max_length=100, display=True),
            col("description", max_length=1000),
            col("suffix", max_length=100),
            col("elevated_privilege", "boolean"),
        ],
    ),
    "sys_security_acl": (
        "Access Control",
        [
            col("name", max_length=100, display=True),
            col("operation", max_length=40),
            col("type", max_length=40),
            col("active", "boolean", default="true"),
            col("admin_overrides", "boolean", default="true"),
            col("advanced", "boolean"),
            col("description", max_length=4000),
        ],
    ),
    "sys_security_acl_role": (
        "Access Role",
        [
            col("sys_security_acl", "reference", ref="sys_security_acl"),
            col("sys_user_role", "reference", ref="sys_user_role"),
        ],
    ),
    "sys_properties": (
        "System Property",
        [
            col("name", max_length=100, display=True),
            col("value", max_length=4000),
            col("type", max_length=40),
            col("description", max_length=4000),
            col("is_private", "boolean"),
            col("ignore_cache", "boolean"),
            col("read_roles", max_length=255),
            col("write_roles", max_length=255),
        ],
    ),
    "sys_rest_message": (
        "REST Message",
        [
            col("name", max_length=100, display=True),
            col("rest_endpoint", "url", max_length=1024),
            col("description", max_length=4000),
            col("authentication_type", max_length=40),
        ],
    ),
    "sys_rest_message_fn": (
        "HTTP Method",
        [
            col("function_name", max_length=100, display=True),
            col("rest_message", "reference", ref="sys_rest_message"),
            col("http_method", max_length=40),
            col("rest_endpoint", "url", max_length=1024),
            col("content", max_length=65000),
            col("authentication_type", max_length=40),
        ],
    ),
    "sys_rest_message_fn_headers": (
        "HTTP Header",
        [
            col("name", max_length=100, display=True),
            col("value", max_length=4000),
            col("rest_message_function", "reference", ref="sys_rest_message_fn"),
        ],
    ),
    "sys_rest_message_fn_param_defs": (
        "Variable Substitution",
        [
            col("name", max_length=100, display=True),
            col("value", max_length=4000),
            col("rest_message_function", "reference", ref="sys_rest_message_fn"),
        ],
    ),
    # The instance-side user interface (connectors/servicenow/instance_ui.py).
    "sys_script_include": (
        "Script Include",
        [
            col("name", max_length=100, display=True),
            col("api_name", max_length=200),
            col("script", max_length=_SCRIPT),
            col("active", "boolean", default="true"),
            col("access", max_length=40),
            col("client_callable", "boolean"),
            col("caller_access", max_length=40),
            col("description", max_length=4000),
        ],
    ),
    "sys_ui_action": (
        "UI Action",
        [
            col("name", max_length=80, display=True),
            col("table", max_length=80),
            col("action_name", max_length=80),
            col("active", "boolean", default="true"),
            col("condition", max_length=1000),
            col("script", max_length=_SCRIPT),
            col("order", "integer"),
            col("hint", max_length=1000),
            col("comments", max_length=4000),
            *(
                col(flag, "boolean")
                for flag in (
                    "client",
                    "form_action",
                    "form_button",
                    "form_button_v2",
                    "form_context_menu",
                    "form_link",
                    "form_menu_button_v2",
                    "format_for_configurable_workspace",
                    "isolate_script",
                    "list_action",
                    "show_insert",
                    "show_multiple_update",
                    "show_query",
                    "show_update",
                    "ui11_compatible",
                    "ui16_compatible",
                )
            ),
            col("form_style", max_length=40),
            col("onclick", max_length=1000),
        ],
    ),
    "sp_widget": (
        "Widget",
        [
            col("name", max_length=100, display=True),
            col("id", max_length=100),
            col("template", max_length=_SCRIPT),
            col("client_script", max_length=_SCRIPT),
            col("script", max_length=_SCRIPT),
            col("css", max_length=_SCRIPT),
            col("controller_as", max_length=40),
            col("option_schema", max_length=4000),
            col("description", max_length=4000),
            col("has_preview", "boolean"),
            col("public", "boolean"),
            col("roles", max_length=255),
        ],
    ),
    "sys_ui_page": (
        "UI Page",
        [
            col("name", max_length=100, display=True),
            col("category", max_length=40),
            col("html", max_length=_SCRIPT),
            col("client_script", max_length=_SCRIPT),
            col("processing_script", max_length=_SCRIPT),
            col("description", max_length=4000),
            col("direct", "boolean"),
        ],
    ),
    "sys_app_application": (
        "Application Menu",
        [
            col("title", max_length=80, display=True),
            col("name", max_length=80),
            col("active", "boolean", default="true"),
            col("roles", max_length=255),
            col("order", "integer"),
            col("hint", max_length=255),
            col("description", max_length=4000),
        ],
    ),
    "sys_app_module": (
        "Module",
        [
            col("title", max_length=80, display=True),
            col("application", "reference", ref="sys_app_application"),
            col("active", "boolean", default="true"),
            col("link_type", max_length=40),
            col("name", max_length=80),
            col("query", max_length=3500),
            col("filter", max_length=3500),
            col("order", "integer"),
            col("roles", max_length=255),
            col("override_menu_roles", "boolean"),
            col("hint", max_length=255),
            col("window_name", max_length=40),
        ],
    ),
    "sys_ui_related_list": (
        "Related Lists",
        [
            col("name", max_length=80, display=True),
            col("calculated_name", max_length=255),
            col("view", max_length=80),
            col("view_name", max_length=80),
            col("related_list", max_length=255),
            col("filter", max_length=3500),
            col("order_by", max_length=255),
            col("position", max_length=40),
        ],
    ),
    "sys_ui_related_list_entry": (
        "Related List Entry",
        [
            col("related_list", max_length=255, display=True),
            col("list_id", "reference", ref="sys_ui_related_list"),
            col("position", "integer"),
            col("filter", max_length=3500),
            col("order_by", max_length=255),
        ],
    ),
}


def define_update_set_tables(state: SimServiceNowState) -> None:
    """Define the tables :data:`UPDATE_SET_TABLES` lists (once; admins only)."""
    for name, (label, columns) in UPDATE_SET_TABLES.items():
        if not state.has_table(name):
            state.define_table(
                name, columns, label=label, read_roles=("admin",), write_roles=("admin",)
            )


def is_update_set(rows: list[UnloadRow]) -> bool:
    """True when ``rows`` are an update set (they hold ``sys_update_xml`` records)."""
    return any(row.table == "sys_update_xml" for row in rows)


def commit_rows(rows: list[UnloadRow]) -> list[UnloadRow]:
    """The records an update set writes when committed: its own records (the set marked
    ``committed``) followed by every payload's records. Raises :class:`UnloadError` for
    a payload that is not a ``<record_update>`` document."""
    kept: list[UnloadRow] = []
    payloads: list[UnloadRow] = []
    for row in rows:
        if row.table == "sys_remote_update_set":
            row.values["state"] = "committed"
        if row.table == "sys_update_xml":
            payloads += _payload_rows(row.values.get("payload", ""), row.values.get("name", ""))
        kept.append(row)
    return kept + payloads


def _payload_rows(payload: str, update_name: str) -> list[UnloadRow]:
    if not payload.strip():
        return []
    try:
        return parse_records(payload, "record_update")
    except UnloadError as exc:
        raise UnloadError(f"update {update_name}: {exc}") from None


def apply_acls(state: SimServiceNowState) -> None:
    """Make the committed table-level record ACLs the tables' ACLs (see the module doc)."""
    if not state.has_table("sys_security_acl"):
        return
    role_names = {r["sys_id"]: r.get("name", "") for r in state.records("sys_user_role")}
    acl_roles: dict[str, set[str]] = defaultdict(set)
    for link in state.records("sys_security_acl_role"):
        role = role_names.get(link.get("sys_user_role", ""), "")
        if role:
            acl_roles[link.get("sys_security_acl", "")].add(role)
    per_table: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for acl in state.records("sys_security_acl"):
        name = acl.get("name", "")
        if acl.get("active") == "false" or acl.get("type", "record") != "record" or "." in name:
            continue
        if state.has_table(name):
            per_table[name][acl.get("operation", "")] |= acl_roles.get(acl["sys_id"], set())
    for table, operations in per_table.items():
        write = operations.get("write", set())
        state.set_table_acl(
            table,
            operations.get("read", set()),
            write,
            create_roles=operations.get("create"),
            delete_roles=operations.get("delete"),
        )
