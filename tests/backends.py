"""Reading and writing a test database behind the writer's back, on either backend.

Tests check what reached the store with these, never with the writer itself: plain
``sqlite3`` for a path, a separate asyncpg connection for a ``postgresql://`` URL (its
SQL written with ``?`` placeholders, as the writer's is).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from orchestrator.commands.copy import RUN_TOTALS  # loaded as 0, then rebuilt by the triggers
from orchestrator.store.postgres import to_dollar
from orchestrator.store.targets import is_url

Target = str | Path


def is_postgres(target: Target) -> bool:
    return is_url(str(target))


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (asyncpg passes unknown query parameters
    on as server settings)."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'search_path': schema})}"


def _run(coroutine: Any) -> Any:
    """Run a coroutine to its end from sync or async test code (in a thread of its own)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def postgres_admin(url: str, sql: str, *, check: bool = True) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        _run(go())
    except Exception:
        if check:
            raise


def rows(target: Target, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every row of a query, as tuples."""
    if is_postgres(target):
        import asyncpg

        async def go() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(str(target))
            try:
                return [tuple(row) for row in await conn.fetch(to_dollar(sql), *params)]
            finally:
                await conn.close()

        return list(_run(go()))
    conn = sqlite3.connect(os.fspath(target))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def records(url: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Every row of a query on PostgreSQL, each read by column name or position (asyncpg
    records, as sqlite3.Row reads them)."""
    import asyncpg

    async def go() -> list[Any]:
        conn = await asyncpg.connect(str(url))
        try:
            return list(await conn.fetch(to_dollar(sql), *params))
        finally:
            await conn.close()

    return list(_run(go()))


def execute(target: Target, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
    """Run write statements in one transaction, as another process would (foreign keys on)."""
    steps = [(s, ()) if isinstance(s, str) else s for s in statements]
    if is_postgres(target):
        import asyncpg

        async def go() -> None:
            conn = await asyncpg.connect(str(target))
            try:
                async with conn.transaction():
                    for sql, params in steps:
                        await conn.execute(to_dollar(sql), *params)
            finally:
                await conn.close()

        _run(go())
        return
    conn = sqlite3.connect(os.fspath(target))
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        for sql, params in steps:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


TABLES = ["orchestrator_agents", "agents", "prompts", "agent_logs", "system_logs"]


def counts(target: Target) -> dict[str, int]:
    """Rows in each of the seed's five tables."""
    return {table: rows(target, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def dump(target: Target) -> str:
    """Everything stored, as text: SQLite's dump; on PostgreSQL every row of every table
    of the schema (full-text ``search`` vectors included)."""
    if not is_postgres(target):
        conn = sqlite3.connect(os.fspath(target))
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    tables = rows(
        target,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() ORDER BY 1",
    )
    return "\n".join(
        str(row[0]) for (table,) in tables for row in rows(target, f"SELECT t::text FROM {table} t")
    )


# -- one SQLite history, loaded into PostgreSQL with its triggers on -------------------------

#: Kept by PostgreSQL's triggers from the rows below: rebuilt by the load, not copied.
SUMMARY_TABLES = ["usage_daily", "runs_daily", "step_histogram_daily", "sessions"]
#: Parents before children (foreign keys); the other tables after, in any order.
_LOAD_FIRST = ["orchestrator_agents", "agents", "prompts"]


def load_into_postgres(source: Path, url: str, *, batch: int = 20_000) -> dict[str, int]:
    """Copy every row of the SQLite orchestrator database ``source`` into the migrated,
    empty PostgreSQL database at ``url`` (``COPY``); return the rows copied per table.

    Summaries and run totals are not copied (``orchestrator copy`` carries them):
    PostgreSQL's triggers compute them from the rows, as they do for its own writers, so
    comparing them with SQLite's checks the triggers. The ledger, the full-text tables
    and the migrations' own rows (``duration_buckets``) stay as the migrations made them.
    """
    from orchestrator.store.postgres import connect

    skip = {*SUMMARY_TABLES, "duration_buckets", "_sqlite_migrations"}

    async def go() -> dict[str, int]:
        lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        conn = await connect(url)
        copied = {}
        try:
            present = {
                row[0]
                for row in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            }
            tables = [
                name
                for (name,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if name in present and name not in skip
            ]
            tables.sort(key=lambda t: (_LOAD_FIRST.index(t) if t in _LOAD_FIRST else 9, t))
            async with conn.transaction():
                for table in tables:
                    columns = [row[1] for row in lite.execute(f"PRAGMA table_info({table})")]
                    selected = [
                        f"0 AS {c}" if table == "agents" and c in RUN_TOTALS else c for c in columns
                    ]
                    select = f"SELECT {', '.join(selected)} FROM {table} ORDER BY rowid"
                    cursor = lite.execute(select)
                    copied[table] = 0
                    while chunk := cursor.fetchmany(batch):
                        await conn.copy_records_to_table(table, records=chunk, columns=columns)
                        copied[table] += len(chunk)
            await conn.execute("ANALYZE")
        finally:
            lite.close()
            await conn.close()
        return copied

    return dict(_run(go()))


#: Claude Code's activity metrics, by user, team and UTC day (hand-written in the shape of
#: its OTLP export: delta sums, resource attributes repeated on each point):
#: (day, user.email, team, metric name without ``claude_code.``, type, value).
ACTIVITY = [
    ("2026-10-20", "ana@example.com", "core", "session.count", None, 2),
    ("2026-10-20", "ana@example.com", "core", "commit.count", None, 3),
    ("2026-10-20", "ana@example.com", "core", "pull_request.count", None, 1),
    ("2026-10-20", "ana@example.com", "core", "lines_of_code.count", "added", 120),
    ("2026-10-20", "ana@example.com", "core", "lines_of_code.count", "removed", 45),
    ("2026-10-20", "ana@example.com", "core", "active_time.total", "user", 600.5),
    ("2026-10-20", "ana@example.com", "core", "active_time.total", "cli", 1800.25),
    ("2026-10-20", "ana@example.com", "core", "cost.usage", None, 1.5),
    ("2026-10-20", "ana@example.com", "core", "commit.count", None, 2),  # a later delta
    ("2026-10-20", "bo@example.com", "web", "session.count", None, 1),
    ("2026-10-20", "bo@example.com", "web", "lines_of_code.count", "added", 30),
    ("2026-10-20", "bo@example.com", "web", "token.usage", "output", 4000),
    ("2026-10-21", "ana@example.com", "core", "pull_request.count", None, 2),
    ("2026-10-21", "bo@example.com", "web", "commit.count", None, 4),
    ("2026-10-21", "bo@example.com", "web", "cost.usage", None, 0.25),
]


def activity_payload(points: list[tuple[Any, ...]] = ACTIVITY) -> dict[str, Any]:
    """An OTLP/JSON metrics payload of ``points`` (see :data:`ACTIVITY`), one resource a
    point, at noon UTC of its day."""
    from datetime import datetime

    def attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"key": k, "value": {"stringValue": v}} for k, v in values.items() if v]

    resources = []
    for day, email, team, name, kind, value in points:
        noon = datetime.fromisoformat(f"{day}T12:00:00+00:00")
        nanos = str(int(noon.timestamp()) * 1_000_000_000)
        resource = {"team": team, "service.name": "claude-code"}
        point = {
            "attributes": attrs({**resource, "user.email": email, "type": kind}),
            "startTimeUnixNano": nanos,
            "timeUnixNano": nanos,
            "asDouble": value,
        }
        total = {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [point]}
        metric = {"name": f"claude_code.{name}", "unit": "1", "sum": total}
        resources.append(
            {
                "resource": {"attributes": attrs(resource)},
                "scopeMetrics": [
                    {"scope": {"name": "com.anthropic.claude_code"}, "metrics": [metric]}
                ],
            }
        )
    return {"resourceMetrics": resources}


def store_otlp_metrics(target: Target, payload: dict[str, Any]) -> None:
    """``payload`` (OTLP/JSON metrics) stored in ``target`` as ``orchestrator collect``
    stores what it receives."""
    from orchestrator.claude_code import otlp
    from orchestrator.claude_code.collect import Collector, build

    collector = Collector(str(target))
    collector.start()
    try:
        collector.store(build(otlp.parse_metrics(payload)))
    finally:
        collector.stop()
