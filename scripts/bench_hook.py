"""A Claude Code hook call as a whole process, beside a bare sqlite3 insert of the same row.

    python scripts/bench_hook.py [--calls 200] [--db PATH]

Runs, alternating, ``python -m orchestrator.claude_code.hook --db DB`` (what ``orchestrator
hooks install`` registers) fed a PreToolUse event on stdin, and ``python -c`` inserting
the row that event stores (an agent log of the session's run) with sqlite3 into the same
database; prints per command the p50 and p95 wall time over ``--calls`` calls, the largest
peak RSS, and the hook's ratios to the baseline (targets: p95 at most 3x the baseline and
under 60 ms; memory under 40 MB). The database is a fresh one in a temporary folder (its
session run created by a first call) unless ``--db`` names one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EVENT = {
    "session_id": "bench-session",
    "transcript_path": "/home/dev/.claude/projects/-home-dev-app/bench-session.jsonl",
    "cwd": "/home/dev/app",
    "permission_mode": "default",
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "pytest -x -q tests/test_api.py", "description": "Run the tests"},
    "tool_use_id": "toolu_01BenchBenchBenchBench",
}

BASELINE = """
import sqlite3, sys, uuid, datetime
conn = sqlite3.connect(sys.argv[1])
run = conn.execute("SELECT id FROM agents WHERE session_id = 'bench-session'").fetchone()[0]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
conn.execute(
    "INSERT INTO agent_logs (id, agent_id, log_type, message, metadata, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    (str(uuid.uuid4()), run, "PreToolUse", sys.argv[2], sys.argv[3], now),
)
conn.commit()
"""


def timed(command: list[str], stdin: bytes | None, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of one whole process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdin.write(stdin or b"")  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    errors = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0 or errors:
        raise SystemExit(f"{command[:3]} failed: {proc.returncode} {errors.decode()}")
    return wall, int(usage.ru_maxrss)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hook-") as folder:
        run(args, Path(folder))


def run(args: argparse.Namespace, folder: Path) -> None:
    db = args.db or folder / "orchestrator.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ORCHESTRATOR_HOOK_SPOOL": str(folder / "spool"),
    }
    stdin = json.dumps(EVENT).encode()
    hook = [sys.executable, "-m", "orchestrator.claude_code.hook", "--db", str(db)]
    timed(hook, stdin, env)  # creates (and migrates) the database and the session's run
    message = "Bash: " + json.dumps(EVENT["tool_input"])
    metadata = json.dumps({"hook_event_name": "PreToolUse", "name": "Bash"})
    bare = [sys.executable, "-c", BASELINE, str(db), message, metadata]
    results: dict[str, tuple[list[float], list[int]]] = {"hook": ([], []), "bare": ([], [])}
    for _ in range(args.calls):
        for name, command, data in (("hook", hook, stdin), ("bare", bare, None)):
            wall, rss = timed(command, data, env)
            results[name][0].append(wall)
            results[name][1].append(rss)
    print(f"{args.calls} calls each, {db}")
    print(f"{'':26} {'p50 ms':>8} {'p95 ms':>8} {'max RSS MB':>11}")
    label = {"hook": "hook (python -m ...hook)", "bare": "bare python3 -c sqlite3"}
    for name, (walls, peaks) in results.items():
        print(
            f"{label[name]:26} {statistics.median(walls) * 1000:8.1f} {p95(walls) * 1000:8.1f} "
            f"{max(peaks) / 1024:11.1f}"
        )
    hook_walls, bare_walls = results["hook"][0], results["bare"][0]
    p50_ratio = statistics.median(hook_walls) / statistics.median(bare_walls)
    print(
        f"ratio hook / bare: p50 {p50_ratio:.2f}x"
        f", p95 {p95(hook_walls) / p95(bare_walls):.2f}x (target <= 3x, p95 < 60 ms, RSS < 40 MB)"
    )


if __name__ == "__main__":
    main()
