"""What the technician and customer actions (:mod:`rsbridge.actions`) ask of ServiceNow:
a task's context (state, assignee, group, caller, CI), a user's appliance username, a
configuration item, the rep-console custom links, and the session-key e-mail through the
instance (``key_mail = "instance"``).
"""

from __future__ import annotations

import html
import logging

from rsbridge.connectors.base import ConfigurationItem, CustomLink, Ticket, TicketContext
from rsbridge.connectors.servicenow.settings import CALLER_FIELDS
from rsbridge.connectors.servicenow.tickets import SYS_ID, TicketsMixin, query_value
from rsbridge.connectors.text import is_email_address
from rsbridge.errors import ConnectorPermanentError, TicketNotFoundError

log = logging.getLogger(__name__)

MAIL_MARKER_HEADER = "X-Rsbridge-Request"
"""The e-mail header that ties a key e-mail to the action request that sent it."""


class ActionsMixin(TicketsMixin):
    """``ticket_context``, ``rep_username``, ``find_configuration_item``, ``custom_links``."""

    async def ticket_context(self, reference: str) -> TicketContext:
        """The task with its state, assignee, group, caller and CI (for actions)."""
        ticket = await self.find_ticket(reference)
        table = ticket.kind or "task"
        record = await self.client.get(table, ticket.id) or {}
        state = str(record.get("state") or "") or None
        closed_states = {str(s) for s in self._c.closed_states}
        # Fail closed: a state the integration user cannot read (a field ACL, a record
        # hidden in its own table) must not let a key be made for a closed task.
        closed = (
            state is None
            or state in closed_states
            or f"{table}={state}" in closed_states
            or str(record.get("active") or "") == "false"
        )
        assigned_rep = None
        if record.get("assigned_to"):
            user = await self.client.get("sys_user", str(record["assigned_to"]))
            if user:
                assigned_rep = str(user.get(self._c.user_match_field) or "") or None
        assigned_team = None
        if record.get("assignment_group"):
            group = await self.client.get(
                "sys_user_group", str(record["assignment_group"]), fields=("name",)
            )
            assigned_team = str(group.get("name") or "") or None if group else None
        caller_name = caller_email = None
        caller_id = record.get(CALLER_FIELDS.get(table, "opened_by")) or record.get("opened_by")
        if caller_id:
            caller = await self.client.get("sys_user", str(caller_id), fields=("name", "email"))
            if caller:
                caller_name = str(caller.get("name") or "") or None
                caller_email = str(caller.get("email") or "") or None
        ci = None
        if record.get("cmdb_ci"):
            ci = await self._configuration_item(str(record["cmdb_ci"]))
        attributes = {
            **self.live_session_attributes(ticket),
            "external_key": ticket.number or ticket.id,
        }
        if ci is not None:
            attributes["snow_cmdb_ci_id"] = ci.id
        return TicketContext(
            ticket=ticket,
            state=state,
            closed=closed,
            assigned_rep=assigned_rep,
            assigned_team=assigned_team,
            caller_name=caller_name,
            caller_email=caller_email,
            configuration_item=ci,
            session_attributes=attributes,
        )

    async def rep_username(self, user: str) -> str | None:
        """The appliance username (``user_match_field``) of a ServiceNow user given by
        user_name or sys_id."""
        field_name = str(self._c.user_match_field)
        query = f"sys_id={user}" if SYS_ID.fullmatch(user) else f"user_name={query_value(user)}"
        found = await self.client.query("sys_user", query, fields=(field_name,), limit=1)
        if not found:
            return None
        return str(found[0].get(field_name) or "") or None

    async def _configuration_item(self, sys_id: str) -> ConfigurationItem | None:
        record = await self.client.get(
            "cmdb_ci", sys_id, fields=("sys_id", "name", "fqdn", "ip_address")
        )
        if record is None:
            return None
        host = str(record.get("fqdn") or record.get("ip_address") or "") or None
        return ConfigurationItem(str(record["sys_id"]), str(record.get("name") or ""), host)

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """A CI by sys_id or name."""
        ref = reference.strip()
        sys_id = await self._record_id("cmdb_ci", ref, "name") if ref else None
        ci = await self._configuration_item(sys_id) if sys_id else None
        if ci is None:
            raise TicketNotFoundError(f"ServiceNow has no configuration item {ref!r}")
        return ci

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """The rep-console links of the enterprise guide, for this instance."""
        base = self.base_url
        return [
            CustomLink(
                "ServiceNow task",
                f"{base}/nav_to.do?uri=task.do?sys_id=%SESSION.CUSTOM.SNOW_TASK_ID%",
            ),
            CustomLink(
                "ServiceNow task (Agent Workspace)",
                f"{base}/now/workspace/agent/record/task/%SESSION.CUSTOM.SNOW_TASK_ID%",
            ),
            CustomLink(
                "ServiceNow interaction",
                f"{base}/nav_to.do?uri=interaction.do?sys_id=%SESSION.CUSTOM.SNOW_INTERACTION_ID%",
            ),
            CustomLink(
                "ServiceNow interaction (Agent Workspace)",
                f"{base}/now/workspace/agent/record/interaction/"
                "%SESSION.CUSTOM.SNOW_INTERACTION_ID%",
            ),
        ]

    def sends_mail(self) -> bool:
        """With ``key_mail = "instance"``: the key e-mail goes through the instance."""
        return str(self._c.key_mail) == "instance"

    async def send_mail(
        self, ticket: Ticket, to: str, subject: str, text: str, *, marker: str | None = None
    ) -> str:
        """The Email API: the instance sends the e-mail and keeps it in its e-mail log
        (``sys_email``), on the task's activity; the sys_email record's sys_id."""
        if not is_email_address(to):
            raise ConnectorPermanentError(
                f"{to[:60]!r} is not an e-mail address such as someone@example.com"
            )
        table = await self._ticket_table(ticket)
        # The HTML part is the text, escaped: every value in it is data, never markup.
        lines = html.escape(text).splitlines()
        return await self.client.send_email(
            to=to,
            # A subject with a line break would be two header lines.
            subject=" ".join(subject.split()),
            text=text,
            html=f"<div>{'<br>'.join(lines)}</div>",
            table=table,
            sys_id=ticket.id,
            headers={MAIL_MARKER_HEADER: marker} if marker else None,
        )

    async def find_mail(self, ticket: Ticket, marker: str) -> str | None:
        """The ``sys_email`` record on the ticket whose headers carry ``marker``, if any."""
        if not marker.isalnum():
            return None  # only our own markers: the value goes into an encoded query
        try:
            return await self.client.find_email(ticket.id, marker)
        except ConnectorPermanentError as exc:
            # Reading the e-mail log is a grant of its own: without it the e-mail is
            # sent again rather than possibly not at all.
            log.warning(
                "ServiceNow: cannot tell whether an earlier attempt sent the key e-mail "
                "(grant the integration user read access to sys_email): %s",
                exc,
            )
            return None
