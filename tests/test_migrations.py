"""The schema: created from an empty file, idempotent, concurrent-safe, printable."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from orchestrator import sqlite as backend
from orchestrator.cli import cli
from orchestrator.migrations import migrations

#: The contract: every table of a database migrated from an empty file, with each
#: column's declared type. ADWs, reports, notebooks and Datasette read these names, so a
#: change here must be deliberate (a new migration, and this dict updated with it).
SCHEMA: dict[str, dict[str, str]] = {
    # The seed's five tables, with the columns cost tracking, steps and run totals added.
    "orchestrator_agents": {
        "id": "TEXT",
        "name": "TEXT",
        "description": "TEXT",
        "status": "TEXT",
        "created_at": "TEXT",
        "updated_at": "TEXT",
    },
    "agents": {
        "id": "TEXT",
        "orchestrator_agent_id": "TEXT",
        "session_id": "TEXT",
        "status": "TEXT",
        "created_at": "TEXT",
        "started_at": "TEXT",
        "completed_at": "TEXT",
        # beyond the seed:
        "name": "TEXT",
        "error": "TEXT",
        "parent_agent_id": "TEXT",
        "duration_ms": "REAL",
        "prompt_count": "INTEGER",
        "total_tokens_input": "INTEGER",
        "total_tokens_output": "INTEGER",
        "total_tokens_cache_read": "INTEGER",
        "total_tokens_cache_write": "INTEGER",
        "total_cost_usd": "REAL",
        "unpriced_prompt_count": "INTEGER",
    },
    "prompts": {
        "id": "TEXT",
        "agent_id": "TEXT",
        "content": "TEXT",
        "response": "TEXT",
        "status": "TEXT",
        "tokens_input": "INTEGER",
        "tokens_output": "INTEGER",
        "cost_usd": "REAL",
        "created_at": "TEXT",
        "completed_at": "TEXT",
        # beyond the seed:
        "model": "TEXT",
        "tokens_cache_read": "INTEGER",
        "tokens_cache_write": "INTEGER",
        "tokens_cache_write_1h": "INTEGER",
        "cost_source": "TEXT",
        "cost_computed_usd": "REAL",
        "priced_with": "TEXT",
        "duration_ms": "REAL",
        "error": "TEXT",
        "cache_savings_usd": "REAL",
    },
    "agent_logs": {
        "id": "TEXT",
        "agent_id": "TEXT",
        "log_type": "TEXT",
        "message": "TEXT",
        "metadata": "TEXT",
        "created_at": "TEXT",
        # beyond the seed:
        "step": "TEXT",
        "duration_ms": "REAL",
    },
    "system_logs": {
        "id": "TEXT",
        "log_level": "TEXT",
        "message": "TEXT",
        "source": "TEXT",
        "metadata": "TEXT",
        "created_at": "TEXT",
    },
    # Summary tables, kept by triggers, read by the reports and the dashboard.
    "usage_daily": {
        "day": "TEXT",
        "orchestrator_agent_id": "TEXT",
        "model": "TEXT",
        "prompts": "INTEGER",
        "failed_prompts": "INTEGER",
        "tokens_input": "INTEGER",
        "tokens_output": "INTEGER",
        "tokens_cache_read": "INTEGER",
        "tokens_cache_write": "INTEGER",
        "tokens_cache_write_1h": "INTEGER",
        "cost_usd": "REAL",
        "unpriced_prompts": "INTEGER",
        "cache_savings_usd": "REAL",
    },
    "runs_daily": {
        "day": "TEXT",
        "orchestrator_agent_id": "TEXT",
        "runs": "INTEGER",
        "completed": "INTEGER",
        "failed": "INTEGER",
        "cancelled": "INTEGER",
    },
    "duration_buckets": {"bucket_ms": "REAL", "width_ms": "REAL"},
    "step_histogram_daily": {
        "day": "TEXT",
        "orchestrator_agent_id": "TEXT",
        "step": "TEXT",
        "bucket_ms": "REAL",
        "width_ms": "REAL",
        "steps": "INTEGER",
        "sum_ms": "REAL",
        "max_ms": "REAL",
    },
    "sessions": {
        "session_id": "TEXT",
        "runs": "INTEGER",
        "failed_runs": "INTEGER",
        "prompts": "INTEGER",
        "tokens_input": "INTEGER",
        "tokens_output": "INTEGER",
        "tokens_cache_read": "INTEGER",
        "tokens_cache_write": "INTEGER",
        "cost_usd": "REAL",
        "unpriced_prompts": "INTEGER",
        "first_run_at": "TEXT",
        "last_completed_at": "TEXT",
    },
    # Claude Code imports.
    "prompt_responses": {
        "prompt_id": "TEXT",
        "message_id": "TEXT",
        "request_id": "TEXT",
        "tokens_output_final": "INTEGER",
    },
    "claude_code_runs": {
        "agent_id": "TEXT",
        "reported_cost_usd": "REAL",
        "result_subtype": "TEXT",
        "is_error": "INTEGER",
        "num_turns": "INTEGER",
        "duration_ms": "REAL",
        "duration_api_ms": "REAL",
    },
    "agent_model_usage": {
        "agent_id": "TEXT",
        "model": "TEXT",
        "tokens_input": "INTEGER",
        "tokens_output": "INTEGER",
        "tokens_cache_read": "INTEGER",
        "tokens_cache_write": "INTEGER",
        "cost_usd": "REAL",
        "cost_computed_usd": "REAL",
        "web_search_requests": "INTEGER",
        "created_at": "TEXT",
    },
    "claude_code_files": {
        "path": "TEXT",
        "agent_id": "TEXT",
        "kind": "TEXT",
        "size": "INTEGER",
        "byte_offset": "INTEGER",
        "lines": "INTEGER",
        "imported_at": "TEXT",
    },
}
#: Full-text indexes (FTS5, no declared types) and the columns they index.
FTS = {
    "prompts_fts": {"content", "response"},
    "agent_logs_fts": {"message"},
    "system_logs_fts": {"message"},
}


def columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Each column of ``table`` and its declared type, as SQLite reports them."""
    return {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_empty_file_gets_exactly_the_contracted_tables_and_columns(db_path: Path) -> None:
    conn = backend.connect(db_path)
    tables = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name != "_sqlite_migrations" and not any(name.startswith(f"{t}_") for t in FTS)
    }  # sqlite-utils' bookkeeping and FTS5's own shadow tables are not ours
    assert tables == set(SCHEMA) | set(FTS)
    for table, expected in SCHEMA.items():
        assert columns(conn, table) == expected, table
    for table, indexed in FTS.items():
        assert set(columns(conn, table)) == indexed, table


def test_empty_file_has_wal_foreign_keys_and_unique_names(db_path: Path) -> None:
    conn = backend.connect(db_path)
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
    assert columns(conn, "prompts") == SCHEMA["prompts"]


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


ROOT = Path(__file__).resolve().parents[1]
SETUP_DATABASE = ROOT / "scripts" / "setup_database.sh"


def test_setup_script_never_deletes_without_force(db_path: Path) -> None:
    script = SETUP_DATABASE
    # This checkout's package, whichever orchestrator command the script finds.
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
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


def _fake_checkout(root: Path, *, venv: bool) -> Path:
    """A copy of the script in ``root/scripts``, with a stub .venv/bin/orchestrator if asked."""
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts" / "setup_database.sh"
    shutil.copy2(SETUP_DATABASE, script)
    if venv:
        _stub(root / ".venv" / "bin", "venv")
    return script


def _stub(folder: Path, label: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stub = folder / "orchestrator"
    stub.write_text(f'#!/bin/sh\necho "{label} $*"\n')
    stub.chmod(0o755)


@pytest.mark.parametrize(
    ("venv", "on_path", "expected"),
    [
        (True, True, "venv init db --force"),
        (False, True, "path init db --force"),
        (False, False, None),
    ],
    ids=["repo-venv-first", "path-without-venv", "neither"],
)
def test_setup_script_finds_the_cli_without_venv_on_path(
    tmp_path: Path, venv: bool, on_path: bool, expected: str | None
) -> None:
    script = _fake_checkout(tmp_path / "clone", venv=venv)
    if on_path:
        _stub(tmp_path / "bin", "path")
    path = (f"{tmp_path / 'bin'}:" if on_path else "") + "/usr/bin:/bin"
    run = subprocess.run(
        ["bash", str(script), "db", "--force"],
        env={"PATH": path},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if expected is None:
        assert run.returncode == 127 and "scripts/setup.sh" in run.stderr
    else:
        assert run.returncode == 0 and run.stdout.strip() == expected, run.stderr
