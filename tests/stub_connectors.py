"""A connector base for tests that only exercise settings and ``check()``."""

from __future__ import annotations

from collections.abc import Mapping

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import (
    Connector,
    NoteDelivery,
    SessionDelivery,
    SurveyDelivery,
    Ticket,
    WriteResult,
)


class CheckOnlyConnector(Connector):
    """Every ticket method raises NotImplementedError; subclasses set ``check()``."""

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        raise NotImplementedError

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        raise NotImplementedError

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        raise NotImplementedError

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        raise NotImplementedError

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        raise NotImplementedError
