"""Cost: reported as given, else computed from prices with cache rates, else unpriced."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import pytest
from backends import Target, execute, rows
from genai_prices import Usage, calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import DatabaseManager, compute_cost

# Anthropic's published list prices, USD per million tokens (input, output, cache read,
# 5-minute cache write): an independent source to check the conversion to genai-prices.
LIST_PRICES = {
    "claude-sonnet-4-5": (3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": (1.00, 5.00, 0.10, 1.25),
    "claude-opus-4-5": (5.00, 25.00, 0.50, 6.25),
}


@pytest.mark.parametrize("model", sorted(LIST_PRICES))
def test_computed_cost_prices_cache_reads_and_writes_as_such(model: str) -> None:
    usage = {
        "tokens_input": 1_200,
        "tokens_output": 3_400,
        "tokens_cache_read": 90_000,
        "tokens_cache_write": 15_000,
    }  # under 200k input: no long-context tier
    price_in, price_out, price_read, price_write = LIST_PRICES[model]
    expected = (
        usage["tokens_input"] * price_in
        + usage["tokens_output"] * price_out
        + usage["tokens_cache_read"] * price_read
        + usage["tokens_cache_write"] * price_write
    ) / 1_000_000
    assert compute_cost(model, **usage) == pytest.approx(expected, rel=1e-9)


def test_unknown_model_has_no_price() -> None:
    assert compute_cost("acme-llm-9000", tokens_input=10) is None
    assert compute_cost(None, tokens_input=10) is None


async def test_prompt_cost_sources_and_run_totals(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("costs") as run:
            reported = await run.prompt(
                "a",
                "b",
                model="claude-sonnet-4-5",
                cost_usd=0.25,
                tokens_input=10,
                tokens_output=10,
            )
            computed = await run.prompt("a", "b", model="claude-haiku-4-5", tokens_input=1_000_000)
            unpriced = await run.prompt("a", "b", model="acme-llm-9000", tokens_input=5)
    assert (reported.cost_source, reported.cost_usd) == ("reported", 0.25)
    assert reported.cost_computed_usd == pytest.approx((10 * 3 + 10 * 15) / 1e6)
    assert computed.cost_source == "computed"
    assert computed.cost_usd == pytest.approx(1.00)
    assert (unpriced.cost_source, unpriced.cost_usd) == ("unpriced", None)
    ((total, unpriced_count, count),) = rows(
        db_target, "SELECT total_cost_usd, unpriced_prompt_count, prompt_count FROM agents"
    )
    assert total == pytest.approx(1.25) and unpriced_count == 1 and count == 3
    assert rows(db_target, "SELECT cost_usd FROM prompts WHERE model = 'acme-llm-9000'") == [
        (None,)
    ]


#: SQL both backends read alike (no boolean sums, no rowid).
UNPRICED = "CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END"


async def test_run_totals_stay_true_when_prompts_change_or_go(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("totals") as run:
            prompts = [
                await run.prompt(
                    "p",
                    "r",
                    model="claude-haiku-4-5",
                    tokens_input=i,
                    tokens_output=2 * i,
                    cost_usd=i / 100,
                )
                for i in range(1, 6)
            ]
    execute(
        db_target,
        (
            "UPDATE prompts SET tokens_input = 100, cost_usd = NULL, "
            "cost_source = 'unpriced' WHERE id = ?",
            (prompts[0].id,),
        ),
        ("DELETE FROM prompts WHERE id = ?", (prompts[1].id,)),
    )
    (expected,) = rows(
        db_target,
        "SELECT count(*), sum(tokens_input), sum(tokens_output), coalesce(sum(cost_usd), 0), "
        f"sum({UNPRICED}) FROM prompts",
    )
    (actual,) = rows(
        db_target,
        "SELECT prompt_count, total_tokens_input, total_tokens_output, total_cost_usd, "
        "unpriced_prompt_count FROM agents",
    )
    assert actual[:3] == expected[:3] and actual[4] == expected[4]
    assert actual[3] == pytest.approx(expected[3])


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(
        [
            "claude-sonnet-4-5",
            "claude-opus-4-5",
            "claude-haiku-4-5",
            "gpt-4o",
            "gemini-2.5-pro",
            "claude-sonnet-4-0",
            "gemini-2.5-flash",
            "deepseek-chat",  # off-peak prices by time of day: priced call by call
            "claude-3-5-sonnet-20241022",
        ]
    ),
    when=st.none()
    | st.datetimes(
        min_value=datetime(2023, 1, 1),
        max_value=datetime(2026, 11, 1),
        timezones=st.just(timezone.utc),
    ),
    tokens_input=st.integers(0, 400_000),
    tokens_output=st.integers(0, 64_000),
    tokens_cache_read=st.integers(0, 400_000) | st.just(0),
    tokens_cache_write=st.integers(0, 100_000) | st.just(0),
)
def test_per_tier_rates_give_exactly_what_genai_prices_computes(
    model: str,
    when: datetime | None,
    tokens_input: int,
    tokens_output: int,
    tokens_cache_read: int,
    tokens_cache_write: int,
) -> None:
    """The cached per-tier rates agree with a direct genai-prices call, tiers included."""
    total_input = tokens_input + tokens_cache_read + tokens_cache_write
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = calc_price(
            Usage(
                input_tokens=total_input,
                cache_read_tokens=tokens_cache_read,
                cache_write_tokens=tokens_cache_write,
                output_tokens=tokens_output,
            ),
            model,
            genai_request_timestamp=when,
        ).total_price
    got = compute_cost(
        model,
        tokens_input=tokens_input,
        tokens_output=tokens_output,
        tokens_cache_read=tokens_cache_read,
        tokens_cache_write=tokens_cache_write,
        when=when,
    )
    assert got == pytest.approx(float(expected), rel=1e-12, abs=1e-15)


async def test_summary_tables_stay_true_after_updates_and_deletes(db_target: Target) -> None:
    async with DatabaseManager(db_target) as db:
        for session in ("s1", "s2", "s1"):
            async with db.agent_run("summaries", session_id=session) as run:
                for i in range(3):
                    await run.prompt(
                        "p",
                        "r",
                        model="claude-haiku-4-5",
                        tokens_input=10 + i,
                        tokens_cache_read=1000 * i,
                        tokens_output=5,
                    )
                with run.step("build"):
                    pass
        doomed = await db.create_agent(await db.ensure_orchestrator_agent("summaries"), "s2")
        await db.record_prompt(doomed, "p", "r", model="acme-llm-9000", tokens_input=7)
        with_steps = await db.create_agent(await db.ensure_orchestrator_agent("summaries"), "s3")
        for duration in (5.0, 50.0, 500.0):  # a run with steps, deleted below
            await db.log_agent_event(
                with_steps, "step_end", "x", step="build", duration_ms=duration
            )
    first, second = (
        row[0] for row in rows(db_target, "SELECT id FROM prompts ORDER BY created_at, id LIMIT 2")
    )
    execute(
        db_target,
        ("UPDATE prompts SET tokens_output = 99 WHERE id = ?", (first,)),
        ("DELETE FROM prompts WHERE id = ?", (second,)),
        ("DELETE FROM agents WHERE id = ?", (doomed,)),
        ("DELETE FROM agents WHERE id = ?", (with_steps,)),
    )
    sessions = rows(
        db_target,
        "SELECT session_id, runs, prompts, tokens_input, tokens_output, tokens_cache_read, "
        "cost_usd, unpriced_prompts FROM sessions WHERE runs > 0 ORDER BY 1",
    )
    expected = rows(
        db_target,
        "SELECT a.session_id, count(DISTINCT a.id), count(p.id), coalesce(sum(p.tokens_input), 0),"
        " coalesce(sum(p.tokens_output), 0), coalesce(sum(p.tokens_cache_read), 0), "
        f"coalesce(sum(p.cost_usd), 0), coalesce(sum({UNPRICED}), 0) "
        "FROM agents a LEFT JOIN prompts p ON p.agent_id = a.id GROUP BY 1 ORDER BY 1",
    )
    assert [row[:6] + row[7:] for row in sessions] == [row[:6] + row[7:] for row in expected]
    assert [row[6] for row in sessions] == pytest.approx([row[6] for row in expected], abs=1e-12)
    daily = rows(
        db_target,
        "SELECT model, sum(prompts), sum(tokens_output), sum(cost_usd) "
        "FROM usage_daily GROUP BY model HAVING sum(prompts) > 0 ORDER BY 1",
    )
    from_prompts = rows(
        db_target,
        "SELECT model, count(*), sum(tokens_output), coalesce(sum(cost_usd), 0) "
        "FROM prompts GROUP BY model ORDER BY 1",
    )
    assert [row[:3] for row in daily] == [row[:3] for row in from_prompts]
    assert [row[3] for row in daily] == pytest.approx([row[3] for row in from_prompts], abs=1e-12)
    steps = rows(db_target, "SELECT sum(steps), sum(sum_ms) FROM step_histogram_daily")
    assert steps[0][0] == 3  # the deleted run's steps are gone
    assert rows(db_target, "SELECT count(*) FROM agent_logs WHERE log_type = 'step_end'") == [(3,)]
