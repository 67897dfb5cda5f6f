"""PostgreSQL only: the schema (the SQLite migrations' names and tables, created once,
listed), full-text search, the CLI with a URL, a connection the server drops.

These run against the test server only (they skip without one, and fail in CI where
``ORCHESTRATOR_REQUIRE_POSTGRES=1``); the writer tests run on both backends.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from backends import rows
from click.testing import CliRunner
from test_migrations import FTS, SCHEMA

from orchestrator import DatabaseManager
from orchestrator.cli import cli
from orchestrator.core.ids import utc_now
from orchestrator.core.rows import AGENT_LOG_COLUMNS
from orchestrator.store import migrations
from orchestrator.store import postgres_migrations as pg_migrations
from orchestrator.store.postgres import init_database, to_dollar

pytestmark = pytest.mark.postgres

#: SQLite's declared types and the PostgreSQL types that mean the same.
TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def backend() -> str:
    """Every test here runs on PostgreSQL only (``db_target`` is a fresh schema)."""
    return "postgresql"


@pytest.fixture
def pg(db_target: str) -> str:
    return str(db_target)


def columns(url: str, table: str) -> dict[str, str]:
    return dict(
        rows(
            url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
    )


def test_the_same_migrations_by_the_same_names_in_the_same_order() -> None:
    """PostgreSQL's own (its triggers' machinery) aside."""
    shared = [name for name in pg_migrations.names() if name not in pg_migrations.POSTGRES_ONLY]
    assert shared == migrations.names()
    assert set(pg_migrations.names()) >= pg_migrations.POSTGRES_ONLY


def test_an_empty_database_gets_the_contracted_tables_and_columns(pg: str) -> None:
    assert init_database(pg) == pg_migrations.names()
    tables = {
        name
        for (name,) in rows(
            pg,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()",
        )
    }
    assert tables == set(SCHEMA) | {migrations.LEDGER}
    for table, expected in SCHEMA.items():
        found = columns(pg, table)
        if f"{table}_fts" in FTS:
            assert found.pop("search") == "tsvector", table  # FTS5's table, as a column
        if table in (*pg_migrations.TAILED_TABLES, *pg_migrations.COPIED_TABLES):
            # tail's and copy's watermark (SQLite's: the rowid)
            assert found.pop("tx_id") == "xid8", table
        assert found == {name: TYPES[kind] for name, kind in expected.items()}, table
    ledger = columns(pg, migrations.LEDGER)
    assert list(ledger) == ["id", "migration_set", "name", "applied_at"]  # sqlite-utils' shape


def test_reopening_applies_nothing_and_each_migration_is_recorded_once(pg: str) -> None:
    init_database(pg)
    init_database(pg)
    assert rows(pg, f"SELECT name FROM {migrations.LEDGER} ORDER BY id") == [
        (name,) for name in pg_migrations.names()
    ]


def _open(url: str) -> None:
    init_database(url)


def test_hosts_opening_a_new_database_at_once_migrate_it_once(pg: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(pg,)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    names = [row[0] for row in rows(pg, f"SELECT name FROM {migrations.LEDGER}")]
    assert sorted(names) == sorted(pg_migrations.names())


def test_defaults_use_the_one_timestamp_format(pg: str) -> None:
    init_database(pg)
    rows(pg, "INSERT INTO system_logs (id, log_level, message) VALUES ('x', 'INFO', 'm')")
    ((created,),) = rows(pg, "SELECT created_at FROM system_logs")
    assert len(created) == len(utc_now()) == 24
    assert created[10] == "T" and created.endswith("Z") and created[19] == "."
    assert created[:10] == utc_now()[:10]  # UTC, whatever the server's time zone


async def test_full_text_search_finds_words_of_prompts_and_logs(pg: str) -> None:
    async with DatabaseManager(pg) as db:
        async with db.agent_run("fts") as run:
            await run.prompt("refactor the billing module", "Done: split the invoices")
            run.log("tool_use", "Bash: pytest tests/test_invoices.py")
        await db.log_system_event("ERROR", "invoice export failed")
    query = "SELECT count(*) FROM {} WHERE search @@ websearch_to_tsquery('simple', ?)"
    assert rows(pg, query.format("prompts"), ("billing",)) == [(1,)]
    assert rows(pg, query.format("prompts"), ("invoices",)) == [(1,)]  # the response
    assert rows(pg, query.format("agent_logs"), ("pytest",)) == [(1,)]
    assert rows(pg, query.format("system_logs"), ("export failed",)) == [(1,)]
    assert rows(pg, query.format("system_logs"), ("billing",)) == [(0,)]


def test_docs_schema_postgresql_is_the_generated_one(postgres_database: str) -> None:
    """docs/schema-postgresql.sql is generated, never typed:
    orchestrator schema --postgresql URL > docs/schema-postgresql.sql"""
    result = CliRunner().invoke(
        cli, ["schema", "--postgresql", postgres_database], catch_exceptions=False
    )
    committed = (ROOT / "docs" / "schema-postgresql.sql").read_text()
    assert result.output == committed, (
        "regenerate: orchestrator schema --postgresql URL > docs/schema-postgresql.sql"
    )


def test_init_demo_and_report_take_a_url(pg: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--db", pg], catch_exceptions=False)
    assert result.exit_code == 0 and pg_migrations.names()[-1] in result.output
    result = runner.invoke(
        cli, ["demo", pg, "--prompts", "60", "--end", "2026-11-25"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (prompts, cost), (summed, summed_cost) = (
        rows(pg, "SELECT count(*), sum(cost_usd) FROM prompts")[0],
        rows(pg, "SELECT sum(prompts), sum(cost_usd) FROM usage_daily")[0],
    )
    assert prompts == summed >= 60 and cost == pytest.approx(summed_cost)
    result = runner.invoke(cli, ["report", "spend_by_day", "--db", pg], catch_exceptions=False)
    days = rows(pg, "SELECT count(DISTINCT day) FROM usage_daily")[0][0]
    assert result.exit_code == 0 and result.output.endswith(f"({days} rows)\n")  # reports too


def test_a_store_migrated_by_a_newer_orchestrator_is_refused(pg: str) -> None:
    """As an SQLite file is: a ledger naming a migration this code does not know means a
    newer orchestrator keeps the schema; opening it fails in one line, writing nothing."""
    init_database(pg)
    rows(
        pg,
        "INSERT INTO _sqlite_migrations (migration_set, name) VALUES ('orchestrator', ?)",
        ("m999_from_a_newer_version",),
    )
    before = rows(pg, "SELECT count(*) FROM orchestrator_agents")
    db = DatabaseManager(pg)
    with pytest.raises(pg_migrations.SchemaTooNew, match="m999_from_a_newer_version") as error:
        asyncio.run(db.connect())
    assert "schema is newer than this version of orchestrator" in str(error.value)
    with pytest.raises(RuntimeError, match="not connected"):
        asyncio.run(db.create_orchestrator_agent("never"))
    result = CliRunner().invoke(cli, ["report", "runs", "--db", pg])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "postgresql://" in lines[0] and "m999_from_a_newer_version" in lines[0]
    assert rows(pg, "SELECT count(*) FROM orchestrator_agents") == before


@pytest.mark.parametrize(
    "command",
    [["report", "runs", "--db", "{url}"], ["copy", "{url}", "{file}"]],
    ids=["report", "copy"],
)
def test_a_password_in_the_url_query_is_not_in_the_error(
    postgres_database: str, tmp_path: Path, command: list[str]
) -> None:
    """A store that cannot be opened (no such database) is named in one line, with the
    password given as ``?password=`` (or ``?sslpassword=``) masked like ``user:pw@``'s."""
    secret = "hunter2-in-the-query"
    url = f"{postgres_database}_missing?sslmode=disable&password={secret}&sslpassword={secret}"
    args = [part.format(url=url, file=tmp_path / "copy.db") for part in command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "cannot connect to" in result.output and "password=***" in result.output
    assert secret not in result.output and "Traceback" not in result.output


async def test_a_writer_reconnects_after_the_server_drops_its_connection(pg: str) -> None:
    """A restarted server (here: the writer's backend terminated) costs the writes in
    flight at most: the next ones reconnect, and queued log rows are kept and written."""
    async with DatabaseManager(pg, flush_interval=0.05) as db:
        async with db.agent_run("restart") as run:
            run.log("event", "before")
            await db.flush()
            pid = db.connection.get_server_pid()
            rows(pg, "SELECT pg_terminate_backend(?)", (pid,))
            await asyncio.sleep(0.2)  # the loop learns that the connection is gone
            run.log("event", "after")
            await run.prompt("p", "r", model="claude-haiku-4-5", tokens_input=3)
            await db.flush()
    assert rows(pg, "SELECT message FROM agent_logs WHERE log_type = 'event' ORDER BY id") == [
        ("before",),
        ("after",),
    ]
    assert rows(pg, "SELECT status, prompt_count FROM agents") == [("completed", 1)]


async def test_commits_wait_for_the_wal_even_where_the_server_says_not_to(pg: str) -> None:
    database = pg.split("?", 1)[0].rsplit("/", 1)[1]
    rows(pg, f"ALTER DATABASE {database} SET synchronous_commit = off")
    try:
        assert rows(pg, "SHOW synchronous_commit") == [("off",)]
        async with DatabaseManager(pg) as db:
            found = await db.fetchone("SHOW synchronous_commit")
            assert found == {"synchronous_commit": "on"}
    finally:
        rows(pg, f"ALTER DATABASE {database} RESET synchronous_commit")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ("SELECT '?', \"a?\", ? -- why?\n, ?", "SELECT '?', \"a?\", $1 -- why?\n, $2"),
        ("SELECT 'it''s ?', ? /* ? */", "SELECT 'it''s ?', $1 /* ? */"),
        ("DO $$ BEGIN PERFORM '?'; END $$; SELECT ?", "DO $$ BEGIN PERFORM '?'; END $$; SELECT $1"),
        ("SELECT $tag$?$tag$, ?", "SELECT $tag$?$tag$, $1"),
    ],
)
def test_placeholders_outside_literals_and_comments_are_numbered(sql: str, expected: str) -> None:
    assert to_dollar(sql) == expected


def test_a_frozen_server_fails_awaited_calls_in_time_and_loses_nothing() -> None:
    """A server that stops answering (SIGSTOP: a hung host, a cut network) never blocks a
    log call; an awaited call raises DatabaseTimeout after ``timeout`` seconds, whether it
    was waiting for the server's answer or for the connection; once the server answers
    again every row acknowledged or queued is stored, once."""
    import signal
    import time

    from servers import postgres_cluster

    from orchestrator import DatabaseTimeout

    timeout = 2.0

    async def frozen(cluster: Any) -> tuple[str, list[str]]:
        db = DatabaseManager(cluster.url, timeout=timeout, flush_interval=0.2)
        await db.connect()
        orchestrator = await db.create_orchestrator_agent("frozen")
        agent = await db.create_agent(orchestrator)
        ids = [await db.log_agent_event(agent, "event", "before")]
        await db.flush()
        cluster.signal(signal.SIGSTOP)
        try:
            calls = [
                lambda: db.create_agent(orchestrator),  # cut off waiting for the answer
                db.flush,  # waiting for the connection the log writer holds
                lambda: db.fetchone("SELECT 1"),
            ]
            for index, call in enumerate(calls):
                if index == 1:  # log calls meanwhile only enqueue, at once
                    started = time.monotonic()
                    for number in range(500):
                        ids.append(await db.log_agent_event(agent, "event", f"frozen {number}"))
                    assert time.monotonic() - started < timeout / 2
                    await asyncio.sleep(0.5)  # the log writer takes the connection, and waits
                started = time.monotonic()
                with pytest.raises(DatabaseTimeout, match="did not answer within 2 s"):
                    await asyncio.wait_for(call(), timeout + 30)  # today: never returns
                assert timeout <= time.monotonic() - started < timeout + 2, index
            assert db.pending == 500
        finally:
            cluster.signal(signal.SIGCONT)
        ids.append(await db.log_agent_event(agent, "event", "after"))
        await db.close()
        return agent, ids

    with postgres_cluster() as cluster:
        agent, ids = asyncio.run(frozen(cluster))
        stored = rows(cluster.url, "SELECT id FROM agent_logs WHERE agent_id = ?", (agent,))
        assert sorted(row[0] for row in stored) == sorted(ids) and len(ids) == 502


#: What the summaries hold, recomputed from the base tables (NULL model: 'unknown').
RECOMPUTED = {
    "usage_daily": (
        "SELECT substr(p.created_at, 1, 10), a.orchestrator_agent_id, "
        "coalesce(p.model, 'unknown'), count(*), count(*) FILTER (WHERE p.status = 'failed'), "
        "sum(p.tokens_input), sum(p.tokens_output), sum(p.tokens_cache_read), "
        "sum(p.tokens_cache_write), sum(p.tokens_cache_write_1h), coalesce(sum(p.cost_usd), 0), "
        "count(*) FILTER (WHERE p.cost_source = 'unpriced'), "
        "coalesce(sum(p.cache_savings_usd), 0) "
        "FROM prompts p JOIN agents a ON a.id = p.agent_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT day, orchestrator_agent_id, model, prompts, failed_prompts, tokens_input, "
        "tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd, "
        "unpriced_prompts, cache_savings_usd FROM usage_daily ORDER BY 1, 2, 3",
    ),
    "agents": (
        "SELECT a.id, count(p.id), coalesce(sum(p.tokens_input), 0), "
        "coalesce(sum(p.tokens_output), 0), coalesce(sum(p.tokens_cache_read), 0), "
        "coalesce(sum(p.tokens_cache_write), 0), coalesce(sum(p.cost_usd), 0), "
        "count(p.id) FILTER (WHERE p.cost_source = 'unpriced') "
        "FROM agents a LEFT JOIN prompts p ON p.agent_id = a.id GROUP BY 1 ORDER BY 1",
        "SELECT id, prompt_count, total_tokens_input, total_tokens_output, "
        "total_tokens_cache_read, total_tokens_cache_write, total_cost_usd, "
        "unpriced_prompt_count FROM agents ORDER BY 1",
    ),
    "sessions": (
        "SELECT a.session_id, count(DISTINCT a.id), count(DISTINCT a.id) FILTER "
        "(WHERE a.status = 'failed'), count(p.id), coalesce(sum(p.tokens_input), 0), "
        "coalesce(sum(p.cost_usd), 0), min(a.created_at), max(a.completed_at) "
        "FROM agents a LEFT JOIN prompts p ON p.agent_id = a.id "
        "WHERE a.session_id IS NOT NULL GROUP BY 1 ORDER BY 1",
        "SELECT session_id, runs, failed_runs, prompts, tokens_input, cost_usd, first_run_at, "
        "last_completed_at FROM sessions ORDER BY 1",
    ),
    "runs_daily": (
        "SELECT substr(created_at, 1, 10), orchestrator_agent_id, count(*), "
        "count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),"
        " count(*) FILTER (WHERE status = 'cancelled') FROM agents GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT day, orchestrator_agent_id, runs, completed, failed, cancelled FROM runs_daily "
        "ORDER BY 1, 2",
    ),
    "step_histogram_daily": (
        "SELECT substr(l.created_at, 1, 10), a.orchestrator_agent_id, l.step, count(*), "
        "sum(l.duration_ms) FROM agent_logs l JOIN agents a ON a.id = l.agent_id "
        "WHERE l.log_type = 'step_end' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT day, orchestrator_agent_id, step, sum(steps), sum(sum_ms) "
        "FROM step_histogram_daily GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
}


async def test_insert_many_with_a_conflict_clause_is_one_statement(pg: str) -> None:
    """Prompts and logs of several runs, workflows, sessions and days (NULL models, failed,
    unpriced and pending ones), a key repeated in the batch and one stored before: one
    INSERT, firing the statement-level triggers once, which keep every summary equal to
    its recomputation from the base tables (costs in 1/1024ths: sums exact in any order)."""
    import asyncpg

    from orchestrator.store.postgres import PostgresBackend

    backend = PostgresBackend(pg)
    await backend.open()  # migrated
    try:
        await backend.insert_many(
            "orchestrator_agents", ("id", "name"), [("w1", "plan"), ("w2", "build")]
        )
        runs = [  # id, workflow, session, status, created_at, completed_at
            ("r1", "w1", "s1", "completed", "2026-11-01T10:00:00.000Z", "2026-11-01T11:00:00.000Z"),
            ("r2", "w1", "s1", "failed", "2026-11-02T09:00:00.000Z", "2026-11-02T09:30:00.000Z"),
            ("r3", "w2", "s2", "running", "2026-11-01T23:00:00.000Z", None),
            ("r4", "w2", None, "cancelled", "2026-11-02T00:00:00.000Z", "2026-11-02T00:01:00.000Z"),
        ]
        run_columns = ("id", "orchestrator_agent_id", "session_id", "status", "created_at")
        await backend.insert_many(
            "agents", (*run_columns, "completed_at"), runs[:1], on_conflict="ON CONFLICT DO NOTHING"
        )
        await backend.insert_many(
            "agents", (*run_columns, "completed_at"), runs, on_conflict="ON CONFLICT DO NOTHING"
        )
        columns = (
            "id", "agent_id", "content", "status", "tokens_input", "tokens_output",
            "tokens_cache_read", "tokens_cache_write", "tokens_cache_write_1h", "cost_usd",
            "cost_source", "cache_savings_usd", "created_at", "model",
        )  # fmt: skip
        prompts = []
        for n in range(2500):
            run = runs[n % 4]
            unpriced, pending = n % 7 == 0, n % 11 == 0
            prompts.append(
                (
                    f"p{n}",
                    run[0],
                    "nul \x00 here" if n == 5 else f"prompt {n}",
                    "failed" if n % 5 == 0 else "pending" if pending else "completed",
                    n,
                    2 * n,
                    n % 13,
                    n % 17,
                    n % 3,
                    None if unpriced or pending else (n % 50) / 1024,
                    None if pending else "unpriced" if unpriced else "computed",
                    None if unpriced or pending else (n % 9 - 4) / 1024,
                    f"2026-11-0{1 + n % 3}T12:00:00.000Z",
                    None if n % 6 == 0 else f"model-{n % 2}",
                )
            )
        await backend.insert_many("prompts", columns, prompts[:1])  # stored before
        await backend.execute("SET track_functions = 'pl'")  # calls counted (superuser)
        async with backend.transaction():
            await backend.insert_many(
                "prompts",
                columns,
                [*prompts, prompts[7]],
                on_conflict="ON CONFLICT (id) DO NOTHING",
            )
            logs = [
                (
                    f"l{n}",
                    runs[n % 3][0],
                    "step_end" if n % 2 else "tool_result",
                    f"log {n}",
                    None,
                    f"2026-11-0{1 + n % 2}T12:00:00.000Z",
                    f"step-{n % 3}" if n % 2 else None,
                    float(n % 40) if n % 2 else None,
                )
                for n in range(1001)
            ]
            await backend.insert_many(
                "agent_logs", AGENT_LOG_COLUMNS, logs, on_conflict="ON CONFLICT (id) DO NOTHING"
            )
            calls = dict(
                await backend.fetch_rows("SELECT funcname, calls FROM pg_stat_xact_user_functions")
            )
        # One trigger call per statement, one statement per insert_many.
        assert calls.get("prompts_totals_insert") == 1
        assert calls.get("prompts_usage_insert") == 1
        assert calls.get("agent_logs_steps_insert") == 1
        assert "prompts_totals" not in calls and "prompts_usage" not in calls
        # A prompt of a run not stored: the statement refused whole, nothing counted.
        orphan = (*prompts[1][:1], "no-such-run", *prompts[1][2:])
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await backend.insert_many(
                "prompts",
                columns,
                [(f"{orphan[0]}-new", *prompts[1][1:]), (f"{orphan[0]}-orphan", *orphan[1:])],
                on_conflict="ON CONFLICT (id) DO NOTHING",
            )
        for table, (recomputed, kept) in RECOMPUTED.items():
            assert await backend.fetch_rows(kept) == await backend.fetch_rows(recomputed), table
        assert await backend.fetch_rows("SELECT count(*) FROM prompts") == [(len(prompts),)]
        assert await backend.fetch_rows("SELECT content FROM prompts WHERE id = 'p5'") == [
            ("nul \ufffd here",)
        ]
    finally:
        await backend.close()
