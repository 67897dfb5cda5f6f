"""The writer: the seed API end to end, the run API, batching, the logging handler.

Every test runs on both backends (``db_target``: an SQLite file, a PostgreSQL schema)
except the few that break an SQLite file on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from backends import Target, execute, is_postgres, rows

from orchestrator import (
    AgentStatus,
    DatabaseManager,
    InvalidInput,
    SyncDatabaseManager,
    SystemLogHandler,
)


async def test_seed_api_end_to_end(db_target: Target) -> None:
    db = DatabaseManager(db_target)
    await db.connect()
    orch_id = await db.create_orchestrator_agent("plan_build", "plans then builds")
    assert uuid.UUID(orch_id)
    assert (await db.get_orchestrator_agent(orch_id)).name == "plan_build"
    assert [o.name for o in await db.list_orchestrator_agents()] == ["plan_build"]

    agent_id = await db.create_agent(orch_id, "session-1", name="plan")
    await db.update_agent_status(agent_id, "running")
    prompt_id = await db.create_prompt(agent_id, "/plan issue 7", model="claude-haiku-4-5")
    pending = await db.get_prompt(prompt_id)
    assert pending.status == "pending" and pending.cost_usd is None
    done = await db.complete_prompt(
        prompt_id, "the plan", tokens_input=100, tokens_output=50, cost_usd=0.0123
    )
    assert (done.status, done.cost_usd, done.cost_source) == ("completed", 0.0123, "reported")
    await db.log_agent_event(agent_id, "step_start", "plan started", {"step": "plan"})
    await db.log_system_event("warning", "disk almost full", "adw", {"free_gb": 1})
    await db.update_agent_status(agent_id, AgentStatus.COMPLETED)
    await db.close()

    # What reached the store, read behind the writer's back.
    (status, started, completed, duration, count, cost) = rows(
        db_target,
        "SELECT status, started_at, completed_at, duration_ms, prompt_count, "
        "total_cost_usd FROM agents",
    )[0]
    assert status == "completed" and started <= completed and duration >= 0
    assert (count, cost) == (1, 0.0123)
    assert rows(db_target, "SELECT log_type, metadata FROM agent_logs") == [
        ("step_start", '{"step": "plan"}')
    ]
    assert rows(db_target, "SELECT log_level, source FROM system_logs") == [("WARNING", "adw")]
    assert rows(db_target, "SELECT response, tokens_input, tokens_output FROM prompts") == [
        ("the plan", 100, 50)
    ]


async def test_agent_run_records_steps_prompts_and_completion(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("plan_build", session_id="s1", name="plan") as run:
            with run.step("plan"):
                await run.prompt(
                    "hi",
                    "hello",
                    model="claude-sonnet-4-5",
                    usage={
                        "input_tokens": 3,
                        "output_tokens": 5,
                        "cache_read_input_tokens": 7,
                        "cache_creation_input_tokens": 11,
                    },
                )
                run.log("tool_use", "Bash: ls")
            async with run.step("build"):
                async with run.start_prompt("build it", model="claude-haiku-4-5") as call:
                    await call.complete("built", tokens_input=1, tokens_output=2)
        agent = await db.get_agent(run.id)
        logs = await db.get_agent_logs(run.id)
    assert agent.status == "completed" and agent.completed_at is not None
    assert agent.prompt_count == 2
    assert agent.total_tokens_cache_read == 7 and agent.total_tokens_cache_write == 11
    assert [(log.log_type, log.step) for log in logs] == [
        ("step_start", "plan"),
        ("tool_use", "plan"),
        ("step_end", "plan"),
        ("step_start", "build"),
        ("step_end", "build"),
    ]
    ends = [log for log in logs if log.log_type == "step_end"]
    assert all(log.duration_ms is not None and log.duration_ms >= 0 for log in ends)
    assert ends[0].metadata["status"] == "completed"


async def test_agent_run_failure_marks_failed_and_logs_the_exception(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        with pytest.raises(RuntimeError, match="tests broke"):
            async with db.agent_run("test") as run:
                with run.step("pytest"):
                    raise RuntimeError("tests broke")
        agent = await db.get_agent(run.id)
        logs = await db.get_agent_logs(run.id)
    assert agent.status == "failed" and agent.error == "RuntimeError: tests broke"
    step_end = next(log for log in logs if log.log_type == "step_end")
    assert step_end.metadata["status"] == "failed"
    error = next(log for log in logs if log.log_type == "error")
    assert "Traceback" in error.metadata["traceback"]


async def test_log_calls_only_enqueue_and_the_writer_flushes_within_a_second(
    db_target: Target,
) -> None:
    async with DatabaseManager(db_target, flush_interval=0.2) as db:
        async with db.agent_run("plan_build") as run:
            for i in range(50):
                run.log("event", f"event {i}")
            assert db.pending >= 50  # nothing written yet: the calls did not wait
            assert rows(db_target, "SELECT count(*) FROM agent_logs") == [(0,)]
            await asyncio.sleep(0.6)  # no flush() call: the background writer does it
            assert rows(db_target, "SELECT count(*) FROM agent_logs") == [(50,)]
            assert db.stats.written >= 50 and db.stats.batches >= 1


async def test_close_writes_everything_pending(db_target: Target) -> None:
    db = DatabaseManager(db_target)
    await db.connect()
    agent_id = await db.create_agent(await db.ensure_orchestrator_agent("x"))
    for i in range(1234):
        await db.log_agent_event(agent_id, "info", f"m{i}")
    await db.close()
    assert rows(db_target, "SELECT count(*) FROM agent_logs") == [(1234,)]


async def test_a_row_refused_inside_a_batch_is_dropped_alone(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        orch = await db.ensure_orchestrator_agent("x")
        keep = await db.create_agent(orch)
        doomed = await db.create_agent(orch)
        await db.log_agent_event(doomed, "info", "known")  # agent now known to the writer
        await db.flush()
        for i in range(10):
            await db.log_agent_event(keep, "info", f"good {i}")
        await db.log_agent_event(doomed, "info", "agent deleted before the batch is written")
        for i in range(10, 20):
            await db.log_agent_event(keep, "info", f"good {i}")
        # another process deletes the run while the rows wait in the queue
        execute(db_target, ("DELETE FROM agents WHERE id = ?", (doomed,)))
        await db.flush()
        assert db.stats.dropped == 1
        await db.flush()  # the writer reports the drop in system_logs
    assert rows(db_target, "SELECT count(*) FROM agent_logs WHERE agent_id = ?", (keep,)) == [(20,)]
    assert rows(db_target, "SELECT log_level, message FROM system_logs") == [
        ("ERROR", "dropped 1 log rows the database refused")
    ]


async def test_logging_handler_sends_records_to_system_logs(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        logger = logging.getLogger("adw.test_handler")
        logger.setLevel(logging.DEBUG)
        handler = SystemLogHandler(db, level=logging.INFO)
        logger.addHandler(handler)
        try:
            logger.debug("not stored: below the handler's level")
            logger.info("build %s started", "#12")
            try:
                raise ValueError("bad config")
            except ValueError:
                logger.exception("build failed")
            logger.log(35, "custom level between WARNING and ERROR")
        finally:
            logger.removeHandler(handler)
        await db.flush()
        logs = await db.get_system_logs()
    by_message = {log.message: log for log in logs}
    assert set(by_message) == {
        "build #12 started",
        "build failed",
        "custom level between WARNING and ERROR",
    }
    assert by_message["build failed"].log_level == "ERROR"
    assert "ValueError: bad config" in by_message["build failed"].metadata["exception"]
    assert by_message["build #12 started"].source == "adw.test_handler"
    assert by_message["custom level between WARNING and ERROR"].log_level == "WARNING"


def test_blocking_facade(db_target: Target) -> None:
    with SyncDatabaseManager(db_target) as db:
        with db.agent_run("review", session_id="s") as run:
            with run.step("review"):
                prompt = run.prompt(
                    "review this",
                    "LGTM",
                    model="claude-haiku-4-5",
                    tokens_input=10,
                    tokens_output=3,
                )
                run.log("info", "reviewed")
        assert prompt.cost_source == "computed"
        orch = db.get_orchestrator_agent_by_name("review")
        assert orch is not None
        agent_id = db.create_agent(orch.id, "s2")
        db.log_agent_event(agent_id, "event", "from a plain thread")
        db.log_system_event("INFO", "sync system log")
    assert rows(db_target, "SELECT count(*) FROM agent_logs") == [(4,)]
    assert rows(db_target, "SELECT status FROM agents ORDER BY created_at") == [
        ("completed",),
        ("pending",),
    ]


async def test_database_path_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_target: Target
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_DB")
    if is_postgres(db_target):
        monkeypatch.setenv("ORCHESTRATOR_DB", str(db_target))  # a URL selects PostgreSQL
    else:
        monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "seed-name.db"))
    async with DatabaseManager() as db:
        await db.create_orchestrator_agent("x")
    if is_postgres(db_target):
        assert rows(db_target, "SELECT name FROM orchestrator_agents") == [("x",)]
    else:
        assert (tmp_path / "seed-name.db").exists()


async def test_orchestrator_name_is_unique(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        await db.create_orchestrator_agent("plan_build")
        with pytest.raises(InvalidInput) as error:
            await db.create_orchestrator_agent("plan_build")
        assert error.value.field == "orchestrator_agents.name"
        # the get-or-create used by agent_run returns the existing one
        first = await db.ensure_orchestrator_agent("plan_build")
        assert first == await db.ensure_orchestrator_agent("plan_build")


async def test_a_full_disk_keeps_rows_in_memory_until_space_returns(db_path: Path) -> None:
    """SQLite only: a full disk is simulated with PRAGMA max_page_count."""
    from orchestrator import WriteError

    async with DatabaseManager(db_path) as db:
        async with db.agent_run("disk") as run:
            await db.flush()
            conn = db.connection
            pages = (await (await conn.execute("PRAGMA page_count")).fetchone())[0]
            await conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is full
            for i in range(3000):
                run.log("event", f"event {i} " + "x" * 200)
            with pytest.raises(WriteError) as error:
                await db.flush()
            assert error.value.pending >= 3000 and db.pending >= 3000
            assert rows(db_path, "SELECT count(*) FROM agent_logs") == [(0,)]
            await conn.execute("PRAGMA max_page_count = 1073741823")  # space again
            await db.flush()
            assert db.pending == 0
    assert rows(db_path, "SELECT count(*) FROM agent_logs WHERE log_type = 'event'") == [(3000,)]
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]


async def test_seed_naming_for_every_table(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        orch = await db.create_orchestrator_agent("names")
        agent = await db.create_agent(orch, "s")
        log_id = await db.create_agent_log(agent, "event", "hello", {"k": 1})
        system_id = await db.create_system_log("ERROR", "boom", "adw")
        assert (await db.get_agent_log(log_id)).metadata == {"k": 1}
        assert (await db.get_system_log(system_id)).message == "boom"
        assert [log.id for log in await db.list_agent_logs(agent)] == [log_id]
        assert [log.id for log in await db.list_system_logs()] == [system_id]
        pending = await db.create_prompt(agent, "p", model="claude-haiku-4-5")
        done = await db.update_prompt(pending, "r", tokens_input=1_000_000)
        assert (done.status, done.cost_usd) == ("completed", pytest.approx(1.0))
        other = await db.create_prompt(agent, "p2")
        failed = await db.update_prompt(other, status="failed", error="429")
        assert (failed.status, failed.error) == ("failed", "429")
        assert [p.id for p in await db.list_prompts(agent)] == [pending, other]
        assert [a.id for a in await db.list_agents(orch)] == [agent]


async def test_a_row_the_driver_cannot_bind_is_dropped_alone_and_never_blocks(
    db_target: Target,
) -> None:
    """Any error a row causes while its batch is written (here UnicodeEncodeError, not an
    sqlite3.Error) drops that row only; the rows around it are stored and flush returns."""
    async with DatabaseManager(db_target, flush_interval=0.05) as db:
        async with db.agent_run("poison") as run:
            for i in range(5):
                run.log("event", f"before {i}")
            good = db.agent_log_row(run.id, "event", "placeholder")
            # A row built by hand, past validation: a lone surrogate no driver can encode.
            db.enqueue_agent_log((good[0], run.id, "event", "bad \udcff", *good[4:]))
            for i in range(5):
                run.log("event", f"after {i}")
            await db.flush()
            assert db.stats.dropped == 1 and db.pending <= 1  # only the drop report may wait
    like = "SELECT count(*) FROM agent_logs WHERE message LIKE ?"
    assert rows(db_target, like, ("before %",)) == rows(db_target, like, ("after %",)) == [(5,)]
    reports = rows(db_target, "SELECT message, metadata FROM system_logs")
    assert len(reports) == 1 and reports[0][0] == "dropped 1 log rows the database refused"
    assert "UnicodeEncodeError" in reports[0][1]


async def test_timestamps_before_year_1000_keep_four_digit_years(db_target: Target) -> None:
    """Text timestamps sort as times only if every year has four digits."""
    from datetime import datetime, timezone

    old = datetime(999, 12, 31, 23, 59, 59, 123000, tzinfo=timezone.utc)
    async with DatabaseManager(db_target) as db:
        orch = await db.ensure_orchestrator_agent("old")
        agent = await db.create_agent(orch, created_at=old, started_at="0042-01-02T03:04:05Z")
        await db.log_agent_event(agent, "event", "past", created_at=old)
    assert rows(db_target, "SELECT created_at, started_at FROM agents") == [
        ("0999-12-31T23:59:59.123Z", "0042-01-02T03:04:05.000Z")
    ]
    assert rows(db_target, "SELECT created_at FROM agent_logs") == [("0999-12-31T23:59:59.123Z",)]


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_writer_whose_file_is_deleted_or_replaced_fails_loudly(
    db_path: Path, tmp_path: Path, how: str
) -> None:
    """Writes must not "succeed" into an unlinked file: every later write raises, and
    the queued log rows stay in memory (WriteError) instead of being lost silently.
    SQLite only: a server's database has no file to swap."""
    from orchestrator import OrchestratorError, WriteError
    from orchestrator.store.sqlite import connect

    db = DatabaseManager(db_path)
    await db.connect()
    with pytest.raises(OrchestratorError, match=how):  # the run's end cannot be stored
        async with db.agent_run("swap") as run:
            run.log("event", "before")
            await db.flush()
            if how == "deleted":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            else:
                other = tmp_path / "other.db"
                connect(other).close()
                os.replace(other, db_path)
            with pytest.raises(OrchestratorError, match=how):
                await run.prompt("p", "r", model="claude-haiku-4-5")
            run.log("event", "after")
            with pytest.raises(WriteError, match=how) as error:
                await db.flush()
            assert error.value.pending == 1 and db.pending == 1
            with pytest.raises(OrchestratorError, match=how):
                await db.update_agent_status(run.id, "completed")
    with pytest.raises(WriteError, match=how):
        await db.close()  # the unwritten rows are reported, not dropped in silence


#: A writer in a process of its own: 40 runs (their pages still in the write-ahead log),
#: then on each line of stdin: "write" tries one more run and prints what happened,
#: "exit" closes the manager, "leave" returns without closing it (garbage at exit).
SWAPPED_WRITER = textwrap.dedent("""
    import asyncio, gc, sys
    from orchestrator import DatabaseManager

    async def main():
        db = DatabaseManager(sys.argv[1], flush_interval=0.2)
        await db.connect()
        workflow = await db.ensure_orchestrator_agent("old")
        for i in range(40):
            await db.create_agent(workflow, name=f"old-{i}")
        print("ready", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):  # the loop runs meanwhile
            if line.strip() == "write":
                try:
                    await db.create_agent(workflow, name="old-after")
                    print("written", flush=True)
                except Exception as exc:
                    print(type(exc).__name__, flush=True)
            elif line.strip() == "leave":
                return
            else:
                break
        await db.close()

    asyncio.run(main())
    gc.collect()  # "leave": the manager is garbage; its connection's thread ends
""")


def _runs_in(path: Path) -> list[str]:
    """The run names in the SQLite file at ``path``, after it passes integrity_check."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [name for (name,) in conn.execute("SELECT name FROM agents ORDER BY name")]
    finally:
        conn.close()


async def _new_store(path: Path, names: list[str]) -> None:
    async with DatabaseManager(path) as db:
        workflow = await db.ensure_orchestrator_agent("new")
        for name in names:
            await db.create_agent(workflow, name=name)


@pytest.mark.parametrize(
    ("how", "when"),
    [
        ("replaced", "idle"),  # os.replace of a fresh file; the writer notices by itself
        ("replaced", "exit"),  # ... and closes before it looked
        ("renamed", "idle"),  # moved aside (the old file keeps all its runs), a new one put
        ("deleted", "exit"),  # rm of the file alone, then a backup restored there
        ("replaced", "leave"),  # the writer never closes its manager
    ],
)
def test_a_file_swapped_under_a_writer_process_is_never_corrupted_by_it(
    db_path: Path, tmp_path: Path, how: str, when: str
) -> None:
    """The old file's write-ahead log (named after the path) must never be read as the
    new file's: the writer lets go of it (checkpointed into the old file, then deleted)
    as soon as it sees the swap, at its next write, idle look, close or exit."""
    writer = subprocess.Popen(
        [sys.executable, "-c", SWAPPED_WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline() == "ready\n"
        wal = Path(f"{db_path}-wal")
        assert wal.stat().st_size > 0  # the old file's latest pages are only in its log
        fresh = tmp_path / "fresh.db"
        asyncio.run(_new_store(fresh, ["new-0", "new-1"]))
        if how == "renamed":
            os.rename(db_path, tmp_path / "aside.db")
        if how == "deleted":
            db_path.unlink()
        else:
            os.replace(fresh, db_path)
        if when == "idle":  # the writer lets go of the old log within its flush interval
            deadline = time.monotonic() + 10
            while wal.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not wal.exists() and not Path(f"{db_path}-shm").exists()
            assert _runs_in(db_path) == ["new-0", "new-1"]
            asyncio.run(_new_store(db_path, ["new-2"]))  # the new file in use meanwhile
            writer.stdin.write("write\n")
            writer.stdin.flush()
            assert writer.stdout.readline() == "DatabaseReplaced\n"
        writer.stdin.write("leave\n" if when == "leave" else "exit\n")
        writer.stdin.close()
        assert writer.wait(30) == 0
    finally:
        writer.kill()
        writer.wait()
    if how == "deleted":
        os.replace(fresh, db_path)  # restored from a backup
    expected = ["new-0", "new-1", "new-2"] if when == "idle" else ["new-0", "new-1"]
    assert _runs_in(db_path) == expected
    assert not Path(f"{db_path}-wal").exists() and not Path(f"{db_path}-shm").exists()
    if how == "renamed":  # the old file got the pages its log held
        assert _runs_in(tmp_path / "aside.db") == sorted(f"old-{i}" for i in range(40))


@pytest.mark.parametrize("fails", [False, True])
async def test_bulk_with_deferred_search_index_indexes_every_row(
    db_path: Path, fails: bool
) -> None:
    """Rows loaded with the search index deferred are all searchable afterwards (also
    those committed before a failure), and the per-row search triggers are back."""

    def triggers() -> list[tuple[str]]:
        return rows(
            db_path,
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_ai' "
            "ESCAPE '\\' ORDER BY name",
        )

    async with DatabaseManager(db_path) as db:
        before = triggers()
        agent = await db.create_agent(await db.ensure_orchestrator_agent("bulk"))
        with contextlib.suppress(RuntimeError):
            async with db.bulk(commit_every=100, defer_search_index=True):
                for i in range(250):
                    await db.log_agent_event(agent, "event", f"needle{i % 5} number {i}")
                await db.flush()  # 250 rows past commit_every: part is committed
                if fails:
                    raise RuntimeError("the load stops half way")
        assert triggers() == before
        await db.log_agent_event(agent, "event", "needle0 after the load")
    stored = rows(db_path, "SELECT count(*) FROM agent_logs WHERE message LIKE 'needle0%'")[0][0]
    found = rows(
        db_path, "SELECT count(*) FROM agent_logs_fts WHERE agent_logs_fts MATCH 'needle0'"
    )[0][0]
    assert stored == found == 51
    assert (
        rows(db_path, "INSERT INTO agent_logs_fts(agent_logs_fts) VALUES('integrity-check')") == []
    )


async def test_a_nul_character_never_costs_a_row(db_target: Target) -> None:
    """SQLite stores NUL as given; PostgreSQL's text cannot hold it: U+FFFD instead."""
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("nul") as run:
            run.log("tool_result", "binary\x00output", step="cat\x00")
            await run.prompt("p\x00", "r\x00", model="claude-haiku-4-5")
    stored = "\ufffd" if is_postgres(db_target) else "\x00"
    assert rows(
        db_target, "SELECT message, step FROM agent_logs WHERE log_type = 'tool_result'"
    ) == [(f"binary{stored}output", f"cat{stored}")]
    assert rows(db_target, "SELECT content, response FROM prompts") == [
        (f"p{stored}", f"r{stored}")
    ]


async def test_one_hour_cache_writes_are_stored_and_summed_into_usage_daily(
    db_target: Target,
) -> None:
    """tokens_cache_write_1h (m007) on prompts, and usage_daily's sum of it kept true by
    the triggers on insert, update and delete of prompts and on delete of a run."""
    usage = {
        "input_tokens": 10,
        "output_tokens": 2_000,
        "cache_read_input_tokens": 30_000,
        "cache_creation_input_tokens": 9_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 3_000, "ephemeral_1h_input_tokens": 6_000},
    }
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("one-hour") as run:
            prompt = await run.prompt("p", "r", model="claude-sonnet-4-5", usage=usage)
            await run.prompt("q", "s", model="claude-sonnet-4-5", usage=usage)
        async with db.agent_run("one-hour") as other:
            await other.prompt("t", "u", model="claude-sonnet-4-5", usage=usage)

    def sums() -> tuple[int, int]:
        ((prompts,),) = rows(
            db_target, "SELECT coalesce(sum(tokens_cache_write_1h), 0) FROM prompts"
        )
        ((daily,),) = rows(
            db_target, "SELECT coalesce(sum(tokens_cache_write_1h), 0) FROM usage_daily"
        )
        return int(prompts), int(daily)

    assert prompt.tokens_cache_write_1h == 6_000
    assert rows(
        db_target, "SELECT tokens_cache_write_1h FROM prompts WHERE id = ?", (prompt.id,)
    ) == [(6_000,)]
    assert sums() == (18_000, 18_000)
    execute(
        db_target,
        ("UPDATE prompts SET tokens_cache_write_1h = ? WHERE id = ?", (1_000, prompt.id)),
    )
    assert sums() == (13_000, 13_000)
    execute(db_target, ("DELETE FROM prompts WHERE id = ?", (prompt.id,)))
    assert sums() == (12_000, 12_000)
    execute(db_target, ("DELETE FROM agents WHERE id = ?", (run.id,)))
    assert sums() == (6_000, 6_000)


def test_the_timeout_is_checked_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``timeout``: given, else ``$ORCHESTRATOR_TIMEOUT``, else the store's default (30 s on
    PostgreSQL, none on SQLite); nothing but a positive number of seconds is taken."""
    from orchestrator.store.postgres import PostgresBackend
    from orchestrator.store.sqlite import SQLiteBackend

    assert (PostgresBackend.timeout, SQLiteBackend.timeout) == (30.0, None)
    assert DatabaseManager(timeout=4).timeout == 4.0
    monkeypatch.setenv("ORCHESTRATOR_TIMEOUT", "7.5")
    assert DatabaseManager().timeout == 7.5 and DatabaseManager(timeout=2).timeout == 2.0
    for value in ("abc", "0", "-1", "nan"):
        monkeypatch.setenv("ORCHESTRATOR_TIMEOUT", value)
        with pytest.raises(InvalidInput, match="ORCHESTRATOR_TIMEOUT"):
            DatabaseManager()
    monkeypatch.delenv("ORCHESTRATOR_TIMEOUT")
    for bad in (0, -3, float("nan")):
        with pytest.raises(InvalidInput, match="timeout: must be more than 0"):
            DatabaseManager(timeout=bad)
