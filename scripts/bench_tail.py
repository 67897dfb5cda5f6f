"""Benchmark following the database (``orchestrator.reports.tail``) while a writer writes.

Prints:

* ``latency``: from a commit returning in the writer (this process) to the event being
  yielded by ``follow()`` in another process (its clock is the same monotonic clock),
  median and max over ``--events`` runs written a quarter second apart;
* ``idle CPU``: the follower's own CPU time (``resource.getrusage``) over idle seconds;
* ``writer``: log events per second written with ``DatabaseManager`` alone, with
  ``--followers`` followers reading the same file as it is written, then alone again:
  following must not slow the writer (beyond sharing the CPU with the followers).

    python scripts/bench_tail.py [--events 40] [--idle 5] [--logs 50000] [--followers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from orchestrator import DatabaseManager, SyncDatabaseManager
from orchestrator.store import sqlite as backend

ROOT = Path(__file__).resolve().parents[1]

FOLLOWER = """
import json, resource, sys, time
from orchestrator.reports.tail import follow
path, idle = sys.argv[1], float(sys.argv[2])
list(follow(path, backlog=0, duration=0))
before = resource.getrusage(resource.RUSAGE_SELF)
list(follow(path, backlog=0, duration=idle))
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(json.dumps({"idle_cpu_s": cpu}), flush=True)
for event in follow(path, backlog=0):
    print(json.dumps({"at": time.monotonic(), "run": event.run, "kind": event.kind}), flush=True)
"""


def follower(path: Path, idle: float) -> subprocess.Popen[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, str(path), str(idle)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


async def write_logs(path: Path, count: int) -> float:
    """Log events per second through the writer, flushed."""
    async with DatabaseManager(path) as db:
        async with db.agent_run("bench") as run:
            started = time.perf_counter()
            for i in range(count):
                run.log("tool_use", f"Bash: pytest -k case_{i}", {"seq": i})
            await db.flush()
            return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--logs", type=int, default=50_000)
    parser.add_argument("--followers", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tail-"))
    path = folder / "orchestrator.db"
    backend.connect(path).close()

    child = follower(path, args.idle)
    assert child.stdout is not None
    idle = json.loads(child.stdout.readline())["idle_cpu_s"]
    arrivals: dict[str, float] = {}
    done = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            event = json.loads(line)
            if event["kind"] == "start":
                arrivals[event["run"]] = event["at"]
                if len(arrivals) == args.events:
                    done.set()

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.5)  # the follower's first look after the idle measurement
    committed: dict[str, float] = {}
    with SyncDatabaseManager(path) as db:
        for i in range(args.events):
            agent = db.ensure_orchestrator_agent("bench")
            db.create_agent(agent, name=f"run-{i}")
            committed[f"run-{i}"] = time.monotonic()
            time.sleep(0.25)
    done.wait(timeout=10)
    child.terminate()
    child.wait()
    delays = [arrivals[name] - at for name, at in committed.items() if name in arrivals]

    # Alone, watched, alone again: the spread of the two alone runs is the noise.
    alone = [asyncio.run(write_logs(folder / "alone-1.db", args.logs))]
    watched_path = folder / "watched.db"
    backend.connect(watched_path).close()
    watchers = [follower(watched_path, 0) for _ in range(args.followers)]
    time.sleep(3)
    watched = asyncio.run(write_logs(watched_path, args.logs))
    for watcher in watchers:
        watcher.terminate()
        watcher.wait()
    alone.append(asyncio.run(write_logs(folder / "alone-2.db", args.logs)))

    print(f"events seen:  {len(delays)} of {args.events}")
    print(
        f"latency:      median {statistics.median(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms (commit to event in another process)"
    )
    print(f"idle CPU:     {idle * 1000:.1f} ms over {args.idle:.0f} s ({idle / args.idle:.3%})")
    print(f"writer alone:            {alone[0]:,.0f} then {alone[1]:,.0f} log events/s")
    print(
        f"writer with {args.followers} follower{'s' if args.followers != 1 else ''}: "
        f"{watched:,.0f} log events/s ({watched / statistics.mean(alone):.2f}x)"
    )


if __name__ == "__main__":
    main()
