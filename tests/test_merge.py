"""`orchestrator copy A B C TARGET`: several machines' stores merged into one, on SQLite
and on PostgreSQL, every report the sum of the sources' (computed here from their raw
rows with plain SQL)."""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from backends import Target, rows
from click.testing import CliRunner
from conftest import FIXTURES

from orchestrator.claude_code import import_transcripts
from orchestrator.cli import cli
from orchestrator.commands.demo import create_demo_database
from orchestrator.reports.canned import run_report
from orchestrator.writer.budgets import set_budget

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three machines' stores: demos of different seeds; the first two also imported the
    same real Claude Code transcripts (the same responses, under their own ids)."""
    folder = tmp_path_factory.mktemp("machines")
    project = folder / "claude" / "projects" / "-home-marco-projects-spotter"
    project.mkdir(parents=True)
    for item in FIXTURES.iterdir():
        if item.suffix == ".jsonl":
            shutil.copy(item, project / item.name)
    shutil.copytree(FIXTURES / SESSION, project / SESSION)
    paths = []
    for seed in (1, 2, 3):
        path = folder / f"machine{seed}.db"
        asyncio.run(create_demo_database(path, prompts=300, days=10, seed=seed, end=END))
        if seed < 3:
            assert not import_transcripts([folder / "claude"], db_path=path).errors
        paths.append(path)
    set_budget(paths[0], "workflow", "plan_build", daily_usd=5.0)
    set_budget(paths[2], "model", "claude-sonnet-4-5", monthly_usd=100.0)
    return paths


def _prompts(source: Path) -> list[tuple[Any, ...]]:
    return rows(
        source,
        "SELECT substr(p.created_at, 1, 10), p.tokens_input, p.tokens_output, "
        "p.tokens_cache_read, p.tokens_cache_write, coalesce(p.cost_usd, 0), p.cost_source, "
        "r.message_id, r.request_id, a.session_id FROM prompts p "
        "JOIN agents a ON a.id = p.agent_id LEFT JOIN prompt_responses r ON r.prompt_id = p.id",
    )


def _expected(sources: list[Path]) -> dict[str, dict[Any, list[float]]]:
    """Per day, per workflow and day, and per session: what the merged store must say,
    summed over the sources' raw rows, each response (message id, request id) once."""
    seen: set[tuple[Any, Any]] = set()
    by_day: dict[Any, list[float]] = defaultdict(lambda: [0.0] * 7)
    by_session: dict[Any, list[float]] = defaultdict(lambda: [0.0] * 4)
    for source in sources:
        for day, t_in, t_out, t_read, t_write, cost, how, message, request, session in _prompts(
            source
        ):
            if message is not None:
                if (message, request) in seen:
                    continue
                seen.add((message, request))
            totals = by_day[day]
            for index, value in enumerate(
                (1, t_in, t_out, t_read, t_write, cost, how == "unpriced")
            ):
                totals[index] += value
            if session is not None:
                for index, value in enumerate((0, 1, t_in + t_out + t_read + t_write, cost)):
                    by_session[session][index] += value
    runs: dict[Any, list[float]] = defaultdict(lambda: [0.0] * 4)
    for source in sources:
        for day, name, status, session in rows(
            source,
            "SELECT substr(a.created_at, 1, 10), o.name, a.status, a.session_id FROM agents a "
            "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id",
        ):
            totals = runs[(day, name)]
            totals[0] += 1
            for index, state in enumerate(("completed", "failed", "cancelled"), 1):
                totals[index] += status == state
            if session is not None:
                by_session[session][0] += 1
    return {"by_day": dict(by_day), "runs": dict(runs), "sessions": dict(by_session)}


def _found(target: Target) -> dict[str, dict[Any, list[float]]]:
    """The same figures from the merged store's reports (its summaries)."""
    by_day = {
        row[0]: [float(value) for value in row[1:]]
        for row in run_report("spend_by_day", target).rows
    }
    runs = {
        (row[0], row[1]): [float(value) for value in row[2:]]
        for row in run_report("runs_by_day", target).rows
    }
    sessions = {
        row[0]: [float(row[1]), float(row[3]), float(sum(row[4:8])), float(row[8])]
        for row in run_report("spend_by_session", target, {"limit": "100000"}).rows
    }
    return {"by_day": by_day, "runs": runs, "sessions": sessions}


def _assert_close(expected: dict[Any, list[float]], found: dict[Any, list[float]], what: str):
    assert sorted(map(str, expected)) == sorted(map(str, found)), what
    for key, values in expected.items():
        # Reports round costs to 4 places.
        assert found[key] == pytest.approx(values, abs=1e-3), f"{what} {key}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_machines_merge_into_one_store_whose_reports_are_their_sum(
    machines: list[Path], new_db_target: Callable[[], Target]
) -> None:
    target = new_db_target()
    runner = CliRunner()
    result = runner.invoke(cli, ["copy", *map(str, machines), str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.count("counts, sums and ids match") == 3
    expected = _expected(machines)
    # The transcripts' responses were imported on two machines: once in the merged store.
    duplicated = rows(machines[1], "SELECT count(*) FROM prompt_responses")[0][0]
    assert duplicated > 10
    workflows = len(rows(machines[1], "SELECT name FROM orchestrator_agents"))
    assert f"({workflows + 2 * duplicated} rows merged" in result.output  # prompts, responses
    prompts = sum(rows(m, "SELECT count(*) FROM prompts")[0][0] for m in machines)
    assert rows(target, "SELECT count(*) FROM prompts")[0][0] == prompts - duplicated
    # One workflow per name, every run kept with its id.
    names = {row[0] for m in machines for row in rows(m, "SELECT name FROM orchestrator_agents")}
    assert sorted(r[0] for r in rows(target, "SELECT name FROM orchestrator_agents")) == sorted(
        names
    )
    run_ids = {row[0] for m in machines for row in rows(m, "SELECT id FROM agents")}
    assert {row[0] for row in rows(target, "SELECT id FROM agents")} == run_ids
    assert len(run_ids) == sum(rows(m, "SELECT count(*) FROM agents")[0][0] for m in machines)

    found = _found(target)
    for what in ("by_day", "runs", "sessions"):
        _assert_close(expected[what], found[what], what)
    # Runs' own totals agree with their prompts in the merged store.
    assert rows(
        target,
        "SELECT count(*) FROM agents a WHERE a.prompt_count <> "
        "(SELECT count(*) FROM prompts p WHERE p.agent_id = a.id)",
    ) == [(0,)]
    budgets = sorted(rows(target, "SELECT scope, name, daily_usd, monthly_usd FROM budgets"))
    assert budgets == [
        ("model", "claude-sonnet-4-5", None, 100.0),
        ("workflow", "plan_build", 5.0, None),
    ]

    # Merging again brings nothing: nothing doubled.
    again = runner.invoke(cli, ["copy", *map(str, machines), str(target)])
    assert again.exit_code == 0, again.output
    assert again.output.count("Copied 0 rows") == 3
    assert _found(target) == found
