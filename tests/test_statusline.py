"""``orchestrator statusline``: Claude Code's status bar line, as a whole process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from test_ccusage_views import shifted

from orchestrator.claude_code import import_transcripts
from orchestrator.reports.canned import run_report

ENTRY = "from orchestrator.entry import main; main()"
SOURCE = Path(__file__).parent / "data" / "claude-code-transcripts" / "subagent.jsonl"


def statusline(status: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, "statusline", *args],
        input=json.dumps(status),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_line_of_an_active_session(tmp_path: Path) -> None:
    project = tmp_path / "claude" / "projects" / "-home-me-now"
    project.mkdir(parents=True)
    last = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    shifted(SOURCE, project / "now.jsonl", last)
    db = tmp_path / "orchestrator.db"
    import_transcripts([tmp_path / "claude"], db_path=db)
    session = "491e126e-1e71-469c-ade2-fcc8af567c74"  # the transcript's sessionId
    run = statusline({"session_id": session, "cost": {"total_cost_usd": 99}}, "--db", str(db))
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip()
    block = next(r for r in run_report("usage_blocks", db).as_dicts() if r["is_active"])
    day = datetime.now(timezone.utc).date().isoformat()
    today = sum(r["cost_usd"] for r in run_report("daily_tokens", db, {"start": day}).as_dicts())
    session_cost = sum(r["cost_usd"] for r in run_report("session_tokens", db).as_dicts())
    assert line.startswith(f"${session_cost:,.2f} session · ${today:,.2f} today")
    assert f"block ${block['cost_usd']:,.2f}, " in line
    assert f"${block['usd_per_minute'] * 60:,.2f}/h" in line
    # The hot path imports none of the heavy modules.
    imported = {entry.split("|")[-1].strip() for entry in run.stderr.splitlines()}
    for heavy in ("click", "sqlglot", "yaml", "genai_prices", "pydantic", "datasette"):
        assert heavy not in imported, heavy


def test_budget_left_is_shown(tmp_path: Path) -> None:
    from orchestrator.writer.budgets import set_budget

    project = tmp_path / "claude" / "projects" / "-home-me-now"
    project.mkdir(parents=True)
    shifted(SOURCE, project / "now.jsonl", datetime.now(timezone.utc) - timedelta(minutes=5))
    db = tmp_path / "orchestrator.db"
    import_transcripts([tmp_path / "claude"], db_path=db)
    set_budget(db, "workflow", "claude-code:-home-me-now", daily_usd=10)
    spent = run_report("daily_tokens", db).as_dicts()[0]["cost_usd"]
    run = statusline({"session_id": "491e126e-1e71-469c-ade2-fcc8af567c74"}, "--db", str(db))
    assert run.stdout.strip().endswith(f"${10 - spent:,.2f} budget left"), run.stdout


def test_never_fails_loudly(tmp_path: Path) -> None:
    missing = statusline({"session_id": "x"}, "--db", str(tmp_path / "none.db"))
    assert (missing.returncode, missing.stdout) == (
        0,
        f"orchestrator: no database at {tmp_path / 'none.db'}\n",
    )
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello " * 1000)
    bad = statusline("not an object", "--db", str(not_sqlite))
    assert bad.returncode == 0 and bad.stdout.startswith("orchestrator: cannot read")
    assert "Traceback" not in bad.stderr
