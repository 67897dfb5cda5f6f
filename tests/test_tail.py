"""Following the database: ``orchestrator.reports.tail`` and ``orchestrator tail``.

Events are checked against the rows the writer stored, read back with plain SQL. The
cross-process tests start a follower in a child process and write from this one: an
event must show within a second of its commit, and an idle follower must use next to
no CPU (the child's own ``resource.getrusage`` over idle seconds).
"""

from __future__ import annotations

import json
import os
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Target, is_postgres, rows
from click.testing import CliRunner

from orchestrator import DatabaseManager, SyncDatabaseManager
from orchestrator.cli import cli
from orchestrator.reports import tail as tail_module
from orchestrator.reports.tail import BATCH, Event, EventFilter, EventSource, follow
from orchestrator.store import sqlite as backend

ROOT = Path(__file__).resolve().parents[1]
USAGE = {"input_tokens": 10, "output_tokens": 200, "cache_read_input_tokens": 3000}


@pytest.fixture
def source(db_target: Target) -> Iterator[EventSource]:
    with EventSource.open(_created(db_target)) as opened:
        yield opened


def _created(target: Target) -> Target:
    """``target`` with the schema made (a URL's opener makes it itself)."""
    if not is_postgres(target):
        backend.connect(target).close()
    return target


def one(target: Target, sql: str, *params: Any) -> Any:
    return rows(target, sql, params)[0][0]


async def test_runs_prompts_logs_and_ends_arrive_as_events(
    db_target: Target, source: EventSource
) -> None:
    assert source.poll() == []
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("plan_build", session_id="adw-1", name="plan") as run:
            await db.flush()
            started = source.poll()
            (progress,) = source.running
            await run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage=USAGE)
            await run.prompt("/build", "ok", model="claude-sonnet-4-5", usage=USAGE)
            run.log("tool_use", "Bash: pytest -x\nsecond line")
            await db.log_system_event("WARNING", "disk almost full", source="adw.disk")
            await db.flush()
            middle = source.poll()
            (progress_later,) = source.running
        ended = source.poll()
    assert source.running == []

    run_id = one(db_target, "SELECT id FROM agents")
    costs = [row[0] for row in rows(db_target, "SELECT cost_usd FROM prompts ORDER BY created_at")]
    assert len(costs) == 2 and all(cost > 0 for cost in costs)

    assert [(e.kind, e.text) for e in started] == [("start", "started")]
    assert (started[0].workflow, started[0].run, started[0].run_id) == (
        "plan_build",
        "plan",
        run_id,
    )
    assert started[0].session == "adw-1"
    assert (progress.run_id, progress.status, progress.prompts) == (run_id, "running", 0)
    assert (progress_later.prompts, progress_later.cost_usd) == (2, pytest.approx(sum(costs)))

    kinds = [e.kind for e in middle]
    assert sorted(kinds) == ["log", "prompt", "prompt", "system"]
    prompts = [e for e in middle if e.kind == "prompt"]
    assert [e.cost_usd for e in prompts] == pytest.approx(costs)
    assert "claude-sonnet-4-5" in prompts[0].text and "in 10 out 200" in prompts[0].text
    (log,) = [e for e in middle if e.kind == "log"]
    assert log.text == "tool_use: Bash: pytest -x second line" and log.run_id == run_id
    (system,) = [e for e in middle if e.kind == "system"]
    assert (system.level, system.text, system.workflow) == (
        "WARNING",
        "adw.disk: disk almost full",
        None,
    )
    assert [e.time for e in middle] == sorted(e.time for e in middle)

    (end,) = [e for e in ended if e.kind == "end"]
    assert end.level == "INFO" and end.text.startswith("completed after")
    assert end.cost_usd == pytest.approx(sum(costs)) and "2 prompts" in end.text
    assert len({e.key for e in [*started, *middle, *ended]}) == len([*started, *middle, *ended])
    assert source.poll() == []


async def test_a_failed_run_and_a_pending_prompt(db_target: Target, source: EventSource) -> None:
    async with DatabaseManager(db_target) as db:
        with pytest.raises(RuntimeError):
            async with db.agent_run("review") as run:
                prompt_id = await db.create_prompt(run.id, "/review", model="claude-sonnet-4-5")
                assert [e.kind for e in source.poll()] == ["start"]  # pending: not yet
                await db.complete_prompt(prompt_id, "looks good", usage=USAGE)
                answered = source.poll()
                raise RuntimeError("boom")
        await db.flush()
        failed = source.poll()
    assert [e.kind for e in answered] == ["prompt"]
    cost = one(db_target, "SELECT cost_usd FROM prompts")
    assert answered[0].cost_usd == pytest.approx(cost) and cost > 0
    end = next(e for e in failed if e.kind == "end")
    assert end.level == "ERROR" and "failed" in end.text and "boom" in end.text
    assert "1 prompt:" in end.text


async def test_filters(db_target: Target) -> None:
    _created(db_target)
    sources = {
        "all": EventSource.open(db_target),
        "workflow": EventSource.open(db_target, EventFilter(workflow="test")),
        "session": EventSource.open(db_target, EventFilter(session="adw-2")),
        "run": EventSource.open(db_target, EventFilter(run="second")),
        "errors": EventSource.open(db_target, EventFilter(level="error")),
    }
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("plan_build", session_id="adw-1", name="first") as run:
            run.log("info", "one")
        async with db.agent_run("test", session_id="adw-2", name="second") as run:
            run.log("error", "two")
        await db.log_system_event("ERROR", "three")
        await db.flush()
    seen = {name: source.poll() for name, source in sources.items()}
    for source in sources.values():
        source.close()

    def runs(events: list[Event]) -> set[str | None]:
        return {e.run for e in events}

    assert runs(seen["all"]) == {"first", "second", None}
    assert runs(seen["workflow"]) == runs(seen["session"]) == runs(seen["run"]) == {"second"}
    assert {e.level for e in seen["errors"]} == {"ERROR"}
    assert sorted(e.text for e in seen["errors"]) == ["error: two", "three"]
    with pytest.raises(ValueError, match="level"):
        EventFilter(level="loud")


async def test_a_burst_larger_than_a_batch_arrives_whole_and_once(
    db_target: Target, source: EventSource
) -> None:
    count = BATCH * 2 + 7
    async with DatabaseManager(db_target) as db:
        await db.log_system_event("INFO", "before")
        await db.flush()
        assert [e.text for e in source.poll()] == ["before"]
        for i in range(count):
            await db.log_system_event("INFO", f"burst {i}")
        await db.flush()
    texts: list[str] = []
    for _ in range(5):
        texts += [e.text for e in source.poll()]
    assert texts == [f"burst {i}" for i in range(count)]


async def test_backlog_is_the_newest_events(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        for i in range(30):
            await db.log_system_event("INFO", f"message {i}")
    events = list(follow(db_target, backlog=5, duration=0))
    assert [e.text for e in events] == [f"message {i}" for i in range(25, 30)]
    assert list(follow(db_target, backlog=0, duration=0)) == []
    if not is_postgres(db_target):
        with pytest.raises(FileNotFoundError, match="orchestrator init"):
            list(follow(Path(db_target).with_name("missing.db")))


def test_cli_prints_one_line_per_event(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SyncDatabaseManager(db_path) as db:
        with db.agent_run("plan_build", session_id="adw-7", name="plan") as run:
            run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage=USAGE)
        db.log_system_event("ERROR", "push failed", source="adw.git")
    cost = one(db_path, "SELECT cost_usd FROM prompts")

    def once(*args: Any, **kwargs: Any) -> Iterator[Event]:
        return follow(*args, **kwargs, duration=0)

    monkeypatch.setattr(tail_module, "follow", once)
    result = CliRunner().invoke(cli, ["tail", "--db", str(db_path)], catch_exceptions=False)
    lines = result.output.splitlines()
    assert [line.split()[4] for line in lines[:4]] == ["start", "prompt", "end", "system"]
    prompt_line = lines[1]
    assert "plan_build" in prompt_line and f"${cost:.4f}" in prompt_line
    assert "\x1b[" not in result.output  # not a terminal: no colour codes

    result = CliRunner().invoke(
        cli, ["tail", "--db", str(db_path), "--level", "error", "--json"], catch_exceptions=False
    )
    (line,) = result.output.splitlines()
    assert json.loads(line)["text"] == "adw.git: push failed"

    missing = CliRunner().invoke(cli, ["tail", "--db", str(db_path.with_name("none.db"))])
    assert missing.exit_code == 1 and "no database" in missing.output


# -- across processes ---------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )


def _lines(stream: Any) -> queue.Queue[tuple[float, str]]:
    """Each line of ``stream`` with the time it arrived, read by a thread."""
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_orchestrator_tail_shows_an_event_within_a_second(db_target: Target) -> None:
    _created(db_target)
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "tail"]
    command += ["--db", str(db_target), "-n", "0"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env()
    )
    try:
        lines = _lines(child.stdout)
        with SyncDatabaseManager(db_target) as db:
            # Ready once a line shows: until then, write one every half second.
            deadline = time.monotonic() + 30
            while lines.empty():
                assert child.poll() is None, child.stderr.read() if child.stderr else ""
                assert time.monotonic() < deadline, "tail printed nothing in 30 s"
                db.log_system_event("INFO", "are you there?")
                db.flush()
                time.sleep(0.5)
            time.sleep(0.6)
            while not lines.empty():
                lines.get()
            delays = []
            for i in range(3):
                with db.agent_run("plan_build", name=f"run-{i}") as run:
                    flushed = time.monotonic()
                    arrived, line = lines.get(timeout=5)
                    assert f"run-{i}" in line and "start" in line
                    delays.append(arrived - flushed)
                    run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage=USAGE)
                    arrived, line = lines.get(timeout=5)
                    assert "prompt" in line
                lines.get(timeout=5)  # its end
                time.sleep(0.3)
    finally:
        child.terminate()
        child.wait(timeout=10)
    print(f"tail: event shown {max(delays) * 1000:.0f} ms after its commit at most")
    assert max(delays) < 1.0, delays


IDLE_CHILD = """
import json, resource, sys
from orchestrator.reports.tail import follow
path, idle = sys.argv[1], float(sys.argv[2])
list(follow(path, backlog=0, duration=0))  # imports, migrations check, first look
before = resource.getrusage(resource.RUSAGE_SELF)
events = list(follow(path, backlog=0, duration=idle))
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"cpu_s": cpu, "events": len(events)}))
"""


def test_an_idle_follower_costs_next_to_no_cpu(db_target: Target) -> None:
    _created(db_target)
    idle = 3.0
    run = subprocess.run(
        [sys.executable, "-c", IDLE_CHILD, str(db_target), str(idle)],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=60,
        check=True,
    )
    measured = json.loads(run.stdout)
    print(f"tail: {measured['cpu_s'] * 1000:.1f} ms of CPU over {idle:.0f} idle seconds")
    assert measured["events"] == 0
    # 12 looks at the database; 1% of one core would be 30 ms.
    assert measured["cpu_s"] < 0.03 * idle, measured


@pytest.mark.parametrize("how", ["replaced", "deleted"])
def test_orchestrator_tail_says_the_file_was_swapped_and_follows_the_new_one(
    db_path: Path, tmp_path: Path, how: str
) -> None:
    """Like ``tail -F``: one line on stderr, then the new file's events. The old file's
    log (its last runs, which tail alone still holds open) is let go of first: the new
    file is read and written as itself, never with the old one's pages."""
    backend.connect(db_path).close()
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "tail"]
    command += ["--db", str(db_path), "-n", "0"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env()
    )
    try:
        lines, notices = _lines(child.stdout), _lines(child.stderr)
        with SyncDatabaseManager(db_path) as db:
            deadline = time.monotonic() + 30
            while lines.empty():  # ready once a line shows
                assert child.poll() is None and time.monotonic() < deadline
                db.log_system_event("INFO", "old file")
                db.flush()
                time.sleep(0.5)
            for i in range(20):
                with db.agent_run("old", name=f"old-{i}"):
                    pass
        assert Path(f"{db_path}-wal").stat().st_size > 0  # the old runs, in its log only
        fresh = tmp_path / "fresh.db"
        with SyncDatabaseManager(fresh) as db:
            with db.agent_run("new", name="new-0"):
                pass
        if how == "deleted":
            db_path.unlink()
        else:
            os.replace(fresh, db_path)
        _, notice = notices.get(timeout=5)
        expected = {
            "deleted": f"{db_path} was deleted; following the next file created there\n",
            "replaced": f"{db_path} was replaced by another file; following the new one\n",
        }
        assert notice == expected[how]
        if how == "deleted":
            os.replace(fresh, db_path)  # restored from a backup
        while not lines.empty():
            lines.get()
        with SyncDatabaseManager(db_path) as db:
            deadline = time.monotonic() + 10
            while lines.empty():  # until tail has the new file open
                assert child.poll() is None and time.monotonic() < deadline
                db.log_system_event("INFO", "new file")
                db.flush()
                time.sleep(0.5)
        _, line = lines.get()
        assert line.rstrip().endswith("new file"), line
        assert child.poll() is None and notices.empty()
    finally:
        child.terminate()
        child.wait(timeout=10)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT name FROM agents").fetchall() == [("new-0",)]
    assert conn.execute("SELECT DISTINCT message FROM system_logs").fetchall() == [("new file",)]
    conn.close()


# -- PostgreSQL: writers commit in any order ------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_transaction_committed_after_a_later_one_is_not_missed(db_target: Target) -> None:
    """Two writers: the first inserts, the second inserts and commits, the follower looks,
    then the first commits. A watermark of the largest row seen would pass over the first
    one's row; the snapshot of the last look knows it was still running."""
    import asyncio

    import asyncpg

    from orchestrator.store.postgres import connect, to_dollar

    insert = to_dollar(
        "INSERT INTO system_logs (id, log_level, message, created_at) VALUES (?, 'INFO', ?, ?)"
    )

    async def go() -> tuple[list[str], list[str], list[str]]:
        (await connect(str(db_target))).terminate()  # the schema
        with EventSource.open(db_target) as source:
            assert source.poll() == []
            first = await asyncpg.connect(str(db_target))
            second = await asyncpg.connect(str(db_target))
            try:
                await first.execute("BEGIN")
                await first.execute(insert, "early", "begun first", "2026-11-01T10:00:00.000Z")
                await second.execute(insert, "late", "committed first", "2026-11-01T10:00:01.000Z")
                seen = [e.text for e in source.poll()]
                await first.execute("COMMIT")
                then = [e.text for e in source.poll()]
                after = [e.text for e in source.poll()]
            finally:
                await first.close()
                await second.close()
        return seen, then, after

    seen, then, after = asyncio.run(go())
    assert (seen, then, after) == (["committed first"], ["begun first"], [])


def _tail_lines(target: Target, count: int, write: Callable[[], None] | None = None) -> list[Any]:
    """The first ``count`` lines ``orchestrator tail -n ... --json`` prints for ``target``,
    as dicts; then, when ``write`` is given, the three lines of what it writes."""
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "tail"]
    command += ["--db", str(target), "-n", str(count), "--json"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env()
    )
    try:
        lines = _lines(child.stdout)
        got = [json.loads(lines.get(timeout=30)[1]) for _ in range(count)]
        if write is not None:
            time.sleep(1.0)  # the follower is polling
            write()
            got += [json.loads(lines.get(timeout=10)[1]) for _ in range(3)]
    finally:
        child.terminate()
        child.wait(timeout=10)
    return got


def test_the_cli_prints_the_same_events_from_either_engine(
    tmp_path: Path, postgres_database: str
) -> None:
    """The same demo history in an SQLite file and in a PostgreSQL store, followed by
    ``orchestrator tail`` in a child process: the same backlog and the same new events
    (ids aside: each store makes its own)."""
    from backends import postgres_admin, with_search_path

    schema = f"t_{os.urandom(6).hex()}"
    postgres_admin(postgres_database, f"CREATE SCHEMA {schema}")
    url = with_search_path(postgres_database, schema)
    try:
        outputs = []
        for target in (tmp_path / "demo.db", url):
            demo = ["demo", str(target), "--prompts", "120", "--seed", "5", "--end", "2026-11-25"]
            assert CliRunner().invoke(cli, demo, catch_exceptions=False).exit_code == 0

            def write(target: Target = target) -> None:
                with SyncDatabaseManager(target) as db, db.agent_run("live", name="now") as run:
                    run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage=USAGE)

            events = _tail_lines(target, 40, write)
            for event in events:
                del event["key"], event["run_id"]
            for event in events[40:]:
                del event["time"]  # now
                event["text"] = re.sub(r"after [0-9.]+ s", "after _ s", event["text"])
            outputs.append(events)
    finally:
        postgres_admin(postgres_database, f"DROP SCHEMA {schema} CASCADE", check=False)
    sqlite_events, postgres_events = outputs
    assert len(sqlite_events) == 43 and {e["kind"] for e in sqlite_events} >= {"start", "end"}
    assert postgres_events == sqlite_events
