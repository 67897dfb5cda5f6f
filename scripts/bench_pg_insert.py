"""How a batch with a conflict clause goes into PostgreSQL: one statement a row, a multi-row
VALUES list, or one typed array a column (``unnest``, what ``PostgresBackend.insert_many``
does with ``on_conflict``).

    python scripts/bench_pg_insert.py postgresql://localhost/postgres [--rounds 7]

Into the store's own schema (a database made on the server, migrated, dropped after; its
indexes, foreign keys and summary triggers on), with ``ON CONFLICT (id) DO NOTHING``:
batches of 10, 160 and 1,000 ``agent_logs`` rows (8 columns) and ``prompts`` rows (14
columns) of 8 runs, each batch inserted and rolled back, the same rows every round. Prints
the median time of a batch over interleaved rounds (the first, which prepares, left out),
in microseconds per row, and each method beside asyncpg's ``executemany`` of the batch.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.core.ids import new_id
from orchestrator.core.rows import AGENT_LOG_COLUMNS
from orchestrator.store.postgres import PostgresBackend

PROMPT_COLUMNS = (
    "id", "agent_id", "content", "response", "status", "tokens_input", "tokens_output",
    "tokens_cache_read", "tokens_cache_write", "cost_usd", "cost_source", "created_at",
    "model", "duration_ms",
)  # fmt: skip
SIZES = (10, 160, 1000)
CONFLICT = "ON CONFLICT (id) DO NOTHING"


def rows_of(table: str, runs: list[str], n: int) -> list[tuple[Any, ...]]:
    at = "2026-11-01T12:00:{:02d}.{:03d}Z"
    if table == "agent_logs":
        return [
            (
                new_id(),
                runs[i % len(runs)],
                "tool_result",
                f"Bash: succeeded (pytest -x tests/test_{i % 40}.py)",
                f'{{"tool_use_id": "toolu_{i:06d}", "duration_ms": {i % 900}}}',
                at.format(i % 60, i % 1000),
                None,
                None,
            )
            for i in range(n)
        ]
    return [
        (
            new_id(),
            runs[i % len(runs)],
            f"refactor module {i % 50} and run the tests",
            f"Done: {i % 7} files changed",
            "completed",
            1000 + i,
            200 + i % 300,
            5000 + i,
            i % 100,
            (i % 50) / 1024,
            "reported",
            at.format(i % 60, i % 1000),
            f"claude-sonnet-4-{i % 2 + 5}",
            float(i % 4000),
        )
        for i in range(n)
    ]


def values_sql(table: str, columns: tuple[str, ...], n: int) -> str:
    numbers = iter(range(1, n * len(columns) + 1))
    places = ", ".join(
        "(" + ", ".join(f"${next(numbers)}" for _ in columns) + ")" for _ in range(n)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {places} {CONFLICT}"


async def measure(url: str, rounds: int) -> None:
    backend = PostgresBackend(url)
    await backend.open()  # migrated
    conn = backend.connection
    try:
        await conn.execute("INSERT INTO orchestrator_agents (id, name) VALUES ('w', 'bench')")
        runs = [new_id() for _ in range(8)]
        await conn.executemany(
            "INSERT INTO agents (id, orchestrator_agent_id, session_id) VALUES ($1, 'w', $1)",
            [(run,) for run in runs],
        )

        async def insert(
            method: str, table: str, columns: tuple[str, ...], rows: list[Any]
        ) -> None:
            if method == "executemany":
                places = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places}) {CONFLICT}"
                await conn.executemany(sql, rows)
            elif method == "VALUES":
                await conn.execute(values_sql(table, columns, len(rows)), *sum(rows, ()))
            else:
                await backend.insert_many(table, columns, rows, on_conflict=CONFLICT)

        methods = ("executemany", "VALUES", "unnest")
        print(f"{'table':12s} {'rows':>5s}  " + "  ".join(f"{m:>22s}" for m in methods))
        for table, columns in (("agent_logs", AGENT_LOG_COLUMNS), ("prompts", PROMPT_COLUMNS)):
            for size in SIZES:
                rows = rows_of(table, runs, size)
                times: dict[str, list[float]] = {method: [] for method in methods}
                for _ in range(rounds + 1):
                    for method in methods:
                        transaction = conn.transaction()
                        await transaction.start()
                        started = time.perf_counter()
                        await insert(method, table, columns, rows)
                        times[method].append(time.perf_counter() - started)
                        await transaction.rollback()
                us = {m: statistics.median(t[1:]) / size * 1e6 for m, t in times.items()}
                base = us["executemany"]
                cells = [f"{us[m]:7.1f} us/row ({base / us[m]:4.1f}x)" for m in methods]
                print(f"{table:12s} {size:5d}  " + "  ".join(f"{c:>22s}" for c in cells))
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a postgresql:// server URL (a database is made there)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import asyncpg

    name = f"bench_pg_insert_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = urlunsplit(urlsplit(args.url)._replace(path=f"/{name}"))
        asyncio.run(measure(url, args.rounds))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
