"""A database on a read-only filesystem: read (reports), checked, never changed."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.commands.demo import create_demo_database
from orchestrator.store import sqlite as backend


def _run(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` as a process sees it on a read-only filesystem.

    As root (whom permissions do not stop): a read-only bind mount of it; else its write
    permission removed. Skips the test when neither can be had.
    """
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    view = folder.with_name(f"{folder.name}-read-only")
    view.mkdir()
    if not (
        _run("mount", "--bind", str(folder), str(view))
        and _run("mount", "-o", "remount,bind,ro", str(view))
    ):
        _run("umount", str(view))
        pytest.skip("no read-only bind mount here (needs CAP_SYS_ADMIN)")
    try:
        yield view
    finally:
        if not _run("umount", str(view)):
            _run("umount", "-l", str(view))


def _report(path: Path) -> list[dict[str, object]]:
    args = ["spend_by_orchestrator", "--db", str(path), "--format", "json"]
    result = CliRunner().invoke(
        cli, ["report", *args, "--start", "2000-01-01", "--end", "2100-01-01"]
    )
    assert result.exit_code == 0, result.output or repr(result.exception)
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder holding a demo database, closed cleanly (no -wal or -shm beside it)."""
    folder = tmp_path / "data"
    folder.mkdir()
    asyncio.run(create_demo_database(folder / "orchestrator.db", prompts=60, days=3))
    assert [p.name for p in folder.iterdir()] == ["orchestrator.db"]
    return folder


def test_report_reads_a_database_it_cannot_write(folder: Path) -> None:
    expected = _report(folder / "orchestrator.db")
    backend.connect(folder / "orchestrator.db").close()  # the last to close removes -wal, -shm
    assert [p.name for p in folder.iterdir()] == ["orchestrator.db"]
    assert expected and sum(int(row["prompts"]) for row in expected) >= 60  # type: ignore[call-overload]
    with read_only(folder) as view:
        path = view / "orchestrator.db"
        assert _report(path) == expected  # immutable: not even a -shm can be made here
        assert not backend.is_writable(path)
        conn = backend.open_for_reading(path)
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM system_logs")
        finally:
            conn.close()
        assert sorted(p.name for p in view.iterdir()) == ["orchestrator.db"]


def test_a_live_database_is_read_with_what_its_wal_holds(folder: Path) -> None:
    writer = backend.connect(folder / "orchestrator.db")  # -wal and -shm exist meanwhile
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the new rows stay in the WAL
        writer.execute(
            "INSERT INTO system_logs (id, log_level, message) VALUES ('late', 'INFO', 'm')"
        )
        with read_only(folder) as view:
            conn = backend.open_for_reading(view / "orchestrator.db")
            try:
                late = conn.execute("SELECT count(*) FROM system_logs WHERE id = 'late'")
                assert late.fetchone()[0] == 1
            finally:
                conn.close()
    finally:
        writer.close()


def _change(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "error", "says"),
    [
        ("DROP TRIGGER prompts_usage_insert", "SchemaDrift", "missing prompts_usage_insert"),
        (
            "DELETE FROM _sqlite_migrations WHERE name = 'm100_claude_code'",
            "SchemaOutdated",
            "missing migration m100_claude_code",
        ),
        (
            "INSERT INTO _sqlite_migrations (migration_set, name) VALUES ('orchestrator', 'm999')",
            "SchemaTooNew",
            "unknown migration m999",
        ),
    ],
    ids=["drifted", "older", "newer"],
)
def test_a_read_only_database_is_checked_and_never_changed(
    folder: Path, sql: str, error: str, says: str
) -> None:
    path = folder / "orchestrator.db"
    _change(path, sql)
    before = path.read_bytes()
    with read_only(folder) as view:
        with pytest.raises(sqlite3.DatabaseError, match=says) as refused:
            backend.open_for_reading(view / "orchestrator.db")
        assert type(refused.value).__name__ == error
        assert str(refused.value).startswith(str(view / "orchestrator.db"))
    assert path.read_bytes() == before


def test_a_database_whose_path_holds_uri_characters_is_read(folder: Path) -> None:
    """Reading opens a ``file:`` URI: a path with ``%``, ``?``, ``#``, spaces and non-ASCII
    letters still names the file (and no other)."""
    odd = folder.parent / "a %41 ?x=1 #top é"
    odd.mkdir()
    (folder / "orchestrator.db").rename(odd / "orchestrator.db")
    decoded = odd.parent / "a A "  # where %41 decoded would point
    decoded.mkdir()
    conn = backend.open_for_reading(odd / "orchestrator.db")
    try:
        assert conn.execute("SELECT count(*) FROM prompts").fetchone()[0] >= 60
    finally:
        conn.close()
    assert not list(decoded.iterdir())


def test_budgets_are_listed_from_a_database_it_cannot_write(folder: Path) -> None:
    """``budget list`` reads through the backend opened read-only: on a read-only
    filesystem the spend is the prompts' and nothing is created beside the file."""
    from orchestrator.writer.budgets import set_budget, statuses, windows

    path = folder / "orchestrator.db"
    conn = sqlite3.connect(path)
    workflow, last = conn.execute(
        "SELECT o.name, max(p.created_at) FROM prompts p JOIN agents a ON a.id = p.agent_id "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id "
        "GROUP BY o.name ORDER BY max(p.created_at) DESC LIMIT 1"
    ).fetchone()
    now = datetime.fromisoformat(last.replace("Z", "+00:00"))  # the day of its last prompt
    today, first, *_ = windows(now)
    month, day = (
        conn.execute(
            "SELECT coalesce(sum(p.cost_usd), 0) FROM prompts p "
            "JOIN agents a ON a.id = p.agent_id "
            "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id "
            "WHERE o.name = ? AND substr(p.created_at, 1, 10) BETWEEN ? AND ?",
            (workflow, start, today),
        ).fetchone()[0]
        for start in (first, today)
    )
    conn.close()
    set_budget(path, "workflow", workflow, daily_usd=0.01, monthly_usd=1000)
    backend.connect(path).close()  # the last to close removes -wal, -shm
    assert day > 0
    with read_only(folder) as view:
        (found,) = statuses(view / "orchestrator.db", now)
        assert sorted(p.name for p in view.iterdir()) == ["orchestrator.db"]
    assert (found.budget.scope, found.budget.name) == ("workflow", workflow)
    assert found.spent_month == pytest.approx(month)
    assert found.spent_today == pytest.approx(day)
