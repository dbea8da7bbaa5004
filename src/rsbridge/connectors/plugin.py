"""What a connector package declares besides its connector class.

A connector's entry point (group ``rsbridge.connectors``) names either its
:class:`~rsbridge.connectors.base.Connector` class or a :class:`ConnectorPlugin`. The plugin
adds what the package contributes to the command line, each as a :class:`Hook` that is
imported only when used: its own commands (``rsbridge <name> ...``), a simulator
(``rsbridge sim <name>``) and a demo story (``rsbridge demo --target <name>``).

This module imports nothing heavy on purpose: ``rsbridge --help`` reads every plugin to
list the commands, and must stay fast with many connectors installed. For the same
reason the module holding the plugin (usually the connector package's ``__init__``)
should import its connector class lazily.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hook:
    """An object imported on first use: ``"module:attribute"``, with its one-line help.

    ``help`` is what ``rsbridge --help`` shows without importing ``target``.
    """

    target: str
    help: str


@dataclass(frozen=True)
class ConnectorPlugin:
    """A connector package's declaration; its entry point names an instance of this.

    ``connector`` is the connector class (``"module:Class"``). The hooks are optional:

    - ``commands``: a ``typer.Typer`` mounted as ``rsbridge <name>``;
    - ``simulator``: a function mounted as the command ``rsbridge sim <name>`` (its
      parameters are the command's options, as with ``@app.command()``);
    - ``demo``: a function ``run(*, sessions: int, seed: int, console: rich.Console)``
      telling the story of ``rsbridge demo --target <name>``; it raises
      :class:`~rsbridge.errors.RsbridgeError` for failures the user should read.
    """

    connector: str
    commands: Hook | None = None
    simulator: Hook | None = None
    demo: Hook | None = None
