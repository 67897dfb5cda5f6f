"""ccusage's views as canned reports: daily, weekly, monthly, per model, per session and
5-hour blocks, each compared with ccusage 17.2.1's own JSON on the real transcripts of
tests/data, in several time zones.

Tokens must be equal. Costs are compared where both tools price a model (ccusage prices
``claude-opus-4-6`` at $0 offline; a model without a price is unpriced here, never $0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from test_transcripts import CCUSAGE, OWN, fixture_config_dir

from orchestrator.claude_code import import_transcripts
from orchestrator.reports.canned import run_report

ZONES = ["UTC", "Europe/Madrid", "America/Los_Angeles", "Asia/Tokyo"]
TOKENS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheCreationTokens": "cache_creation_tokens",
    "cacheReadTokens": "cache_read_tokens",
    "totalTokens": "total_tokens",
}


def ccusage(config_dir: Path, *args: str) -> Any:
    """``ccusage ARGS --offline --json`` on the transcripts under ``config_dir``.

    The process runs in UTC: ccusage's weekly view names a week after the weekday of a
    day parsed at UTC midnight but read in the process's time zone (west of UTC, the
    day before)."""
    if not CCUSAGE.exists():
        if os.environ.get("ORCHESTRATOR_REQUIRE_CCUSAGE") == "1":
            pytest.fail(f"ccusage is not installed at {CCUSAGE}")
        pytest.skip("ccusage not installed (npm install --prefix .cache/ccusage ccusage@17.2.1)")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config_dir), "TZ": "UTC"}
    run = subprocess.run(
        [str(CCUSAGE), *args, "--offline", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared transcripts (2026-02-10 and 12, a pause of more than 5 hours) and the
    project's own (across midnight UTC of 2026-01-31, with an unpriced model and
    ``<synthetic>``), two projects in one CLAUDE_CONFIG_DIR."""
    config = fixture_config_dir(tmp_path_factory.mktemp("views"))
    shutil.copytree(OWN / "projects" / "-home-me-demo", config / "projects" / "-home-me-demo")
    return config


@pytest.fixture(scope="module")
def db(transcripts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("views-db") / "orchestrator.db"
    import_transcripts([transcripts], db_path=path)
    return path


def tokens(row: dict[str, Any]) -> dict[str, int]:
    return {ours: row[ours] for ours in TOKENS.values()}


def their_tokens(item: dict[str, Any]) -> dict[str, int]:
    return {ours: item[theirs] for theirs, ours in TOKENS.items()}


def models(row: dict[str, Any]) -> set[str]:
    return set(row["models"].split(",")) if row["models"] else set()


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    ("view", "report", "key", "extra"),
    [
        ("daily", "daily_tokens", "date", {}),
        ("monthly", "monthly_tokens", "month", {}),
        ("weekly", "weekly_tokens", "week", {}),
        ("weekly", "weekly_tokens", "week", {"week_starts_on": "monday"}),
        ("weekly", "weekly_tokens", "week", {"week_starts_on": "thursday"}),
    ],
)
def test_periods_match_ccusage(
    transcripts: Path, db: Path, tz: str, view: str, report: str, key: str, extra: dict[str, str]
) -> None:
    flags = [f"--start-of-week={day}" for day in extra.values()]
    theirs = ccusage(transcripts, view, "-z", tz, *flags)[view]
    ours = run_report(report, db, {"tz": tz, **extra}).as_dicts()
    column = {"date": "day"}.get(key, key)
    theirs = sorted(theirs, key=lambda item: item[key], reverse=True)  # ours: newest first
    assert [row[column] for row in ours] == [item[key] for item in theirs]
    for row, item in zip(ours, theirs, strict=True):
        assert tokens(row) == their_tokens(item), row[column]
        assert models(row) == set(item["modelsUsed"]), row[column]
    # The time zone moves prompts between days: the windows differ where they should.
    days = {row[column] for row in ours}
    if view == "daily":
        assert ("2026-02-13" in days) == (tz == "Asia/Tokyo")
        assert ("2026-01-30" in days) == (tz in ("UTC", "America/Los_Angeles"))


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_per_model_breakdown_matches_ccusage(transcripts: Path, db: Path, period: str) -> None:
    view, key = {
        "day": ("daily", "date"),
        "week": ("weekly", "week"),
        "month": ("monthly", "month"),
    }[period]
    theirs = ccusage(transcripts, view, "-z", "Europe/Madrid", "--breakdown")[view]
    ours = run_report("tokens_by_model", db, {"period": period, "tz": "Europe/Madrid"}).as_dicts()
    expected = {
        (item[key], part["modelName"]): part for item in theirs for part in item["modelBreakdowns"]
    }
    found = {(row["period"], row["model"]): row for row in ours}
    assert set(found) == set(expected)
    priced = 0
    for pair, part in expected.items():
        row = found[pair]
        assert {k: row[v] for k, v in TOKENS.items() if k != "totalTokens"} == {
            k: part[k] for k in TOKENS if k != "totalTokens"
        }, pair
        if part["cost"] > 0:  # priced by both: the same USD
            priced += 1
            assert row["cost_usd"] == pytest.approx(part["cost"], abs=1e-6), pair
    assert priced >= 2  # Sonnet 4.5 on both sides


def folder_totals(sessions: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """ccusage 17.2.1's session rows summed by project folder: it groups by the folder a
    file is in, so a project's sessions are one row and a session's subagents another
    (projectPath ``<project>/<session>``)."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOKENS.values(), 0))
    for item in sessions:
        if item["projectPath"] == "Unknown Project":
            folder = item["sessionId"]
        else:
            folder = item["projectPath"].split("/")[0]
        for name, value in their_tokens(item).items():
            totals[folder][name] += value
    return dict(totals)


def test_sessions_match_ccusage(transcripts: Path, db: Path) -> None:
    theirs = ccusage(transcripts, "session", "-z", "Asia/Tokyo")["sessions"]
    ours = run_report("session_tokens", db, {"tz": "Asia/Tokyo"}).as_dicts()
    by_folder: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOKENS.values(), 0))
    for row in ours:
        for name, value in tokens(row).items():
            by_folder[row["project"].removeprefix("claude-code:")][name] += value
    assert dict(by_folder) == folder_totals(theirs)
    # One row per Claude Code session, its subagents included: the big session's
    # subagent folder is ccusage's "subagents" row.
    main = next(row for row in ours if row["session_id"].startswith("4d5611e5"))
    subagents = next(item for item in theirs if item["sessionId"] == "subagents")
    assert main["input_tokens"] > subagents["inputTokens"] > 0
    assert len(ours) == 5
    # Last activity: the day in Tokyo of the session's last prompt; latest first.
    assert main["last_activity"] == "2026-02-13" and main["last_activity_at"].startswith(
        "2026-02-12T21:03"
    )
    assert [row["last_activity_at"] for row in ours] == sorted(
        (row["last_activity_at"] for row in ours), reverse=True
    )
    latest = max(item["lastActivity"] for item in theirs)
    assert ours[0]["last_activity"] == latest


def block_rows(db: Path, **params: str) -> list[dict[str, Any]]:
    return run_report("usage_blocks", db, params).as_dicts()


def test_blocks_match_ccusage(transcripts: Path, db: Path) -> None:
    theirs = ccusage(transcripts, "blocks")["blocks"]
    ours = block_rows(db)
    assert [row["start_at"] for row in ours] == [item["startTime"] for item in theirs]
    for row, item in zip(ours, theirs, strict=True):
        where = row["start_at"]
        assert row["end_at"] == item["endTime"], where
        assert bool(row["is_gap"]) == item["isGap"] and row["is_active"] == 0, where
        assert row["last_prompt_at"] == item["actualEndTime"], where
        assert row["prompts"] == item["entries"], where
        assert {k: row[v] for k, v in BLOCK_TOKENS.items()} == item["tokenCounts"], where
        assert row["total_tokens"] == item["totalTokens"], where
        assert models(row) == set(item["models"]), where
        if item["costUSD"] and models(row) <= {"claude-sonnet-4-5-20250929", "<synthetic>"}:
            assert row["cost_usd"] == pytest.approx(item["costUSD"], abs=1e-6), where
    assert sum(row["is_gap"] for row in ours) >= 2  # Jan 31 -> Feb 10, Feb 10 -> Feb 12
    # Blocks are kept whole and chosen by the day they start, in the time zone given.
    tokyo = block_rows(db, tz="Asia/Tokyo", start="2026-02-13", end="2026-02-13")
    assert [row["start_at"] for row in tokyo] == [
        "2026-02-12T16:00:00.000Z",
        "2026-02-12T21:00:00.000Z",
    ]
    assert tokyo[0]["total_tokens"] == next(
        item["totalTokens"] for item in theirs if item["startTime"] == tokyo[0]["start_at"]
    )


BLOCK_TOKENS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheCreationInputTokens": "cache_creation_tokens",
    "cacheReadInputTokens": "cache_read_tokens",
}


def shifted(source: Path, target: Path, last_at: datetime) -> None:
    """``source`` with every timestamp moved so that its last one is ``last_at``."""
    lines = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    stamps = [
        datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        for line in lines
        if isinstance(line, dict) and isinstance(line.get("timestamp"), str)
    ]
    delta = last_at - max(stamps)
    with target.open("w") as out:
        for line in lines:
            if isinstance(line, dict) and isinstance(line.get("timestamp"), str):
                moved = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")) + delta
                line["timestamp"] = moved.strftime("%Y-%m-%dT%H:%M:%S.") + (
                    f"{moved.microsecond // 1000:03d}Z"
                )
            out.write(json.dumps(line) + "\n")


def test_active_block_burn_rate_and_projection_match_ccusage(tmp_path: Path) -> None:
    """A real session moved to end ten minutes ago: its block is active, with ccusage's
    burn rate, and the same projection to the block's end (within the seconds between
    the two runs)."""
    project = tmp_path / "claude" / "projects" / "-home-me-now"
    project.mkdir(parents=True)
    source = Path(__file__).parent / "data" / "claude-code-transcripts" / "subagent.jsonl"
    last = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    shifted(source, project / "now.jsonl", last)
    db = tmp_path / "orchestrator.db"
    import_transcripts([tmp_path / "claude"], db_path=db)
    theirs = ccusage(tmp_path / "claude", "blocks", "--active")["blocks"]
    ours = [row for row in block_rows(db) if row["is_active"]]
    assert len(ours) == len(theirs) == 1
    row, item = ours[0], theirs[0]
    assert row["start_at"] == item["startTime"] and row["total_tokens"] == item["totalTokens"]
    assert row["tokens_per_minute"] == pytest.approx(item["burnRate"]["tokensPerMinute"], abs=0.01)
    minutes = item["totalTokens"] / item["burnRate"]["tokensPerMinute"]  # first to last prompt
    assert row["usd_per_minute"] == pytest.approx(row["cost_usd"] / minutes, rel=1e-3)
    assert abs(row["minutes_left"] - item["projection"]["remainingMinutes"]) <= 1
    # A few seconds between the runs move the projection by the burn rate times them.
    assert row["projected_tokens"] == pytest.approx(
        item["projection"]["totalTokens"], abs=row["tokens_per_minute"]
    )
    # Judged at a fixed time: the projection is exactly the rate times the minutes left.
    now = (last + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fixed = next(row for row in block_rows(db, now=now) if row["is_active"])
    left = (datetime.fromisoformat(fixed["end_at"].replace("Z", "+00:00")) - last).total_seconds()
    left = left / 60 - 5
    # Rounded to a tenth by the SQL from julianday()'s float minutes: 282.45 may go either way.
    assert fixed["minutes_left"] == pytest.approx(left, abs=0.05 + 1e-6)
    # (The SQL's minutes come from julianday(), a float of days: the product may round
    # to the next token.)
    assert fixed["projected_tokens"] == pytest.approx(
        fixed["total_tokens"] + fixed["total_tokens"] / minutes * left, abs=1
    )
    # Five hours after its last prompt no block is active any more.
    later = (last + timedelta(hours=5, seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert not any(row["is_active"] for row in block_rows(db, now=later))


def test_bad_calendar_parameters_are_refused_by_name(db: Path) -> None:
    with pytest.raises(ValueError, match="tz: unknown time zone 'Mars/Base'"):
        run_report("daily_tokens", db, {"tz": "Mars/Base"})
    with pytest.raises(ValueError, match="week_starts_on: unknown week day 'someday'"):
        run_report("weekly_tokens", db, {"week_starts_on": "someday"})
    with pytest.raises(ValueError, match="now must be a UTC time"):
        run_report("usage_blocks", db, {"now": "yesterday"})
