"""Benchmark the batched log writer against two baselines, in one process.

Prints log events per second for:

* ``writer``: the project's ``DatabaseManager.log_agent_event`` (validation,
  redaction, batching; the clock runs until ``flush()`` has committed all);
* ``raw executemany``: sqlite3 ``executemany`` of the very same rows into the
  same schema in one transaction (the limit: no validation, no redaction);
* ``commit per event``: one INSERT + COMMIT per event (the seed's pattern);

with the ratios, and the median / p95 time of one log call on the caller's
event loop. Each variant writes to a fresh database with the project's settings.

With ``--db postgresql://...`` it measures PostgreSQL instead, each variant in a fresh
schema of that database: the writer against the raw driver (asyncpg) inserting the same
rows in the same run, by ``COPY`` (what the writer uses) and by ``executemany``; then
``--processes`` (16) concurrent writer processes, as 16 hosts would be, writing
``--process-events`` log events each, their aggregate events/s on SQLite and on
PostgreSQL side by side.

    python scripts/bench_writer.py [--events 50000]
    python scripts/bench_writer.py --db postgresql://user@host/db [--processes 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator import DatabaseManager
from orchestrator.core.ids import new_id, utc_now
from orchestrator.core.rows import AGENT_LOG_COLUMNS
from orchestrator.store import sqlite as backend
from orchestrator.writer.log_writer import AGENT_LOG_INSERT

MESSAGES = [
    "Running tool Bash: pytest -x tests/test_writer.py -k batch",
    "Read file src/app/models.py (412 lines)",
    "step build: applying patch to orchestrator/writer/db.py",
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


async def bench_writer(
    path: Path | str, agent_id: str, evts: list
) -> tuple[float, float, list[float]]:
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


# -- PostgreSQL ------------------------------------------------------------------------


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


async def pg_fresh(url: str) -> tuple[str, str, str]:
    """A fresh migrated schema with one run: (its URL, the schema, the agent id)."""
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    await admin.close()
    target = schema_url(url, schema)
    async with DatabaseManager(target) as db:
        agent_id = await db.create_agent(await db.ensure_orchestrator_agent("bench"), "bench")
    return target, schema, agent_id


async def pg_drop(url: str, schema: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(url)
    await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    await admin.close()


async def bench_pipelined(target: str, agent_id: str, evts: list) -> float:
    """The writer as an ADW uses it: log calls that yield to the loop now and then, so
    batches (of the default size) are written while the caller goes on; the clock runs
    from the first call until ``flush()`` has committed all."""
    async with DatabaseManager(target) as db:
        await db.log_agent_event(agent_id, "info", "warm-up")
        await db.flush()
        start = time.perf_counter()
        for i, (log_type, message, metadata) in enumerate(evts):
            await db.log_agent_event(agent_id, log_type, message, metadata)
            if i % 1000 == 999:
                await asyncio.sleep(0)
        await db.flush()
        return time.perf_counter() - start


async def pg_raw(target: str, rows: list[tuple], how: str) -> float:
    """The same rows through asyncpg alone, in one transaction, as the writer sends a batch."""
    import asyncpg

    from orchestrator.store.postgres import to_dollar

    conn = await asyncpg.connect(target)
    start = time.perf_counter()
    async with conn.transaction():
        if how == "copy":
            await conn.copy_records_to_table(
                "agent_logs", records=rows, columns=list(AGENT_LOG_COLUMNS)
            )
        else:
            await conn.executemany(to_dollar(AGENT_LOG_INSERT), rows)
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


async def pg_round(url: str, evts: list, round_no: int) -> dict[str, float]:
    """Every PostgreSQL variant once, each in a fresh schema, in an order rotated by
    ``round_no`` (so that none always runs after the server's cleanup of another)."""
    seconds: dict[str, float] = {}

    async def writer(target: str, agent_id: str) -> None:
        calls_s, flush_s, _ = await bench_writer(target, agent_id, evts)
        seconds["writer, end to end"] = calls_s + flush_s
        seconds["writer, write path (flush)"] = flush_s

    async def pipelined(target: str, agent_id: str) -> None:
        seconds["writer, pipelined"] = await bench_pipelined(target, agent_id, evts)

    async def raw_copy(target: str, agent_id: str) -> None:
        seconds["raw asyncpg copy"] = await pg_raw(target, rows_for(agent_id, evts), "copy")

    async def raw_many(target: str, agent_id: str) -> None:
        rows = rows_for(agent_id, evts)
        seconds["raw asyncpg executemany"] = await pg_raw(target, rows, "executemany")

    variants = [writer, pipelined, raw_copy, raw_many]
    shift = round_no % len(variants)
    for variant in variants[shift:] + variants[:shift]:
        target, schema, agent_id = await pg_fresh(url)
        await variant(target, agent_id)
        await pg_drop(url, schema)
    order = ["writer, end to end", "writer, write path (flush)", "writer, pipelined"]
    order += ["raw asyncpg copy", "raw asyncpg executemany"]
    return {name: seconds[name] for name in order}


def _process(target: str, events: int, barrier: Any, results: Any) -> None:
    """One writer process (a host): one run, ``events`` log calls, then flush."""

    async def work() -> None:
        async with DatabaseManager(target) as db:
            async with db.agent_run("bench", session_id=new_id()) as run:
                await db.flush()
                barrier.wait()
                start = time.time()
                for i in range(events):
                    run.log("tool_use", MESSAGES[i % len(MESSAGES)], {"seq": i})
                    if i % 1000 == 999:
                        await asyncio.sleep(0)  # an ADW awaits now and then: the writer runs
                await db.flush()
                results.put((start, time.time()))

    asyncio.run(work())


def concurrent_rate(target: str, processes: int, events: int) -> float:
    """Aggregate events/s of ``processes`` writer processes started together."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(target, events, barrier, results))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, "a writer process failed"
    return processes * events / (max(end for _, end in spans) - min(s for s, _ in spans))


def main_postgres(args: argparse.Namespace) -> None:
    import asyncpg

    evts = events(args.events)
    rounds = [asyncio.run(pg_round(args.db, evts, n)) for n in range(args.rounds)]
    rates = {name: args.events / statistics.median(r[name] for r in rounds) for name in rounds[0]}

    async def version() -> str:
        conn = await asyncpg.connect(args.db)
        found = await conn.fetchval("SHOW server_version")
        await conn.close()
        return str(found)

    print(
        f"python {sys.version.split()[0]}, PostgreSQL {asyncio.run(version())}, "
        f"asyncpg {asyncpg.__version__}, {args.events} events, median of {args.rounds} rounds"
    )
    best_raw = max(rate for name, rate in rates.items() if name.startswith("raw"))
    print(f"{'variant':<30}{'events/s':>10}{'/ best raw':>12}")
    for name, rate in rates.items():
        print(f"{name:<30}{rate:>10,.0f}{rate / best_raw:>11.2f}x")

    if args.processes:
        n, events_each = args.processes, args.process_events
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "concurrent.db"
            backend.connect(path).close()
            sqlite_rate = concurrent_rate(str(path), n, events_each)
        target, schema, _ = asyncio.run(pg_fresh(args.db))
        try:
            pg_rate = concurrent_rate(target, n, events_each)
        finally:
            asyncio.run(pg_drop(args.db, schema))
        print(f"{n} writer processes x {events_each} events, aggregate events/s:")
        print(f"{'SQLite (one file)':<30}{sqlite_rate:>10,.0f}")
        print(f"{'PostgreSQL (one server)':<30}{pg_rate:>10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="a postgresql:// URL: measure PostgreSQL")
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--process-events", type=int, default=20_000)
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
    if args.db is not None:
        main_postgres(args)
        return
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
