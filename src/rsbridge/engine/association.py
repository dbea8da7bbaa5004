"""Which ticket a session belongs to, from the integration's association rules.

``ticket_from`` lists where to look, first match wins:

* ``external_key``: the session's external key (set at key generation, e.g. a ticket
  number or id);
* ``custom:<code_name>``: a custom session attribute (e.g. ``custom:snow_task_id``);
* ``rep_survey:<question>``: a representative exit-survey answer (e.g. ``task_number``).
"""

from __future__ import annotations

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import AssociationConfig


def ticket_reference(session: SupportSession, rules: AssociationConfig) -> str | None:
    """The ticket id or number the session points at, or None."""
    for source in rules.ticket_from:
        kind, _, arg = source.partition(":")
        value: str | None = None
        if kind == "external_key":
            value = session.external_key
        elif kind == "custom":
            value = next((a.value for a in session.custom_attributes if a.code_name == arg), None)
        elif kind == "rep_survey":
            value = next((a for s in session.rep_surveys if (a := s.answer(arg)) is not None), None)
        if value and value.strip():
            return value.strip()
    return None
