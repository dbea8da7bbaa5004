"""``python -m rsbridge``: the same as the ``rsbridge`` command."""

from rsbridge.cli import app

app(prog_name="rsbridge")
