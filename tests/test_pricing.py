"""Cost: reported as given, else computed from prices with cache rates, else unpriced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from backends import Target, execute, rows
from genai_prices import Usage, calc_price
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator import DatabaseManager, compute_cost
from orchestrator.core import pricing

ROOT = Path(__file__).resolve().parents[1]

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


#: Models whose price changes on a date (claude-opus-4-6: its long-context tier ends on
#: 2026-03-13; gemini-3-pro-preview: a new price from 2026-01-05).
DATED = ["claude-opus-4-6", "claude-sonnet-4-6", "gemini-3-pro-preview"]
ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=-5))])
WHEN = (
    st.none()
    | st.datetimes(datetime(2023, 1, 1), datetime(2027, 6, 1), timezones=ZONES)
    # within a day of the price changes
    | st.sampled_from([datetime(2026, 3, 13), datetime(2026, 1, 5)]).flatmap(
        lambda day: st.datetimes(day - timedelta(days=1), day + timedelta(days=1), timezones=ZONES)
    )
)


def genai_prices_cost(
    model: str,
    when: datetime | None,
    tokens_input: int = 0,
    tokens_output: int = 0,
    tokens_cache_read: int = 0,
    tokens_cache_write: int = 0,
) -> float:
    """What genai-prices itself says a call costs, asked directly."""
    total_input = tokens_input + tokens_cache_read + tokens_cache_write
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            calc_price(
                Usage(
                    input_tokens=total_input,
                    cache_read_tokens=tokens_cache_read,
                    cache_write_tokens=tokens_cache_write,
                    output_tokens=tokens_output,
                ),
                model,
                genai_request_timestamp=when,
            ).total_price
        )


def boundary(model: str, when: datetime) -> Any:
    """An example on one side of a price change: 300k input tokens, past the old tier."""
    return example(model, when, 250_000, 1_000, 40_000, 10_000)


@settings(max_examples=300, deadline=None)
@boundary("claude-opus-4-6", datetime(2026, 3, 12, 23, 59, tzinfo=timezone.utc))
@boundary("claude-opus-4-6", datetime(2026, 3, 13, 0, 0, tzinfo=timezone.utc))
@boundary("claude-sonnet-4-6", datetime(2026, 3, 12, 20, 0, tzinfo=timezone(timedelta(hours=-5))))
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
            *DATED,
        ]
    ),
    when=WHEN,
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
    expected = genai_prices_cost(
        model, when, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write
    )
    got = compute_cost(
        model,
        tokens_input=tokens_input,
        tokens_output=tokens_output,
        tokens_cache_read=tokens_cache_read,
        tokens_cache_write=tokens_cache_write,
        when=when,
    )
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


# -- the rates cache on disk ---------------------------------------------------------------

CALL = st.tuples(
    st.sampled_from(["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "acme-llm-9000", *DATED]),
    WHEN,
    st.integers(0, 400_000),
    st.integers(0, 64_000),
    st.integers(0, 400_000),
    st.integers(0, 100_000),
)


def costs(calls: list[tuple[str, datetime | None, int, int, int, int]]) -> list[float | None]:
    return [
        compute_cost(
            model,
            tokens_input=tokens_input,
            tokens_output=tokens_output,
            tokens_cache_read=tokens_cache_read,
            tokens_cache_write=tokens_cache_write,
            when=when,
        )
        for model, when, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write in calls
    ]


def forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process's state: no rates in memory (the disk cache is read again)."""
    monkeypatch.setattr(pricing, "_memory", {})
    monkeypatch.setattr(pricing, "_disk", None)


@settings(max_examples=40, deadline=None)
@example(
    [
        ("claude-opus-4-6", datetime(2026, 3, d, tzinfo=timezone.utc), 300_000, 0, 0, 0)
        for d in (12, 13)
    ]
)
@given(calls=st.lists(CALL, min_size=1, max_size=20))
def test_rates_cached_on_disk_give_the_same_costs_cold_and_warm(
    calls: list[tuple[str, datetime | None, int, int, int, int]],
) -> None:
    """Cold (asked of genai-prices, then written) and warm (read back from the file, with
    genai-prices never asked) give identical costs, equal to genai-prices' own."""
    with tempfile.TemporaryDirectory() as cache, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("XDG_CACHE_HOME", cache)
        forget(monkeypatch)
        cold = costs(calls)
        assert list(Path(cache, "adw-orchestrator").glob("rates-*.json"))
        forget(monkeypatch)

        def asked(model: str, provider: str | None) -> None:
            raise AssertionError(f"genai-prices asked about {model} with the cache warm")

        monkeypatch.setattr(pricing, "_ask_genai_prices", asked)
        warm = costs(calls)
    assert warm == cold
    for call, cost in zip(calls, cold, strict=True):
        model, when, *tokens = call
        if model == "acme-llm-9000":
            assert cost is None
        else:
            assert cost == pytest.approx(genai_prices_cost(model, when, *tokens), rel=1e-12)


def test_a_process_with_its_rates_cached_never_imports_genai_prices(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "from orchestrator.core.pricing import compute_cost\n"
        "when = datetime(2026, 3, 1, tzinfo=timezone.utc)\n"
        "cost = [compute_cost(m, tokens_input=250_000, tokens_output=9, when=when)\n"
        "        for m in ('claude-opus-4-6', 'acme-llm-9000')]\n"
        "print(repr(cost), 'genai_prices' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    cold, warm = run(), run()
    costs = repr([genai_prices_cost("claude-opus-4-6", datetime(2026, 3, 1), 250_000, 9), None])
    assert cold == f"{costs} True"
    assert warm == f"{costs} False"


def test_another_genai_prices_version_does_not_reuse_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    forget(monkeypatch)
    when = datetime(2026, 5, 1, tzinfo=timezone.utc)
    compute_cost("claude-sonnet-4-5", tokens_input=10, when=when)
    [written] = (tmp_path / "adw-orchestrator").glob("rates-*.json")
    assert json.loads(written.read_text())["genai_prices"] == version("genai-prices")

    asked: list[str] = []
    ask = pricing._ask_genai_prices

    def counted(model: str, provider: str | None) -> pricing._Prices | None:
        asked.append(model)
        return ask(model, provider)

    monkeypatch.setattr(pricing, "_ask_genai_prices", counted)
    monkeypatch.setattr(pricing, "GENAI_PRICES_VERSION", "99.0.0")
    forget(monkeypatch)
    compute_cost("claude-sonnet-4-5", tokens_input=10, when=when)
    assert asked == ["claude-sonnet-4-5"]  # a file of its own, asked again
    assert (tmp_path / "adw-orchestrator" / "rates-genai-prices-99.0.0.json").exists()

    # The old version's entries under the new version's name: still not taken as its own.
    written.replace(tmp_path / "adw-orchestrator" / "rates-genai-prices-99.0.0.json")
    forget(monkeypatch)
    compute_cost("claude-sonnet-4-5", tokens_input=10, when=when)
    assert asked == ["claude-sonnet-4-5"] * 2


def test_a_cache_that_cannot_be_written_or_read_only_costs_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = genai_prices_cost("claude-haiku-4-5", None, 1_000, 20)
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    forget(monkeypatch)
    assert compute_cost("claude-haiku-4-5", tokens_input=1_000, tokens_output=20) == expected

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    forget(monkeypatch)
    compute_cost("claude-haiku-4-5", tokens_input=1_000, tokens_output=20)
    [written] = (tmp_path / "adw-orchestrator").glob("rates-*.json")
    for garbage in ("{", '{"format": 1, "genai_prices": "%s", "models": [{"model": 3}]}'):
        written.write_text(garbage % version("genai-prices") if "%s" in garbage else garbage)
        forget(monkeypatch)
        assert compute_cost("claude-haiku-4-5", tokens_input=1_000, tokens_output=20) == expected


def test_the_installed_version_is_read_as_importlib_metadata_reads_it() -> None:
    assert pricing._installed_version() == version("genai-prices")
    expected = f"genai-prices {version('genai-prices')}"
    assert expected == pricing.PRICED_WITH


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


def test_threads_pricing_new_models_at_once_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    models = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o", "acme-llm-9000", *DATED]
    calls = [
        (m, datetime(2026, 3, d, tzinfo=timezone.utc), 300_000, 9, 0, 0)
        for m in models
        for d in (12, 13)
    ]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    forget(monkeypatch)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: costs(calls), range(16)))
    forget(monkeypatch)
    assert answers == [costs(calls)] * 16
    [written] = (tmp_path / "adw-orchestrator").glob("rates-*.json")
    assert len(json.loads(written.read_text())["models"]) == len(models)
