"""The wheel, installed the way the container image installs it, is a working rsbridge.

One slow test (about a minute): it builds the wheel, runs deploy/install.sh (the script
deploy/Containerfile runs) into a fresh virtual environment with the locked dependency
versions, and checks the installed command and its data files. pip takes the locked files
from its cache when dev.py has installed them before, else from PyPI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsbridge import __version__

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rsbridge"


def _run(*cmd: str | Path, cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603 - our own commands
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
    )
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _data_files() -> set[str]:
    """Every file of the package that is not Python source: templates, migrations, ..."""
    return {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_with_the_lock(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", dist, ROOT, cwd=tmp_path)  # fmt: skip
    [wheel] = dist.glob("rsbridge-*.whl")
    assert wheel.name.startswith(f"rsbridge-{__version__}-py3-none-any")

    prefix = tmp_path / "opt" / "rsbridge"
    script = ROOT / "deploy" / "install.sh"
    out = _run("sh", script, wheel, ROOT / "requirements" / "lock.txt", prefix, cwd=tmp_path)
    assert out.strip().splitlines()[-1] == __version__  # install.sh ends with --version

    assert _run(prefix / "bin" / "rsbridge", "--version", cwd=tmp_path).strip() == __version__
    # The installed package, not this checkout: every data file is in it.
    listing = _run(prefix / "bin" / "python", "-c", _LIST_PACKAGE, cwd=tmp_path)
    location, *files = listing.splitlines()
    assert not Path(location).is_relative_to(ROOT)
    assert {"templates/report.html", "py.typed"} <= set(files)
    assert _data_files() <= set(files)
    # No development tool came with it: the runtime lock only.
    freeze = _run(prefix / "bin" / "python", "-m", "pip", "freeze", cwd=tmp_path)
    installed = {line.split("==")[0].split(" @ ")[0].lower() for line in freeze.splitlines()}
    assert "orjson" in installed and not installed & {"pytest", "mypy", "ruff", "hypothesis"}

    # And it works: a report through the installed command, orjson and all.
    report = tmp_path / "r.xml"
    _run(prefix / "bin" / "python", "-c", _WRITE_REPORT, report, cwd=tmp_path)
    out = _run(prefix / "bin" / "rsbridge", "report", "parse", "--json", report, cwd=tmp_path)
    assert '"lsid": ' in out and out.rstrip().endswith("]")

    # The script refuses to install over an existing prefix (upgrades go to a new one).
    lock = ROOT / "requirements" / "lock.txt"
    again = subprocess.run(  # noqa: S603 - sh, as the Containerfile runs it
        ["sh", str(script), str(wheel), str(lock), str(prefix)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1 and "exists" in again.stderr


_LIST_PACKAGE = """
import importlib.resources, pathlib
root = pathlib.Path(str(importlib.resources.files("rsbridge")))
print(root)
for p in sorted(root.rglob("*")):
    if p.is_file() and "__pycache__" not in p.parts:
        print(p.relative_to(root).as_posix())
"""

_WRITE_REPORT = """
import sys
from rsbridge.sim.appliance.report_xml import session_list
from rsbridge.sim.appliance.scenarios import SessionGenerator
gen = SessionGenerator(5)
open(sys.argv[1], "wb").write(session_list([gen.session() for _ in range(2)]))
"""
