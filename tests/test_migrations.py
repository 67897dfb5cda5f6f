"""The schema: created from an empty file, idempotent, concurrent-safe, printable."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database, Migrations

from orchestrator.cli import cli
from orchestrator.store import sqlite as backend
from orchestrator.store.migrations import migrations

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
        "effort": "TEXT",
        "thinking": "TEXT",
        "thinking_budget_tokens": "INTEGER",
        "max_tokens": "INTEGER",
    },
    "claude_code_runs": {
        "agent_id": "TEXT",
        "reported_cost_usd": "REAL",
        "result_subtype": "TEXT",
        "is_error": "INTEGER",
        "num_turns": "INTEGER",
        "duration_ms": "REAL",
        "duration_api_ms": "REAL",
        "total_duration_ms": "REAL",
        "tool_duration_ms": "REAL",
        "lines_added": "INTEGER",
        "lines_removed": "INTEGER",
        "has_unknown_model_cost": "INTEGER",
        "cwd": "TEXT",
        "git_branch": "TEXT",
        "is_git_repo": "INTEGER",
        "is_worktree": "INTEGER",
        "updated_at": "TEXT",
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
    "budgets": {
        "scope": "TEXT",
        "name": "TEXT",
        "daily_usd": "REAL",
        "monthly_usd": "REAL",
        "updated_at": "TEXT",
    },
    "budget_alerts": {
        "scope": "TEXT",
        "name": "TEXT",
        "period": "TEXT",
        "spent_usd": "REAL",
        "budget_usd": "REAL",
        "alerted_at": "TEXT",
    },
    "copy_progress": {
        "source": "TEXT",
        "location": "TEXT",
        "quiet": "INTEGER",
        "started_at": "TEXT",
    },
    "copy_watermarks": {
        "source": "TEXT",
        "table_name": "TEXT",
        "mark": "TEXT",
        "copied_at": "REAL",
    },
    # orchestrator collect (Claude Code's OpenTelemetry export):
    "otel_requests": {
        "request_id": "TEXT",
        "prompt_id": "TEXT",
        "otel_prompt_id": "TEXT",
        "reported_cost_usd": "REAL",
        "ttft_ms": "REAL",
        "query_source": "TEXT",
    },
    "otel_user_prompts": {
        "otel_prompt_id": "TEXT",
        "agent_id": "TEXT",
        "text": "TEXT",
        "created_at": "TEXT",
    },
    "agent_attributes": {"agent_id": "TEXT", "key": "TEXT", "value": "TEXT"},
    "otel_metrics_daily": {
        "day": "TEXT",
        "name": "TEXT",
        "attributes": "TEXT",
        "unit": "TEXT",
        "value": "REAL",
        "points": "INTEGER",
        "updated_at": "TEXT",
    },
    "otlp_exports": {
        "endpoint": "TEXT",
        "agent_id": "TEXT",
        "trace_id": "TEXT",
        "spans": "INTEGER",
        "exported_at": "TEXT",
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
    # 2026-11-26T07:58:21.123Z: the same shape as orchestrator.core.ids.utc_now()
    from orchestrator.core.ids import utc_now

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


def _logs(path: Path) -> int:
    """How many system logs ``path`` holds (the connection closed again: an open one
    keeps ``init --force`` out)."""
    conn = backend.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM system_logs").fetchone()[0])
    finally:
        conn.close()


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
    assert _logs(db_path) == 0


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
    assert _logs(db_path) == 1
    run = subprocess.run(
        ["bash", str(script), str(db_path), "--force"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert list(db_path.parent.glob("orchestrator.db.*.bak"))
    assert _logs(db_path) == 0


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


def test_setup_script_sets_up_a_fresh_clone_first(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    script = _fake_checkout(clone, venv=False)
    setup = clone / "scripts" / "setup.sh"  # a stand-in for creating .venv
    setup.write_text(
        f'#!/bin/sh\nmkdir -p "{clone}/.venv/bin"\n'
        f'printf \'#!/bin/sh\\necho "venv $*"\\n\' > "{clone}/.venv/bin/orchestrator"\n'
        f'chmod +x "{clone}/.venv/bin/orchestrator"\n'
    )
    setup.chmod(0o755)
    run = subprocess.run(
        ["bash", str(script), "db", "--force"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "venv init db --force" and "fresh clone" in run.stderr


# --- a new file gets the generated script, equal to running every migration ------------


def test_the_fresh_database_script_is_generated_from_the_migrations() -> None:
    from orchestrator.store import migrations as module

    committed = module.FRESH_SCRIPT.read_text(encoding="utf-8")
    assert committed == module.fresh_script(), "regenerate: python -m orchestrator.store.migrations"


def _everything(conn: sqlite3.Connection) -> dict[str, object]:
    """Every object's definition in creation order, and every table's rows (FTS5's shadow
    tables and the ledger included; the ledger's times apart)."""
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    ).fetchall()
    rows = {}
    for _, name, _, sql in objects:
        if sql is not None and sql.startswith("CREATE TABLE"):
            columns = "migration_set, name" if name == "_sqlite_migrations" else "*"
            rows[name] = sorted(conn.execute(f"SELECT {columns} FROM {name}"), key=repr)
    pragmas = {
        pragma: conn.execute(f"PRAGMA {pragma}").fetchall()
        for pragma in ("page_size", "auto_vacuum", "encoding", "application_id")
    }
    return {"objects": objects, "rows": rows, "pragmas": pragmas}


def test_a_new_file_gets_what_running_every_migration_gives(tmp_path: Path) -> None:
    migrated = sqlite3.connect(tmp_path / "migrated.db", isolation_level=None)
    migrations.apply(Database(migrated))  # sqlite-utils, migration by migration
    scripted = backend.connect(tmp_path / "scripted.db")
    assert _everything(scripted) == _everything(migrated)
    (applied_at,) = scripted.execute("SELECT applied_at FROM _sqlite_migrations").fetchone()
    (reference,) = migrated.execute("SELECT applied_at FROM _sqlite_migrations").fetchone()
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00"
    assert re.fullmatch(pattern, applied_at) and re.fullmatch(pattern, reference)
    # sqlite-utils finds every migration applied, and applies a later one alone.
    db = Database(scripted)
    assert migrations.pending(db) == []
    later = Migrations("orchestrator")
    for step in migrations._migrations:
        later(name=step.name)(step.fn)

    @later()
    def m999_later(db: Database) -> None:
        db.execute("CREATE TABLE later (id INTEGER)")

    later.apply(db)
    assert [m.name for m in later.applied(db)][-2:] == [
        migrations._migrations[-1].name,
        "m999_later",
    ]
    assert (
        scripted.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
        == len(migrations._migrations) + 1
    )


def test_a_stale_fresh_database_script_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.store import migrations as module

    stale = tmp_path / "stale.sql"  # a migration added and the script not regenerated
    script = module.FRESH_SCRIPT.read_text()
    # The script without its last migration's ledger row.
    stale.write_text(re.sub(r",\n\('orchestrator', '\w+'[^\n]*\);", ";", script))
    assert stale.read_text() != script
    monkeypatch.setattr(module, "FRESH_SCRIPT", stale)
    conn = backend.connect(tmp_path / "from-migrations.db")
    names = [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == [m.name for m in migrations._migrations]
    assert conn.execute("SELECT count(*) FROM copy_progress").fetchone()[0] == 0


# --- the schema is checked on open; init repairs it --------------------------------------


def _demo(path: Path) -> None:
    import asyncio

    from orchestrator.commands.demo import create_demo_database

    asyncio.run(create_demo_database(path, prompts=120, days=4, seed=3))


def _rows(conn: sqlite3.Connection, sql: str) -> list[dict[str, object]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _check_summaries_against_the_raw_rows(path: Path) -> None:
    """Every total the triggers keep equals the same sum computed here, in Python, from
    the base tables' rows."""
    conn = sqlite3.connect(path)
    agents = {a["id"]: a for a in _rows(conn, "SELECT * FROM agents")}
    prompts = _rows(conn, "SELECT * FROM prompts")
    steps = _rows(
        conn,
        "SELECT * FROM agent_logs WHERE log_type = 'step_end' AND step IS NOT NULL "
        "AND duration_ms IS NOT NULL",
    )
    token_columns = ["tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write"]

    per_run: dict[str, dict[str, float]] = {
        a: dict.fromkeys(["prompt_count", "cost", "unpriced", *token_columns], 0) for a in agents
    }
    usage: dict[tuple[str, str, str], dict[str, float]] = {}
    for p in prompts:
        run = per_run[str(p["agent_id"])]
        run["prompt_count"] += 1
        run["cost"] += float(p["cost_usd"] or 0)
        run["unpriced"] += p["cost_source"] == "unpriced"
        agent = agents[str(p["agent_id"])]
        key = (
            str(p["created_at"])[:10],
            str(agent["orchestrator_agent_id"]),
            str(p["model"] or "unknown"),
        )
        day = usage.setdefault(
            key,
            dict.fromkeys(["prompts", "failed", "cost", "unpriced", "savings", *token_columns], 0),
        )
        day["prompts"] += 1
        day["failed"] += p["status"] == "failed"
        day["cost"] += float(p["cost_usd"] or 0)
        day["unpriced"] += p["cost_source"] == "unpriced"
        day["savings"] += float(p["cache_savings_usd"] or 0)
        for column in token_columns:
            run[column] += p[column]
            day[column] += p[column]
    assert len(prompts) > 100
    for agent_id, agent in agents.items():
        run = per_run[agent_id]
        assert agent["prompt_count"] == run["prompt_count"], agent_id
        assert agent["unpriced_prompt_count"] == run["unpriced"]
        assert agent["total_cost_usd"] == pytest.approx(run["cost"])
        for column in token_columns:
            assert agent[f"total_{column}"] == run[column], (agent_id, column)

    stored = {
        (r["day"], r["orchestrator_agent_id"], r["model"]): r
        for r in _rows(conn, "SELECT * FROM usage_daily WHERE prompts != 0")
    }
    assert set(stored) == set(usage)
    for key, day in usage.items():
        row = stored[key]
        assert (row["prompts"], row["failed_prompts"], row["unpriced_prompts"]) == (
            day["prompts"],
            day["failed"],
            day["unpriced"],
        ), key
        assert [row[c] for c in token_columns] == [day[c] for c in token_columns], key
        assert row["cost_usd"] == pytest.approx(day["cost"])
        assert row["cache_savings_usd"] == pytest.approx(day["savings"])

    runs: dict[tuple[str, str], list[int]] = {}
    for a in agents.values():
        counts = runs.setdefault(
            (str(a["created_at"])[:10], str(a["orchestrator_agent_id"])), [0] * 4
        )
        counts[0] += 1
        for i, status in enumerate(("completed", "failed", "cancelled"), start=1):
            counts[i] += a["status"] == status
    stored_runs = {
        (r["day"], r["orchestrator_agent_id"]): [
            r["runs"],
            r["completed"],
            r["failed"],
            r["cancelled"],
        ]
        for r in _rows(conn, "SELECT * FROM runs_daily WHERE runs != 0")
    }
    assert stored_runs == runs

    sessions: dict[str, dict[str, float]] = {}
    for a in agents.values():
        if a["session_id"] is None:
            continue
        run = per_run[str(a["id"])]
        s = sessions.setdefault(
            str(a["session_id"]), dict.fromkeys(["runs", "failed", "prompts", "cost"], 0)
        )
        s["runs"] += 1
        s["failed"] += a["status"] == "failed"
        s["prompts"] += run["prompt_count"]
        s["cost"] += run["cost"]
    stored_sessions = {
        r["session_id"]: r for r in _rows(conn, "SELECT * FROM sessions WHERE runs != 0")
    }
    assert set(stored_sessions) == set(sessions) and len(sessions) > 5
    for session_id, s in sessions.items():
        row = stored_sessions[session_id]
        assert (row["runs"], row["failed_runs"], row["prompts"]) == (
            s["runs"],
            s["failed"],
            s["prompts"],
        )
        assert row["cost_usd"] == pytest.approx(s["cost"])

    from bisect import bisect_right

    from orchestrator.store.migrations import duration_buckets

    lowers = [lower for lower, _ in duration_buckets()]
    histogram: dict[tuple[str, str, str, float], list[float]] = {}
    for log in steps:
        bucket = lowers[bisect_right(lowers, float(log["duration_ms"])) - 1]
        agent = agents[str(log["agent_id"])]
        key4 = (
            str(log["created_at"])[:10],
            str(agent["orchestrator_agent_id"]),
            str(log["step"]),
            bucket,
        )
        counts_ms = histogram.setdefault(key4, [0, 0.0])
        counts_ms[0] += 1
        counts_ms[1] += float(log["duration_ms"])
    stored_steps = {
        (r["day"], r["orchestrator_agent_id"], r["step"], r["bucket_ms"]): r
        for r in _rows(conn, "SELECT * FROM step_histogram_daily WHERE steps != 0")
    }
    assert set(stored_steps) == set(histogram) and histogram
    for key4, (count, total) in histogram.items():
        assert stored_steps[key4]["steps"] == count
        assert stored_steps[key4]["sum_ms"] == pytest.approx(total)

    for table in ("prompts", "agent_logs", "system_logs"):  # one indexed document per row
        (indexed,) = conn.execute(f"SELECT count(*) FROM {table}_fts_docsize").fetchone()
        (rows,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert indexed == rows, table
    conn.close()


def _drift_by_hand(path: Path) -> list[str]:
    """What an older version or a user with the sqlite3 shell does: drop triggers, write
    rows they no longer count, drop a summary table, an index and a search index."""
    conn = sqlite3.connect(path, isolation_level=None)
    dropped_triggers = [
        "prompts_totals_insert",
        "prompts_usage_insert",
        "prompts_ai",
        "agents_runs_insert",
        "agents_sessions_insert",
        "agent_logs_steps_insert",
    ]
    for trigger in dropped_triggers:
        conn.execute(f"DROP TRIGGER {trigger}")
    (orchestrator_id,) = conn.execute("SELECT id FROM orchestrator_agents LIMIT 1").fetchone()
    conn.execute(
        "INSERT INTO agents (id, orchestrator_agent_id, session_id, status, created_at) "
        "VALUES ('late-run', ?, 'late-session', 'failed', '2030-01-02T03:04:05.000Z')",
        (orchestrator_id,),
    )
    (other_run,) = conn.execute("SELECT id FROM agents WHERE id != 'late-run' LIMIT 1").fetchone()
    for i, (run, model, cost, source) in enumerate(
        [
            ("late-run", "claude-sonnet-4-5", 0.5, "reported"),
            ("late-run", "mystery-model", None, "unpriced"),
            (other_run, "claude-sonnet-4-5", 0.25, "computed"),
        ]
    ):
        conn.execute(
            "INSERT INTO prompts (id, agent_id, content, status, tokens_input, tokens_output, "
            "tokens_cache_read, tokens_cache_write, cost_usd, cost_source, cache_savings_usd, "
            "model, created_at) VALUES (?, ?, 'zanzibarquux', 'completed', 10, 20, 300, 40, "
            "?, ?, 0.125, ?, '2030-01-02T03:04:06.000Z')",
            (f"late-prompt-{i}", run, cost, source, model),
        )
    conn.execute(
        "INSERT INTO agent_logs (id, agent_id, log_type, message, step, duration_ms, created_at)"
        " VALUES ('late-step', 'late-run', 'step_end', 'done', 'plan', 1234.5, "
        "'2030-01-02T03:04:07.000Z')"
    )
    conn.execute(
        "INSERT INTO system_logs (id, log_level, message) VALUES ('late-log', 'INFO', 'quokka')"
    )
    conn.execute("DROP TABLE sessions")  # its triggers on agents stay: every write would fail
    conn.execute("DROP INDEX idx_prompts_model")
    conn.execute("DROP TABLE system_logs_fts")
    conn.close()
    return [*dropped_triggers, "sessions", "idx_prompts_model", "system_logs_fts"]


def test_a_schema_dropped_by_hand_is_refused_then_repaired_by_init(tmp_path: Path) -> None:
    path = tmp_path / "drifted.db"
    _demo(path)
    dropped = _drift_by_hand(path)

    with pytest.raises(sqlite3.DatabaseError) as refused:
        backend.connect(path)
    message = str(refused.value)
    assert isinstance(refused.value, backend.SchemaDrift)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "orchestrator init" in message
    assert all(name in message for name in dropped), message
    assert set(dropped) <= set(refused.value.missing)

    result = CliRunner().invoke(cli, ["init", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Repaired" in result.output and all(name in result.output for name in dropped)
    _check_summaries_against_the_raw_rows(path)
    conn = backend.connect(path)  # accepted again
    hits = conn.execute("SELECT count(*) FROM prompts_fts WHERE prompts_fts MATCH 'zanzibarquux'")
    assert hits.fetchone()[0] == 3
    hits = conn.execute("SELECT count(*) FROM system_logs_fts WHERE system_logs_fts MATCH 'quokka'")
    assert hits.fetchone()[0] == 1
    conn.close()

    # The triggers are back: what the writer records from now on is counted too.
    import asyncio

    from orchestrator import DatabaseManager

    async def record() -> None:
        async with DatabaseManager(path) as db:
            async with db.agent_run("plan_build", session_id="late-session") as run:
                with run.step("build"):
                    await run.prompt(
                        "later",
                        "ok",
                        model="claude-sonnet-4-5",
                        cost_usd=0.75,
                        usage={"input_tokens": 5, "output_tokens": 6},
                    )

    asyncio.run(record())
    _check_summaries_against_the_raw_rows(path)
    again = CliRunner().invoke(cli, ["init", str(path)], catch_exceptions=False)
    assert again.exit_code == 0 and "Repaired" not in again.output


def test_a_database_newer_than_the_code_is_refused_in_one_line(db_path: Path) -> None:
    backend.connect(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('orchestrator', 'm999_from_the_future', '2031-01-01')"
    )
    conn.commit()
    conn.close()
    expected = (
        f"{db_path}: its schema is newer than this version of orchestrator "
        "(unknown migration m999_from_the_future); upgrade adw-orchestrator"
    )
    with pytest.raises(sqlite3.DatabaseError) as refused:
        backend.connect(db_path)
    assert str(refused.value) == expected
    assert isinstance(refused.value, backend.SchemaTooNew)
    result = CliRunner().invoke(cli, ["init", str(db_path)])
    assert result.exit_code == 1 and result.output == f"Error: {expected}\n"


def test_a_file_that_is_not_sqlite_is_refused_in_one_line_and_left_alone(db_path: Path) -> None:
    text = b"name,cost\nplan,1.5\n" * 300
    db_path.write_bytes(text)
    with pytest.raises(sqlite3.DatabaseError) as refused:
        backend.connect(db_path)
    assert str(refused.value) == f"{db_path} is not an SQLite database"
    assert isinstance(refused.value, backend.NotADatabase)
    for args in (["init", str(db_path)], ["init", str(db_path), "--force"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        assert result.output == f"Error: {db_path} is not an SQLite database\n", args
    assert db_path.read_bytes() == text
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def _open_in_a_new_process(path: Path) -> tuple[bool, bool]:
    """Open ``path`` as a new process does: (whether that imported sqlite-utils, whether
    it compared the whole schema with the migrations')."""
    code = (
        "import sys; from orchestrator.store import migrations, sqlite; "
        "sqlite.connect(sys.argv[1]).close(); "
        "print('sqlite_utils' in sys.modules, migrations.expected_objects.cache_info().currsize)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    imported, compared = run.stdout.split()
    return imported == "True", compared == "1"


def test_opening_a_checked_database_stays_cheap_and_a_users_own_index_is_accepted(
    db_path: Path,
) -> None:
    # A new file is created and checked without sqlite-utils; two header fields since.
    assert _open_in_a_new_process(db_path) == (False, True)
    assert _open_in_a_new_process(db_path) == (False, False)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE INDEX my_own_index ON prompts(status)")  # extra objects are fine
    conn.close()
    assert _open_in_a_new_process(db_path) == (False, True)  # the schema changed: compared
    assert _open_in_a_new_process(db_path) == (False, False)  # ... which was recorded
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER prompts_usage_update")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="prompts_usage_update"):
        backend.connect(db_path)
