"""Benchmark the batched log writer against two baselines, in one process.

Prints log events per second for:

* ``writer``: the project's ``DatabaseManager.log_agent_event`` (validation,
  redaction, batching; the clock runs until ``flush()`` has committed all);
* ``raw executemany``: sqlite3 ``executemany`` of the very same rows into the
  same schema in one transaction (the limit: no validation, no redaction);
* ``commit per event``: one INSERT + COMMIT per event (the seed's pattern);

with the ratios, and the median / p95 time of one log call on the caller's
event loop. Each variant writes to a fresh database with the project's settings.

    python scripts/bench_writer.py [--events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import DatabaseManager
from orchestrator import sqlite as backend
from orchestrator.db import AGENT_LOG_INSERT
from orchestrator.ids import new_id, utc_now

MESSAGES = [
    "Running tool Bash: pytest -x tests/test_writer.py -k batch",
    "Read file src/app/models.py (412 lines)",
    "step build: applying patch to orchestrator/db.py",
    "Edit: replaced 12 lines in README.md",
]


def events(n: int) -> list[tuple[str, str, dict[str, object]]]:
    return [
        ("tool_use", MESSAGES[i % len(MESSAGES)], {"tool": "Bash", "seq": i, "exit_code": 0})
        for i in range(n)
    ]


def fresh_db(folder: Path, name: str) -> tuple[Path, str]:
    """A migrated database with one orchestrator agent and one run; returns (path, agent id)."""
    path = folder / f"{name}.db"
    conn = backend.connect(path)
    orchestrator_id, agent_id, now = new_id(), new_id(), utc_now()
    conn.execute(
        "INSERT INTO orchestrator_agents (id, name, created_at, updated_at) "
        "VALUES (?, 'bench', ?, ?)",
        (orchestrator_id, now, now),
    )
    conn.execute(
        "INSERT INTO agents (id, orchestrator_agent_id, status, created_at) "
        "VALUES (?, ?, 'running', ?)",
        (agent_id, orchestrator_id, now),
    )
    conn.close()
    return path, agent_id


def rows_for(agent_id: str, evts: list[tuple[str, str, dict[str, object]]]) -> list[tuple]:
    return [(new_id(), agent_id, t, m, json.dumps(md), utc_now(), None, None) for t, m, md in evts]


async def bench_writer(path: Path, agent_id: str, evts: list) -> tuple[float, float, list[float]]:
    """Time the caller's log calls, then the flush that commits them.

    The loop never yields during the calls, so the background writer cannot run
    in between: the two phases are measured apart and their sum is a
    conservative end-to-end figure (in an ADW the writer runs while it waits).
    """
    call_times: list[float] = []
    async with DatabaseManager(path, batch_size=len(evts) + 1) as db:
        await db.log_agent_event(agent_id, "info", "warm-up")  # first call checks the agent
        await db.flush()
        clock = time.perf_counter
        start = clock()
        for log_type, message, metadata in evts:
            t0 = clock()
            await db.log_agent_event(agent_id, log_type, message, metadata)
            call_times.append(clock() - t0)
        calls_done = clock()
        await db.flush()
        flushed = clock()
    return calls_done - start, flushed - calls_done, call_times


def bench_raw(path: Path, rows: list[tuple]) -> float:
    conn = backend.connect(path)
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(AGENT_LOG_INSERT, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bench_per_event(path: Path, rows: list[tuple], *, seed_settings: bool) -> float:
    """One INSERT + COMMIT per event with plain sqlite3; with sqlite3's defaults
    (rollback journal, deferred transactions) or with the project's settings (WAL)."""
    if seed_settings:
        conn = backend.sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode = DELETE")
    else:
        conn = backend.connect(path)
    start = time.perf_counter()
    for row in rows:
        conn.execute(AGENT_LOG_INSERT, row)
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def bench_seed_aiosqlite(path: Path, rows: list[tuple]) -> float:
    """The seed's DatabaseManager pattern: aiosqlite, default settings, and one
    ``await execute`` + ``await commit`` per log event."""
    import aiosqlite

    async with aiosqlite.connect(path) as conn:
        start = time.perf_counter()
        for row in rows:
            await conn.execute(AGENT_LOG_INSERT, row)
            await conn.commit()
        return time.perf_counter() - start


def count(path: Path) -> int:
    conn = backend.connect(path, migrate=False)
    n = conn.execute("SELECT count(*) FROM agent_logs").fetchone()[0]
    conn.close()
    return int(n)


def one_round(folder: Path, evts: list, per_event_n: int, round_no: int) -> tuple[dict, list]:
    """Every variant once, each on a fresh database; returns (seconds per variant, call times)."""
    seconds: dict[str, float] = {}
    path, agent_id = fresh_db(folder, f"writer{round_no}")
    calls_s, flush_s, calls = asyncio.run(bench_writer(path, agent_id, evts))
    assert count(path) == len(evts) + 1, "the writer lost rows"
    seconds["writer, end to end"] = calls_s + flush_s
    seconds["writer, write path (flush)"] = flush_s

    path, agent_id = fresh_db(folder, f"raw{round_no}")
    seconds["raw executemany (limit)"] = bench_raw(path, rows_for(agent_id, evts))
    assert count(path) == len(evts)

    small = evts[:per_event_n]
    path, agent_id = fresh_db(folder, f"seed{round_no}")
    # the seed's database was created by its own code, in the default journal mode
    conn = backend.sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    seconds["commit per event (seed)"] = asyncio.run(
        bench_seed_aiosqlite(path, rows_for(agent_id, small))
    )
    assert count(path) == len(small)
    for name, seed_settings in (
        ("commit per event (sqlite3)", True),
        ("commit per event (WAL)", False),
    ):
        path, agent_id = fresh_db(folder, f"{seed_settings}{round_no}")
        seconds[name] = bench_per_event(
            path, rows_for(agent_id, small), seed_settings=seed_settings
        )
        assert count(path) == len(small)
    return seconds, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument(
        "--per-event", type=int, default=2_000, help="events for the slow commit-per-event baseline"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of every variant, interleaved; the median is shown",
    )
    args = parser.parse_args()
    evts = events(args.events)
    rounds: list[dict[str, float]] = []
    calls: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            seconds, round_calls = one_round(Path(tmp), evts, args.per_event, round_no)
            rounds.append(seconds)
            calls += round_calls

    n, small = args.events, min(args.per_event, args.events)
    rates = {
        name: (small if name.startswith("commit per event") else n)
        / statistics.median(r[name] for r in rounds)
        for name in rounds[0]
    }
    calls_us = sorted(t * 1e6 for t in calls)
    p95 = calls_us[int(len(calls_us) * 0.95)]
    print(
        f"python {sys.version.split()[0]}, sqlite {backend.sqlite3.sqlite_version}, "
        f"{n} events (commit per event: {small}), median of {args.rounds} interleaved rounds"
    )
    end_to_end, write_path = rates["writer, end to end"], rates["writer, write path (flush)"]
    print(f"{'variant':<30}{'events/s':>10}{'end to end /':>15}{'write path /':>15}")
    for name, rate in rates.items():
        print(f"{name:<30}{rate:>10,.0f}{end_to_end / rate:>14.2f}x{write_path / rate:>14.2f}x")
    print(
        f"log call on the caller's loop: median {statistics.median(calls_us):.1f} us, "
        f"p95 {p95:.1f} us"
    )


if __name__ == "__main__":
    main()
