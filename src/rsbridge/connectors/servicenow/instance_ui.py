"""The instance-side user interface of the update set: buttons, widget, menu, lists.

What the vendor's application puts on an instance, generated for rsbridge:

- the Script Include ``RsbridgeActions``: every script below calls rsbridge through it
  (the REST message ``rsbridge``, the token from the ``rsbridge.actions.token`` property
  as the ``${token}`` header variable, the JSON answer parsed, errors made readable);
- the client-callable Script Include ``RsbridgeActionsAjax`` (GlideAjax) for the Session
  Key dialog;
- UI actions (:data:`UI_ACTIONS`): Session Key on tasks (a client-side button: a dialog with
  the key, its URL, expiry and "E-mail the key"; a server-side twin in Agent Workspace,
  where GlideModal does not run), Jump to Configuration Item on tasks and configuration
  items, Jump to Caller's Computer and Get Support Now on incidents, Load Issues (the
  connectivity test) on rsbridge's properties;
- the Service Portal widget ``rsbridge-get-support-now``;
- the application menu "rsbridge" with modules for the sessions, the properties,
  "Pull now" (the UI page ``rsbridge_pull_now``) and "Add Related Lists" (the UI page
  ``rsbridge_related_lists``, which adds the session list to the task, configuration
  item, call and interaction forms' existing lists: an update set holding a form's
  related lists would replace the lists the form has);
- the session form's related lists (its child tables: rsbridge's own form).

The scripts are package data (``instance_scripts/``); the only values inserted into them
are the integration's name, the REST message's and the token property's names and the
related lists' table names, each as a JSON literal (``json.dumps``), so no configured
value can leave its string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from lxml import etree

from rsbridge.connectors.servicenow.schema import DEFAULT_TABLES, Schema
from rsbridge.connectors.servicenow.update_records import (
    Update,
    fields,
    record,
    single,
    stable_sys_id,
)

SCRIPT_INCLUDE = "RsbridgeActions"
AJAX_INCLUDE = "RsbridgeActionsAjax"
WIDGET_ID = "rsbridge-get-support-now"
PULL_PAGE = "rsbridge_pull_now"
RELATED_LISTS_PAGE = "rsbridge_related_lists"
MENU = "rsbridge"


def script_text(name: str) -> str:
    """The text of ``instance_scripts/<name>`` (package data)."""
    return resources.files(__package__).joinpath("instance_scripts", name).read_text("utf-8")


def fill(name: str, **values: object) -> str:
    """Script ``name`` with each ``"{{key}}"`` placeholder (a string literal, so the file
    itself is valid JavaScript) replaced by ``values[key]`` as JSON, a JavaScript literal
    that no value can break out of."""
    text = script_text(name)
    found = set(_PLACEHOLDER.findall(text))
    if found != set(values):  # pragma: no cover - a broken package
        raise RuntimeError(f"{name} has placeholders {sorted(found)}, not {sorted(values)}")
    # One pass: a value that looks like a placeholder is not filled in again.
    return _PLACEHOLDER.sub(lambda match: json.dumps(values[match.group(1)]), text)


_PLACEHOLDER = re.compile(r'"\{\{(\w+)\}\}"')


def script_include_source(integration: str, rest_message: str, token_property: str) -> str:
    """The Script Include with its configured values as JSON string literals."""
    return fill(
        "rsbridge_actions.js",
        integration=integration,
        rest_message=rest_message,
        token_property=token_property,
    )


#: The forms that get the session list, by the session column that refers to them.
RELATED_FORMS: dict[str, tuple[str, ...]] = {
    "task": ("incident", "problem", "change_request", "sc_request", "sc_req_item", "sc_task"),
    "configuration_item": ("cmdb_ci", "cmdb_ci_computer", "cmdb_ci_server"),
    "call": ("new_call",),
    "interaction": ("interaction",),
}


def related_forms(schema: Schema) -> list[tuple[str, str]]:
    """(form table, related list) pairs the related-lists page adds."""
    session = schema.table("session")
    return [
        (form, f"{session}.{schema.col('session', column)}")
        for column, forms in RELATED_FORMS.items()
        for form in forms
    ]


@dataclass(frozen=True, slots=True)
class UiAction:
    """One ``sys_ui_action``: a button or link on a form, server-side unless ``onclick``."""

    action_name: str
    name: str
    table: str
    script: str
    """The file in ``instance_scripts/``."""
    condition: str
    hint: str
    link: bool = False
    """A form link (Related Links) instead of a form button."""
    workspace: bool = False
    """Also a button in configurable workspaces (Agent Workspace)."""
    order: int = 100
    onclick: str = ""
    """A client-side action: the call its button makes (the script defines the function)."""
    classic: bool = True
    """On the classic (UI16) form; False for a workspace-only twin."""


_OPEN = "current.active == true"
UI_ACTIONS: tuple[UiAction, ...] = (
    UiAction(
        "rsbridge_session_key",
        "Session Key",
        "task",
        "session_key.js",
        f"{_OPEN} && gs.hasRole('rsbridge_user')",
        "Generate a BeyondTrust Remote Support session key for this task",
        onclick="rsbridgeSessionKey()",
    ),
    # GlideModal does not run in configurable workspaces: there the button stays
    # server-side and shows the key as a message.
    UiAction(
        "rsbridge_session_key_workspace",
        "Session Key",
        "task",
        "session_key_server.js",
        f"{_OPEN} && gs.hasRole('rsbridge_user')",
        "Generate a BeyondTrust Remote Support session key for this task",
        workspace=True,
        classic=False,
    ),
    UiAction(
        "rsbridge_session_key_email_workspace",
        "E-mail Session Key",
        "task",
        "session_key_email_server.js",
        f"{_OPEN} && gs.hasRole('rsbridge_user')",
        "E-mail this task's BeyondTrust Remote Support session key to its caller",
        workspace=True,
        classic=False,
        order=105,
    ),
    UiAction(
        "rsbridge_jump_to_ci",
        "Jump to Configuration Item",
        "task",
        "jump_to_ci.js",
        f"{_OPEN} && !current.cmdb_ci.nil() && gs.hasRole('rsbridge_user')",
        "Jump to this task's configuration item with BeyondTrust Remote Support",
        workspace=True,
        order=110,
    ),
    UiAction(
        "rsbridge_jump_to_ci",
        "Jump to Configuration Item",
        "cmdb_ci",
        "jump_to_ci.js",
        "gs.hasRole('rsbridge_user')",
        "Jump to this configuration item with BeyondTrust Remote Support",
        workspace=True,
    ),
    UiAction(
        "rsbridge_jump_to_caller_computer",
        "Jump to Caller's Computer",
        "incident",
        "jump_to_caller_computer.js",
        f"{_OPEN} && !current.caller_id.nil() && gs.hasRole('rsbridge_user')",
        "Jump to the computer assigned to the caller with BeyondTrust Remote Support",
        workspace=True,
        order=120,
    ),
    UiAction(
        "rsbridge_get_support_now",
        "Get Support Now",
        "incident",
        "get_support_now.js",
        f"{_OPEN} && current.caller_id == gs.getUserID()",
        "Chat with a support representative about this incident now",
    ),
    UiAction(
        "rsbridge_load_issues",
        "Load Issues",
        "sys_properties",
        "load_issues.js",
        "gs.hasRole('rsbridge_admin') && current.name.toString().indexOf('rsbridge.') == 0",
        "Test the connection: load the support issues from the appliance through rsbridge",
    ),
)
"""The UI actions of the update set."""


def ui_action_sys_id(action: UiAction) -> str:
    """The stable sys_id of ``action`` (by its table and action name)."""
    return stable_sys_id("sys_ui_action", action.table, action.action_name)


def instance_ui_updates(
    schema: Schema, *, integration: str, rest_message: str, token_property: str
) -> Iterable[Update]:
    """The updates of the instance-side user interface (see the module doc)."""
    yield _script_include(integration, rest_message, token_property)
    yield _ajax_include()
    for action in UI_ACTIONS:
        yield _ui_action(action)
    yield _widget()
    yield _page(
        PULL_PAGE,
        "Pull now: import the Remote Support sessions that ended (rsbridge).",
        script_text("pull_now_page.xml"),
        script_text("pull_now_processing.js"),
    )
    yield _page(
        RELATED_LISTS_PAGE,
        "Adds the Remote Support Session list to task, CI, call and interaction forms.",
        script_text("related_lists_page.xml"),
        fill("related_lists_processing.js", forms=related_forms(schema)),
    )
    yield from _menu(schema)
    yield _session_related_lists(schema)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _script_include(integration: str, rest_message: str, token_property: str) -> Update:
    sys_id = stable_sys_id("sys_script_include", SCRIPT_INCLUDE)
    return single(
        "sys_script_include",
        sys_id,
        SCRIPT_INCLUDE,
        access="package_private",
        active="true",
        api_name=f"global.{SCRIPT_INCLUDE}",
        caller_access="",
        client_callable="false",
        description="Calls rsbridge's actions API through the REST message (generated).",
        name=SCRIPT_INCLUDE,
        script=script_include_source(integration, rest_message, token_property),
    )


def _ajax_include() -> Update:
    sys_id = stable_sys_id("sys_script_include", AJAX_INCLUDE)
    return single(
        "sys_script_include",
        sys_id,
        AJAX_INCLUDE,
        access="package_private",
        active="true",
        api_name=f"global.{AJAX_INCLUDE}",
        caller_access="",
        client_callable="true",
        description="The Session Key dialog's GlideAjax calls (generated by rsbridge).",
        name=AJAX_INCLUDE,
        script=script_text("rsbridge_actions_ajax.js"),
    )


def _ui_action(action: UiAction) -> Update:
    return single(
        "sys_ui_action",
        ui_action_sys_id(action),
        f"{action.table}.{action.action_name}",
        action_name=action.action_name,
        active="true",
        client=_flag(bool(action.onclick)),
        comments="Generated by rsbridge servicenow update-set; calls rsbridge's actions API.",
        condition=action.condition,
        form_action="true",
        form_button=_flag(action.classic and not action.link),
        form_button_v2=_flag(action.workspace),
        form_context_menu="false",
        form_link=_flag(action.classic and action.link),
        form_menu_button_v2="false",
        form_style="",
        format_for_configurable_workspace=_flag(action.workspace),
        hint=action.hint,
        isolate_script="false",
        list_action="false",
        name=action.name,
        onclick=action.onclick,
        order=str(action.order),
        script=script_text(action.script),
        show_insert="false",
        show_multiple_update="false",
        show_query="false",
        show_update="true",
        table=action.table,
        ui11_compatible="true",
        ui16_compatible="true",
    )


def _widget() -> Update:
    sys_id = stable_sys_id("sp_widget", WIDGET_ID)
    return single(
        "sp_widget",
        sys_id,
        WIDGET_ID,
        category="custom",
        client_script=script_text("support_now_widget_client.js"),
        controller_as="c",
        css="",
        data_table="sp_instance",
        demo_data="",
        description=(
            "Get Support Now: a portal user starts a Remote Support session about their "
            "incident (the page's sys_id parameter). Generated by rsbridge."
        ),
        has_preview="false",
        id=WIDGET_ID,
        link="",
        name="rsbridge Get Support Now",
        option_schema="",
        public="false",
        roles="",
        script=script_text("support_now_widget_server.js"),
        template=script_text("support_now_widget.html"),
    )


def _page(name: str, description: str, html: str, processing: str) -> Update:
    sys_id = stable_sys_id("sys_ui_page", name)
    return single(
        "sys_ui_page",
        sys_id,
        name,
        category="general",
        client_script="",
        description=description,
        direct="false",
        html=html,
        name=name,
        processing_script=processing,
    )


def _menu(schema: Schema) -> Iterable[Update]:
    menu_id = stable_sys_id("sys_app_application", MENU)
    yield single(
        "sys_app_application",
        menu_id,
        MENU,
        active="true",
        description="BeyondTrust Remote Support sessions imported by rsbridge.",
        hint="BeyondTrust Remote Support (rsbridge)",
        name=MENU,
        order="100",
        roles="rsbridge_user,rsbridge_admin",
        title="rsbridge",
    )
    session_table = schema.table("session")
    modules = (
        ("sessions", "Remote Support Sessions", "LIST", session_table, "", "", "rsbridge_user"),
        (
            "properties",
            "Properties",
            "LIST",
            "sys_properties",
            "",
            "nameSTARTSWITHrsbridge.",
            "rsbridge_admin",
        ),
        ("pull_now", "Pull now", "DIRECT", "", f"{PULL_PAGE}.do", "", "rsbridge_admin"),
        (
            "related_lists",
            "Add Related Lists",
            "DIRECT",
            "",
            f"{RELATED_LISTS_PAGE}.do",
            "",
            "admin",
        ),
    )
    for order, (key, title, link_type, table, query, filter_, roles) in enumerate(modules):
        sys_id = stable_sys_id("sys_app_module", MENU, key)
        yield single(
            "sys_app_module",
            sys_id,
            title,
            active="true",
            application=(menu_id, "rsbridge"),
            filter=filter_,
            hint="",
            link_type=link_type,
            name=table,
            order=str((order + 1) * 100),
            override_menu_roles="false",
            query=query,
            roles=roles,
            title=title,
            window_name="",
        )


def _session_related_lists(schema: Schema) -> Update:
    """The session form's child lists, in the real export's shape: one
    ``<sys_ui_related>`` holding the list (``sys_ui_related_list``) and its entries."""
    session = schema.table("session")
    list_id = stable_sys_id("sys_ui_related_list", session, "default")
    group = etree.Element(
        "sys_ui_related", sys_domain="global", table=session, version="2", view=""
    )
    label = next(t.label for t in DEFAULT_TABLES if t.logical == "session")
    children = [
        (table.logical, column.logical)
        for table in DEFAULT_TABLES
        for column in table.columns
        if column.reference == "session"
    ]
    for position, (child, reference) in enumerate(children):
        name = schema.table(child)
        column = schema.col(child, reference)
        entry = record(
            "sys_ui_related_list_entry",
            stable_sys_id("sys_ui_related_list_entry", session, name),
            filter="",
            list_id=(list_id, f"{label} - Default view"),
            order_by="",
            position=str(position),
            related_list=f"{name}.{column}",
        )
        group.append(entry)
    container = etree.SubElement(group, "sys_ui_related_list", action="INSERT_OR_UPDATE")
    fields(
        container,
        calculated_name=f"{label} - Default view",
        filter="",
        name=session,
        order_by="",
        position="",
        related_list="",
        sys_id=list_id,
        sys_update_name=f"sys_ui_related_{session}_null",
        view=("Default view", "Default view"),
        view_name="",
    )
    update_name = f"sys_ui_related_{session}_null"
    return Update("sys_ui_related_list", list_id, update_name, session, [group])
