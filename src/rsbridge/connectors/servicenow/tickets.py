"""Tickets in ServiceNow: find one by sys_id or number, create one (auto-create), look up
the records a mapping or a reference names.

:class:`TicketsMixin` is the ground floor of
:class:`~rsbridge.connectors.servicenow.connector.ServiceNowConnector`: it declares the
parts the connector's constructor sets up (client, schema, parsed options), which every
other job uses too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import Connector, Ticket
from rsbridge.connectors.servicenow.client import Read, Record, ServiceNowClient
from rsbridge.connectors.servicenow.records import journal_safe, stable_id
from rsbridge.connectors.servicenow.schema import Schema
from rsbridge.connectors.servicenow.settings import Lookup, Options, session_value
from rsbridge.errors import ConnectorPermanentError, TicketNotFoundError

# Named as before the connector was split into modules (log filters and readers may know it).
log = logging.getLogger("rsbridge.connectors.servicenow.connector")
SYS_ID = re.compile(r"[0-9a-f]{32}")
"""What a sys_id looks like (a reference of this shape is looked up by sys_id)."""
_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,79}")

# Association sources that name one kind of record (the vendor's related lists).
_SOURCE_TABLES = {"custom:snow_call_id": "new_call", "custom:snow_interaction_id": "interaction"}
_NUMBER = re.compile(r"([A-Za-z]+)(\d+)")


class TicketsMixin(Connector):
    """Finding, creating and looking up records; the connector's parts, for every job."""

    # Set by ServiceNowConnector.__init__.
    client: ServiceNowClient
    schema: Schema
    options: Options
    base_url: str
    _c: Any  # the validated settings, read by name

    def ticket_link(self, ticket_id: str, detail: Mapping[str, str]) -> str | None:
        """The record's form on the instance: ``/nav_to.do?uri=<table>.do?sys_id=<id>``
        (the vendor guide's own links take this form); ``task`` when the table is unknown."""
        kind = detail.get("kind", "")
        table = kind if _TABLE_NAME.fullmatch(kind) else "task"
        return f"{self.base_url}/nav_to.do?uri={table}.do?sys_id={quote(ticket_id, safe='')}"

    def _ticket(self, record: Record, table: str) -> Ticket:
        kind = str(record.get("sys_class_name") or table)
        sys_id = str(record["sys_id"])
        return Ticket(
            id=sys_id,
            number=str(record.get("number") or "") or None,
            url=f"{self.base_url}/nav_to.do?uri={kind}.do?sys_id={sys_id}",
            kind=kind,
        )

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """A task (incident, change, request, problem, call, interaction...) by sys_id
        or by record number with a configured prefix.

        ``custom:snow_call_id`` must name a call and ``custom:snow_interaction_id`` an
        interaction (the vendor's related lists): a reference to another kind of record
        from those attributes is refused, as a customer could have typed it.
        """
        read = self._find_read(reference, source)
        what = f"{'read' if read.sys_id is not None else 'query'} {read.table}"
        answers = await self.client.read([read], what=what)
        return self._found(read, answers[read], reference, source)

    def _find_read(self, reference: str, source: str) -> Read:
        """The read that finds the ticket ``reference`` names (TicketNotFoundError for a
        reference that is neither a sys_id nor a number of a known kind)."""
        ref = reference.strip()
        fields = ("sys_id", "number", "sys_class_name")
        wanted = _SOURCE_TABLES.get(source, "task")
        if SYS_ID.fullmatch(ref):
            return Read(wanted, ref, fields=fields)
        match = _NUMBER.fullmatch(ref)
        table = self.options.prefixes.get(match.group(1).upper()) if match else None
        if table is None:
            known = ", ".join(self.options.prefixes)
            raise TicketNotFoundError(
                f"{ref!r} is neither a sys_id nor a record number with a known prefix "
                f"({known}; add more with the number_prefixes setting)"
            )
        if wanted != "task" and table != wanted:
            raise TicketNotFoundError(f"{source} must name a {wanted}, not a {table} ({ref!r})")
        return Read(table, query=f"number={ref.upper()}", fields=fields, limit=1)

    def _found(self, read: Read, answer: Any, reference: str, source: str) -> Ticket:
        """The ticket of :meth:`_find_read`'s answer, or TicketNotFoundError."""
        ref = reference.strip()
        if read.sys_id is not None:
            if not isinstance(answer, dict):
                raise TicketNotFoundError(f"ServiceNow has no {read.table} with sys_id {ref}")
            return self._ticket(answer, read.table)
        if not answer:
            raise TicketNotFoundError(f"ServiceNow has no {read.table} numbered {ref.upper()}")
        return self._ticket(answer[0], read.table)

    async def _ticket_table(self, ticket: Ticket) -> str:
        if ticket.kind:
            return ticket.kind
        record = await self.client.get("task", ticket.id, fields=("sys_class_name",))
        return str(record.get("sys_class_name") or "task") if record else "task"

    def created_tickets_trusted(self) -> bool:
        """Not when a dynamic lookup may set the caller (or any person) from what the
        customer typed: the customer chose who gets the ticket's comments."""
        return not self.options.dynamic_lookups

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """Create the configured record type with the field mappings; once per ``key``
        (the record's sys_id is derived from it)."""
        table = str(self._c.create_table)
        sys_id = stable_id(key, "ticket")
        existing = await self.client.get(
            table, sys_id, fields=("sys_id", "number", "sys_class_name")
        )
        if existing is not None:
            return self._ticket(existing, table)
        values: dict[str, str] = {
            "short_description": _default_description(session),
            "correlation_id": f"rs-{session.lsid}",
        }
        values.update(fields)
        for field_name, source in self.options.dynamic.items():
            value = session_value(session, source)
            if value:
                # The field may be a journal field (work_notes, comments).
                values[field_name] = journal_safe(value)
        for lookup in self.options.lookups:
            values[lookup.field] = await self._lookup(lookup, lookup.value)
        for lookup in self.options.dynamic_lookups:
            found = await self._dynamic_lookup(lookup, session)
            if found is not None:
                values[lookup.field] = found
        record = await self.client.insert(table, {"sys_id": sys_id, **values})
        return self._ticket(record, table)

    async def _find(self, lookup: Lookup, value: str) -> str | None:
        found = await self.client.query(
            lookup.table, f"{lookup.column}={query_value(value)}", fields=("sys_id",), limit=1
        )
        return str(found[0]["sys_id"]) if found else None

    async def _lookup(self, lookup: Lookup, value: str, *, what: str = "") -> str:
        """A configured value's record: not finding it is the configuration's mistake."""
        found = await self._find(lookup, value)
        if found is None:
            raise ConnectorPermanentError(
                f"ServiceNow auto-create: no {lookup.table} record has {lookup.column} = "
                f"{value!r} ({what}mapping for {lookup.field})"
            )
        return found

    async def _dynamic_lookup(self, lookup: Lookup, session: SupportSession) -> str | None:
        """The record a session value names; else the fallback's; else None (field empty).

        The session value comes from the customer (an address typed on a portal): one
        that names nothing must not stop the ticket, nor the import that needs it.
        Failures of the instance itself stay retryable (the client raises them).
        """
        value = session_value(session, lookup.value)
        found = await self._find(lookup, value) if value else None
        if found is not None:
            return found
        if value:
            log.warning(
                "session %s: auto-create: the session's %s matches no %s.%s (mapping for %s); %s",
                session.lsid,
                lookup.value,
                lookup.table,
                lookup.column,
                lookup.field,
                "using the fallback" if lookup.fallback is not None else "field left empty",
            )
        if lookup.fallback is None:
            return None
        return await self._lookup(lookup, lookup.fallback, what="fallback of the ")

    def live_session_attributes(self, ticket: Ticket) -> dict[str, str]:
        """``snow_task_id`` (``snow_call_id``, ``snow_interaction_id``) = the sys_id."""
        code = {"new_call": "snow_call_id", "interaction": "snow_interaction_id"}.get(
            ticket.kind or "", "snow_task_id"
        )
        return {code: ticket.id}

    async def _record_id(self, table: str, value: str, by: str) -> str | None:
        """The sys_id of the ``table`` record whose sys_id or ``by`` is ``value``."""
        column = "sys_id" if SYS_ID.fullmatch(value) else by
        found = await self.client.query(
            table, f"{column}={query_value(value)}", fields=("sys_id",), limit=1
        )
        return str(found[0]["sys_id"]) if found else None


def query_value(value: str) -> str:
    """A value safe inside an encoded query: ``^`` would start a new condition."""
    return value.replace("^", "")


def _default_description(session: SupportSession) -> str:
    who = session_value(session, "customer_name") or "a customer"
    issue = session_value(session, "issue")
    return f"Remote support session with {who}" + (f": {issue}" if issue else "")
