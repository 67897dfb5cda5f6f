"""Cost of a model call, from genai-prices: the project's one source of prices.

Tokens arrive in Anthropic's convention (``tokens_input`` excludes cache
tokens). genai-prices counts cache reads and writes *inside* ``input_tokens``
and prices the cached part at the cache rates, so the three are summed before
asking it. A model genai-prices does not know gets no price (``None``), never
a silent 0.
"""

from __future__ import annotations

import bisect
import functools
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from genai_prices import Usage as _PriceUsage
from genai_prices import calc_price
from genai_prices.types import TieredPrices, TimeOfDateConstraint

from .models import CostSource

PRICED_WITH = f"genai-prices {version('genai-prices')}"

# Model names that are not real API calls and cost nothing by definition
# (Claude Code writes "<synthetic>" for messages it made up itself).
FREE_MODELS = frozenset({"<synthetic>"})


@dataclass(frozen=True)
class Cost:
    """What a call cost and where that figure came from."""

    cost_usd: float | None
    source: CostSource
    computed_usd: float | None
    priced_with: str | None
    cache_savings_usd: float | None = None  # uncached price minus computed price


# Price keys that cost something even at zero tokens: such models are priced call by call.
# (Other units, e.g. web searches, are multiplied by a usage we never report: zero.)
_FIXED_FEES = frozenset({"requests_kcount"})


@dataclass(frozen=True)
class _Rates:
    """USD per token of one model in one price tier, as genai-prices computes them."""

    tier_starts: tuple[int, ...]  # input-token thresholds where the tier changes
    # in, read, write (5 minutes), write (1 hour), out
    by_tier: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]]


def _calc(model: str, provider: str | None, when: datetime | None, **tokens: int) -> Any:
    usage = _PriceUsage(**tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)


@functools.lru_cache(maxsize=4096)
def _rates(model: str, provider: str | None, day: date | None) -> _Rates | None:
    """Per-token rates asked of genai-prices, or None when the model has a fixed fee per
    request, so that its price is not linear in the token counts: priced call by call.

    calc_price costs about half a millisecond; a price is linear in each token count
    within a tier (tiers switch on total input tokens), so asking genai-prices once per
    tier and multiplying gives its answer for a fraction of the time. Prices that start on
    a date apply from that UTC day on, so rates are kept per day (``None``: today); a model
    whose price changes with the time of day is priced call by call too.
    """
    when = None if day is None else datetime.combine(day, time(12), tzinfo=timezone.utc)
    probe = _calc(model, provider, when, input_tokens=1)
    conditional = probe.model.prices if isinstance(probe.model.prices, list) else []
    if any(isinstance(p.constraint, TimeOfDateConstraint) for p in conditional):
        return None
    prices = {k: v for k, v in vars(probe.model_price).items() if v is not None}
    if _FIXED_FEES & set(prices):
        return None
    starts = sorted(
        {
            tier.start
            for value in prices.values()
            if isinstance(value, TieredPrices)
            for tier in value.tiers
        }
    )
    by_tier = {}
    for index in range(len(starts) + 1):
        n = 1 if index == 0 else starts[index - 1] + 1  # a total input inside the tier
        base = Decimal(str(_calc(model, provider, when, input_tokens=n).total_price))
        read = Decimal(
            str(_calc(model, provider, when, input_tokens=n, cache_read_tokens=n).total_price)
        )
        write = Decimal(
            str(_calc(model, provider, when, input_tokens=n, cache_write_tokens=n).total_price)
        )
        write_1h = Decimal(
            str(
                _calc(
                    model,
                    provider,
                    when,
                    input_tokens=n,
                    cache_write_tokens=n,
                    cache_write_1h_tokens=n,
                ).total_price
            )
        )
        out = Decimal(
            str(_calc(model, provider, when, input_tokens=n, output_tokens=1_000_000).total_price)
        )
        by_tier[index] = (base / n, read / n, write / n, write_1h / n, (out - base) / 1_000_000)
    return _Rates(tuple(starts), by_tier)


def _price(
    model: str,
    provider: str | None,
    tokens_input: int,
    tokens_output: int,
    tokens_cache_read: int,
    tokens_cache_write: int,
    tokens_cache_write_1h: int,
    when: datetime | None,
    base_tier: bool = False,
) -> float | None:
    if model in FREE_MODELS:
        return 0.0
    total_input = tokens_input + tokens_cache_read + tokens_cache_write
    try:
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)  # naive means UTC, as for genai-prices
        day = None if when is None else when.astimezone(timezone.utc).date()
        rates = _rates(model, provider, day)
        if rates is None or (not base_tier and total_input in rates.tier_starts):
            result = _calc(
                model,
                provider,
                when,
                input_tokens=total_input,
                cache_read_tokens=tokens_cache_read,
                cache_write_tokens=tokens_cache_write,
                cache_write_1h_tokens=tokens_cache_write_1h,
                output_tokens=tokens_output,
            )
            return float(result.total_price)
    except LookupError:
        return None
    tier = 0 if base_tier else bisect.bisect_left(rates.tier_starts, total_input)
    rate_in, rate_read, rate_write, rate_write_1h, rate_out = rates.by_tier[tier]
    return float(
        rate_in * tokens_input
        + rate_read * tokens_cache_read
        + rate_write * (tokens_cache_write - tokens_cache_write_1h)
        + rate_write_1h * tokens_cache_write_1h
        + rate_out * tokens_output
    )


def compute_cost(
    model: str | None,
    *,
    tokens_input: int = 0,
    tokens_output: int = 0,
    tokens_cache_read: int = 0,
    tokens_cache_write: int = 0,
    tokens_cache_write_1h: int = 0,
    provider: str | None = None,
    when: datetime | None = None,
    base_tier: bool = False,
) -> float | None:
    """USD for one call (one request: long-context tiers apply to its own input) from
    prices, or ``None`` when the model has no known price. ``tokens_cache_write_1h`` is
    the part of ``tokens_cache_write`` cached for an hour.

    ``base_tier=True`` prices the tokens at the lowest tier whatever their total: for
    tokens summed over several requests of unknown sizes (e.g. Claude Code's
    ``modelUsage``), where the sum's size says nothing of any one request's. That figure
    is approximate when a request did pass a tier's threshold."""
    if not model:
        return None
    return _price(
        model,
        provider,
        tokens_input,
        tokens_output,
        tokens_cache_read,
        tokens_cache_write,
        min(tokens_cache_write_1h, tokens_cache_write),
        when,
        base_tier,
    )


def resolve_cost(
    model: str | None,
    *,
    reported_usd: float | None,
    provider: str | None = None,
    when: datetime | None = None,
    base_tier: bool = False,
    **tokens: int,
) -> Cost:
    """The cost to store: as reported when given, else from prices, else unpriced.

    ``tokens`` are :func:`compute_cost`'s token counts (``base_tier``: see there). The
    price-based figure is
    computed either way and kept beside a reported one, so the two can be compared
    (and history re-priced later).
    """
    computed = compute_cost(model, provider=provider, when=when, base_tier=base_tier, **tokens)
    priced_with = PRICED_WITH if computed is not None else None
    savings = None
    if computed is not None:
        every_input = sum(
            tokens.get(key, 0)
            for key in ("tokens_input", "tokens_cache_read", "tokens_cache_write")
        )
        uncached = compute_cost(
            model,
            tokens_input=every_input,
            tokens_output=tokens.get("tokens_output", 0),
            provider=provider,
            when=when,
            base_tier=base_tier,
        )
        savings = None if uncached is None else uncached - computed
    if reported_usd is not None:
        return Cost(reported_usd, CostSource.REPORTED, computed, priced_with, savings)
    if computed is not None:
        return Cost(computed, CostSource.COMPUTED, computed, priced_with, savings)
    return Cost(None, CostSource.UNPRICED, None, None)
