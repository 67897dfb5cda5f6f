"""Budgets: the writer warns once when a window is crossed; an ADW can ask what is left;
`orchestrator budget check` gates CI. Spend is checked against the prompts' own costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backends import Target, execute, rows
from click.testing import CliRunner

from orchestrator import DatabaseManager
from orchestrator.cli import cli
from orchestrator.core.ids import utc_now
from orchestrator.writer.budgets import set_budget, statuses

USAGE = {"tokens_input": 100_000, "tokens_output": 10_000}  # haiku: $0.10 + $0.05 = $0.15


async def test_the_writer_warns_once_per_window_and_reports_what_is_left(
    db_target: Target,
) -> None:
    async with DatabaseManager(db_target) as db:
        await db.ensure_orchestrator_agent("plan_build")
    now = utc_now()
    execute(
        db_target,
        (
            "INSERT INTO budgets (scope, name, daily_usd, monthly_usd, updated_at) VALUES "
            "('workflow', 'plan_build', 0.4, NULL, ?), ('model', 'claude-haiku-4-5', NULL, "
            "100.0, ?)",
            (now, now),
        ),
    )
    async with DatabaseManager(db_target) as db:
        assert await db.budget_remaining("plan_build") == pytest.approx(0.4)
        assert await db.budget_remaining("no-such-workflow") is None
        async with db.agent_run("plan_build", session_id="adw-1") as run:
            spent = 0.0
            for _ in range(5):  # 5 x $0.15: over $0.40 at the third
                prompt = await run.prompt("p", "r", model="claude-haiku-4-5", **USAGE)
                spent += prompt.cost_usd or 0.0
        assert await db.budget_remaining("plan_build") == pytest.approx(0.4 - spent)
        assert await db.budget_remaining("claude-haiku-4-5", "model") == pytest.approx(
            100.0 - spent
        )
        await db.flush()
    assert spent == pytest.approx(0.75)
    warnings = rows(
        db_target, "SELECT message FROM system_logs WHERE source = 'orchestrator.budgets'"
    )
    today = now[:10]
    assert warnings == [
        (f"workflow plan_build is over its daily budget for {today}: $0.45 of $0.40",)
    ]
    assert rows(db_target, "SELECT scope, name, period FROM budget_alerts") == [
        ("workflow", "plan_build", today)
    ]


def test_budget_cli_set_list_check(db_target: Target) -> None:
    runner = CliRunner()
    db = ["--db", str(db_target)]
    assert runner.invoke(cli, ["init", *db]).exit_code == 0
    assert runner.invoke(cli, ["budget", "set", "review", *db]).exit_code == 1  # no amount
    ok = runner.invoke(cli, ["budget", "set", "review", "--daily", "5", "--monthly", "80", *db])
    assert ok.exit_code == 0 and "$5.00 a day, $80.00 a month" in ok.output
    assert runner.invoke(cli, ["budget", "check", *db]).exit_code == 0
    set_budget(db_target, "session", "adw-9", daily_usd=0.01)
    import asyncio

    async def spend() -> float:
        async with (
            DatabaseManager(db_target) as db,
            db.agent_run("review", session_id="adw-9") as run,
        ):
            prompt = await run.prompt("p", "r", model="claude-haiku-4-5", **USAGE)
            return prompt.cost_usd or 0.0

    cost = asyncio.run(spend())
    listed = runner.invoke(cli, ["budget", "list", "--format", "json", *db])
    by_name = {row["name"]: row for row in json.loads(listed.output)}
    assert by_name["review"]["spent_today"] == pytest.approx(cost)
    assert by_name["adw-9"]["over"] == utc_now()[:10]
    checked = runner.invoke(cli, ["budget", "check", *db])
    assert checked.exit_code == 1
    [over] = [state for state in statuses(db_target) if state.over]
    assert over.budget.name == "adw-9" and over.remaining_usd == pytest.approx(0.01 - cost)


def test_budgets_report_against_the_raw_prompts(db_path: Path) -> None:
    """The canned report's spend per budget equals sums over the raw prompts."""
    import asyncio
    import sqlite3
    from datetime import datetime, timedelta, timezone

    from orchestrator.reports.canned import run_report

    now = datetime.now(timezone.utc)
    times = [now, now - timedelta(days=1), now - timedelta(days=40)]

    async def history() -> None:
        async with DatabaseManager(db_path) as db:
            for workflow, session, model in [
                ("plan_build", "adw-1", "claude-haiku-4-5"),
                ("review", "adw-2", "claude-sonnet-4-5"),
            ]:
                async with db.agent_run(workflow, session_id=session) as run:
                    for when in times:
                        await run.prompt("p", "r", model=model, created_at=when, **USAGE)

    asyncio.run(history())
    set_budget(db_path, "workflow", "plan_build", daily_usd=0.1, monthly_usd=10)
    set_budget(db_path, "model", "claude-sonnet-4-5", monthly_usd=0.01)
    set_budget(db_path, "session", "adw-1", daily_usd=5)
    conn = sqlite3.connect(db_path)
    raw = conn.execute(
        "SELECT o.name, a.session_id, p.model, p.created_at, p.cost_usd FROM prompts p "
        "JOIN agents a ON a.id = p.agent_id JOIN orchestrator_agents o "
        "ON o.id = a.orchestrator_agent_id"
    ).fetchall()
    today, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
    column = {"workflow": 0, "session": 1, "model": 2}
    result = run_report("budgets", db_path, {}).as_dicts()
    assert len(result) == 3
    for row in result:
        mine = [r for r in raw if r[column[row["scope"]]] == row["name"]]
        assert row["spent_today"] == pytest.approx(
            round(sum(r[4] for r in mine if r[3][:10] == today), 4)
        )
        assert row["spent_month"] == pytest.approx(
            round(sum(r[4] for r in mine if r[3][:7] == month and r[3][:10] <= today), 4)
        )
        assert row["spent_in_window"] == pytest.approx(round(sum(r[4] for r in mine), 4))
        over = (row["daily_usd"] is not None and row["spent_today"] > row["daily_usd"]) or (
            row["monthly_usd"] is not None and row["spent_month"] > row["monthly_usd"]
        )
        assert row["status"] == ("over" if over else "ok")
    assert {r["name"]: r["status"] for r in result} == {
        "plan_build": "over",
        "claude-sonnet-4-5": "over",
        "adw-1": "ok",
    }


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--daily", "inf"),
        ("--daily", "1e309"),
        ("--daily", "nan"),
        ("--monthly", "0"),
        ("--monthly", "-5"),
        ("--daily", "-inf"),
    ],
)
def test_a_limit_that_is_no_amount_is_refused_naming_the_option(
    db_target: Target, option: str, value: str
) -> None:
    runner = CliRunner()
    db = ["--db", str(db_target)]
    assert runner.invoke(cli, ["init", *db]).exit_code == 0
    refused = runner.invoke(cli, ["budget", "set", "plan", option, value, *db])
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: {option}: must be a finite number of USD above 0")
    assert len(refused.stderr.splitlines()) == 1
    assert rows(db_target, "SELECT count(*) FROM budgets") == [(0,)]


def test_a_budget_is_removed(db_target: Target) -> None:
    from orchestrator.writer.budgets import remove_budget

    runner = CliRunner()
    db = ["--db", str(db_target)]
    assert runner.invoke(cli, ["init", *db]).exit_code == 0
    set_budget(db_target, "workflow", "plan", daily_usd=2)
    set_budget(db_target, "model", "plan", monthly_usd=30)  # same name, another scope: kept
    removed = runner.invoke(cli, ["budget", "remove", "plan", *db])
    assert removed.exit_code == 0 and removed.stdout == "Removed the budget of workflow plan\n"
    assert rows(db_target, "SELECT scope, name, daily_usd, monthly_usd FROM budgets") == [
        ("model", "plan", None, 30.0)
    ]
    again = runner.invoke(cli, ["budget", "remove", "plan", *db])
    assert (
        again.exit_code == 1
        and again.stderr == f"Error: no budget of workflow plan in {db_target}\n"
    )
    assert remove_budget(db_target, "model", "plan") is True
    assert remove_budget(db_target, "model", "plan") is False
    assert rows(db_target, "SELECT count(*) FROM budgets") == [(0,)]
