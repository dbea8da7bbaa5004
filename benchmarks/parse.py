"""Parse throughput and peak memory: rsbridge's streaming parser vs a naive xmltodict parse.

    python3 dev.py bench parse [--mb 50] [--repeat 3] [--cli-only]

Builds (once, cached under benchmarks/.data/) a multi-session SupportSession report of
about ``--mb`` megabytes from the seeded scenario generator, plus one a quarter of that
size. Each measurement runs in a fresh interpreter so that peak RSS, which counts
libxml2's C allocations too, is comparable; figures are the best of ``--repeat`` runs.
Printed as ratios against the xmltodict baseline measured in the same invocation.
Targets (shared/DESIGN.md): at least 5x the baseline's throughput, and memory that does
not grow with the number of sessions.

Two reference rows bound what any lxml-based parser can reach on the same file, so the
gap to the target can be read off one run:

* ``libxml2 tree only``: the same pull parser and session-by-session freeing, with no
  Python object made for any element (the ceiling of the approach);
* ``+ one object per element``: as above, plus reading ``.text`` and one attribute of
  every element, the least a typed model needs (each visit creates lxml's Python proxy).

CLI rows (issue 15): ``rsbridge report parse --json`` on the same file against the naive
script a user would write (``xmltodict.parse`` plus ``json.dump(..., indent=2)``), and
against the command's previous JSON path (the same parse, ``to_jsonable`` and the standard
library's encoder). Each runs as a child process writing to /dev/null; its wall and CPU
seconds and its whole peak RSS come from ``os.wait4``. Targets: the command at least 2x
faster than the naive script, with at most a third of its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness import peak_rss_mb

DATA = Path(__file__).resolve().parent / ".data"


def build_report(path: Path, megabytes: float, seed: int) -> int:
    """Write a report of about ``megabytes`` MB; return the number of sessions."""
    from rsbridge.appliance.report_model import SupportSession
    from rsbridge.sim.appliance.report_xml import session_list_chunks
    from rsbridge.sim.appliance.scenarios import SessionGenerator

    generator = SessionGenerator(seed, large=True)
    target = int(megabytes * 1_000_000)
    written = sessions = 0

    def stream() -> Iterator[SupportSession]:
        nonlocal sessions
        while written < target:
            sessions += 1
            yield generator.session()

    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for chunk in session_list_chunks(stream()):
            fh.write(chunk)
            written += len(chunk)
    tmp.rename(path)
    return sessions


def worker(kind: str, path: Path) -> dict[str, float]:
    """Parse ``path`` with ``kind`` in this process; report seconds and peak RSS growth."""
    import xmltodict

    from rsbridge.appliance.report_parser import iter_sessions

    base = peak_rss_mb()
    start = time.perf_counter()
    if kind == "rsbridge":
        count = sum(1 for _ in iter_sessions(path))
    elif kind in ("libxml2", "touch"):
        count = _lxml_floor(path, touch=kind == "touch")
    else:
        with path.open("rb") as fh:
            doc = xmltodict.parse(fh)
        sessions = doc["session_list"]["session"]
        count = len(sessions) if isinstance(sessions, list) else 1
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_rss_mb() - base, "sessions": count}


def _lxml_floor(path: Path, *, touch: bool) -> int:
    """Run the report parser's own machinery on ``path`` with a build step that builds nothing.

    ``touch``: the build step visits every element of the session instead.
    """
    from rsbridge.appliance.report_parser import ReportKind, iter_report
    from rsbridge.appliance.xml import Element

    def visit(session: Element) -> None:
        if touch:
            for node in session.iter():
                node.text, node.get("name")  # the access itself is the cost measured

    with path.open("rb") as fh:
        return sum(1 for _ in iter_report(fh, ReportKind("session_list", "session", visit)))


# What a user without rsbridge would write to get the report as JSON.
NAIVE_SCRIPT = """
import json, sys, xmltodict
with open(sys.argv[1], "rb") as fh:
    doc = xmltodict.parse(fh)
json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
"""

# The command's JSON path before orjson (kept here as the "before" row).
STDLIB_CLI_SCRIPT = """
import json, sys
from pathlib import Path
import rsbridge.cli
from rsbridge.appliance.report_model import to_jsonable
from rsbridge.appliance.report_parser import iter_sessions
sys.stdout.write("[")
for n, session in enumerate(iter_sessions(Path(sys.argv[1])), start=1):
    sys.stdout.write(",\\n" if n > 1 else "\\n")
    sys.stdout.write(json.dumps(to_jsonable(session), ensure_ascii=False, indent=2))
sys.stdout.write("\\n]\\n")
"""


def run_child(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` (stdout to /dev/null): wall and CPU seconds, peak RSS in MB (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # noqa: S603 - our own commands
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} exited with {proc.returncode}")
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,  # Linux: KiB
    }


def measure_command(argv: list[str], repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` figures of a whole command, each run in a fresh child."""
    runs = [run_child(argv) for _ in range(repeat)]
    return {key: min(r[key] for r in runs) for key in ("seconds", "cpu", "peak_mb")}


def measure(kind: str, path: Path, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` figures, each from a fresh interpreter."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--worker", kind, str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out))
    return {
        "seconds": min(r["seconds"] for r in runs),
        "peak_mb": min(r["peak_mb"] for r in runs),
        "sessions": runs[0]["sessions"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cli-only", action="store_true", help="only the CLI rows")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return

    DATA.mkdir(exist_ok=True)
    big = DATA / f"report-{args.mb:g}mb-seed{args.seed}.xml"
    small = DATA / f"report-{args.mb / 4:g}mb-seed{args.seed}.xml"
    for path, size in ((big, args.mb), (small, args.mb / 4)):
        if not path.exists():
            print(f"building {path.name} ...", flush=True)
            build_report(path, size, args.seed)
    size_mb = big.stat().st_size / 1_000_000
    if args.cli_only:
        print(f"report: {size_mb:.1f} MB (best of {args.repeat})")
        cli_rows(big, args.repeat)
        return

    naive = measure("xmltodict", big, args.repeat)
    ours = measure("rsbridge", big, args.repeat)
    ours_small = measure("rsbridge", small, args.repeat)
    floor = measure("libxml2", big, args.repeat)
    touch = measure("touch", big, args.repeat)

    def rate(r: dict[str, float]) -> float:
        return size_mb / r["seconds"]

    print(f"report: {size_mb:.1f} MB, {ours['sessions']:.0f} sessions (best of {args.repeat})")
    print(f"{'parser':<30}{'MB/s':>8}{'vs baseline':>13}{'peak RSS growth MB':>21}")
    rows = (
        ("xmltodict (baseline)", naive),
        ("rsbridge streaming", ours),
        ("ref: libxml2 tree only", floor),
        ("ref: + one object per element", touch),
    )
    for label, r in rows:
        ratio = rate(r) / rate(naive)
        print(f"{label:<30}{rate(r):>8.1f}{ratio:>12.1f}x{r['peak_mb']:>21.1f}")
    print(f"throughput ratio rsbridge / xmltodict: {rate(ours) / rate(naive):.1f}x (target >= 5x)")
    print(f"memory ratio rsbridge / xmltodict:     {ours['peak_mb'] / naive['peak_mb']:.3f}")
    growth = ours["peak_mb"] / max(ours_small["peak_mb"], 0.1)
    print(
        f"memory growth for {ours['sessions'] / ours_small['sessions']:.1f}x the sessions: "
        f"{growth:.2f}x ({ours_small['peak_mb']:.1f} MB -> {ours['peak_mb']:.1f} MB; "
        "target: flat)"
    )
    cli_rows(big, args.repeat)


def cli_rows(path: Path, repeat: int) -> None:
    """The report CLI's JSON output against the naive script, as whole child processes."""
    py = sys.executable
    naive = measure_command([py, "-c", NAIVE_SCRIPT, str(path)], repeat)
    before = measure_command([py, "-c", STDLIB_CLI_SCRIPT, str(path)], repeat)
    cli = measure_command([py, "-m", "rsbridge", "report", "parse", "--json", str(path)], repeat)
    print()
    head = f"{'to JSON, whole command':<36}{'wall s':>8}{'CPU s':>8}{'vs naive':>10}"
    print(f"{head}{'peak RSS MB':>13}")
    rows = (
        ("naive script (xmltodict + json.dump)", naive),
        ("before: report parse, stdlib json", before),
        ("rsbridge report parse --json", cli),
    )
    for label, r in rows:
        speed = naive["seconds"] / r["seconds"]
        print(f"{label:<36}{r['seconds']:>8.2f}{r['cpu']:>8.2f}{speed:>9.1f}x{r['peak_mb']:>13.1f}")
    speed, cpu_speed = naive["seconds"] / cli["seconds"], naive["cpu"] / cli["cpu"]
    memory = cli["peak_mb"] / naive["peak_mb"]
    print(
        f"CLI speed-up vs naive script: {speed:.1f}x wall, {cpu_speed:.1f}x CPU (target >= 2x) "
        f"-> {'met' if min(speed, cpu_speed) >= 2 else 'NOT met'}"
    )
    print(
        f"CLI peak RSS / naive script: {memory:.2f} (target <= 0.33) "
        f"-> {'met' if memory <= 1 / 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
