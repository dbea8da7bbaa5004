"""Jump from a ticket: a console URL or BRCS file that Jumps to its configuration item
(search-string Jump, push and start local or remote, RDP, VNC, shell, vPro).
"""

from __future__ import annotations

from rsbridge.actions.base import ActionBase, invalid, log, split_attributes, ticket_label
from rsbridge.actions.models import JumpRequest, JumpResult
from rsbridge.appliance import scripting
from rsbridge.connectors.base import ConfigurationItem, TicketContext


class JumpActions(ActionBase):
    """``jump``."""

    async def jump(self, request: JumpRequest) -> JumpResult:
        """A console URL or BRCS file that Jumps to a configuration item."""
        parts = self._parts(request.integration)
        settings = parts.integration.actions
        if request.ticket is None and request.ci is None:
            raise invalid("give ticket (Jump to its configuration item) or ci, or both")
        context = (
            await self._context(parts, request.ticket, purpose="a Jump from the ticket")
            if request.ticket is not None
            else None
        )
        ci: ConfigurationItem | None
        if request.ci is not None:
            ci = await parts.connector.find_configuration_item(request.ci)
        else:
            assert context is not None
            ci = context.configuration_item
            if ci is None:
                raise invalid(
                    f"ticket {ticket_label(context.ticket)} has no configuration item; set one, "
                    "or give ci"
                )
        console = request.console or settings.jump_console
        output = request.output or settings.jump_output
        if output == "brcs" and console == "web":
            raise invalid("BRCS files run in the desktop representative console; use url")
        command = self._jump_command(request, ci, settings.jumpoint, context)
        url = None
        brcs = None
        if output == "url":
            url = scripting.console_url(parts.appliance_config.host, command, console=console)
        else:
            brcs = await self._brcs(parts, command, f"jump-{ci.name}")
        log.info("%s: %s Jump to %s", parts.integration.name, request.kind, ci.name)
        return JumpResult(
            kind=request.kind,
            console=console,
            configuration_item=ci,
            ticket=context.ticket if context else None,
            url=url,
            brcs=brcs,
        )

    @staticmethod
    def _jump_command(
        request: JumpRequest,
        ci: ConfigurationItem,
        default_jumpoint: str | None,
        context: TicketContext | None,
    ) -> scripting.ClientScriptCommand:
        external_key, custom = split_attributes(context)
        target = ci.host or ci.name
        jumpoint = request.jumpoint or default_jumpoint
        kind = request.kind
        if kind == "jump_item":
            return scripting.StartJumpItemSession(
                search_string=ci.name,
                method=request.method,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "push_local":
            return scripting.PushAndStartLocal(
                hostname=target, external_key=external_key, custom_fields=custom
            )
        if kind == "push_remote":
            return scripting.PushAndStartRemote(
                target=target, jumpoint=jumpoint, external_key=external_key, custom_fields=custom
            )
        if kind == "rdp":
            return scripting.StartRdpSession(
                target=target,
                jumpoint=jumpoint,
                username=request.username,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "vnc":
            return scripting.StartVncSession(
                target=target,
                jumpoint=jumpoint,
                port=request.port,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "shell":
            protocol = scripting.ShellProtocol(request.protocol) if request.protocol else None
            return scripting.StartShellJumpSession(
                target=target,
                jumpoint=jumpoint,
                username=request.username,
                protocol=protocol,
                port=request.port,
                external_key=external_key,
                custom_fields=custom,
            )
        if jumpoint is None:
            raise invalid("a vPro session needs a jumpoint (in the request or actions.jumpoint)")
        return scripting.StartVproSession(
            target=target, jumpoint=jumpoint, external_key=external_key, custom_fields=custom
        )
