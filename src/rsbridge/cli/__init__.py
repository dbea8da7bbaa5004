"""The ``rsbridge`` command line: one module per group of commands.

:data:`app` is the Typer root (the ``rsbridge`` console script and ``python -m rsbridge``).
Reference: docs/cli.md.
"""

from rsbridge.cli.root import app

__all__ = ["app"]
