"""Self-service: the issues loaded from the appliance (the vendor's "Load Issues") and
"get support now", a start URL for a self-service user already associated with the ticket.
"""

from __future__ import annotations

import uuid

from rsbridge.actions.base import ActionBase, invalid, log, split_attributes, ticket_label
from rsbridge.actions.models import IssueInfo, IssuesResult, SupportNowRequest, SupportNowResult
from rsbridge.actions.problems import ActionError, describe
from rsbridge.appliance import scripting
from rsbridge.errors import ApplianceError


class SelfServiceActions(ActionBase):
    """``issues`` and ``support_now``."""

    async def issues(self, integration: str) -> IssuesResult:
        """The issues offered to self-service users, loaded from the appliance.

        All the appliance's issues, or those of ``self_service_issues`` (in that order)
        when it is set. The vendor's "Load Issues": appliance errors come out as
        "Something went wrong while attempting to load issues: ..." with the reason.
        """
        parts = self._parts(integration)
        try:
            teams = await parts.appliance.get_support_teams(members=False)
        except ApplianceError as exc:
            problem = describe(exc)
            raise ActionError(
                f"Something went wrong while attempting to load issues: {problem.message}",
                status=problem.status,
                code=problem.code,
            ) from exc
        found: dict[str, IssueInfo] = {}
        for team in teams:
            for issue in team.issues:
                found.setdefault(
                    issue.code_name,
                    IssueInfo(issue.code_name, issue.description, issue.id, team.name, team.id),
                )
        wanted = parts.integration.actions.self_service_issues
        if not wanted:
            offered = list(found.values())
        else:
            offered = [found[code] for code in wanted if code in found]
        missing = [code for code in wanted if code not in found]
        return IssuesResult(parts.integration.name, offered, len(found), missing)

    async def support_now(self, request: SupportNowRequest) -> SupportNowResult:
        """A start URL for a self-service user's session on their ticket."""
        parts = self._parts(request.integration)
        settings = parts.integration.actions
        if not settings.self_service_enabled:
            raise ActionError(
                f"self-service is not enabled for integration {parts.integration.name} "
                "(actions.self_service_enabled)",
                status=403,
                code="self_service_disabled",
            )
        context = await self._context(parts, request.ticket, purpose="getting support")
        # Given at all (a portal passes the user it authenticated), it must name the caller:
        # an empty address is a user the portal knows no address of, not "no check".
        requester = None if request.requester_email is None else request.requester_email
        if requester is not None and (
            not requester.strip()
            or requester.strip().casefold() != (context.caller_email or "").strip().casefold()
        ):
            # The start URL carries signed references: it goes to the ticket's caller only.
            raise ActionError(
                f"ticket {ticket_label(context.ticket)} is not the requester's: its caller has "
                "another e-mail address",
                status=403,
                code="not_your_ticket",
            )
        offered = (await self.issues(request.integration)).issues
        if not offered:
            raise ActionError(
                "no issues to offer: the appliance has none of the configured "
                "self_service_issues (or no issues at all)",
                status=409,
                code="no_issues",
            )
        codes = ", ".join(i.code_name for i in offered)
        if request.issue is None:
            if len(offered) > 1:
                raise invalid(f"choose an issue: {codes}")
            issue = offered[0]
        else:
            chosen = next((i for i in offered if i.code_name == request.issue), None)
            if chosen is None:
                raise invalid(f"issue {request.issue!r} is not offered; choose one of: {codes}")
            issue = chosen
        start_type = request.start_type or settings.session_start_type
        external_key, custom = split_attributes(context)
        name = request.customer_name or context.caller_name
        url = scripting.start_session_url(
            settings.public_portal_hostname or parts.appliance_config.host,
            scripting.IssueQueue(code_name=issue.code_name),
            click_to_chat=start_type == "chat",
            customer_name=name[:100] if name else None,
            customer_details=request.details,
            external_key=external_key,
            custom_fields=custom,
        )
        note = None
        if request.note if request.note is not None else settings.log_customer_initiated:
            ticket = context.ticket
            what = "chat" if start_type == "chat" else "session"
            text = (
                f"Customer-initiated BeyondTrust Remote Support {what} requested"
                f"{f' by {name}' if name else ''} for issue "
                f"{issue.description or issue.code_name} (team {issue.team})."
            )
            note_id = request.request_id or uuid.uuid4().hex
            note = await self._note(
                parts,
                ticket,
                f"rsbridge:{parts.integration.name}:support_now:{ticket.id}:{note_id}",
                text,
            )
        log.info(
            "%s: get support now on %s (%s, issue %s)",
            parts.integration.name,
            ticket_label(context.ticket),
            start_type,
            issue.code_name,
        )
        return SupportNowResult(context.ticket, url, start_type, issue, note)
