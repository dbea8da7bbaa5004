"""The fake package's connector class."""

from rsbridge.connectors.base import CheckResult
from tests.stub_connectors import CheckOnlyConnector


class FakeConnector(CheckOnlyConnector):
    """A connector named ``fake``; the plugin tests exercise only its registration."""

    name = "fake"
    title = "Fake"

    async def check(self) -> CheckResult:
        return CheckResult("ok")
