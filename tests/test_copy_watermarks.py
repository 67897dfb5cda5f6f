"""A copy's later rounds (a served snapshot's refresh, ``copy --follow``) read only what the
source gained since its last verified round: by ``tx_id`` and snapshots on PostgreSQL, by
rowid on SQLite (``copy_watermarks``). Checked by what each engine says it read."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Target, execute, is_postgres, rows

import orchestrator.store.sqlite as sqlite_store
from orchestrator.commands.copy import TABLES, copy_database
from orchestrator.core.ids import utc_now

#: Tables the demo fills with more than a few rows: none may be read whole by a round.
BIG = ("agents", "prompts", "agent_logs", "system_logs")


@pytest.fixture
def stores(
    demo_db: Path, tmp_path: Path, new_db_target: Callable[[], Target]
) -> tuple[Target, Path]:
    """A source on ``backend`` holding the demo and a few rows of every updatable table,
    and an SQLite snapshot of it made by a full, verified copy."""
    demo = tmp_path / "demo.db"
    shutil.copy(demo_db, demo)
    source = new_db_target()
    copy_database(demo, source)
    run = rows(source, "SELECT id FROM agents ORDER BY id LIMIT 1")[0][0]
    now = utc_now()
    execute(
        source,
        (
            "INSERT INTO budgets (scope, name, daily_usd, monthly_usd, updated_at) "
            "VALUES ('model', 'm', 1.0, 10.0, ?)",
            (now,),
        ),
        (
            "INSERT INTO claude_code_files (path, agent_id, kind, lines, imported_at) "
            "VALUES ('/t/a.jsonl', ?, 'session', 3, ?)",
            (run, now),
        ),
        (
            "INSERT INTO otel_metrics_daily (day, name, attributes, value, points, updated_at) "
            "VALUES ('2026-11-01', 'claude_code.cost.usage', '{}', 1.5, 1, ?)",
            (now,),
        ),
        ("INSERT INTO claude_code_runs (agent_id, num_turns) VALUES (?, 1)", (run,)),
    )
    if is_postgres(source):
        execute(source, "ANALYZE")  # as autovacuum would: the planner knows the sizes
    snapshot = tmp_path / "snapshot.db"
    copy_database(source, snapshot)
    return source, snapshot


class _Reads:
    """What a round read whole: SQLite statements whose plan scans a big table (traced on
    every connection the copy opens), PostgreSQL rows read by sequential scans."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, source: Target) -> None:
        self.source = source
        self.statements: list[tuple[str, str]] = []
        opened = sqlite_store._open

        def traced(path: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = opened(path, **kwargs)
            name = os.fspath(path)
            conn.set_trace_callback(lambda sql: self.statements.append((name, sql)))
            return conn

        monkeypatch.setattr(sqlite_store, "_open", traced)

    def _pg(self) -> dict[str, tuple[int, int]]:
        found = rows(
            self.source,
            "SELECT relname, seq_tup_read, coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema()",
        )
        return {name: (int(seq), int(fetched)) for name, seq, fetched in found}

    def __enter__(self) -> _Reads:
        self.statements.clear()
        if is_postgres(self.source):
            execute(self.source, "SELECT pg_stat_force_next_flush()")
            self.before = self._pg()
        return self

    def __exit__(self, *exc: Any) -> None:
        if is_postgres(self.source):
            self.after = self._pg()

    def scans(self) -> list[str]:
        """Each whole read of a big table: "table: statement" (SQLite) or "table: N rows
        read by sequential scans" (PostgreSQL, the source)."""
        found = []
        if is_postgres(self.source):
            for table in BIG:
                # The planner reads a table of a few pages whole rather than by an index.
                size = rows(self.source, f"SELECT count(*) FROM {table}")[0][0]
                if size < 1000:
                    continue
                seq = self.after[table][0] - self.before[table][0]
                if seq:
                    found.append(f"{table}: {seq} rows read by sequential scans")
                fetched = self.after[table][1] - self.before[table][1]
                if fetched > size // 2:  # an index walked whole, each row fetched
                    found.append(f"{table}: {fetched} rows of {size} fetched by index scans")
        for path, sql in self.statements:
            if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
                continue
            if re.fullmatch(r"SELECT 1 AS x FROM \w+ LIMIT 1", sql.strip()):
                continue  # one row, whatever the plan says
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            finally:
                conn.close()
            for table in BIG:
                if re.search(rf"\bSCAN {table}\b", plan):
                    found.append(f"{table}: {sql[:200]} ({plan})")
        return found


def _same_tables(source: Target, target: Target) -> None:
    for table in TABLES:
        order = ", ".join(table.key)
        mine = rows(target, f"SELECT * FROM {table.name} ORDER BY {order}")
        theirs = rows(source, f"SELECT * FROM {table.name} ORDER BY {order}")
        assert len(mine) == len(theirs), table.name
        assert _comparable(source, table.name, theirs) == _comparable(target, table.name, mine), (
            table.name
        )


def _comparable(target: Target, table: str, found: list[tuple[Any, ...]]) -> list[Any]:
    """The rows without PostgreSQL's bookkeeping (tx_id) and search columns, by name."""
    if is_postgres(target):
        names = [
            name
            for (name,) in rows(
                target,
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                (table,),
            )
        ]
    else:
        names = [row[1] for row in rows(target, f"PRAGMA table_info({table})")]
    kept = [i for i, name in enumerate(names) if name not in ("tx_id", "search")]
    return [
        tuple(round(row[i], 9) if isinstance(row[i], float) else row[i] for i in kept)
        for row in found
    ]


def _old_id() -> str:
    """A UUIDv7 of 2020: a writer whose clock is years behind."""
    return f"01700000-0000-7000-8000-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_refresh_reads_no_whole_table_and_brings_what_is_new(
    stores: tuple[Target, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, snapshot = stores
    reads = _Reads(monkeypatch, source)
    with reads:
        idle = copy_database(source, snapshot, recent=True)
    assert (idle.inserted, idle.updated, idle.problems) == (0, 0, [])
    assert reads.scans() == []

    run = rows(source, "SELECT id FROM agents ORDER BY id DESC LIMIT 1")[0][0]
    new = [(str(uuid.uuid4()), run, f"new {i}") for i in range(300)]
    new.append((_old_id(), run, "a writer's clock behind"))
    execute(
        source,
        *[
            ("INSERT INTO agent_logs (id, agent_id, log_type, message) VALUES (?, ?, 'info', ?)", r)
            for r in new
        ],
    )
    with reads:
        busy = copy_database(source, snapshot, recent=True)
    assert {t.name: t.inserted for t in busy.tables if t.inserted} == {"agent_logs": len(new)}
    # The new rows, each found in the target (rows changed in place lately are read too).
    logs = next(t for t in busy.tables if t.name == "agent_logs")
    assert logs.source_rows == logs.target_rows == len(new)
    assert reads.scans() == []
    _same_tables(source, snapshot)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rows_changed_in_place_are_carried(stores: tuple[Target, Path]) -> None:
    source, snapshot = stores
    run = rows(source, "SELECT id FROM agents ORDER BY id LIMIT 1")[0][0]
    workflow = rows(source, "SELECT id FROM orchestrator_agents ORDER BY id LIMIT 1")[0][0]
    pending = str(uuid.uuid4())
    execute(
        source,
        (
            "INSERT INTO prompts (id, agent_id, content, status) VALUES (?, ?, 'q', 'pending')",
            (pending, run),
        ),
        (
            "INSERT INTO agents (id, orchestrator_agent_id, status) VALUES (?, ?, 'running')",
            ("01700000-0000-7000-8000-00000000000a", workflow),
        ),
    )
    assert copy_database(source, snapshot, recent=True).inserted == 2
    # Still running, unchanged: not written again at every refresh.
    assert copy_database(source, snapshot, recent=True).updated == 0
    now = utc_now()
    execute(
        source,
        (
            "UPDATE prompts SET status = 'completed', tokens_input = 7, cost_usd = 0.5 "
            "WHERE id = ?",
            (pending,),
        ),
        (
            "UPDATE agents SET status = 'completed', completed_at = ? WHERE id = ?",
            (now, "01700000-0000-7000-8000-00000000000a"),
        ),
        ("UPDATE budgets SET daily_usd = 2.0, updated_at = ?", (now,)),
        (
            "UPDATE orchestrator_agents SET description = 'changed', updated_at = ? WHERE id = ?",
            (now, workflow),
        ),
        ("UPDATE claude_code_files SET lines = 9, imported_at = ?", (now,)),
        ("UPDATE otel_metrics_daily SET value = 4.5, points = 2, updated_at = ?", (now,)),
        # cost-state rewritten as a session goes on: no column of the writer's says so
        "UPDATE claude_code_runs SET num_turns = 5, lines_added = 12",
    )
    result = copy_database(source, snapshot, recent=True)
    assert result.problems == []
    assert {t.name: t.updated for t in result.tables if t.updated} == {
        "orchestrator_agents": 1,
        "agents": 1,
        "prompts": 1,
        "claude_code_runs": 1,
        "claude_code_files": 1,
        "budgets": 1,
        "otel_metrics_daily": 1,
    }
    _same_tables(source, snapshot)
    assert copy_database(source, snapshot, recent=True).updated == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_transaction_committed_after_a_later_one_is_not_missed(
    stores: tuple[Target, Path],
) -> None:
    from orchestrator.store.postgres import connect

    source, snapshot = stores
    assert is_postgres(source)
    run = rows(source, "SELECT id FROM agents ORDER BY id LIMIT 1")[0][0]
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(connect(str(source)))
        long = _old_id()
        loop.run_until_complete(conn.execute("BEGIN"))
        loop.run_until_complete(
            conn.execute(
                "INSERT INTO agent_logs (id, agent_id, log_type, message) "
                "VALUES ($1, $2, 'info', 'long transaction')",
                long,
                run,
            )
        )
        later = str(uuid.uuid4())
        execute(
            source,
            (
                "INSERT INTO agent_logs (id, agent_id, log_type, message) "
                "VALUES (?, ?, 'info', 'committed first')",
                (later, run),
            ),
        )
        first = copy_database(source, snapshot, recent=True)
        assert {t.name: t.inserted for t in first.tables if t.inserted} == {"agent_logs": 1}
        loop.run_until_complete(conn.execute("COMMIT"))
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
    second = copy_database(source, snapshot, recent=True)
    assert {t.name: t.inserted for t in second.tables if t.inserted} == {"agent_logs": 1}
    assert rows(snapshot, "SELECT message FROM agent_logs WHERE id = ?", (long,)) == [
        ("long transaction",)
    ]
    _same_tables(source, snapshot)


_KILLED_ROUND = """
import os, signal, sys
import orchestrator.commands.copy as copy

copy.CHUNK = 40
chunks = []
def progress(table, done, total):
    if table == "agent_logs":
        chunks.append(done)
        if len(chunks) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
copy.copy_database(sys.argv[1], sys.argv[2], recent=True, progress=progress)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_round_killed_half_way_is_finished_by_the_next(stores: tuple[Target, Path]) -> None:
    source, snapshot = stores
    run = rows(source, "SELECT id FROM agents ORDER BY id LIMIT 1")[0][0]
    execute(
        source,
        *[
            (
                "INSERT INTO agent_logs (id, agent_id, log_type, message) VALUES (?, ?, 'info', ?)",
                (str(uuid.uuid4()), run, f"log {i}"),
            )
            for i in range(400)
        ],
    )
    before = rows(snapshot, "SELECT count(*) FROM agent_logs")[0][0]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_ROUND, str(source), str(snapshot)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert rows(snapshot, "SELECT count(*) FROM agent_logs")[0][0] == before + 120
    again = copy_database(source, snapshot, recent=True)
    assert {t.name: t.inserted for t in again.tables if t.inserted} == {"agent_logs": 280}
    _same_tables(source, snapshot)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_rows_written_after_a_snapshot_are_an_index_range_in_tx_id_order(
    stores: tuple[Target, Path],
) -> None:
    """At 10M logs the planner reads a page of new rows in ``tx_id`` order through the
    index rather than by a bitmap: the condition must bound that scan (it walked all 10M
    entries for each page, 2.7 s, before it said ``tx_id >= xmin``)."""
    from orchestrator.store.postgres import CURRENT_SNAPSHOT, Snapshot, connect, to_dollar

    source, _ = stores

    async def plan() -> str:
        conn = await connect(str(source))
        try:
            seen = Snapshot(await conn.fetchval(CURRENT_SNAPSHOT))
            condition, params = seen.written_after("t")
            await conn.execute("SET enable_bitmapscan = off")
            found = await conn.fetch(
                to_dollar(
                    f"EXPLAIN SELECT t.id FROM agent_logs t WHERE {condition} "
                    "ORDER BY t.tx_id, t.id LIMIT 50"
                ),
                *params,
            )
            return "\n".join(row[0] for row in found)
        finally:
            await conn.close()

    shown = asyncio.run(plan())
    assert re.search(r"Index Cond: \(tx_id >= ", shown), shown
