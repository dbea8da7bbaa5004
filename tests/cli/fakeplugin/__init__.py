"""A third-party connector package as a user would write one, for the plugin tests.

Its entry point names :data:`plugin`; nothing here imports the hooks' modules.
"""

from rsbridge.connectors.plugin import ConnectorPlugin, Hook

plugin = ConnectorPlugin(
    connector="tests.cli.fakeplugin.connector:FakeConnector",
    commands=Hook("tests.cli.fakeplugin.commands:fake_app", "Fake set-up helpers."),
    simulator=Hook("tests.cli.fakeplugin.sim:serve", "Serve a simulated fake system."),
    demo=Hook("tests.cli.fakeplugin.story:run_demo", "The fake story."),
)

not_a_typer = ConnectorPlugin(
    connector="tests.cli.fakeplugin.connector:FakeConnector",
    commands=Hook("tests.cli.fakeplugin.sim:serve", "A function, not a Typer app."),
)
