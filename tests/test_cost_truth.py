"""Cost truth: what the bundle stores as cost equals an independent per-response
computation with genai-prices over the raw data (1-hour cache writes included)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from test_transcripts import fixture_config_dir

from orchestrator import DatabaseManager
from orchestrator.claude_code import import_transcripts


def independent_cost(config_dir: Path) -> tuple[float, int, int]:
    """USD, 1-hour and all cache-write tokens of every response (message.id + requestId
    once, its first line), each priced alone by genai-prices at its own time."""
    seen: set[tuple[Any, Any]] = set()
    usd, one_hour, writes = 0.0, 0, 0
    for path in sorted((config_dir / "projects").rglob("*.jsonl")):
        for raw in path.read_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            message = line.get("message") if isinstance(line, dict) else None
            usage = message.get("usage") if isinstance(message, dict) else None
            if not isinstance(usage, dict) or not isinstance(line.get("timestamp"), str):
                continue
            key = (message.get("id"), line.get("requestId"))
            if None not in key:
                if key in seen:
                    continue
                seen.add(key)
            read = usage.get("cache_read_input_tokens") or 0
            write = usage.get("cache_creation_input_tokens") or 0
            hour = (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0
            one_hour, writes = one_hour + hour, writes + write
            if message.get("model") == "<synthetic>":
                continue
            when = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
            price = calc_price(
                PriceUsage(
                    input_tokens=usage["input_tokens"] + read + write,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                    cache_write_1h_tokens=hour,
                    output_tokens=usage["output_tokens"],
                ),
                message["model"],
                genai_request_timestamp=when,
            )
            usd += float(price.total_price)
    return usd, one_hour, writes


def test_transcript_cost_equals_per_response_genai_prices_to_the_cent(
    tmp_path: Path, db_path: Path
) -> None:
    config = fixture_config_dir(tmp_path)
    import_transcripts([config], db_path=db_path)
    expected_usd, expected_1h, expected_writes = independent_cost(config)
    assert expected_1h > 0  # the fixtures do write 1-hour cache entries
    conn = sqlite3.connect(db_path)
    usd, hour, writes = conn.execute(
        "SELECT sum(cost_usd), sum(tokens_cache_write_1h), sum(tokens_cache_write) FROM prompts"
    ).fetchone()
    daily = conn.execute(
        "SELECT sum(tokens_cache_write_1h), sum(cost_usd) FROM usage_daily"
    ).fetchone()
    assert (hour, writes) == (expected_1h, expected_writes)
    assert round(usd, 2) == round(expected_usd, 2)
    assert daily[0] == expected_1h and daily[1] == pytest.approx(usd)


async def test_a_usage_dict_with_one_hour_writes_is_priced_per_lifetime(db_path: Path) -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 2_000,
        "cache_read_input_tokens": 30_000,
        "cache_creation_input_tokens": 9_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 3_000, "ephemeral_1h_input_tokens": 6_000},
    }
    async with DatabaseManager(db_path) as db, db.agent_run("one-hour") as run:
        prompt = await run.prompt("p", "r", model="claude-sonnet-4-5", usage=usage)
    expected = calc_price(
        PriceUsage(
            input_tokens=10 + 30_000 + 9_000,
            cache_read_tokens=30_000,
            cache_write_tokens=9_000,
            cache_write_1h_tokens=6_000,
            output_tokens=2_000,
        ),
        "claude-sonnet-4-5",
    )
    assert prompt.tokens_cache_write_1h == 6_000
    assert prompt.cost_usd == pytest.approx(float(expected.total_price), rel=1e-9)
    # 6,000 tokens at 2x input instead of 1.25x: $3/M * 0.75 * 6,000 more than 5-minute writes
    five_minute = calc_price(
        PriceUsage(
            input_tokens=39_010,
            cache_read_tokens=30_000,
            cache_write_tokens=9_000,
            output_tokens=2_000,
        ),
        "claude-sonnet-4-5",
    )
    assert prompt.cost_usd - float(five_minute.total_price) == pytest.approx(0.0135)


def test_repair_recomputes_the_one_hour_writes_of_the_daily_summary(
    tmp_path: Path, db_path: Path
) -> None:
    from orchestrator.commands.maintenance import init_database

    import_transcripts([fixture_config_dir(tmp_path)], db_path=db_path)
    by_day = (
        "SELECT substr(created_at, 1, 10) AS day, sum(tokens_cache_write_1h) FROM prompts "
        "GROUP BY 1 ORDER BY 1"
    )
    conn = sqlite3.connect(db_path)
    expected = conn.execute(by_day).fetchall()
    conn.execute("DROP TRIGGER prompts_usage_insert")  # summaries now drift...
    conn.execute("DELETE FROM usage_daily")
    conn.commit()
    result = init_database(db_path)
    assert "prompts_usage_insert" in " ".join(result.repaired)
    daily = conn.execute(
        "SELECT day, sum(tokens_cache_write_1h) FROM usage_daily GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert daily == expected and sum(value for _, value in daily) > 0
