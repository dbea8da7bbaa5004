"""Table and column definitions of the simulated instance, and the out-of-box tables.

A ServiceNow table is a ``sys_db_object`` record (name, label, the table it extends)
plus one ``sys_dictionary`` record per column (element, internal type, max length,
reference target, label). The simulator keeps the same model: :class:`TableDef`
holds the table's *own* columns and its parent; the full column set of a table is
its ancestors' columns overridden by its own (a child may redefine an inherited
column, as ``incident`` does with the choice list of ``state``).

Only the columns an integration touches are defined: a real incident has about 90.
Writes to columns that do not exist are ignored, as on a real instance, so a
connector that misspells a field sees the same silent loss it would see there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Internal types whose value lives in ``sys_journal_field`` rather than on the record.
JOURNAL_TYPES = frozenset({"journal", "journal_input", "journal_list"})
#: Internal types compared and sorted as numbers.
NUMERIC_TYPES = frozenset({"integer", "decimal", "float", "longint", "currency", "price"})
#: Internal types whose writes are cut to ``max_length`` (the database column's size).
TRUNCATED_TYPES = frozenset({"string", "email", "url", "ph_number", "ip_addr", "GUID"})

# Roles granting access to a table when it (and its ancestors) have no explicit ACL.
DEFAULT_READ_ROLES = frozenset({"itil"})
DEFAULT_WRITE_ROLES = frozenset({"itil"})


def default_label(name: str) -> str:
    """The label ServiceNow derives from a column name: ``u_short_text`` -> ``Short text``."""
    base = name[2:] if name.startswith("u_") else name
    return base.replace("_", " ").strip().capitalize() or name


@dataclass(frozen=True, slots=True)
class Column:
    """One column (a ``sys_dictionary`` record).

    ``choices`` are ``(value, label)`` pairs: display values show the label and
    ``sysparm_input_display_value=true`` writes accept it. ``display`` marks the
    column whose value is the record's display value (what references show).
    """

    name: str
    internal_type: str = "string"
    reference: str | None = None
    max_length: int = 40
    label: str = ""
    default: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    display: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", default_label(self.name))

    @property
    def is_journal(self) -> bool:
        """True for work notes, comments and other journal columns."""
        return self.internal_type in JOURNAL_TYPES

    @property
    def is_reference(self) -> bool:
        """True when the value is the sys_id of a record of :attr:`reference`."""
        return self.internal_type == "reference" and bool(self.reference)


@dataclass(slots=True)
class TableDef:
    """A table: its own columns (in definition order), parent and number prefix."""

    name: str
    label: str
    extends: str | None = None
    number_prefix: str | None = None
    columns: dict[str, Column] = field(default_factory=dict)


def col(
    name: str,
    internal_type: str = "string",
    *,
    ref: str | None = None,
    max_length: int | None = None,
    label: str = "",
    default: str = "",
    choices: tuple[tuple[str, str], ...] = (),
    display: bool = False,
) -> Column:
    """Shorthand for a column with ServiceNow's default lengths per type."""
    if max_length is None:
        max_length = {"reference": 32, "GUID": 32, "sys_class_name": 80}.get(internal_type, 40)
        if internal_type in ("journal", "journal_input", "journal_list", "html"):
            max_length = 4000
    return Column(name, internal_type, ref, max_length, label, default, choices, display)


def system_columns(*, updates: bool = True) -> list[Column]:
    """The columns the platform adds to every new table (``sys_journal_field`` has no
    ``sys_updated_*`` or ``sys_mod_count``: its rows are never updated)."""
    cols = [
        col("sys_id", "GUID", label="Sys ID"),
        col("sys_created_on", "glide_date_time", label="Created"),
        col("sys_created_by", label="Created by"),
    ]
    if updates:
        cols += [
            col("sys_updated_on", "glide_date_time", label="Updated"),
            col("sys_updated_by", label="Updated by"),
            col("sys_mod_count", "integer", label="Updates"),
        ]
    return [*cols, col("sys_tags", label="Tags")]


def _choices(*pairs: str) -> tuple[tuple[str, str], ...]:
    """``_choices("1", "New", "2", "In Progress")`` -> ``(("1", "New"), ("2", "In Progress"))``."""
    return tuple(zip(pairs[::2], pairs[1::2], strict=True))


def _same(*values: str) -> tuple[tuple[str, str], ...]:
    """Choices whose label is the value (ServiceNow's text choice lists)."""
    return tuple((v, v) for v in values)


IMPACT = _choices("1", "1 - High", "2", "2 - Medium", "3", "3 - Low")
PRIORITY = _choices(
    "1", "1 - Critical", "2", "2 - High", "3", "3 - Moderate", "4", "4 - Low", "5", "5 - Planning"
)
TASK_STATE = _choices(
    "-5",
    "Pending",
    "1",
    "Open",
    "2",
    "Work in Progress",
    "3",
    "Closed Complete",
    "4",
    "Closed Incomplete",
    "7",
    "Closed Skipped",
)
INCIDENT_STATE = _choices(
    "1", "New", "2", "In Progress", "3", "On Hold", "6", "Resolved", "7", "Closed", "8", "Canceled"
)
CHANGE_STATE = _choices(
    "-5",
    "New",
    "-4",
    "Assess",
    "-3",
    "Authorize",
    "-2",
    "Scheduled",
    "-1",
    "Implement",
    "0",
    "Review",
    "3",
    "Closed",
    "4",
    "Canceled",
)
PROBLEM_STATE = _choices(
    "101",
    "New",
    "102",
    "Assess",
    "103",
    "Root Cause Analysis",
    "104",
    "Fix in Progress",
    "106",
    "Resolved",
    "107",
    "Closed",
)
INTERACTION_STATE = _choices(
    "new",
    "New",
    "work_in_progress",
    "Work in Progress",
    "on_hold",
    "On Hold",
    "wrap_up",
    "Wrap Up",
    "closed_complete",
    "Closed Complete",
    "closed_abandoned",
    "Closed Abandoned",
)
CONTACT_TYPE = _choices(
    "email",
    "Email",
    "phone",
    "Phone",
    "self-service",
    "Self-service",
    "virtual_agent",
    "Virtual Agent",
    "walk-in",
    "Walk-in",
)
INCIDENT_CLOSE_CODES = _same(
    "Duplicate",
    "Known error",
    "No resolution provided",
    "Resolved by caller",
    "Resolved by change",
    "Resolved by problem",
    "Resolved by request",
    "Solution provided",
    "Workaround provided",
    "User error",
)


def _table(
    name: str,
    label: str,
    columns: list[Column],
    *,
    extends: str | None = None,
    prefix: str | None = None,
) -> TableDef:
    return TableDef(name, label, extends, prefix, {c.name: c for c in columns})


def ootb_tables() -> list[TableDef]:
    """The out-of-box tables, parents before children (fresh objects on each call)."""
    text = 4000
    return [
        _table(
            "sys_user",
            "User",
            [
                *system_columns(),
                col("user_name", label="User ID"),
                col("first_name", max_length=50),
                col("last_name", max_length=50),
                col("name", max_length=151, display=True),
                col("email", "email", max_length=100),
                col("active", "boolean", default="true"),
                col("title", max_length=60),
                col("department", max_length=80),
                col("phone", "ph_number", label="Business phone"),
                col("mobile_phone", "ph_number"),
                col("employee_number"),
                col("manager", "reference", ref="sys_user"),
                col("locked_out", "boolean", default="false"),
                col("vip", "boolean", label="VIP", default="false"),
                col("time_zone"),
                col("last_login_time", "glide_date_time"),
            ],
        ),
        _table(
            "sys_user_group",
            "Group",
            [
                *system_columns(),
                col("name", max_length=80, display=True),
                col("description", max_length=1000),
                col("email", "email", label="Group email", max_length=100),
                col("manager", "reference", ref="sys_user"),
                col("parent", "reference", ref="sys_user_group"),
                col("active", "boolean", default="true"),
                col("type", "glide_list", max_length=1024),
            ],
        ),
        _table(
            "sys_user_grmember",
            "Group Member",
            [
                *system_columns(),
                col("group", "reference", ref="sys_user_group"),
                col("user", "reference", ref="sys_user"),
            ],
        ),
        _table(
            "cmdb_ci",
            "Configuration Item",
            [
                *system_columns(),
                col("name", max_length=255, display=True),
                col("sys_class_name", "sys_class_name", label="Class"),
                col("short_description", max_length=1000, label="Description"),
                col("ip_address", "ip_addr", max_length=255, label="IP Address"),
                col("fqdn", max_length=255, label="Fully qualified domain name"),
                col("host_name", max_length=255),
                col("dns_domain", max_length=255, label="DNS Domain"),
                col("mac_address", label="MAC Address"),
                col("serial_number", max_length=255),
                col("asset_tag", max_length=255),
                col("assigned_to", "reference", ref="sys_user"),
                col("managed_by", "reference", ref="sys_user"),
                col("support_group", "reference", ref="sys_user_group"),
                col(
                    "operational_status",
                    "integer",
                    default="1",
                    choices=_choices(
                        "1",
                        "Operational",
                        "2",
                        "Non-Operational",
                        "3",
                        "Repair in Progress",
                        "4",
                        "DR Standby",
                        "5",
                        "Ready",
                        "6",
                        "Retired",
                    ),
                ),
                col(
                    "install_status",
                    "integer",
                    label="Status",
                    default="1",
                    choices=_choices(
                        "1", "Installed", "2", "On Order", "3", "In Maintenance", "7", "Retired"
                    ),
                ),
            ],
        ),
        _table(
            "cmdb_ci_computer",
            "Computer",
            [
                col("os", label="Operating System"),
                col("os_version", label="OS Version"),
                col("os_service_pack", label="OS Service Pack"),
                col("cpu_count", "integer", label="CPU count"),
                col("ram", "integer", label="RAM (MB)"),
                col("form_factor"),
            ],
            extends="cmdb_ci",
        ),
        _table(
            "cmdb_ci_server",
            "Server",
            [col("classification", default="Production"), col("used_for", default="Production")],
            extends="cmdb_ci_computer",
        ),
        _table(
            "task",
            "Task",
            [
                *system_columns(),
                col("number", display=True),
                col("sys_class_name", "sys_class_name", label="Task type"),
                col("short_description", max_length=160),
                col("description", max_length=text),
                col("state", "integer", default="1", choices=TASK_STATE),
                col("active", "boolean", default="true"),
                col("priority", "integer", default="4", choices=PRIORITY),
                col("impact", "integer", default="3", choices=IMPACT),
                col("urgency", "integer", default="3", choices=IMPACT),
                col("assigned_to", "reference", ref="sys_user"),
                col("assignment_group", "reference", ref="sys_user_group"),
                col("cmdb_ci", "reference", ref="cmdb_ci", label="Configuration item"),
                col("opened_by", "reference", ref="sys_user"),
                col("opened_at", "glide_date_time", label="Opened"),
                col("closed_by", "reference", ref="sys_user"),
                col("closed_at", "glide_date_time", label="Closed"),
                col("close_notes", max_length=text),
                col("due_date", "glide_date_time", label="Due date"),
                col("contact_type", choices=CONTACT_TYPE),
                col("correlation_id", max_length=100, label="Correlation ID"),
                col("correlation_display", max_length=100),
                col("parent", "reference", ref="task"),
                col("watch_list", "glide_list", max_length=4000),
                col("work_notes_list", "glide_list", max_length=4000),
                col("approval", default="not requested"),
                col("escalation", "integer", default="0"),
                col("reassignment_count", "integer", default="0"),
                col("made_sla", "boolean", label="Made SLA", default="true"),
                col("knowledge", "boolean", default="false"),
                col("order", "integer"),
                col("work_notes", "journal_input"),
                col("comments", "journal_input", label="Additional comments"),
                col("comments_and_work_notes", "journal_list", label="Comments and Work notes"),
            ],
            prefix="TASK",
        ),
        _table(
            "incident",
            "Incident",
            [
                col("caller_id", "reference", ref="sys_user", label="Caller"),
                col("state", "integer", default="1", choices=INCIDENT_STATE),
                col("incident_state", "integer", default="1", choices=INCIDENT_STATE),
                col("priority", "integer", default="5", choices=PRIORITY),
                col(
                    "category",
                    default="inquiry",
                    choices=_choices(
                        "inquiry",
                        "Inquiry / Help",
                        "software",
                        "Software",
                        "hardware",
                        "Hardware",
                        "network",
                        "Network",
                        "database",
                        "Database",
                    ),
                ),
                col("subcategory"),
                col("close_code", label="Resolution code", choices=INCIDENT_CLOSE_CODES),
                col(
                    "hold_reason",
                    "integer",
                    label="On hold reason",
                    choices=_choices(
                        "1",
                        "Awaiting Caller",
                        "3",
                        "Awaiting Problem",
                        "4",
                        "Awaiting Vendor",
                        "5",
                        "Awaiting Change",
                    ),
                ),
                col("severity", "integer", default="3", choices=IMPACT),
                col("resolved_by", "reference", ref="sys_user"),
                col("resolved_at", "glide_date_time", label="Resolved"),
                col("problem_id", "reference", ref="problem", label="Problem"),
                col("rfc", "reference", ref="change_request", label="Change Request"),
                col("caused_by", "reference", ref="change_request", label="Caused by Change"),
                col("parent_incident", "reference", ref="incident"),
                col("reopen_count", "integer", default="0"),
                col("child_incidents", "integer", default="0"),
            ],
            extends="task",
            prefix="INC",
        ),
        _table(
            "change_request",
            "Change Request",
            [
                col("state", "integer", default="-5", choices=CHANGE_STATE),
                col(
                    "type",
                    default="normal",
                    choices=_choices(
                        "standard", "Standard", "normal", "Normal", "emergency", "Emergency"
                    ),
                ),
                col("requested_by", "reference", ref="sys_user"),
                col("category", default="Other"),
                col(
                    "risk",
                    "integer",
                    default="3",
                    choices=_choices("1", "Very High", "2", "High", "3", "Moderate", "4", "Low"),
                ),
                col("start_date", "glide_date_time", label="Planned start date"),
                col("end_date", "glide_date_time", label="Planned end date"),
                col("justification", max_length=text),
                col("implementation_plan", max_length=text),
                col("backout_plan", max_length=text),
                col("test_plan", max_length=text),
                col("on_hold", "boolean", default="false"),
                col(
                    "close_code",
                    choices=_choices(
                        "successful",
                        "Successful",
                        "successful_issues",
                        "Successful with issues",
                        "unsuccessful",
                        "Unsuccessful",
                    ),
                ),
            ],
            extends="task",
            prefix="CHG",
        ),
        _table(
            "problem",
            "Problem",
            [
                col("state", "integer", default="101", choices=PROBLEM_STATE),
                col("category"),
                col("subcategory"),
                col("known_error", "boolean", default="false"),
                col("cause_notes", max_length=text),
                col("fix_notes", max_length=text),
                col("first_reported_by_task", "reference", ref="task"),
                col("resolution_code"),
                col("resolved_by", "reference", ref="sys_user"),
                col("resolved_at", "glide_date_time", label="Resolved"),
            ],
            extends="task",
            prefix="PRB",
        ),
        _table(
            "sc_cat_item",
            "Catalog Item",
            [
                *system_columns(),
                col("name", max_length=100, display=True),
                col("short_description", max_length=1000),
                col("active", "boolean", default="true"),
            ],
        ),
        _table(
            "sc_request",
            "Request",
            [
                col("requested_for", "reference", ref="sys_user"),
                col(
                    "request_state",
                    default="requested",
                    choices=_choices(
                        "requested",
                        "Pending Approval",
                        "in_process",
                        "Approved",
                        "closed_complete",
                        "Closed Complete",
                        "closed_incomplete",
                        "Closed Incomplete",
                        "closed_cancelled",
                        "Closed Cancelled",
                        "closed_rejected",
                        "Closed Rejected",
                    ),
                ),
                col("stage", default="requested"),
                col("requested_date", "glide_date"),
                col("price", "decimal", default="0"),
                col("special_instructions", max_length=text),
                col("delivery_address", max_length=text),
            ],
            extends="task",
            prefix="REQ",
        ),
        _table(
            "sc_req_item",
            "Requested Item",
            [
                col("request", "reference", ref="sc_request"),
                col("requested_for", "reference", ref="sys_user"),
                col("cat_item", "reference", ref="sc_cat_item", label="Item"),
                col("quantity", "integer", default="1"),
                col("stage", default="request_approved"),
                col("price", "decimal", default="0"),
            ],
            extends="task",
            prefix="RITM",
        ),
        _table(
            "sc_task",
            "Catalog Task",
            [
                col("request_item", "reference", ref="sc_req_item", label="Request item"),
                col("request", "reference", ref="sc_request"),
            ],
            extends="task",
            prefix="SCTASK",
        ),
        _table(
            "new_call",
            "Call",
            [
                col("caller", "reference", ref="sys_user"),
                col(
                    "call_type",
                    default="general_inquiry",
                    choices=_choices(
                        "general_inquiry",
                        "General Inquiry",
                        "hang_up",
                        "Hang Up",
                        "wrong_number",
                        "Wrong Number",
                        "status_call",
                        "Status Call",
                        "incident",
                        "Incident",
                        "sc_request",
                        "Request",
                    ),
                ),
                col("transferred_to", "reference", ref="task"),
            ],
            extends="task",
            prefix="CALL",
        ),
        _table(
            "interaction",
            "Interaction",
            [
                col("opened_for", "reference", ref="sys_user"),
                col("state", default="new", choices=INTERACTION_STATE),
                col(
                    "type",
                    default="phone",
                    choices=_choices(
                        "chat", "Chat", "phone", "Phone", "walk-up", "Walk-up", "email", "Email"
                    ),
                ),
                col("channel", max_length=80),
                col("context_table", max_length=80),
                col("context_document", "GUID"),
            ],
            extends="task",
            prefix="IMS",
        ),
        _table(
            "sys_journal_field",
            "Journal Entry",
            [
                *system_columns(updates=False),
                col("name", max_length=80, label="Table name"),
                col("element_id", "GUID", label="Element ID"),
                col("element"),
                col("value", max_length=4000),
            ],
        ),
        _table(
            "sys_attachment",
            "Attachment",
            [
                *system_columns(),
                col("file_name", max_length=100, display=True),
                col("table_name", max_length=80),
                col("table_sys_id", max_length=32),
                col("content_type", max_length=100),
                col("size_bytes"),
                col("size_compressed"),
                col("compressed", "boolean", default="true"),
                col("hash", max_length=64),
                col("state", default="available"),
                col("chunk_size_bytes"),
                col("average_image_color"),
                col("image_width"),
                col("image_height"),
            ],
        ),
        _table(
            "sys_db_object",
            "Table",
            [
                *system_columns(),
                col("name", max_length=80),
                col("label", max_length=80, display=True),
                col("super_class", "reference", ref="sys_db_object", label="Extends table"),
                col("is_extendable", "boolean", label="Extensible", default="false"),
                col("access", default="public"),
            ],
        ),
        _table(
            "sys_dictionary",
            "Dictionary Entry",
            [
                *system_columns(),
                col("name", max_length=80, label="Table"),
                col("element", max_length=80, label="Column name", display=True),
                col("column_label", max_length=80),
                col("internal_type", label="Type"),
                col("max_length", "integer"),
                col("reference", max_length=80),
                col("default_value", max_length=512),
                col("mandatory", "boolean", default="false"),
                col("read_only", "boolean", default="false"),
                col("display", "boolean", default="false"),
                col("active", "boolean", default="true"),
            ],
        ),
        _table(
            "sys_choice",
            "Choice",
            [
                *system_columns(),
                col("name", max_length=80, label="Table"),
                col("element", max_length=80),
                col("value", max_length=40),
                col("label", max_length=100, display=True),
                col("sequence", "integer"),
                col("inactive", "boolean", default="false"),
                col("language", default="en"),
            ],
        ),
        _table(
            # The e-mail log; the Email API writes it (see ``email``).
            "sys_email",
            "Email",
            [
                *system_columns(),
                col("type", max_length=40, default="send-ready"),
                col("state", max_length=40, default="ready"),
                col("mailbox", max_length=40, default="outbox"),
                col("recipients", max_length=4000),
                col("copied", max_length=4000),
                col("blind_copied", max_length=4000),
                col("subject", max_length=1000, display=True),
                col("body", "html", max_length=65000),
                col("body_text", max_length=65000),
                col("content_type", max_length=100, default="multipart/mixed"),
                col("importance", max_length=40),
                col("headers", max_length=4000),
                col("target_table", max_length=80),
                col("instance", max_length=32, label="Target"),
                col("user", max_length=100),
                col("error_string", max_length=4000, label="Error"),
            ],
        ),
        _table(
            "sys_number",
            "Number",
            [
                *system_columns(),
                col("category", max_length=80, label="Table", display=True),
                col("prefix"),
                col("number", "integer"),
                col("maximum_digits", "integer", default="7"),
            ],
        ),
    ]


#: Read and write roles of the out-of-box tables. Children inherit from their parent
#: (``incident`` uses ``task``'s). An empty set means any authenticated user; ``admin``
#: passes every check. Tables absent here, and without an ancestor here, fall back to
#: :data:`DEFAULT_READ_ROLES` / :data:`DEFAULT_WRITE_ROLES`.
OOTB_ACLS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "task": (frozenset({"itil"}), frozenset({"itil"})),
    "cmdb_ci": (frozenset({"itil", "asset"}), frozenset({"asset", "itil_admin"})),
    "sys_user": (frozenset(), frozenset({"user_admin"})),
    "sys_user_group": (frozenset(), frozenset({"user_admin"})),
    "sys_user_grmember": (frozenset(), frozenset({"user_admin"})),
    "sc_cat_item": (frozenset(), frozenset({"catalog_admin"})),
    # Rows of these two are further filtered by the parent record's table (see state).
    "sys_journal_field": (frozenset(), frozenset({"admin"})),
    "sys_attachment": (frozenset(), frozenset({"admin"})),
    "sys_db_object": (frozenset(), frozenset({"admin"})),
    "sys_dictionary": (frozenset(), frozenset({"admin"})),
    "sys_choice": (frozenset(), frozenset({"admin"})),
    "sys_number": (frozenset(), frozenset({"admin"})),
    "sys_email": (frozenset({"admin"}), frozenset({"admin"})),
}
