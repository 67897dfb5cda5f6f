"""`orchestrator reprice`: costs recomputed with today's prices, summaries kept true."""

from __future__ import annotations

import asyncio

import pytest
from backends import Target, execute, rows
from click.testing import CliRunner
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from orchestrator import DatabaseManager
from orchestrator.cli import cli
from orchestrator.commands.reprice import reprice


async def _history(db_path: Target) -> dict[str, str]:
    async with DatabaseManager(db_path) as db, db.agent_run("wf") as run:
        ids = {}
        for name, model, cost in [
            ("computed", "claude-sonnet-4-5", None),
            ("reported", "claude-sonnet-4-5", 0.5),
            ("stale", "claude-haiku-4-5", None),
            ("old", "claude-haiku-4-5", None),
        ]:
            prompt = await run.prompt(
                name,
                "r",
                model=model,
                cost_usd=cost,
                tokens_input=1_000,
                tokens_output=500,
                tokens_cache_read=20_000,
                tokens_cache_write=3_000,
                tokens_cache_write_1h=1_000,
                created_at="2026-10-01T10:00:00Z" if name == "old" else "2026-11-20T10:00:00Z",
            )
            ids[name] = prompt.id
    return ids


def _price(model: str) -> float:
    usage = PriceUsage(
        input_tokens=24_000,
        cache_read_tokens=20_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
        output_tokens=500,
    )
    return float(calc_price(usage, model).total_price)


def _summaries_match_raw(target: Target) -> None:
    raw = rows(target, "SELECT sum(cost_usd) FROM prompts")[0][0]
    daily = rows(target, "SELECT sum(cost_usd) FROM usage_daily")[0][0]
    totals = rows(target, "SELECT sum(total_cost_usd) FROM agents")[0][0]
    assert daily == pytest.approx(raw) and totals == pytest.approx(raw)


def test_reprice_recomputes_computed_keeps_reported_and_prices_the_unpriced(
    db_target: Target,
) -> None:
    ids = asyncio.run(_history(db_target))
    # As if older price data had priced them otherwise, or not at all.
    execute(
        db_target,
        (
            "UPDATE prompts SET cost_usd = 9.99, cost_computed_usd = 9.99, "
            "priced_with = 'genai-prices 0.0.1' WHERE id = ?",
            (ids["computed"],),
        ),
        ("UPDATE prompts SET cost_computed_usd = 7.0 WHERE id = ?", (ids["reported"],)),
        (
            "UPDATE prompts SET cost_usd = NULL, cost_source = 'unpriced', "
            "cost_computed_usd = NULL, priced_with = NULL WHERE id IN (?, ?)",
            (ids["stale"], ids["old"]),
        ),
    )
    before = rows(db_target, "SELECT id, cost_usd FROM prompts ORDER BY id")

    dry = reprice(db_target, dry_run=True)
    assert dry.changed == 4
    assert rows(db_target, "SELECT id, cost_usd FROM prompts ORDER BY id") == before

    result = reprice(db_target, since="2026-11-01")
    assert result.changed == 3  # "old" is before --since
    assert result.by_model["claude-haiku-4-5"].newly_priced == 1
    cost = dict(rows(db_target, "SELECT id, cost_usd FROM prompts"))
    source = dict(rows(db_target, "SELECT id, cost_source FROM prompts"))
    assert cost[ids["computed"]] == pytest.approx(_price("claude-sonnet-4-5"))
    assert (cost[ids["reported"]], source[ids["reported"]]) == (0.5, "reported")
    computed = rows(
        db_target, "SELECT cost_computed_usd FROM prompts WHERE id = ?", (ids["reported"],)
    )[0][0]
    assert computed == pytest.approx(_price("claude-sonnet-4-5"))
    assert cost[ids["stale"]] == pytest.approx(_price("claude-haiku-4-5"))
    assert source[ids["stale"]] == "computed"
    assert (cost[ids["old"]], source[ids["old"]]) == (None, "unpriced")
    _summaries_match_raw(db_target)
    difference = result.by_model["claude-sonnet-4-5"].difference_usd
    assert difference == pytest.approx(_price("claude-sonnet-4-5") - 9.99)

    again = CliRunner().invoke(cli, ["reprice", "--db", str(db_target)], catch_exceptions=False)
    assert again.exit_code == 0 and "Changed 1 prompts" in again.output  # "old" now
    _summaries_match_raw(db_target)
