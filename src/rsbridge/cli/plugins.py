"""Commands that connector plugins contribute, imported only when run.

``rsbridge --help`` lists each plugin's commands with the one-line help its
:class:`~rsbridge.connectors.plugin.Hook` declares; the module behind the hook is
imported when the command (or its own ``--help``) runs. A plugin that fails to load
shows as "unavailable" and its commands print the reason and exit 1, so that one broken
package never breaks the rest of the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from rsbridge.connectors.plugin import ConnectorPlugin, Hook
from rsbridge.connectors.registry import load_hook, plugins
from rsbridge.console import fail
from rsbridge.errors import ConfigurationError

# Click's Context and Command are typed Any here: typer >= 0.26 ships its own copy of click
# whose module (typer._click) is private, and the click package's types would not match it.
Command = Any
Context = Any

HookKind = Literal["commands", "simulator", "demo"]


def hooks(kind: HookKind) -> dict[str, Hook | ConfigurationError]:
    """Each registered connector's ``kind`` hook by connector name, or why it is broken."""
    found: dict[str, Hook | ConfigurationError] = {}
    for name, declared in plugins().items():
        if isinstance(declared, ConfigurationError):
            found[name] = declared
        elif (hook := _hook(declared, kind)) is not None:
            found[name] = hook
    return found


def _hook(declared: ConnectorPlugin, kind: HookKind) -> Hook | None:
    hook: Hook | None = getattr(declared, kind)
    return hook


def load_command(name: str, hook: Hook, kind: HookKind) -> Command:
    """The click command behind ``hook``; ConfigurationError when it is not one."""
    found = load_hook(hook)
    if isinstance(found, typer.Typer):
        # A group even with one command, so that ``rsbridge <name> <command>`` holds.
        return typer.main.get_group(found) if kind == "commands" else typer.main.get_command(found)
    if kind == "simulator" and callable(found):
        single = typer.Typer(add_completion=False)
        single.command(name=name)(found)
        return typer.main.get_command(single)
    wanted = "a typer.Typer or a function" if kind == "simulator" else "a typer.Typer"
    raise ConfigurationError(f"{hook.target} is not {wanted}")


class LazyCommand(TyperCommand):
    """Stands for a plugin's command in listings; loads it when it is run."""

    def __init__(self, name: str, help_text: str, load: Callable[[], Command]) -> None:
        super().__init__(name=name, help=help_text, short_help=help_text)
        self._load = load
        self._loaded: Command | None = None

    def load(self) -> Command:
        """The real command (imported now); exits with the reason if the plugin is broken."""
        if self._loaded is None:
            try:
                self._loaded = self._load()
            except ConfigurationError as exc:
                raise fail(f"{self.name}: {exc.message}") from None
        return self._loaded

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        # The real command parses the arguments, so its options and --help apply.
        return self.load().make_context(info_name, args, parent=parent, **extra)


class PluginGroup(TyperGroup):
    """A group whose built-in commands are joined by the plugins' ``hook_kind`` hooks.

    Built-in commands win a name clash. A broken plugin is listed (as "unavailable")
    only where ``list_broken`` says, but running it anywhere says why it is broken.
    """

    hook_kind: ClassVar[HookKind]
    list_broken: ClassVar[bool] = False

    _hooks: dict[str, Hook | ConfigurationError] | None = None

    def _plugin_commands(self, *, listing: bool = False) -> dict[str, LazyCommand]:
        # Read once per invocation: help output asks for every command in turn.
        if self._hooks is None:
            self._hooks = hooks(self.hook_kind)
        found: dict[str, LazyCommand] = {}
        for name, hook in self._hooks.items():
            if name in self.commands:
                continue
            if isinstance(hook, ConfigurationError):
                if listing and not self.list_broken:
                    continue
                help_text = "Unavailable: the plugin failed to load (run it for the reason)."
                found[name] = LazyCommand(name, help_text, _raiser(hook.message))
            else:
                found[name] = LazyCommand(name, hook.help, _loader(name, hook, self.hook_kind))
        return found

    def list_commands(self, ctx: Context) -> list[str]:
        """Built-in commands in their order, then the plugins' by name."""
        return super().list_commands(ctx) + list(self._plugin_commands(listing=True))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """A built-in command, or a plugin's (not imported until it runs)."""
        return super().get_command(ctx, cmd_name) or self._plugin_commands().get(cmd_name)


def _loader(name: str, hook: Hook, kind: HookKind) -> Callable[[], Command]:
    return lambda: load_command(name, hook, kind)


def _raiser(message: str) -> Callable[[], Command]:
    def load() -> Command:
        raise ConfigurationError(message)

    return load


class RootGroup(PluginGroup):
    """``rsbridge``: the built-in commands and each connector's own (``rsbridge <name>``)."""

    hook_kind = "commands"
    list_broken = True


class SimGroup(PluginGroup):
    """``rsbridge sim``: the simulated appliance and each connector's simulator."""

    hook_kind = "simulator"
