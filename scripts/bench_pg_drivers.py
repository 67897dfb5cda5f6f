"""Measure the PostgreSQL drivers on the writer's hot path: batches of agent-log rows.

For each driver that is importable (asyncpg, psycopg 3 async) and each way of sending a
batch (``executemany``, ``COPY``, ``INSERT ... SELECT FROM unnest(...)``), insert the same
rows in batches of ``--batch`` rows, one transaction per batch, into a table shaped like
``agent_logs`` (text ids and timestamps, a foreign key, its two indexes; no triggers: they
cost every driver the same). Prints rows/s, the median of interleaved rounds. This is how
the PostgreSQL backend's driver and batch method were chosen (see orchestrator/store/postgres.py).

    python scripts/bench_pg_drivers.py postgresql://localhost/postgres [--rows 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.core.ids import new_id, utc_now

COLUMNS = ("id", "agent_id", "log_type", "message", "metadata", "created_at", "step", "duration_ms")
TYPES = ("text", "text", "text", "text", "text", "text", "text", "float8")
SCHEMA = """
DROP TABLE IF EXISTS bench_logs; DROP TABLE IF EXISTS bench_agents;
CREATE TABLE bench_agents (id text PRIMARY KEY);
CREATE TABLE bench_logs (
    id text PRIMARY KEY, agent_id text NOT NULL REFERENCES bench_agents(id) ON DELETE CASCADE,
    log_type text NOT NULL, message text NOT NULL, metadata text, created_at text NOT NULL,
    step text, duration_ms double precision);
CREATE INDEX bench_logs_agent ON bench_logs(agent_id, created_at);
CREATE INDEX bench_logs_created ON bench_logs(created_at);
"""
MESSAGES = [
    "Running tool Bash: pytest -x tests/test_writer.py -k batch",
    "Read file src/app/models.py (412 lines)",
    "step build: applying patch to orchestrator/writer/db.py",
    "Edit: replaced 12 lines in README.md",
]
INSERT_DOLLAR = (
    f"INSERT INTO bench_logs ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))})"
)
UNNEST = (
    f"INSERT INTO bench_logs ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(TYPES))
    + ")"
)


def make_rows(agent_id: str, n: int) -> list[tuple[Any, ...]]:
    return [
        (
            new_id(),
            agent_id,
            "tool_use",
            MESSAGES[i % len(MESSAGES)],
            json.dumps({"tool": "Bash", "seq": i, "exit_code": 0}),
            utc_now(),
            "build" if i % 10 else None,
            float(i % 1000) if i % 10 == 0 else None,
        )
        for i in range(n)
    ]


def batches(rows: list[tuple[Any, ...]], size: int) -> list[list[tuple[Any, ...]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def asyncpg_variants(url: str) -> dict[str, Callable[[list[list[Any]]], Awaitable[None]]]:
    import asyncpg

    conn = await asyncpg.connect(url)

    async def executemany(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction():
                await conn.executemany(INSERT_DOLLAR, chunk)

    async def copy(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction():
                await conn.copy_records_to_table("bench_logs", records=chunk, columns=COLUMNS)

    async def unnest(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction():
                await conn.execute(UNNEST, *[list(col) for col in zip(*chunk, strict=True)])

    return {
        "asyncpg executemany": executemany,
        "asyncpg COPY": copy,
        "asyncpg unnest": unnest,
        "_conn": conn,  # type: ignore[dict-item]
    }


async def psycopg_variants(url: str) -> dict[str, Callable[[list[list[Any]]], Awaitable[None]]]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    insert = INSERT_DOLLAR
    for i in range(len(COLUMNS), 0, -1):
        insert = insert.replace(f"${i}", "%s")
    unnest_sql = UNNEST
    for i in range(len(COLUMNS), 0, -1):
        unnest_sql = unnest_sql.replace(f"${i}", "%s")

    async def executemany(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(insert, chunk)

    async def copy(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction(), conn.cursor() as cur:
                async with cur.copy(f"COPY bench_logs ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                    for row in chunk:
                        await cp.write_row(row)

    async def unnest(chunks: list[list[Any]]) -> None:
        for chunk in chunks:
            async with conn.transaction():
                await conn.execute(unnest_sql, [list(col) for col in zip(*chunk, strict=True)])

    return {
        "psycopg executemany": executemany,
        "psycopg COPY": copy,
        "psycopg unnest": unnest,
        "_conn": conn,  # type: ignore[dict-item]
    }


async def main_async(url: str, n: int, size: int, rounds: int) -> None:
    import asyncpg

    admin = await asyncpg.connect(url)
    variants: dict[str, Callable[[list[list[Any]]], Awaitable[None]]] = {}
    conns = []
    for module, factory in (("asyncpg", asyncpg_variants), ("psycopg", psycopg_variants)):
        if importlib.util.find_spec(module) is not None:
            found = await factory(url)
            conns.append(found.pop("_conn"))
            variants.update(found)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            await admin.execute(SCHEMA)
            agent_id = new_id()
            await admin.execute("INSERT INTO bench_agents VALUES ($1)", agent_id)
            chunks = batches(make_rows(agent_id, n), size)
            start = time.perf_counter()
            await variant(chunks)
            seconds[name].append(time.perf_counter() - start)
            assert await admin.fetchval("SELECT count(*) FROM bench_logs") == n
    await admin.execute("DROP TABLE bench_logs; DROP TABLE bench_agents")
    version = await admin.fetchval("SHOW server_version")
    print(f"PostgreSQL {version}, {n} rows in batches of {size}, median of {rounds} rounds")
    print(f"{'variant':<24}{'rows/s':>10}")
    for name, times in seconds.items():
        print(f"{name:<24}{n / statistics.median(times):>10,.0f}")
    for conn in conns:
        await conn.close()
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async(args.url, args.rows, args.batch, args.rounds))


if __name__ == "__main__":
    main()
