"""The schema: created from an empty file, idempotent, concurrent-safe, printable."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from orchestrator import sqlite as backend
from orchestrator.cli import cli
from orchestrator.migrations import migrations

SEED_COLUMNS = {
    "orchestrator_agents": {"id", "name", "description", "status", "created_at", "updated_at"},
    "agents": {
        "id",
        "orchestrator_agent_id",
        "session_id",
        "status",
        "created_at",
        "started_at",
        "completed_at",
    },
    "prompts": {
        "id",
        "agent_id",
        "content",
        "response",
        "status",
        "tokens_input",
        "tokens_output",
        "cost_usd",
        "created_at",
        "completed_at",
    },
    "agent_logs": {"id", "agent_id", "log_type", "message", "metadata", "created_at"},
    "system_logs": {"id", "log_level", "message", "source", "metadata", "created_at"},
}
COST_COLUMNS = {
    "prompts": {
        "model",
        "tokens_cache_read",
        "tokens_cache_write",
        "duration_ms",
        "error",
        "cost_source",
        "cost_computed_usd",
    },
    "agents": {
        "name",
        "error",
        "prompt_count",
        "total_tokens_input",
        "total_tokens_output",
        "total_tokens_cache_read",
        "total_tokens_cache_write",
        "total_cost_usd",
        "unpriced_prompt_count",
    },
}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_empty_file_gets_every_seed_and_cost_column(db_path: Path) -> None:
    conn = backend.connect(db_path)
    for table, expected in SEED_COLUMNS.items():
        assert expected <= columns(conn, table), table
    for table, expected in COST_COLUMNS.items():
        assert expected <= columns(conn, table), table
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    unique = [row for row in conn.execute("PRAGMA index_list(orchestrator_agents)") if row[2]]
    assert any(
        "name" in [c[2] for c in conn.execute(f"PRAGMA index_info({row[1]})")] for row in unique
    )
    fks = {(row[2], row[3]) for row in conn.execute("PRAGMA foreign_key_list(prompts)")}
    assert ("agents", "agent_id") in fks


def test_reopen_is_idempotent(db_path: Path) -> None:
    backend.connect(db_path).close()
    conn = backend.connect(db_path)
    applied = migrations.applied(Database(conn))
    assert [m.name for m in applied] == [m.name for m in migrations._migrations]
    assert migrations.pending(Database(conn)) == []


def test_defaults_use_the_one_timestamp_format(db_path: Path) -> None:
    conn = backend.connect(db_path)
    conn.execute("INSERT INTO system_logs (id, log_level, message) VALUES ('x', 'INFO', 'm')")
    (created,) = conn.execute("SELECT created_at FROM system_logs").fetchone()
    # 2026-11-26T07:58:21.123Z: the same shape as orchestrator.ids.utc_now()
    from orchestrator.ids import utc_now

    assert len(created) == len(utc_now()) == 24
    assert created[10] == "T" and created.endswith("Z") and created[19] == "."


def _open(path: str) -> None:
    backend.connect(path).close()


def test_processes_opening_a_new_file_at_once_migrate_it_once(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(str(db_path),)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    conn = backend.connect(db_path)
    names = [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations")]
    assert sorted(names) == sorted(set(names)) == sorted(m.name for m in migrations._migrations)


def test_schema_command_prints_loadable_sql(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert "CREATE TABLE prompts" in result.output
    assert "tokens_cache_read" in result.output
    conn = sqlite3.connect(tmp_path / "from-schema.db")
    conn.executescript(result.output)  # the printed schema is valid SQL
    assert SEED_COLUMNS["prompts"] <= columns(conn, "prompts")


def test_init_creates_then_upgrades_and_force_backs_up(db_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["init", str(db_path)], catch_exceptions=False)
    assert first.exit_code == 0 and "Created" in first.output
    conn = backend.connect(db_path)
    conn.execute("INSERT INTO system_logs (id, log_level, message) VALUES ('keep', 'INFO', 'm')")
    conn.close()
    again = runner.invoke(cli, ["init", str(db_path)], catch_exceptions=False)
    assert "Upgraded" in again.output
    conn = backend.connect(db_path)
    assert conn.execute("SELECT count(*) FROM system_logs").fetchone()[0] == 1
    conn.close()
    forced = runner.invoke(cli, ["init", str(db_path), "--force"], catch_exceptions=False)
    assert forced.exit_code == 0
    backups = list(db_path.parent.glob("orchestrator.db.*.bak"))
    assert len(backups) == 1
    assert sqlite3.connect(backups[0]).execute("SELECT id FROM system_logs").fetchall() == [
        ("keep",)
    ]
    assert backend.connect(db_path).execute("SELECT count(*) FROM system_logs").fetchone()[0] == 0


def test_setup_script_never_deletes_without_force(db_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "setup_database.sh"
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    run = subprocess.run(
        ["bash", str(script), str(db_path)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    conn = backend.connect(db_path)
    conn.execute("INSERT INTO system_logs (id, log_level, message) VALUES ('keep', 'INFO', 'm')")
    conn.close()
    run = subprocess.run(
        ["bash", str(script), str(db_path)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert backend.connect(db_path).execute("SELECT count(*) FROM system_logs").fetchone()[0] == 1
    run = subprocess.run(
        ["bash", str(script), str(db_path), "--force"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert list(db_path.parent.glob("orchestrator.db.*.bak"))
    assert backend.connect(db_path).execute("SELECT count(*) FROM system_logs").fetchone()[0] == 0


def test_docs_schema_is_the_generated_one() -> None:
    """docs/schema.sql is generated (`orchestrator schema > docs/schema.sql`), never typed."""
    committed = (Path(__file__).resolve().parents[1] / "docs" / "schema.sql").read_text()
    assert committed == backend.schema_sql(), "regenerate: orchestrator schema > docs/schema.sql"
