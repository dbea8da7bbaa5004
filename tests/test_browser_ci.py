"""The browser tests skip, saying why, where Chromium is missing, but fail in CI (CI=true)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM_ENV, require_chromium


def test_without_chromium_they_skip_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"no Chromium at {tmp_path}/no-chromium"):
        require_chromium()


def test_without_chromium_in_ci_they_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires the browser tests to run"):
        require_chromium()


def test_with_chromium_there_it_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    there = tmp_path / "chromium"
    there.write_bytes(b"")
    monkeypatch.setenv(CHROMIUM_ENV, str(there))
    monkeypatch.setenv("CI", "true")
    assert require_chromium() == there
