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
    assert pg_migrations.names() == migrations.names()


def test_an_empty_database_gets_the_contracted_tables_and_columns(pg: str) -> None:
    assert init_database(pg) == migrations.names()
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
        (name,) for name in migrations.names()
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
    assert sorted(names) == sorted(migrations.names())


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
    assert result.exit_code == 0 and migrations.names()[-1] in result.output
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
