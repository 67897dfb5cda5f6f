"""``orchestrator redact``: secrets a database already holds are redacted after the fact,
to what redacting on write would have stored, and are gone from the file."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends import Target, is_postgres, rows
from click.testing import CliRunner
from conftest import FIXTURES

from orchestrator.claude_code import import_transcripts
from orchestrator.cli import cli
from orchestrator.commands.redact_stored import COLUMNS, redact_stored, redact_stored_async
from orchestrator.writer.db import DatabaseManager

PASSWORD = "hunter2hunter2"
KEY = "sk-ant-api03-" + "Q" * 40


def transcripts(tmp_path: Path) -> Path:
    """A real session (no secrets), and one whose prompt, tool call and tool result
    carry secrets."""
    folder = tmp_path / "claude" / "projects" / "p"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "tool_heavy.jsonl", folder)
    session = "22222222-2222-4333-8444-555555555555"

    def line(kind: str, second: int, message: dict[str, Any], **extra: Any) -> str:
        return json.dumps(
            {
                "type": kind,
                "sessionId": session,
                "timestamp": f"2026-01-31T10:00:0{second}.000Z",
                "message": message,
                **extra,
            }
        )

    arguments = {"command": "deploy", "env": {"password": PASSWORD, "DEPLOY": KEY}}
    lines = [
        line("user", 0, {"role": "user", "content": f"deploy with {KEY} please"}),
        line(
            "assistant",
            1,
            {
                "id": "msg_1",
                "model": "claude-sonnet-4-5-20250929",
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": arguments}
                ],
                "usage": {"input_tokens": 100, "output_tokens": 20},
            },
            requestId="req_1",
        ),
        line(
            "user",
            2,
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": f"token={PASSWORD}",
                    }
                ],
            },
        ),
    ]
    (folder / "secret.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "claude"


async def write(db_path: Path, source: Path, *, redact_secrets: bool) -> None:
    import_transcripts([source], db_path=db_path, redact_secrets=redact_secrets)
    async with DatabaseManager(db_path, redact_secrets=redact_secrets) as db:
        await db.create_orchestrator_agent("deploy", f"deploys with {KEY}")
        await db.log_system_event(
            "WARNING",
            f"login failed: password={PASSWORD}",
            source="deploy",
            metadata={"env": json.dumps({"password": PASSWORD}), "attempt": 2},
        )
        await db.log_system_event("INFO", "started", metadata={"plain": [1, 2]})


def dump(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every redacted column of every table, rows sorted (ids differ between files)."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            table: sorted(
                conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr
            )
            for table, columns in COLUMNS.items()
        }
    finally:
        conn.close()


def cells(db_path: Path) -> dict[tuple[str, str, int], Any]:
    """Every redacted value, by table, column and rowid."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            (table, column, rowid): value
            for table, columns in COLUMNS.items()
            for rowid, *values in conn.execute(f"SELECT rowid, {', '.join(columns)} FROM {table}")
            for column, value in zip(columns, values, strict=True)
        }
    finally:
        conn.close()


def query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def file_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(f"{db_path.name}*"))


SUMMARIES = (
    "SELECT id, prompt_count, total_tokens_input, total_tokens_output, total_cost_usd "
    "FROM agents ORDER BY id"
)


async def test_redacting_a_database_written_in_clear_stores_what_redacting_on_write_does(
    tmp_path: Path,
) -> None:
    source = transcripts(tmp_path)
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    await write(old, source, redact_secrets=False)  # a database from before the fix
    await write(fresh, source, redact_secrets=True)  # today's redaction, on write
    # A metadata encoded another way (by hand, another tool) and holding no secret.
    conn = sqlite3.connect(old)
    with conn:
        conn.execute(
            "UPDATE system_logs SET metadata = '{\"plain\":[1,2]}' WHERE message = 'started'"
        )
    conn.close()
    assert PASSWORD.encode() in file_bytes(old) and KEY.encode() in file_bytes(old)
    before, cells_before, totals = dump(old), cells(old), query(old, SUMMARIES)
    daily = query(old, "SELECT * FROM usage_daily ORDER BY 1, 2, 3")

    dry = await redact_stored_async(old, dry_run=True)
    assert dry.values_changed > 0 and dump(old) == before  # counted, nothing written

    done = await redact_stored_async(old)
    assert done.changed == dry.changed and done.rows_read == dry.rows_read
    assert ("agent_logs", "metadata") in done.changed  # the leak of stop 18
    after = dump(old)
    # Every table as redacting on write stores it, byte for byte, but the metadata that
    # held no secret, kept as it was stored.
    expected = dump(fresh)
    expected["system_logs"] = sorted(
        [
            row if row[0] != "started" else ("started", None, '{"plain":[1,2]}')
            for row in expected["system_logs"]
        ],
        key=repr,
    )
    assert after == expected
    moved = [key for key, value in cells(old).items() if cells_before[key] != value]
    assert done.changed == {
        (table, column): sum(1 for key in moved if key[:2] == (table, column))
        for table, column in {key[:2] for key in moved}
    }
    # Gone from the file, its write-ahead log and its search indexes; the indexes whole.
    raw = file_bytes(old)
    assert PASSWORD.encode() not in raw and KEY.encode() not in raw
    assert done.checkpointed is True
    assert set(done.search_indexes_merged) == {"prompts_fts", "agent_logs_fts", "system_logs_fts"}
    for index in done.search_indexes_merged:
        conn = sqlite3.connect(old)
        with conn:
            conn.execute(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')")
        conn.close()
    assert query(old, "SELECT count(*) FROM agent_logs_fts WHERE agent_logs_fts MATCH 'deploy'")
    assert (
        query(old, "SELECT rowid FROM agent_logs_fts WHERE agent_logs_fts MATCH 'hunter2hunter2'")
        == []
    )
    # Counts and costs untouched; a second run finds nothing left.
    assert query(old, SUMMARIES) == totals
    assert query(old, "SELECT * FROM usage_daily ORDER BY 1, 2, 3") == daily
    assert (await redact_stored_async(old)).values_changed == 0


def test_cli_redacts_and_reports(tmp_path: Path) -> None:
    db_path = tmp_path / "orchestrator.db"
    import_transcripts([transcripts(tmp_path)], db_path=db_path, redact_secrets=False)
    dry = CliRunner().invoke(cli, ["redact", "--db", str(db_path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "agent_logs" in dry.output and "Would redact" in dry.output
    assert PASSWORD.encode() in file_bytes(db_path)
    result = CliRunner().invoke(cli, ["redact", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "Redacted" in result.output and PASSWORD.encode() not in file_bytes(db_path)
    again = CliRunner().invoke(cli, ["redact", "--db", str(db_path)])
    assert "Redacted 0 values" in again.output
    missing = CliRunner().invoke(cli, ["redact", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no database at" in missing.output
    assert not (tmp_path / "none.db").exists()
    unreachable = CliRunner().invoke(cli, ["redact", "--db", "postgresql://127.0.0.1:1/x"])
    assert unreachable.exit_code == 1 and "cannot connect to" in unreachable.output


def test_names_that_redacting_would_make_equal_are_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "orchestrator.db"

    async def two_workflows() -> None:
        async with DatabaseManager(db_path, redact_secrets=False) as db:
            await db.create_orchestrator_agent(f"deploy {KEY}")
            await db.create_orchestrator_agent(f"deploy {KEY}X")

    asyncio.run(two_workflows())
    before = cells(db_path)
    result = CliRunner().invoke(cli, ["redact", "--db", str(db_path)])
    assert result.exit_code == 1
    assert "orchestrator_agents: two rows' name would be the same" in result.output
    assert cells(db_path) == before


async def test_writers_meanwhile_lose_nothing(tmp_path: Path) -> None:
    """Redacting in batches, each its own transaction, while an ADW logs: every event the
    writer acknowledged is stored, those written in clear redacted or left for the next
    run, none written back stale."""
    db_path = tmp_path / "orchestrator.db"
    async with DatabaseManager(db_path, redact_secrets=False) as db:
        workflow = await db.create_orchestrator_agent("deploy")
        run = await db.create_agent(workflow, "build")
        for i in range(5_000):
            await db.log_agent_event(run, "info", f"old {i} password={PASSWORD}")
        await db.flush()
        redacting = asyncio.create_task(asyncio.to_thread(redact_stored, db_path))
        logged = 0
        while not redacting.done():
            await db.log_agent_event(run, "info", f"new {logged}")
            logged += 1
            if logged % 100 == 0:
                await db.flush()
                await asyncio.sleep(0)
        done = await redacting
        await db.flush()
    assert done.changed[("agent_logs", "message")] == 5_000 and logged > 0, logged
    stored = query(db_path, "SELECT message FROM agent_logs")
    assert len(stored) == 5_000 + logged
    assert sorted(m for (m,) in stored if m.startswith("new ")) == sorted(
        f"new {i}" for i in range(logged)
    )
    assert all(m.endswith("password=[REDACTED]") for (m,) in stored if m.startswith("old "))


async def write_writer_rows(target: Target, *, redact_secrets: bool) -> None:
    """What an ADW writes through the writer, secrets included (the metadata as it leaked
    before stop 18: JSON text holding a secret's pair)."""
    arguments = json.dumps({"command": "deploy", "env": {"password": PASSWORD, "KEY": KEY}})
    async with DatabaseManager(target, redact_secrets=redact_secrets) as db:
        async with db.agent_run("deploy", description=f"deploys with {KEY}") as run:
            await run.prompt(
                f"deploy with {KEY}", f"done, token={PASSWORD}", model="claude-haiku-4-5"
            )
            run.log("tool_use", f"Bash: {arguments}", {"input": arguments, "tool_use_id": "t1"})
            run.log("info", "nothing secret here", {"plain": [1, 2]})
        await db.log_system_event(
            "WARNING", f"login failed: password={PASSWORD}", "deploy", {"env": arguments}
        )


WRITER_COLUMNS = (
    "SELECT description FROM orchestrator_agents",
    "SELECT content, response FROM prompts",
    "SELECT message, metadata FROM agent_logs",
    "SELECT message, source, metadata FROM system_logs",
)


def writer_rows(target: Target) -> list[list[tuple[Any, ...]]]:
    return [sorted(rows(target, sql), key=repr) for sql in WRITER_COLUMNS]


async def test_redacting_either_store_stores_what_redacting_on_write_does(
    db_target: Target, new_db_target: Callable[[], Target]
) -> None:
    """On SQLite and PostgreSQL: what the writer stored in clear, redacted after the fact,
    is what it stores with redaction on, and no row (nor the search index) holds it."""
    await write_writer_rows(db_target, redact_secrets=False)
    fresh = new_db_target()
    await write_writer_rows(fresh, redact_secrets=True)
    assert writer_rows(db_target) != writer_rows(fresh)

    dry = await redact_stored_async(db_target, dry_run=True)
    assert dry.values_changed == 7  # description, content, response, 2 log and 2 system log values
    done = await redact_stored_async(db_target)
    assert done.changed == dry.changed
    assert writer_rows(db_target) == writer_rows(fresh)
    for table, column in [
        ("agent_logs", "message"),
        ("agent_logs", "metadata"),
        ("system_logs", "metadata"),
        ("prompts", "response"),
    ]:
        assert rows(
            db_target, f"SELECT count(*) FROM {table} WHERE {column} LIKE ?", (f"%{PASSWORD}%",)
        ) == [(0,)]
    search = (
        "SELECT count(*) FROM agent_logs WHERE search @@ to_tsquery('simple', ?)"
        if is_postgres(db_target)
        else "SELECT count(*) FROM agent_logs_fts WHERE agent_logs_fts MATCH ?"
    )
    assert rows(db_target, search, ("deploy",)) == [(1,)]
    assert rows(db_target, search, (PASSWORD,)) == [(0,)]
    assert (done.checkpointed is None) == is_postgres(db_target)
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["redact", "--db", str(db_target)])
    assert again.exit_code == 0 and "Redacted 0 values" in again.output, again.output


#: ``orchestrator redact`` up to its first search-index merge (prompts_fts: the tables
#: before it redacted, as redact_stored_async does them), then killed with SIGKILL, as
#: the merge starts: the rows are clean, the index and the write-ahead log are not.
KILLED_AT_MERGE = textwrap.dedent("""
    import asyncio, os, signal, sys
    from orchestrator.commands.redact_stored import COLUMNS, RedactResult, _redact_table
    from orchestrator.store.targets import backend_for

    async def main():
        backend = backend_for(sys.argv[1])
        await backend.open()
        await backend.execute("PRAGMA secure_delete = ON")
        result = RedactResult(False)
        for table in ("orchestrator_agents", "agents", "prompts"):
            await _redact_table(backend, table, COLUMNS[table], result)
        print(result.values_changed, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")


def test_a_redact_killed_at_its_index_merge_is_finished_by_the_next_run(db_path: Path) -> None:
    """The next run finds no value left to redact, yet merges the index the killed run
    left unmerged and checkpoints: the secret's bytes are gone from the file and its log."""
    asyncio.run(write_writer_rows(db_path, redact_secrets=False))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_MERGE, str(db_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout == "3\n"  # a description, a prompt's content and its response
    in_index = "SELECT count(*) FROM prompts_fts_data WHERE instr(block, ?)"
    clear = "SELECT count(*) FROM prompts WHERE content || response LIKE ?"
    assert rows(db_path, clear, (f"%{PASSWORD}%",)) == [(0,)]
    assert rows(db_path, in_index, (PASSWORD.encode(),)) != [(0,)]  # the words the row had

    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "redact"]
    rerun = subprocess.run(
        [*command, "--db", str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0 and rerun.stderr == "", rerun.stderr
    assert rows(db_path, in_index, (PASSWORD.encode(),)) == [(0,)]
    raw = file_bytes(db_path)  # the file, its -wal and -shm
    assert PASSWORD.encode() not in raw and KEY.encode() not in raw
    assert KEY.split("-")[-1].lower().encode() not in raw  # the key's last word, as indexed
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("INSERT INTO prompts_fts (prompts_fts) VALUES ('integrity-check')")
    search = "SELECT count(*) FROM prompts_fts WHERE prompts_fts MATCH ?"
    assert conn.execute(search, ("deploy",)).fetchone() == (1,)
    assert conn.execute(search, (PASSWORD,)).fetchone() == (0,)
    conn.close()


SECRET_NAME = "sk-ant-api03-" + "Q" * 40  # a workflow named by a key pasted by mistake


def test_a_budget_named_by_a_secret_is_stored_and_removed_redacted(db_target: Target) -> None:
    """The budget's name is redacted as the workflow name it is matched against is (both
    stored as ``[REDACTED:...]``), so it still applies; removing it by the same text works."""
    from orchestrator import SyncDatabaseManager
    from orchestrator.writer.budgets import remove_budget, set_budget, statuses

    with SyncDatabaseManager(db_target) as db:
        db.create_orchestrator_agent(SECRET_NAME)
    set_budget(db_target, "workflow", SECRET_NAME, daily_usd=5.0)
    ((stored,),) = rows(db_target, "SELECT name FROM budgets")
    ((workflow,),) = rows(db_target, "SELECT name FROM orchestrator_agents")
    assert SECRET_NAME not in stored and stored == workflow and stored.startswith("[REDACTED")
    assert [s.budget.name for s in statuses(db_target)] == [stored]
    assert remove_budget(db_target, "workflow", SECRET_NAME)
    assert rows(db_target, "SELECT count(*) FROM budgets") == [(0,)]


def test_redact_redacts_budgets_and_their_alerts_stored_in_clear(db_target: Target) -> None:
    from backends import execute

    from orchestrator import SyncDatabaseManager

    with SyncDatabaseManager(db_target):  # the schema
        pass
    execute(
        db_target,
        (
            "INSERT INTO budgets (scope, name, daily_usd, updated_at) VALUES (?, ?, 1, ?)",
            ("workflow", SECRET_NAME, "2026-11-01T00:00:00.000Z"),
        ),
        (
            "INSERT INTO budgets (scope, name, daily_usd, updated_at) VALUES (?, ?, 1, ?)",
            ("workflow", "plan_build", "2026-11-01T00:00:00.000Z"),
        ),
        (
            "INSERT INTO budget_alerts (scope, name, period, spent_usd, budget_usd, alerted_at) "
            "VALUES (?, ?, ?, 2, 1, ?)",
            ("workflow", SECRET_NAME, "2026-11-01", "2026-11-01T00:00:00.000Z"),
        ),
    )
    result = asyncio.run(redact_stored_async(db_target))
    assert result.changed[("budgets", "name")] == 1
    assert result.changed[("budget_alerts", "name")] == 1
    names = rows(db_target, "SELECT name FROM budgets ORDER BY name")
    assert names == [("[REDACTED:anthropic]",), ("plan_build",)]
    assert rows(db_target, "SELECT name, period FROM budget_alerts") == [
        ("[REDACTED:anthropic]", "2026-11-01")
    ]
    again = asyncio.run(redact_stored_async(db_target))
    assert ("budgets", "name") not in again.changed
