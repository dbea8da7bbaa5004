"""The session forms rsbridge defines on the AR System server, as one model.

Everything that knows these forms reads them from here: the connector (form and field
names it writes), ``rsbridge check`` (what must exist), the definition file an AR
administrator imports (``rsbridge remedy forms``) and the simulated AR server, which loads
the same definitions (:func:`sim_definitions`) so tests exercise what users install.

Field ids are in AR's range for customer-defined fields (536870913 and up); AR reserves
lower ids for its own core fields and BMC's applications. Every form is a regular form
with the AR core fields (1-8) and a unique ``Row Key`` (``Session Key`` on the session
form) that makes each write an upsert: rsbridge searches by the key before it creates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal["char", "integer", "datetime", "selection"]

LONG = 0
"""``length`` of a char field with no limit (AR stores it as a CLOB)."""


@dataclass(frozen=True)
class FormField:
    """One field of a session form: AR id, name, type, and what the import puts in it."""

    id: int
    name: str
    type: FieldType = "char"
    length: int = 255
    """Characters, for ``char`` fields; :data:`LONG` for unlimited."""
    required: bool = False
    options: Mapping[str, int] = field(default_factory=dict)
    """Selection fields: display string to stored code, in display order."""
    help: str = ""


@dataclass(frozen=True)
class SessionForm:
    """A form rsbridge defines: its name, key field and fields (core fields implied)."""

    logical: str
    """How the code names it: ``session``, ``participant``, ``events``, ``survey``."""
    name: str
    key: str
    """The field whose value identifies an entry for once-only writes (unique index)."""
    fields: tuple[FormField, ...]
    help: str = ""

    def field(self, name: str) -> FormField:
        """A field by name; KeyError names the form when there is none."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.name} has no field {name!r}")


IMPORT_STATE = {"Importing": 0, "Complete": 1}
ROLE = {"Representative": 0, "Customer": 1}
SURVEY_KIND = {"Customer": 0, "Representative": 1}
YES_NO = {"No": 0, "Yes": 1}

SESSION_KEY = "Session Key"
ROW_KEY = "Row Key"
EVENTS_PER_ROW = 100
"""Events a ``RSB:Session Event`` entry holds (one row per event would cost one AR call each)."""


def _common(base: int) -> tuple[FormField, ...]:
    """The fields every child form starts with: its row key and its session."""
    return (
        FormField(base, ROW_KEY, length=80, required=True, help="Unique: one entry per key."),
        FormField(base + 1, SESSION_KEY, length=80, required=True, help="The session's key."),
        FormField(base + 2, "Session ID", length=64, help="The appliance's LSID."),
        FormField(base + 3, "Ticket Number", length=40, help="Incident, change or request."),
    )


SESSION = SessionForm(
    "session",
    "RSB:Session",
    SESSION_KEY,
    (
        FormField(536870913, SESSION_KEY, length=80, required=True, help="Unique import key."),
        FormField(536870914, "Session ID", length=64, required=True, help="The LSID."),
        FormField(536870915, "Appliance", length=128, help="rsbridge's appliance id."),
        FormField(536870916, "Integration", length=128, help="rsbridge's integration name."),
        FormField(536870917, "Ticket Number", length=40, help="Incident, change or request."),
        FormField(536870918, "Ticket Form", length=80, help="The form of the ticket."),
        FormField(536870919, "Start Time", "datetime"),
        FormField(536870920, "End Time", "datetime"),
        FormField(536870921, "Duration", "integer", help="Seconds."),
        FormField(536870922, "File Count", "integer", help="Files transferred."),
        FormField(536870923, "Representative", help="The primary representative."),
        FormField(536870924, "Customer", help="The primary customer."),
        FormField(536870925, "Public Site", help="The public portal the session came through."),
        FormField(536870926, "External Key", help="The session's external key."),
        FormField(536870927, "Details", length=LONG, help="The rendered session report."),
        FormField(536870928, "Import State", "selection", options=IMPORT_STATE),
        FormField(536870929, "Work Log IDs", help="Work info entries written for the session."),
        FormField(536870930, "Association", length=80, help="How the ticket was chosen."),
    ),
    help="One entry per session: the BeyondTrust Sessions table on the incident.",
)

PARTICIPANT = SessionForm(
    "participant",
    "RSB:Session Participant",
    ROW_KEY,
    (
        *_common(536871013),
        FormField(536871017, "Role", "selection", required=True, options=ROLE),
        FormField(536871018, "Name"),
        FormField(536871019, "Username", length=128, help="Representatives' appliance login."),
        FormField(536871020, "Primary", "selection", options=YES_NO),
        FormField(536871021, "Host", help="The customer's computer name."),
        FormField(536871022, "Public IP", length=64),
        FormField(536871023, "Private IP", length=64),
        FormField(536871024, "Operating System"),
        FormField(536871025, "Seconds Involved", "integer"),
    ),
    help="One entry per representative and customer of a session.",
)

EVENTS = SessionForm(
    "events",
    "RSB:Session Event",
    ROW_KEY,
    (
        *_common(536871113),
        FormField(536871117, "First Sequence", "integer", required=True),
        FormField(536871118, "Last Sequence", "integer"),
        FormField(536871119, "First Time", "datetime"),
        FormField(536871120, "Last Time", "datetime"),
        FormField(536871121, "Events", length=LONG, help="One line per event, in order."),
    ),
    help=f"A session's events, up to {EVENTS_PER_ROW} per entry, in sequence order.",
)

SURVEY = SessionForm(
    "survey",
    "RSB:Session Survey",
    ROW_KEY,
    (
        *_common(536871213),
        FormField(536871217, "Kind", "selection", required=True, options=SURVEY_KIND),
        FormField(536871218, "Submitted", "datetime"),
        FormField(536871219, "Answers", length=LONG, help="One line per question."),
    ),
    help="One entry per customer or representative exit survey.",
)

SESSION_FORMS: tuple[SessionForm, ...] = (SESSION, PARTICIPANT, EVENTS, SURVEY)

PANEL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Session ID", "COL_Col_Session_ID"),
    ("Start Time", "COL_Col_Start_Time"),
    ("End Time", "COL_Col_End_Time"),
    ("Duration", "COL_Col_Duration"),
    ("File Count", "COL_Col_File_Count"),
    ("Representative", "COL_Col_Representative"),
)
"""The incident panel's table columns (the seed's BeyondTrust Sessions panel), each a
field of ``RSB:Session``, with the vendor's column name it stands for."""


def sim_definitions(forms: tuple[SessionForm, ...] = SESSION_FORMS) -> list[dict[str, Any]]:
    """The forms as :func:`rsbridge.sim.remedy.load_forms` reads them: the definition file
    an administrator imports (``rsbridge remedy forms``), read back by the simulator, so the
    demo and the tests run against what users install."""
    # Imported here: only the demo and tests call this, and the connector stays sim-free.
    from rsbridge.connectors.remedy.definition import definition_text
    from rsbridge.sim.remedy.definition_file import parse_definition

    return parse_definition(definition_text(forms))
