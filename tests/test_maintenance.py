"""Backups and init: a consistent, verified copy of a live file; create or upgrade in place."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from orchestrator import sqlite as backend
from orchestrator.maintenance import backup, init_database
from orchestrator.migrations import migrations


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
