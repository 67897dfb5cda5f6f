"""Cost of a model call, from genai-prices: the project's one source of prices.

Tokens arrive in Anthropic's convention (``tokens_input`` excludes cache
tokens). genai-prices counts cache reads and writes *inside* ``input_tokens``
and prices the cached part at the cache rates, so the three are summed before
asking it. A model genai-prices does not know gets no price (``None``), never
a silent 0.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

from genai_prices import Usage as _PriceUsage
from genai_prices import calc_price

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


@functools.lru_cache(maxsize=4096)
def _price(
    model: str,
    provider: str | None,
    tokens_input: int,
    tokens_output: int,
    tokens_cache_read: int,
    tokens_cache_write: int,
    when: datetime | None,
) -> float | None:
    if model in FREE_MODELS:
        return 0.0
    usage = _PriceUsage(
        input_tokens=tokens_input + tokens_cache_read + tokens_cache_write,
        cache_read_tokens=tokens_cache_read,
        cache_write_tokens=tokens_cache_write,
        output_tokens=tokens_output,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
    except LookupError:
        return None
    return float(result.total_price)


def compute_cost(
    model: str | None,
    *,
    tokens_input: int = 0,
    tokens_output: int = 0,
    tokens_cache_read: int = 0,
    tokens_cache_write: int = 0,
    provider: str | None = None,
    when: datetime | None = None,
) -> float | None:
    """USD for one call from prices, or ``None`` when the model has no known price."""
    if not model:
        return None
    return _price(
        model, provider, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, when
    )


def resolve_cost(
    model: str | None,
    *,
    reported_usd: float | None,
    tokens_input: int = 0,
    tokens_output: int = 0,
    tokens_cache_read: int = 0,
    tokens_cache_write: int = 0,
    provider: str | None = None,
    when: datetime | None = None,
) -> Cost:
    """The cost to store: as reported when given, else from prices, else unpriced.

    The price-based figure is computed either way and kept beside a reported
    one, so the two can be compared (and history re-priced later).
    """
    computed = compute_cost(
        model,
        tokens_input=tokens_input,
        tokens_output=tokens_output,
        tokens_cache_read=tokens_cache_read,
        tokens_cache_write=tokens_cache_write,
        provider=provider,
        when=when,
    )
    priced_with = PRICED_WITH if computed is not None else None
    if reported_usd is not None:
        return Cost(reported_usd, CostSource.REPORTED, computed, priced_with)
    if computed is not None:
        return Cost(computed, CostSource.COMPUTED, computed, priced_with)
    return Cost(None, CostSource.UNPRICED, None, None)
