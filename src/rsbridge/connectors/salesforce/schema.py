"""The Salesforce objects that hold imported sessions: logical model, API names, limits.

A session becomes one record of the *session* object and records of seven child objects
(representatives, customers, teams, events, custom attributes, recordings, survey
answers). The session looks up the Case it belongs to (a **Lookup**, not a
master-detail: a session may be imported without a Case, "Import External Sessions"),
which is what gives the Case its "Remote Support Sessions" related list. Every child is
the **detail of a master-detail** relationship to the session: it is shared with the
session and deleted with it, and it can be upserted with a reference to the session's
external id (``"Session__r": {"Import_Key__c": ...}``) in the same call as the session.

Every object has an ``Import_Key__c`` field: an external id, unique, that the connector
derives from (appliance, integration, lsid, place in the session) and upserts by
(``PATCH /sobjects/<object>/Import_Key__c/<key>``), so a replay writes the same records.
The session also keeps ``LSID__c`` (an external id, indexed but not unique: two
integrations may import the same session into one org).

The User object gets one field, ``RS_Username__c`` ("BeyondTrust Username"), that maps a
Salesforce user to a representative when the usernames differ (the vendor guide's "Add
Remote Support Username to User Layout").

Object and field API names have defaults and can be renamed per integration, like
ServiceNow's ``tables``/``fields``: ``objects = ["session=Acme_Session__c"]``,
``fields = ["session.lsid=Session_Id__c"]`` (:meth:`Schema.build`). Names are checked
against Salesforce's rules for custom API names: letters, digits and underscores,
starting with a letter, no two underscores in a row, not ending with one, at most 40
characters before the ``__c`` suffix.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from rsbridge.connectors.base import Setting
from rsbridge.errors import ConfigurationError

FieldType = Literal[
    "Text", "LongTextArea", "Number", "Checkbox", "DateTime", "Url", "Lookup", "MasterDetail"
]

TEXT_MAX: Final = 255
"""Longest Text field (characters)."""
LONG_TEXT_MIN: Final = 256
LONG_TEXT_MAX: Final = 131_072
"""Longest LongTextArea field (characters)."""
URL_MAX: Final = 255
"""Longest value of a Url field (characters)."""
NAME_MAX: Final = 40
"""Longest custom object, field or relationship name, without its ``__c`` suffix."""
LABEL_MAX: Final = 40
"""Longest object or field label."""
NUMBER_PRECISION_MAX: Final = 18

_STEM = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Field:
    """A custom field: logical name (used in code), default API name, type and label."""

    logical: str
    name: str
    type: FieldType
    label: str
    description: str = ""
    length: int | None = None
    """Text and LongTextArea: the most characters the field holds."""
    precision: int | None = None
    """Number: total digits."""
    reference: str | None = None
    """Lookup and MasterDetail: a logical object of ours, or a Salesforce object (Case)."""
    relationship_label: str | None = None
    """Lookup and MasterDetail: the title of the related list on the referenced object."""
    external_id: bool = False
    unique: bool = False

    @property
    def max_chars(self) -> int | None:
        """The most characters a value may have (None: not a text value)."""
        if self.type == "Url":
            return URL_MAX
        return self.length


@dataclass(frozen=True, slots=True)
class SObject:
    """A custom object (or a standard one that gets custom fields)."""

    logical: str
    name: str
    label: str
    plural_label: str
    fields: tuple[Field, ...]
    description: str = ""
    number_format: str = ""
    """The display format of the auto-number Name field."""
    standard: bool = False
    """A standard object (User): only its custom fields are ours, its name is fixed."""


def _text(
    logical: str, name: str, label: str, length: int = TEXT_MAX, description: str = ""
) -> Field:
    kind: FieldType = "Text" if length <= TEXT_MAX else "LongTextArea"
    return Field(logical, name, kind, label, description, length=length)


def _number(logical: str, name: str, label: str, precision: int = 18) -> Field:
    return Field(logical, name, "Number", label, precision=precision)


def _flag(logical: str, name: str, label: str) -> Field:
    return Field(logical, name, "Checkbox", label)


def _when(logical: str, name: str, label: str) -> Field:
    return Field(logical, name, "DateTime", label)


def _url(logical: str, name: str, label: str) -> Field:
    return Field(logical, name, "Url", label)


_KEY_DESCRIPTION = (
    "rsbridge's idempotency key: derived from the appliance, the integration, the session "
    "and the record's place in it. rsbridge upserts by it."
)


def _key() -> Field:
    return Field(
        "key",
        "Import_Key__c",
        "Text",
        "Import Key",
        description=_KEY_DESCRIPTION,
        length=80,
        external_id=True,
        unique=True,
    )


def _session_ref(relationship_label: str) -> Field:
    return Field(
        "session",
        "Session__c",
        "MasterDetail",
        "Session",
        reference="session",
        relationship_label=relationship_label,
    )


DEFAULT_OBJECTS: tuple[SObject, ...] = (
    SObject(
        "session",
        "RS_Session__c",
        "Remote Support Session",
        "Remote Support Sessions",
        (
            _key(),
            Field(
                "lsid",
                "LSID__c",
                "Text",
                "Session ID",
                description="The appliance's session id (lsid).",
                length=64,
                external_id=True,
            ),
            _text("appliance", "Appliance__c", "Appliance", 100),
            _text("import_state", "Import_State__c", "Import State", 40),
            _text("session_type", "Session_Type__c", "Session Type", 40),
            Field(
                "case",
                "Case__c",
                "Lookup",
                "Case",
                description="The Case the session belongs to (empty for external sessions).",
                reference="Case",
                relationship_label="Remote Support Sessions",
            ),
            _when("start_time", "Start_Time__c", "Start Time"),
            _when("end_time", "End_Time__c", "End Time"),
            _number("duration", "Duration__c", "Duration (seconds)"),
            _text("external_key", "External_Key__c", "External Key", 1024),
            _text("public_site", "Public_Site__c", "Public Site"),
            _text("jumpoint", "Jumpoint__c", "Jumpoint"),
            _text("jump_group", "Jump_Group__c", "Jump Group"),
            _text("primary_rep", "Primary_Representative__c", "Primary Representative"),
            Field(
                "primary_rep_user",
                "Primary_Rep_User__c",
                "Lookup",
                "Primary Representative User",
                reference="User",
                relationship_label="Remote Support Sessions",
            ),
            _text("primary_customer", "Primary_Customer__c", "Primary Customer"),
            _number("file_transfers", "File_Transfers__c", "File Transfers", 9),
            _url("chat_url", "Chat_Transcript_URL__c", "Chat Transcript URL"),
            _url("recording_url", "Recording_URL__c", "Recording URL"),
        ),
        description="A BeyondTrust Remote Support session imported by rsbridge.",
        number_format="RSS-{0000000}",
    ),
    SObject(
        "rep",
        "RS_Session_Rep__c",
        "Remote Support Session Rep",
        "Remote Support Session Reps",
        (
            _key(),
            _session_ref("Representatives"),
            _text("username", "Username__c", "Username"),
            _text("display_name", "Display_Name__c", "Display Name"),
            _text("private_display_name", "Private_Display_Name__c", "Private Display Name"),
            _text("rep_id", "Rep_ID__c", "Rep ID", 40),
            Field(
                "user",
                "User__c",
                "Lookup",
                "User",
                reference="User",
                relationship_label="Remote Support Session Reps",
            ),
            _text("public_ip", "Public_IP__c", "Public IP", 64),
            _text("private_ip", "Private_IP__c", "Private IP", 64),
            _text("hostname", "Hostname__c", "Hostname"),
            _text("os", "Operating_System__c", "Operating System"),
            _flag("primary", "Primary__c", "Primary"),
            _flag("owner", "Session_Owner__c", "Session Owner"),
            _flag("invited", "Invited__c", "Invited"),
            _number("seconds_involved", "Seconds_Involved__c", "Seconds Involved"),
        ),
        number_format="RSR-{0000000}",
    ),
    SObject(
        "customer",
        "RS_Session_Customer__c",
        "Remote Support Session Customer",
        "Remote Support Session Customers",
        (
            _key(),
            _session_ref("Customers"),
            _text("name", "Customer_Name__c", "Name"),
            _text("username", "Username__c", "Username"),
            _text("company", "Company__c", "Company"),
            _text("details", "Details__c", "Details", 4000),
            _text("public_ip", "Public_IP__c", "Public IP", 64),
            _text("private_ip", "Private_IP__c", "Private IP", 64),
            _text("hostname", "Hostname__c", "Hostname"),
            _text("os", "Operating_System__c", "Operating System"),
            _flag("primary", "Primary__c", "Primary"),
        ),
        number_format="RSC-{0000000}",
    ),
    SObject(
        "team",
        "RS_Session_Team__c",
        "Remote Support Session Team",
        "Remote Support Session Teams",
        (
            _key(),
            _session_ref("Teams"),
            _text("name", "Team_Name__c", "Name"),
            _text("team_id", "Team_ID__c", "Team ID", 40),
        ),
        number_format="RST-{0000000}",
    ),
    SObject(
        "event",
        "RS_Session_Event__c",
        "Remote Support Session Event",
        "Remote Support Session Events",
        (
            _key(),
            _session_ref("Events"),
            _number("sequence", "Sequence__c", "Sequence", 9),
            _when("time", "Event_Time__c", "Time"),
            _text("event_type", "Event_Type__c", "Event Type", 100),
            _text("performed_by", "Performed_By__c", "Performed By"),
            _text("destination", "Destination__c", "Destination"),
            _text("body", "Body__c", "Body", 32_768),
            _text("filename", "File_Name__c", "File Name"),
            _number("filesize", "File_Size__c", "File Size"),
            _text("data", "Data__c", "Data", 32_768),
        ),
        number_format="RSE-{0000000}",
    ),
    SObject(
        "attribute",
        "RS_Session_Attribute__c",
        "Remote Support Session Attribute",
        "Remote Support Session Attributes",
        (
            _key(),
            _session_ref("Custom Attributes"),
            _text("code_name", "Code_Name__c", "Code Name", 100),
            _text("display_name", "Display_Name__c", "Display Name"),
            _text("value", "Value__c", "Value", 1024),
        ),
        description="A custom attribute (custom field) of a session.",
        number_format="RSA-{0000000}",
    ),
    SObject(
        "recording",
        "RS_Session_Recording__c",
        "Remote Support Session Recording",
        "Remote Support Session Recordings",
        (
            _key(),
            _session_ref("Recordings"),
            _text("kind", "Kind__c", "Kind", 40),
            _number("instance", "Instance__c", "Instance", 9),
            _url("view_url", "View_URL__c", "View URL"),
            _url("download_url", "Download_URL__c", "Download URL"),
        ),
        number_format="RSV-{0000000}",
    ),
    SObject(
        "survey",
        "RS_Session_Survey__c",
        "Remote Support Session Survey Answer",
        "Remote Support Session Survey Answers",
        (
            _key(),
            _session_ref("Survey Answers"),
            _text("kind", "Survey_Kind__c", "Survey", 40),
            _number("survey", "Survey_Number__c", "Survey Number", 9),
            _text("question", "Question__c", "Question"),
            _text("answer", "Answer__c", "Answer", 32_768),
        ),
        description="One answer of a customer or representative exit survey.",
        number_format="RSQ-{0000000}",
    ),
    SObject(
        "case",
        "Case",
        "Case",
        "Cases",
        (
            Field(
                "key",
                "RS_Import_Key__c",
                "Text",
                "rsbridge Import Key",
                description=(
                    "Set on Cases rsbridge creates for sessions (auto-create): an external id "
                    "it upserts by, so a repeated creation names the same Case."
                ),
                length=80,
                external_id=True,
                unique=True,
            ),
        ),
        standard=True,
    ),
    SObject(
        "user",
        "User",
        "User",
        "Users",
        (
            _text(
                "rep_username",
                "RS_Username__c",
                "BeyondTrust Username",
                description=(
                    "The user's representative username on the BeyondTrust appliance, "
                    "when it differs from the Salesforce username."
                ),
            ),
        ),
        standard=True,
    ),
)

OBJECTS_BY_LOGICAL: Final[Mapping[str, SObject]] = {o.logical: o for o in DEFAULT_OBJECTS}


def custom_name_problem(name: str) -> str | None:
    """Why ``name`` is not a custom object or field API name (None when it is one)."""
    if not name.endswith("__c"):
        return "does not end with __c"
    stem = name[:-3]
    if not _STEM.fullmatch(stem):
        return "must start with a letter and hold only letters, digits and underscores"
    if "__" in stem:
        return "has two underscores in a row (a namespace prefix is not supported)"
    if stem.endswith("_"):
        return "ends with an underscore before __c"
    if len(stem) > NAME_MAX:
        return f"is longer than {NAME_MAX} characters before __c"
    return None


@dataclass(frozen=True, slots=True)
class Schema:
    """The object and field API names one integration uses: defaults with its renames."""

    objects: Mapping[str, str] = field(default_factory=lambda: _default_objects())
    """Logical object name to API name."""
    fields: Mapping[tuple[str, str], str] = field(default_factory=lambda: _default_fields())
    """(logical object, logical field) to API name."""

    @classmethod
    def build(cls, objects: Iterable[str] = (), fields: Iterable[str] = ()) -> Schema:
        """The schema with ``objects`` (``<object>=<API name>``) and ``fields``
        (``<object>.<field>=<API name>``) renames applied.

        A rename that names no known object or field, or an API name Salesforce would
        refuse, or two objects (two fields of one object) ending up with one name, raises
        ConfigurationError saying which.
        """
        names = _default_objects()
        columns = _default_fields()
        for item in objects:
            logical, sep, name = (part.strip() for part in item.partition("="))
            if not sep or logical not in names:
                custom = [o.logical for o in DEFAULT_OBJECTS if not o.standard]
                raise ConfigurationError(
                    f"objects: {item!r} is not <object>=<API name> with <object> one of "
                    f"{', '.join(custom)}"
                )
            if OBJECTS_BY_LOGICAL[logical].standard:
                raise ConfigurationError(
                    f"objects: {item!r}: {logical} is the standard {names[logical]} object "
                    "and keeps its name (rename its fields instead)"
                )
            problem = custom_name_problem(name)
            if problem:
                raise ConfigurationError(f"objects: {item!r}: {name!r} {problem}")
            names[logical] = name
        for item in fields:
            target, sep, name = (part.strip() for part in item.partition("="))
            obj, dot, logical = target.partition(".")
            if not sep or not dot or (obj, logical) not in columns:
                raise ConfigurationError(
                    f"fields: {item!r} is not <object>.<field>=<API name> naming a known "
                    "field (see docs/salesforce.md for the list)"
                )
            problem = custom_name_problem(name)
            if problem:
                raise ConfigurationError(f"fields: {item!r}: {name!r} {problem}")
            columns[(obj, logical)] = name
        _no_duplicates(names, columns)
        return cls(names, columns)

    def object(self, logical: str) -> str:
        """The API name of object ``logical``."""
        return self.objects[logical]

    def field(self, obj: str, logical: str) -> str:
        """The API name of field ``logical`` of object ``obj``."""
        return self.fields[(obj, logical)]

    def record(self, obj: str, values: Mapping[str, builtins.object]) -> dict[str, builtins.object]:
        """A record of ``obj`` with logical field names turned into API names."""
        return {self.field(obj, k): v for k, v in values.items()}

    def reference_target(self, ref: Field) -> str:
        """The API name of the object a Lookup or MasterDetail field points to."""
        assert ref.reference is not None
        if ref.reference in OBJECTS_BY_LOGICAL:
            return self.object(ref.reference)
        return ref.reference

    def relationship_name(self, obj: str, ref: Field) -> str:
        """The child relationship name of reference field ``ref`` of ``obj``.

        The parent side of a relationship (the Case's related list, a SOQL subquery
        ``SELECT ... (SELECT ... FROM RS_Sessions__r) FROM Case``) uses this name; it must
        be unique among the parent's child relationships, so it is derived from the
        child object's API name: ``RS_Sessions`` for sessions on Case, and the field's
        name too for the User lookups (two objects of ours look up User).
        """
        stem = self.object(obj)[: -len("__c")]
        if ref.reference == "User":
            stem = f"{stem}_{self.field(obj, ref.logical)[: -len('__c')]}"
        else:
            stem = f"{stem}s"
        return stem[:NAME_MAX].rstrip("_")


def _default_objects() -> dict[str, str]:
    return {o.logical: o.name for o in DEFAULT_OBJECTS}


def _default_fields() -> dict[tuple[str, str], str]:
    return {(o.logical, f.logical): f.name for o in DEFAULT_OBJECTS for f in o.fields}


def _no_duplicates(names: Mapping[str, str], columns: Mapping[tuple[str, str], str]) -> None:
    """Salesforce API names are case-insensitive: two objects, or two fields of one object,
    must not end up with the same name."""
    seen: dict[str, str] = {}
    for logical, name in names.items():
        other = seen.setdefault(name.lower(), logical)
        if other != logical:
            raise ConfigurationError(f"objects: {other} and {logical} would both be named {name!r}")
    by_object: dict[tuple[str, str], str] = {}
    for (obj, logical), name in columns.items():
        other = by_object.setdefault((obj, name.lower()), logical)
        if other != logical:
            raise ConfigurationError(
                f"fields: {obj}.{other} and {obj}.{logical} would both be named {name!r}"
            )


RENAME_SETTINGS: Final = (
    Setting(
        "objects",
        "list",
        "Object renames, `<object>=<API name>` (objects: session, rep, customer, team, "
        "event, attribute, recording, survey).",
        default=[],
    ),
    Setting("fields", "list", "Field renames, `<object>.<field>=<API name>`.", default=[]),
)
"""The connector's ``objects`` and ``fields`` settings, the input of :meth:`Schema.build`."""
