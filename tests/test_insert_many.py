"""``Backend.insert_many``: many rows to a statement on SQLite (FTS5 writes its pending terms
out at the end of every statement), COPY or one INSERT per chunk on PostgreSQL; the same
rows, found by search, whatever the chunking; ``on_conflict`` skips taken keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator import DatabaseManager
from orchestrator.core.rows import AGENT_LOG_COLUMNS, agent_log_row
from orchestrator.store.targets import backend_for
from tests.backends import Target, is_postgres, rows

pytestmark = pytest.mark.usefixtures("backend")


def _run(target: Target, work: Any) -> Any:
    async def go() -> Any:
        backend = backend_for(str(target))
        await backend.open()
        try:
            return await work(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def _agent(target: Target) -> str:
    async def make() -> str:
        async with DatabaseManager(target) as db:
            workflow = await db.create_orchestrator_agent("insert-many")
            return str(await db.create_agent(workflow, status="running"))

    return asyncio.run(make())


def _logs(agent: str, count: int, first: int = 0) -> list[tuple[Any, ...]]:
    # a word of its own in each message: search finds each row, or misses it
    return [
        agent_log_row(agent, "event", f"chunked word{n:04d} of the batch", {"n": n})
        for n in range(first, first + count)
    ]


@pytest.mark.parametrize("count", [1, 99, 100, 101, 250])
def test_every_row_stored_and_found_by_search(db_target: Target, count: int) -> None:
    agent = _agent(db_target)
    logs = _logs(agent, count)

    async def insert(backend: Any) -> None:
        async with backend.transaction():
            await backend.insert_many("agent_logs", AGENT_LOG_COLUMNS, logs)

    _run(db_target, insert)
    stored = rows(db_target, f"SELECT {', '.join(AGENT_LOG_COLUMNS)} FROM agent_logs")
    assert sorted(map(_comparable, stored)) == sorted(map(_comparable, logs))
    if is_postgres(db_target):
        found = rows(
            db_target,
            "SELECT message FROM agent_logs WHERE search @@ to_tsquery('simple', 'chunked')",
        )
        one = rows(
            db_target,
            "SELECT message FROM agent_logs WHERE search @@ to_tsquery('simple', 'word0042')",
        )
    else:
        found = rows(
            db_target, "SELECT rowid FROM agent_logs_fts WHERE agent_logs_fts MATCH 'chunked'"
        )
        one = rows(
            db_target,
            "SELECT a.message FROM agent_logs_fts f JOIN agent_logs a ON a.rowid = f.rowid "
            "WHERE agent_logs_fts MATCH 'word0042'",
        )
    assert len(found) == count
    assert [r[0] for r in one] == (["chunked word0042 of the batch"] if count > 42 else [])


def test_on_conflict_skips_taken_keys_within_and_across_chunks(db_target: Target) -> None:
    agent = _agent(db_target)
    first = _logs(agent, 150)
    again = [*first[140:], *_logs(agent, 60, first=150), *first[:5]]  # 15 taken, 60 new

    async def insert(backend: Any) -> None:
        async with backend.transaction():
            await backend.insert_many("agent_logs", AGENT_LOG_COLUMNS, first)
        async with backend.transaction():
            await backend.insert_many(
                "agent_logs", AGENT_LOG_COLUMNS, again, on_conflict="ON CONFLICT (id) DO NOTHING"
            )

    _run(db_target, insert)
    stored = rows(db_target, "SELECT id FROM agent_logs")
    assert sorted(r[0] for r in stored) == sorted(row[0] for row in first + again[10:70])


def test_a_refused_row_fails_the_call_and_the_transaction_keeps_nothing(db_target: Target) -> None:
    agent = _agent(db_target)
    logs = _logs(agent, 180)
    bad = list(logs[150])
    bad[AGENT_LOG_COLUMNS.index("message")] = None  # NOT NULL
    logs[150] = tuple(bad)

    async def insert(backend: Any) -> str:
        try:
            async with backend.transaction():
                await backend.insert_many("agent_logs", AGENT_LOG_COLUMNS, logs)
        except Exception as exc:
            return type(exc).__name__
        return "stored"

    assert _run(db_target, insert) in {"IntegrityError", "NotNullViolationError"}
    assert rows(db_target, "SELECT count(*) FROM agent_logs")[0][0] == 0


def _comparable(row: Any) -> tuple[Any, ...]:
    return tuple(str(value) if value is not None else None for value in row)
