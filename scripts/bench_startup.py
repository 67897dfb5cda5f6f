"""Whole processes as users meet them: start-up included, beside a bare baseline.

    python scripts/bench_startup.py [--db PATH] [--rounds 7] [--report spend_by_model]

Runs each pair of commands in alternating rounds and prints, per command, the median
wall time and CPU time (user + system, from the child's rusage) and the ratio to its
baseline in the same run:

* ``orchestrator report NAME --format json`` against ``python3 -c`` running the same
  SQL (read from metadata.yml) with sqlite3 and printing JSON (target: within 3x);
* ``python -c "import orchestrator"`` against ``python -c pass`` (target: under 100 ms);
* ``orchestrator --help`` against ``python -c pass``.

Builds a demo database (3,000 prompts) in a temporary folder when ``--db`` is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--report", default="spend_by_model")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-startup-")
    db = args.db or Path(folder) / "orchestrator.db"
    if not db.exists():
        from orchestrator.commands.demo import create_demo_database

        asyncio.run(create_demo_database(db, prompts=3000, seed=1))
    from orchestrator.reports.canned import get_report

    sql = get_report(args.report).sql
    params = dict.fromkeys(get_report(args.report).parameters, "")
    bare_report = (
        "import json, sqlite3, sys\n"
        f"conn = sqlite3.connect({os.fspath(db)!r})\n"
        f"cursor = conn.execute({sql!r}, {params!r})\n"
        "names = [d[0] for d in cursor.description]\n"
        "print(json.dumps([dict(zip(names, row)) for row in cursor.fetchall()], indent=2))\n"
    )
    python = sys.executable
    orchestrator = os.fspath(BIN / "orchestrator")
    pairs = [
        (
            f"orchestrator report {args.report} --format json",
            [orchestrator, "report", args.report, "--format", "json", "--db", os.fspath(db)],
            "python3 -c (sqlite3, same SQL, json)",
            [python, "-c", bare_report],
        ),
        (
            'python -c "import orchestrator"',
            [python, "-c", "import orchestrator"],
            "python -c pass",
            [python, "-c", "pass"],
        ),
        ("orchestrator --help", [orchestrator, "--help"], "python -c pass", [python, "-c", "pass"]),
    ]
    print(f"{'command':<48} {'wall ms':>8} {'cpu ms':>8}   {'baseline':<38} {'wall':>6} {'cpu':>6}")
    for label, command, base_label, baseline in pairs:
        ours, base = [], []
        run(command), run(baseline)  # warm the page cache
        for _ in range(args.rounds):
            ours.append(run(command))
            base.append(run(baseline))
        wall = statistics.median(w for w, _ in ours) * 1000
        cpu = statistics.median(c for _, c in ours) * 1000
        base_wall = statistics.median(w for w, _ in base) * 1000
        base_cpu = statistics.median(c for _, c in base) * 1000
        print(
            f"{label:<48} {wall:>8.0f} {cpu:>8.0f}   {base_label:<38} "
            f"{wall / base_wall:>5.1f}x {cpu / max(base_cpu, 1):>5.1f}x"
        )


if __name__ == "__main__":
    main()
