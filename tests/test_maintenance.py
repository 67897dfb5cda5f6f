"""Backups and init: a consistent, verified copy of a live file; create or upgrade in place."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from backends import Target, is_postgres, rows
from click.testing import CliRunner

from orchestrator.cli import cli as cli_group
from orchestrator.commands.maintenance import back_up, backup, init_database, prune
from orchestrator.store import sqlite as backend
from orchestrator.store.migrations import migrations


def _log(conn: sqlite3.Connection, ident: str) -> None:
    conn.execute(
        "INSERT INTO system_logs (id, log_level, message) VALUES (?, 'INFO', 'm')", (ident,)
    )


def _ids(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM system_logs ORDER BY id")]
    finally:
        conn.close()


def test_backup_of_a_live_file_holds_what_is_only_in_the_wal(db_path: Path) -> None:
    writer = backend.connect(db_path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep the rows in the WAL only
    for ident in ("a", "b"):
        _log(writer, ident)
    assert Path(f"{db_path}-wal").stat().st_size > 0
    copy = backup(db_path)  # while the writer's connection is still open
    writer.close()
    assert re.fullmatch(r"orchestrator\.db\.\d{8}T\d{9}Z\.bak", copy.name)
    assert copy.parent == db_path.parent
    assert _ids(copy) == ["a", "b"] == _ids(db_path)
    assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_backup_to_a_chosen_file_never_overwrites(db_path: Path, tmp_path: Path) -> None:
    conn = backend.connect(db_path)
    _log(conn, "x")
    conn.close()
    dest = tmp_path / "copies" / "x.db"
    dest.parent.mkdir()
    assert backup(db_path, dest) == dest and _ids(dest) == ["x"]
    with pytest.raises(FileExistsError):
        backup(db_path, dest)
    with pytest.raises(FileNotFoundError):
        backup(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_a_damaged_database_gives_no_backup(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    conn = sqlite3.connect(damaged)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("CREATE INDEX t_x ON t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(str(i) * 20,) for i in range(5000)])
    conn.commit()
    conn.close()
    data = bytearray(damaged.read_bytes())
    for page in range(20, 30):  # scribble over the headers of some b-tree pages
        data[page * 4096 + 3 : page * 4096 + 8] = b"\x7f" * 5
    damaged.write_bytes(bytes(data))
    with pytest.raises(sqlite3.DatabaseError, match="integrity check"):
        backup(damaged, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()
    with pytest.raises(sqlite3.DatabaseError):
        init_database(damaged, force=True)
    assert damaged.read_bytes() == bytes(data)  # no verified backup: nothing deleted


def test_init_creates_upgrades_then_starts_afresh_after_a_backup(db_path: Path) -> None:
    declared = [m.name for m in migrations._migrations]
    created = init_database(db_path)
    assert created.created and created.backup is None
    assert created.migrations == declared and created.latest == declared[-1]
    conn = backend.connect(db_path)
    _log(conn, "keep")
    conn.close()
    upgraded = init_database(db_path)
    assert not upgraded.created and _ids(db_path) == ["keep"]
    fresh = init_database(db_path, force=True)
    assert fresh.created and fresh.backup is not None
    assert _ids(fresh.backup) == ["keep"] and _ids(db_path) == []


ROOT = Path(__file__).resolve().parents[1]

#: An ADW: records prompts through DatabaseManager and prints each one's number once the
#: call has returned (acknowledged: committed), then waits for a line on stdin before
#: recording as many again and closing.
WRITER = """
import asyncio, sys
from orchestrator import DatabaseManager

async def main(path, count):
    async with DatabaseManager(path) as db:
        async with db.agent_run("plan_build", session_id="adw-live") as run:
            for i in range(count):
                await run.prompt(f"prompt {i}", "ok", model="claude-sonnet-4-5", cost_usd=0.01,
                                 usage={"input_tokens": 1, "output_tokens": 1})
                print(i, flush=True)
            sys.stdin.readline()
            for i in range(count, 2 * count):
                await run.prompt(f"prompt {i}", "ok", model="claude-sonnet-4-5", cost_usd=0.01,
                                 usage={"input_tokens": 1, "output_tokens": 1})
                print(i, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _prompts(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM prompts").fetchone()[0])
    finally:
        conn.close()


def test_force_is_refused_while_a_writer_has_the_file_open(db_path: Path, tmp_path: Path) -> None:
    init_database(db_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path), "25"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        acknowledged = [writer.stdout.readline() for _ in range(25)]
        assert acknowledged[-1] == "24\n"  # the writer is idle, its connection open

        with pytest.raises(sqlite3.OperationalError, match="open in another process") as refused:
            init_database(db_path, force=True)
        assert isinstance(refused.value, backend.DatabaseInUse)
        cli = CliRunner().invoke(cli_group, ["init", str(db_path), "--force"])
        assert cli.exit_code == 1 and cli.output.count("\n") == 1
        assert cli.output == f"Error: {refused.value}\n"
        # `scripts/setup_database.sh --force` from a fresh clone (no .venv there): the same.
        clone = tmp_path / "clone"
        (clone / "scripts").mkdir(parents=True)
        shutil.copy2(ROOT / "scripts" / "setup_database.sh", clone / "scripts")
        script = subprocess.run(
            ["bash", str(clone / "scripts" / "setup_database.sh"), str(db_path), "--force"],
            env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        assert script.returncode == 1 and "open in another process" in script.stderr
        assert not list(db_path.parent.glob("*.bak"))  # nothing copied, nothing replaced

        writer.stdin.write("go on\n")
        writer.stdin.close()
        rest = writer.stdout.read().split()
        assert writer.wait(60) == 0 and rest[-1] == "49"
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert _prompts(db_path) == 50  # every acknowledged prompt is in the file

    fresh = init_database(db_path, force=True)  # the writer has gone: allowed
    assert fresh.created and fresh.backup is not None
    assert _prompts(fresh.backup) == 50 and _prompts(db_path) == 0


def test_backup_and_init_force_keep_a_verified_file_on_either_backend(
    db_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    made = runner.invoke(cli_group, ["demo", "--prompts", "150", "--days", "3", str(db_target)])
    assert made.exit_code == 0, made.output
    tables = ("orchestrator_agents", "agents", "prompts", "agent_logs", "usage_daily")
    before = {table: rows(db_target, f"SELECT count(*) FROM {table}")[0][0] for table in tables}
    assert before["prompts"] > 100
    dest = tmp_path / "copy.db"
    saved = runner.invoke(cli_group, ["backup", "--db", str(db_target), str(dest)])
    assert saved.exit_code == 0, saved.output
    assert {table: rows(dest, f"SELECT count(*) FROM {table}")[0][0] for table in tables} == before
    again = runner.invoke(cli_group, ["backup", "--db", str(db_target), str(dest)])
    assert again.exit_code == 1 and "exists" in again.stderr
    monkeypatch.chdir(tmp_path)  # where a server's store is backed up by init --force
    fresh = runner.invoke(cli_group, ["init", "--force", str(db_target)])
    assert fresh.exit_code == 0, fresh.output
    backup_file = Path(re.findall(r"Backed up \S+ to (\S+)", fresh.output)[0])
    assert {
        table: rows(backup_file, f"SELECT count(*) FROM {table}")[0][0] for table in tables
    } == (before)
    assert all(rows(db_target, f"SELECT count(*) FROM {table}") == [(0,)] for table in tables)


def test_backup_prune_and_init_force_from_python_on_either_engine(
    tmp_path: Path, db_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One function each for both engines (what differs is asked of the backend): a backup
    holds every run, prune deletes the finished runs before the day, init --force backs the
    store up and empties it."""
    import asyncio
    from datetime import datetime, timezone

    from orchestrator.commands.demo import create_demo_database

    monkeypatch.chdir(tmp_path)  # a server's backup is written here by default
    db = db_target
    end = datetime(2026, 11, 25, tzinfo=timezone.utc)
    asyncio.run(create_demo_database(db, prompts=120, days=20, seed=5, end=end))
    ids = rows(db, "SELECT id FROM agents ORDER BY id")
    assert ids

    saved = back_up(db, tmp_path / "saved.db")
    assert rows(saved.path, "SELECT id FROM agents ORDER BY id") == ids
    copied = "verified: counts, sums and ids match; " if is_postgres(db) else ""
    assert saved.checked == f"{copied}integrity check ok"

    finished = "status IN ('completed', 'failed', 'cancelled') AND created_at < '2026-11-15'"
    (old,) = rows(db, f"SELECT count(*) FROM agents WHERE {finished}")[0]
    assert old > 0
    pruned = prune(db, "2026-11-15")
    assert pruned.runs == old
    assert rows(db, f"SELECT count(*) FROM agents WHERE {finished}") == [(0,)]
    if is_postgres(db):
        assert pruned.freed_bytes is None  # a server's free space is not a file's
    else:
        assert pruned.freed_bytes is not None and pruned.freed_bytes > 0
    kept = rows(db, "SELECT id FROM agents ORDER BY id")

    result = init_database(db, force=True)
    assert result.backup is not None
    assert rows(result.backup, "SELECT id FROM agents ORDER BY id") == kept
    assert rows(db, "SELECT count(*) FROM agents") == [(0,)]
    assert (result.created, result.emptied) == ((None, True) if is_postgres(db) else (True, False))
