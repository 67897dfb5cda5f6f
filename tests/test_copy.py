"""`orchestrator copy`: SQLite <-> PostgreSQL with ids kept, incremental, verified."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from backends import Target, execute, is_postgres, rows
from click.testing import CliRunner
from servers import PostgresCluster, postgres_cluster

from orchestrator import DatabaseManager
from orchestrator.cli import cli
from orchestrator.commands import copy as copy_module
from orchestrator.commands.copy import SUMMARIES, TABLES, CopyMismatch, copy_database
from orchestrator.commands.demo import create_demo_database
from orchestrator.commands.maintenance import prune
from orchestrator.reports.canned import reports, run_report
from orchestrator.store import sqlite as sqlite_store
from orchestrator.store.targets import backend_for

LAST_DAY = "2026-11-25"


@pytest.fixture
def source(demo_db: Path, tmp_path: Path) -> Path:
    """A writable copy of the session's demo database."""
    path = tmp_path / "source.db"
    shutil.copy(demo_db, path)
    return path


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _assert_same_rows(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]], what: str) -> None:
    assert len(left) == len(right), f"{what}: {len(left)} rows vs {len(right)}"
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        assert len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True)), (
            f"{what}, row {index}: {a} != {b}"
        )


def _table(target: Target, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` in key order (sorted in Python: the two sides' text orders
    may differ), columns in SQLite's order, PostgreSQL's generated search column left out."""
    spec = next(t for t in (*TABLES, *SUMMARIES) if t.name == table)
    columns = [row[1] for row in _sqlite_columns(table)]
    found = rows(target, f"SELECT {', '.join(columns)} FROM {table}")
    keys = [columns.index(column) for column in spec.key]
    return sorted(found, key=lambda row: tuple(str(row[i]) for i in keys))


def _sqlite_columns(table: str) -> list[tuple[Any, ...]]:
    return _COLUMNS[table]


def _columns_of(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            t.name: conn.execute(f"PRAGMA table_info({t.name})").fetchall()
            for t in (*TABLES, *SUMMARIES)
        }
    finally:
        conn.close()


_COLUMNS: dict[str, list[tuple[Any, ...]]] = {}


@pytest.fixture(autouse=True)
def _columns(demo_db: Path) -> None:
    if not _COLUMNS:
        _COLUMNS.update(_columns_of(demo_db))


def _every_report(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {name: run_report(name, path).rows for name in reports()}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_round_trip_through_postgresql_keeps_every_row_and_report(
    source: Path, postgres_database: str, new_db_target: Callable[[], Target], tmp_path: Path
) -> None:
    server = new_db_target()
    assert is_postgres(server)
    back = tmp_path / "back.db"
    result = CliRunner().invoke(cli, ["copy", str(source), str(server)])
    assert result.exit_code == 0, result.output
    assert "counts, sums and ids match" in result.output
    copy_database(server, back)
    for table in (t.name for t in (*TABLES, *SUMMARIES)):
        original = _table(source, table)
        _assert_same_rows(original, _table(server, table), f"{table} on PostgreSQL")
        _assert_same_rows(original, _table(back, table), f"{table} back in SQLite")
    assert rows(source, "SELECT count(*) FROM prompts")[0][0] > 1000
    before, after = _every_report(source), _every_report(back)
    for name in before:
        _assert_same_rows(before[name], after[name], f"report {name}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_copy_again_brings_only_what_is_new_and_runs_that_finished(
    source: Path, new_db_target: Callable[[], Target]
) -> None:
    target = new_db_target()

    async def start() -> tuple[str, str]:
        async with DatabaseManager(source) as db:
            workflow = await db.create_orchestrator_agent("copy-test")
            run = await db.create_agent(workflow, status="running", session_id="copy-s1")
            prompt = await db.create_prompt(run, "what is new?")
            return run, prompt

    run, prompt = asyncio.run(start())
    first = copy_database(source, target)
    raw = {t.name for t in TABLES}
    assert first.fresh
    assert first.inserted == sum(t.source_rows for t in first.tables if t.name in raw)
    assert rows(target, "SELECT status FROM agents WHERE id = ?", (run,)) == [("running",)]

    async def finish() -> None:
        async with DatabaseManager(source) as db:
            for index in range(7):
                await db.log_agent_event(run, "event", f"step {index}")
            await db.complete_prompt(
                prompt, "this", tokens_input=100, tokens_output=50, model="claude-sonnet-4-5"
            )
            await db.update_agent_status(run, "completed")

    asyncio.run(finish())
    second = copy_database(source, target)
    assert not second.fresh
    assert {t.name: t.inserted for t in second.tables if t.inserted} == {"agent_logs": 7}
    assert {t.name: t.updated for t in second.tables if t.updated} == {"agents": 1, "prompts": 1}
    for table in ("agents", "prompts", "agent_logs", "usage_daily", "sessions"):
        _assert_same_rows(_table(source, table), _table(target, table), table)
    third = copy_database(source, target)
    assert third.inserted == third.updated == 0

    asyncio.run(_log_more(source, run, 3))
    refresh = copy_database(source, target, recent=True)
    assert refresh.inserted == 3
    began = time.time()
    asyncio.run(_log_more(source, run, 2))
    assert copy_database(source, target, since=began).inserted == 2
    _assert_same_rows(_table(source, "agent_logs"), _table(target, "agent_logs"), "agent_logs")

    # A refresh looks near the newest ids; a long-running run (an old id) still catches
    # up, and a row older than the window is found when the counts differ.
    old_run = "00000000-0000-7000-8000-0000000000aa"
    workflow = rows(source, "SELECT id FROM orchestrator_agents LIMIT 1")[0][0]
    execute(
        source,
        (
            "INSERT INTO agents (id, orchestrator_agent_id, status) VALUES (?, ?, 'running')",
            (old_run, workflow),
        ),
    )
    assert copy_database(source, target, recent=True).inserted == 1
    execute(
        source,
        ("UPDATE agents SET status = 'failed', error = 'x' WHERE id = ?", (old_run,)),
        (
            "INSERT INTO agent_logs (id, agent_id, log_type, message) VALUES (?, ?, 'info', 'old')",
            ("00000000-0000-7000-8000-0000000000bb", old_run),
        ),
    )
    late = copy_database(source, target, recent=True)
    assert (late.inserted, late.updated) == (1, 1)
    for table in ("agents", "agent_logs", "runs_daily"):
        _assert_same_rows(_table(source, table), _table(target, table), table)


async def _log_more(path: Path, run: str, count: int) -> None:
    async with DatabaseManager(path) as db:
        for index in range(count):
            await db.log_agent_event(run, "event", f"more {index}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_target_that_differs_is_not_overwritten_but_reported(
    source: Path, new_db_target: Callable[[], Target]
) -> None:
    target = new_db_target()
    copy_database(source, target)
    prompt_id, cost = rows(
        source, "SELECT id, cost_usd FROM prompts WHERE cost_usd > 0 ORDER BY id LIMIT 1"
    )[0]
    execute(target, ("UPDATE prompts SET cost_usd = cost_usd + 1 WHERE id = ?", (prompt_id,)))
    with pytest.raises(CopyMismatch, match=r"prompts: sum\(cost_usd\)") as raised:
        copy_database(source, target)
    assert "--replace" in str(raised.value)
    assert rows(target, "SELECT cost_usd FROM prompts WHERE id = ?", (prompt_id,))[0][0] == (
        pytest.approx(cost + 1)
    )
    copy_database(source, target, replace=True)
    assert rows(target, "SELECT cost_usd FROM prompts WHERE id = ?", (prompt_id,)) == [(cost,)]


def test_a_pruned_source_keeps_its_daily_totals_in_the_copy(tmp_path: Path) -> None:
    source, target = tmp_path / "pruned.db", tmp_path / "copy.db"
    end = datetime(2026, 11, 25, tzinfo=timezone.utc)
    asyncio.run(create_demo_database(source, prompts=500, days=30, seed=5, end=end))
    assert prune(source, "2026-11-10").prompts > 0
    copy_database(source, target)
    for name in ("spend_by_day", "token_mix", "runs_by_day", "spend_by_session"):
        _assert_same_rows(
            run_report(name, source).rows, run_report(name, target).rows, f"report {name}"
        )


def test_a_subagent_run_older_than_its_parent_id_is_linked_after_both_are_in(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "s.db", tmp_path / "t.db"
    asyncio.run(_empty_store(source))
    parent = "ffffffff-0000-7000-8000-000000000000"  # sorts after its child
    child = "00000000-0000-7000-8000-000000000000"
    execute(
        source,
        "INSERT INTO orchestrator_agents (id, name) VALUES ('w', 'wf')",
        ("INSERT INTO agents (id, orchestrator_agent_id) VALUES (?, 'w')", (parent,)),
        (
            "INSERT INTO agents (id, orchestrator_agent_id, parent_agent_id) VALUES (?, 'w', ?)",
            (child, parent),
        ),
    )
    copy_database(source, target)
    assert rows(target, "SELECT parent_agent_id FROM agents WHERE id = ?", (child,)) == [(parent,)]


async def _empty_store(path: Path) -> None:
    async with DatabaseManager(path):
        pass


def test_bad_sources_and_targets_are_refused_and_nothing_is_written(
    source: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    same = runner.invoke(cli, ["copy", str(source), str(source)])
    assert same.exit_code != 0 and "the same database" in same.output
    missing = runner.invoke(cli, ["copy", str(tmp_path / "nope.db"), str(tmp_path / "t.db")])
    assert missing.exit_code != 0 and "no database at" in missing.output
    assert not (tmp_path / "t.db").exists()
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_bytes(b"these are my notes, not a database" * 100)
    refused = runner.invoke(cli, ["copy", str(source), str(not_sqlite)])
    assert refused.exit_code != 0 and "notes.db" in refused.output
    assert not_sqlite.read_bytes() == b"these are my notes, not a database" * 100
    url = runner.invoke(cli, ["copy", str(source), "mysql://x/y"])
    assert url.exit_code != 0 and "unsupported database URL scheme" in url.output


def _spelled_otherwise(target: Target, tmp_path: Path) -> list[str]:
    """Other names of the same store: a symlink, a hard link and a path through ``..``;
    for a URL, the same server by address instead of name (and the other way)."""
    if is_postgres(target):
        url = str(target)
        host = "127.0.0.1" if "@localhost" in url else "localhost"
        return [url.replace("@127.0.0.1", f"@{host}").replace("@localhost", f"@{host}")]
    path = Path(target)
    (tmp_path / "link.db").symlink_to(path)
    os.link(path, tmp_path / "hard.db")
    (tmp_path / "a").mkdir()
    return [str(tmp_path / "link.db"), str(tmp_path / "hard.db"), f"{tmp_path}/a/../{path.name}"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_store_spelled_two_ways_is_refused_even_with_replace_and_left_as_it_was(
    source: Path, new_db_target: Callable[[], Target], tmp_path: Path
) -> None:
    store = new_db_target()
    copy_database(source, store)
    before = {t.name: _table(store, t.name) for t in (*TABLES, *SUMMARIES)}
    assert sum(len(found) for found in before.values()) > 1000
    runner = CliRunner()
    for other in _spelled_otherwise(store, tmp_path):
        assert other != str(store)
        for arguments in ([str(store), other, "--replace"], [other, str(store), "--replace"]):
            result = runner.invoke(cli, ["copy", *arguments])
            assert result.exit_code == 1, result.output
            (line,) = result.output.splitlines()
            assert line == (
                f"Error: {arguments[0]} and {arguments[1]} are the same database: "
                "nothing was copied"
            )
    for table, found in before.items():
        _assert_same_rows(found, _table(store, table), f"{table} after the refused copies")


@pytest.mark.parametrize("backend", ["postgresql"])
def test_another_schema_of_the_same_database_is_another_store(
    source: Path, new_db_target: Callable[[], Target]
) -> None:
    first, second = new_db_target(), new_db_target()
    copy_database(source, first)
    result = copy_database(first, second)
    assert result.fresh and result.inserted > 1000
    for table in ("prompts", "usage_daily"):
        _assert_same_rows(_table(first, table), _table(second, table), table)


WRITER = """
import sys, time
from orchestrator import SyncDatabaseManager
with SyncDatabaseManager(sys.argv[1], flush_interval=0.02) as db:
    with db.agent_run("busy-writer") as run:
        print("ready", flush=True)
        i = 0
        while True:
            run.log("event", f"tick {i}")
            if i % 10 == 0:
                run.prompt(f"p{i}", "r", model="claude-haiku-4-5", tokens_input=10, tokens_output=5)
            i += 1
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_source_being_written_to_copies_and_verifies_one_state_of_it(
    source: Path, new_db_target: Callable[[], Target], tmp_path: Path
) -> None:
    import subprocess
    import sys

    store = new_db_target()
    copy_database(source, store)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        before = rows(store, "SELECT count(*) FROM agent_logs")[0][0]
        snapshot = tmp_path / "snapshot.db"
        first = copy_database(store, snapshot)  # raises CopyMismatch on any difference
        second = copy_database(store, snapshot)
        after = rows(store, "SELECT count(*) FROM agent_logs")[0][0]
    finally:
        writer.kill()
        writer.wait()
    logs = next(t for t in second.tables if t.name == "agent_logs")
    assert after > before, "the writer wrote nothing during the copies"
    assert second.inserted > 0 and logs.source_rows > before
    assert not first.problems and not second.problems


COPY = "from orchestrator.cli import cli; cli()"


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose copy takes several chunks of agent_logs (time to kill it half way)."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    end = datetime(2026, 11, 1, tzinfo=timezone.utc)
    asyncio.run(create_demo_database(path, prompts=6000, days=30, seed=11, end=end))
    return path


def _logs_in(target: Target) -> int:
    try:
        return int(rows(target, "SELECT count(*) FROM agent_logs")[0][0])
    except Exception:  # no table yet: the copy is still migrating the target
        return 0


def _kill_half_way(source: Path, target: Target) -> None:
    """Run `orchestrator copy` in a process of its own and SIGKILL it once some of the
    agent_logs are in (mid-table: they take several chunks)."""
    import signal
    import subprocess
    import sys

    copying = subprocess.Popen(
        [sys.executable, "-c", COPY, "copy", str(source), str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _logs_in(target) == 0:
            assert copying.poll() is None, "the copy ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        copying.send_signal(signal.SIGKILL)
        assert copying.wait() == -signal.SIGKILL
    finally:
        copying.kill()
        copying.wait()


def _assert_same_store(expected: Target, found: Target) -> None:
    for table in (t.name for t in (*TABLES, *SUMMARIES)):
        _assert_same_rows(_table(expected, table), _table(found, table), table)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_first_copy_killed_half_way_is_finished_by_the_next_as_if_never_killed(
    big_source: Path, new_db_target: Callable[[], Target]
) -> None:
    reference, target = new_db_target(), new_db_target()
    assert copy_database(big_source, reference).fresh
    _kill_half_way(big_source, target)
    total = rows(big_source, "SELECT count(*) FROM agent_logs")[0][0]
    assert 0 < _logs_in(target) < total, "killed before or after the agent_logs"
    assert rows(target, "SELECT count(*) FROM copy_progress") == [(1,)]
    result = CliRunner().invoke(cli, ["copy", str(big_source), str(target)])
    assert result.exit_code == 0, result.output
    assert "finished the copy interrupted before" in result.output
    _assert_same_store(reference, target)
    # the run totals and the daily summaries against the raw rows, independently
    assert rows(target, "SELECT count(*) FROM copy_progress") == [(0,)]
    ((prompts, cost),) = rows(big_source, "SELECT count(*), sum(cost_usd) FROM prompts")
    for sql in (
        "SELECT sum(prompt_count), sum(total_cost_usd) FROM agents",
        "SELECT sum(prompts), sum(cost_usd) FROM usage_daily",
    ):
        ((count, total),) = rows(target, sql)
        assert count == prompts and math.isclose(total, cost, rel_tol=1e-9), sql
    again = copy_database(big_source, target)
    assert (again.inserted, again.updated, again.resumed) == (0, 0, False)


@pytest.fixture
def own_server() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


async def _adw_run(url: str) -> tuple[str, float]:
    """What an ADW writes into the target between the two copies: one run, 3 prompts."""
    async with DatabaseManager(url) as db:
        workflow = await db.create_orchestrator_agent("written-meanwhile")
        run = await db.create_agent(workflow, session_id="meanwhile-session")
        for index in range(3):
            prompt = await db.create_prompt(run, f"meanwhile {index}")
            await db.complete_prompt(
                prompt, "ok", tokens_input=100, tokens_output=10, model="claude-haiku-4-5"
            )
        await db.log_agent_event(run, "event", "written meanwhile")
        await db.update_agent_status(run, "completed")
    ((cost,),) = rows(url, "SELECT sum(cost_usd) FROM prompts WHERE agent_id = ?", (run,))
    return run, cost


def test_a_first_copy_whose_server_stops_half_way_is_finished_once_it_is_back(
    big_source: Path, own_server: PostgresCluster
) -> None:
    import subprocess
    import sys

    target = own_server.url
    copying = subprocess.Popen(
        [sys.executable, "-c", COPY, "copy", str(big_source), target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _logs_in(target) == 0:
            assert copying.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        own_server.stop()
        _, errors = copying.communicate(timeout=60)
    finally:
        copying.kill()
        copying.wait()
    assert copying.returncode == 1
    (line,) = errors.splitlines()[-1:]
    assert line.startswith(f"Error: {big_source} -> {target}: ") and "run the same copy" in line
    assert "Traceback" not in errors
    own_server.start()
    total = rows(big_source, "SELECT count(*) FROM agent_logs")[0][0]
    assert 0 < _logs_in(target) < total, "stopped before or after the agent_logs"
    run, cost = asyncio.run(_adw_run(target))

    result = CliRunner().invoke(cli, ["copy", str(big_source), target])
    assert result.exit_code == 0, result.output
    assert "finished the copy interrupted before" in result.output
    # Every row of the source as the source has it (an uninterrupted copy of it gives the
    # source's rows: test_round_trip_...), and the ADW's run kept, with its own totals.
    for table in TABLES:
        spec = next(t for t in TABLES if t.name == table.name)
        found = _table(target, table.name)
        key = [[c[1] for c in _sqlite_columns(table.name)].index(k) for k in spec.key]
        source_keys = {tuple(str(r[i]) for i in key) for r in _table(big_source, table.name)}
        mine = [r for r in found if tuple(str(r[i]) for i in key) in source_keys]
        _assert_same_rows(_table(big_source, table.name), mine, table.name)
    assert rows(target, "SELECT prompt_count, total_cost_usd FROM agents WHERE id = ?", (run,)) == [
        (3, pytest.approx(cost))
    ]
    assert rows(target, "SELECT count(*) FROM agent_logs WHERE agent_id = ?", (run,)) == [(1,)]
    ((prompts, spent),) = rows(big_source, "SELECT count(*), sum(cost_usd) FROM prompts")
    ((count, total),) = rows(target, "SELECT sum(prompt_count), sum(total_cost_usd) FROM agents")
    assert count == prompts + 3 and math.isclose(total, spent + cost, rel_tol=1e-9)
    assert rows(target, "SELECT count(*) FROM copy_progress") == [(0,)]


def test_every_table_of_the_schema_is_copied(empty_db: Path) -> None:
    """A table added by a migration and left out of copy's lists would be lost by every
    copy, backup and served snapshot of the store."""
    from orchestrator.commands.copy import PROGRESS, WATERMARKS

    conn = sqlite3.connect(empty_db)
    try:
        names = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        search = {
            n
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'"
            )
        }
    finally:
        conn.close()
    shadows = {n for n in names if any(n.startswith(f"{s}_") for s in search)}
    copied = {t.name for t in (*TABLES, *SUMMARIES, PROGRESS, WATERMARKS)}
    fixed = {"_sqlite_migrations", "duration_buckets"}  # written by the migrations alone
    assert names - search - shadows - fixed == copied


#: Budgets whose keys sort differently by collation ("B" and "b", "été") and one holding
#: a line break (the text SQLite joins its keys with: read one by one there instead).
_BUDGETS = [
    ("model", "B", 1.0, 2.0),
    ("model", "b", 7.0, None),
    ("model", "été", None, 3.0),
    ("model", "a\nb", 4.0, 1.0),
    ("session", "z", 0.5, 0.5),
    ("workflow", "Zeta", 2.25, 10.0),
    ("workflow", "plan_build", 1.5, None),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_key_range_is_counted_summed_and_digested_where_its_rows_are(
    new_db_target: Callable[[], Target],
) -> None:
    target = new_db_target()

    def expected(chosen: list[tuple[Any, ...]]) -> tuple[int, dict[str, float], bytes]:
        keys = sorted(f"{scope}\x1f{name}" for scope, name, _, _ in chosen)
        digest = hashlib.sha256("\n".join(keys).encode()).digest()
        sums = {
            "daily_usd": math.fsum(row[2] or 0 for row in chosen),
            "monthly_usd": math.fsum(row[3] or 0 for row in chosen),
        }
        return len(chosen), sums, digest

    async def ranges() -> list[tuple[int, dict[str, float], bytes]]:
        store = backend_for(target)
        await store.open()
        try:
            async with store.transaction():
                for scope, name, daily, monthly in _BUDGETS:
                    await store.execute(
                        "INSERT INTO budgets (scope, name, daily_usd, monthly_usd, updated_at) "
                        "VALUES (?, ?, ?, ?, '2026-11-01')",
                        (scope, name, daily, monthly),
                    )
            order = (
                "SELECT scope, name FROM budgets WHERE scope <= ? "
                "ORDER BY scope DESC, name DESC LIMIT 1"
            )
            last_model = tuple((await store.fetchone(order, ("model",)) or {}).values())
            last = tuple((await store.fetchone(order, ("workflow",)) or {}).values())
            found = []
            key, numeric = ("scope", "name"), ["daily_usd", "monthly_usd"]
            for after, upto in ((None, last), (None, last_model), (last_model, last)):
                got = await store.key_range("budgets", key, after, upto, numeric)
                found.append((got.rows, got.sums, got.digest))
            return found
        finally:
            await store.close()

    whole, models, others = asyncio.run(ranges())
    for got, chosen in (
        (whole, _BUDGETS),
        (models, [row for row in _BUDGETS if row[0] == "model"]),
        (others, [row for row in _BUDGETS if row[0] != "model"]),
    ):
        count, sums, digest = expected(chosen)
        assert got[0] == count
        assert got[1] == pytest.approx(sums, rel=1e-12)
        assert got[2] == digest


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_verification_by_ranges_compares_key_by_key_where_the_target_holds_more(
    source: Path, new_db_target: Callable[[], Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small ranges, so the demo's tables span many, some matched whole and some not.
    monkeypatch.setattr(copy_module, "VERIFY_CHUNK", 300)
    monkeypatch.setattr(copy_module, "CHUNK", 70)
    target = new_db_target()
    first = copy_database(source, target)
    assert not first.problems and not first.holds_more
    logs = rows(source, "SELECT id, agent_id FROM agent_logs ORDER BY id")
    assert len(logs) > 10 * 300
    # A row of the target's own amid a range of the source's (an id extended sorts right
    # after it): that range is compared key by key, the last one whole.
    middle, run = logs[5 * 300 + 150]
    execute(
        target,
        (
            "INSERT INTO agent_logs (id, agent_id, log_type, message) VALUES (?, ?, 'info', 'own')",
            (f"{middle}0", run),
        ),
    )
    again = copy_database(source, target)
    assert again.holds_more and not again.problems
    result = next(t for t in again.tables if t.name == "agent_logs")
    assert result.source_rows == result.target_rows == len(logs)
    assert result.source_digest == result.target_digest
    # A difference is found whether its range is compared whole or key by key.
    for where in (middle, logs[-1][0]):
        (before,) = rows(target, "SELECT duration_ms FROM agent_logs WHERE id = ?", (where,))[0]
        change = "UPDATE agent_logs SET duration_ms = ? WHERE id = ?"
        execute(target, (change, ((before or 0) + 12345.5, where)))
        with pytest.raises(CopyMismatch, match=r"agent_logs: sum\(duration_ms\)"):
            copy_database(source, target)
        execute(target, (change, (before, where)))
        assert not copy_database(source, target).problems


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_first_copy_takes_the_runs_totals_as_the_source_has_them_on_either_engine(
    source: Path, new_db_target: Callable[[], Target]
) -> None:
    # A run whose totals are not its prompts' sums: copied without the summaries'
    # triggers, they arrive as they are (with them, recomputed and reported as differing).
    run, cost = rows(source, "SELECT id, total_cost_usd FROM agents ORDER BY id LIMIT 1")[0]
    execute(source, ("UPDATE agents SET total_cost_usd = ? WHERE id = ?", (cost + 99.5, run)))
    target = new_db_target()
    result = copy_database(source, target)
    assert result.fresh and not result.problems
    assert rows(target, "SELECT total_cost_usd FROM agents WHERE id = ?", (run,))[0][0] == (
        pytest.approx(cost + 99.5)
    )
    for table in ("usage_daily", "runs_daily", "step_histogram_daily", "sessions"):
        _assert_same_rows(_table(source, table), _table(target, table), table)
    # The triggers are back: a prompt written now adds to its run's totals as it should.
    before = rows(target, "SELECT prompt_count FROM agents WHERE id = ?", (run,))[0][0]
    execute(
        target,
        (
            "INSERT INTO prompts (id, agent_id, content) VALUES (?, ?, 'one more')",
            ("ffffffff-0000-7000-8000-000000000001", run),
        ),
    )
    assert rows(target, "SELECT prompt_count FROM agents WHERE id = ?", (run,)) == [(before + 1,)]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_copy_failing_while_its_next_page_is_read_raises_its_own_error(
    source: Path, new_db_target: Callable[[], Target], tmp_path: Path
) -> None:
    # The target refuses a row of the first page of logs while the source's next page is
    # being read (read ahead): the target's error is what the caller sees, and the
    # source's connection is closed once that read is over (none left on the server).
    server = new_db_target()
    copy_database(source, server)
    assert rows(server, "SELECT count(*) FROM agent_logs")[0][0] > 2 * copy_module.CHUNK
    target = tmp_path / "refusing.db"
    sqlite_store.connect(target).close()  # migrated
    execute(target, "CREATE UNIQUE INDEX one_log_per_run ON agent_logs (agent_id)")
    with pytest.raises(sqlite3.IntegrityError, match=r"agent_logs\.agent_id"):
        copy_database(server, target)
    left = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert rows(server, left) == [(0,)]
