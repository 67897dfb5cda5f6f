"""`orchestrator prune` and `orchestrator backup` while a writer keeps writing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backends import Target, rows
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.commands.demo import create_demo_database
from orchestrator.reports.canned import run_report

WRITER = """
import sys, time
from orchestrator import SyncDatabaseManager
with SyncDatabaseManager(sys.argv[1], flush_interval=0.05) as db:
    with db.agent_run("live-writer") as run:
        print("ready", flush=True)
        deadline = time.monotonic() + float(sys.argv[2])
        i = 0
        while time.monotonic() < deadline:
            run.log("event", f"tick {i}")
            run.prompt(f"p{i}", "r", model="claude-haiku-4-5", tokens_input=10, tokens_output=5)
            i += 1
        print(i, flush=True)
"""
CUT = "2026-11-10"
LAST_DEMO_DAY = "2026-11-25"


def _by_day(path: Target, name: str) -> list[dict[str, Any]]:
    return run_report(name, path, {"start": "", "end": LAST_DEMO_DAY}).as_dicts()


def _count(path: Target, sql: str) -> int:
    return int(rows(path, sql)[0][0])


def test_prune_and_backup_with_a_writer_running(tmp_path: Path, db_target: Target) -> None:
    db = db_target
    end = datetime(2026, 11, 25, tzinfo=timezone.utc)
    asyncio.run(create_demo_database(db, prompts=600, days=42, seed=3, end=end))
    reports = {name: _by_day(db, name) for name in ("spend_by_day", "token_mix", "runs_by_day")}
    kept_prompts = _count(db, f"SELECT count(*) FROM prompts WHERE created_at >= '{CUT}'")
    old_runs = _count(db, f"SELECT count(*) FROM agents WHERE created_at < '{CUT}'")
    assert old_runs > 0 and kept_prompts > 0
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        pruned = CliRunner().invoke(cli, ["prune", "--db", str(db), "--before", CUT])
        assert pruned.exit_code == 0, pruned.output
        assert f"Deleted {old_runs} runs" in pruned.output
        copy = tmp_path / "copy.db"
        copied = CliRunner().invoke(cli, ["backup", "--db", str(db), str(copy)])
        assert copied.exit_code == 0 and "integrity check ok" in copied.output, copied.output
        written = int(writer.communicate(timeout=60)[0].strip())
    finally:
        writer.kill()
    assert writer.returncode == 0 and written > 0
    # Raw rows before the cut are gone; the day-by-day reports did not move.
    assert _count(db, f"SELECT count(*) FROM agents WHERE created_at < '{CUT}'") == 0
    assert _count(db, f"SELECT count(*) FROM prompts WHERE created_at < '{CUT}'") == 0
    assert _count(db, f"SELECT count(*) FROM system_logs WHERE created_at < '{CUT}'") == 0
    for name, expected in reports.items():
        assert _by_day(db, name) == expected, name
    # Nothing of the writer's, nor of the demo after the cut, was lost.
    assert _count(db, "SELECT count(*) FROM prompts WHERE content LIKE 'p%'") == written
    assert (
        _count(db, f"SELECT count(*) FROM prompts WHERE created_at >= '{CUT}'")
        == kept_prompts + written
    )
    # The copy is a consistent database with the pruned history, taken mid-write.
    assert _count(copy, f"SELECT count(*) FROM agents WHERE created_at < '{CUT}'") == 0
    assert 0 < _count(copy, "SELECT count(*) FROM prompts WHERE content LIKE 'p%'") <= written
    for name, expected in reports.items():
        assert _by_day(copy, name) == expected, name


def test_prune_refuses_a_bad_day(db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prune", "--db", str(db_path), "--before", "2026-13-01"])
    assert result.exit_code == 1 and "2026-13-01" in result.output
