"""``rsbridge sim salesforce``: the standalone Typer app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from rsbridge.sim.salesforce.cli import app
from rsbridge.sim.salesforce.seed import APP, INTEGRATION
from rsbridge.sim.serve import serve_in_thread

PACKAGE = Path(__file__).parent / "fixtures" / "package"


def test_serve_builds_the_org_it_announces(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}

    def capture(asgi: Any, **options: Any) -> None:
        # uvicorn.run blocks forever; keep the app and serve it on a test port instead.
        served["app"] = asgi
        served.update(options)

    monkeypatch.setattr(uvicorn, "run", capture)
    result = CliRunner().invoke(
        app,
        ["--port", "18380", "--package", str(PACKAGE), "--daily-limit", "50"],
    )
    assert result.exit_code == 0, result.output
    assert "Simulated Salesforce: http://127.0.0.1:18380" in result.output
    assert f"Integration user:     {INTEGRATION[0]}" in result.output
    assert "Loaded" in result.output and "BT_Session__c" in result.output
    assert served["port"] == 18380
    with serve_in_thread(served["app"]) as url, httpx.Client(base_url=url) as http:
        token = http.post(
            "/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": APP[0],
                "client_secret": APP[1],
                "username": INTEGRATION[0],
                "password": INTEGRATION[1] + INTEGRATION[2],
            },
        ).json()["access_token"]
        answer = http.get(
            "/services/data/v59.0/query",
            params={"q": "SELECT COUNT() FROM BT_Session__c"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200
        assert answer.headers["Sforce-Limit-Info"] == "api-usage=1/50"


def test_bad_package_exits_with_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--package", str(tmp_path)])
    assert result.exit_code == 1
    assert "no objects/ folder" in result.output


def test_tls_options_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    result = CliRunner().invoke(app, ["--tls-cert", str(cert)])
    assert result.exit_code == 2
