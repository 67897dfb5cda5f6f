"""Cost of a model call, from genai-prices: the project's one source of prices.

Tokens arrive in Anthropic's convention (``tokens_input`` excludes cache
tokens). genai-prices counts cache reads and writes *inside* ``input_tokens``
and prices the cached part at the cache rates, so the three are summed before
asking it. A model genai-prices does not know gets no price (``None``), never
a silent 0.

Asking genai-prices is slow to start (importing it and its price data costs a
process about 0.1 s) and to answer (half a millisecond a price), so what it
answers is kept: per-token rates per model and price period, in memory and on
disk (``$XDG_CACHE_HOME/adw-orchestrator/rates-genai-prices-<version>.json``,
one file per installed genai-prices version). A process whose models are all
in that file never imports genai-prices; deleting the file only costs time.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from .columns import CostSource


def _installed_version(distribution: str = "genai_prices") -> str:
    """The installed version of ``distribution``, as ``importlib.metadata.version`` says.

    Read from its ``.dist-info`` folder's METADATA, found the way importlib.metadata
    finds it (the first ``sys.path`` folder holding one): importing importlib.metadata
    costs a process about 25 ms. Anything less plain (an ``.egg-info``, a zip on the
    path, two candidates in one folder) is left to importlib.metadata.
    """
    for entry in sys.path:
        folder = entry or "."
        if os.path.isfile(folder):  # a zip: importlib.metadata looks inside
            break
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found = [
            name
            for name in names
            if name.lower().endswith((".dist-info", ".egg-info"))
            and re.sub(r"[-_.]+", "_", name.rpartition(".")[0].partition("-")[0]).lower()
            == distribution
        ]
        if not found:
            continue
        if len(found) == 1 and found[0].lower().endswith(".dist-info"):
            try:
                with open(os.path.join(folder, found[0], "METADATA"), encoding="utf-8") as meta:
                    for line in meta:
                        if not line.strip():
                            break  # the end of the headers
                        key, _, value = line.partition(":")
                        if key.strip().lower() == "version" and value.strip():
                            return value.strip()
            except OSError:
                pass
        break
    from importlib.metadata import version

    return version(distribution)


GENAI_PRICES_VERSION = _installed_version()
PRICED_WITH = f"genai-prices {GENAI_PRICES_VERSION}"

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

#: The rates cache's layout: a change of how rates are derived is a new number.
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class _Rates:
    """USD per token of one model in one price tier, as genai-prices computes them."""

    tier_starts: tuple[int, ...]  # input-token thresholds where the tier changes
    # in, read, write (5 minutes), write (1 hour), out
    by_tier: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]]


@dataclass(frozen=True)
class _Prices:
    """A model's rates in each period between its price changes (genai-prices picks a
    price by the request's UTC day: the last one whose start day has come)."""

    starts: tuple[date, ...]  # the UTC days a new price starts, ascending
    periods: tuple[_Rates | None, ...]  # one more than starts; None: priced call by call

    def rates(self, day: date) -> _Rates | None:
        return self.periods[bisect.bisect_right(self.starts, day)]


def _calc(model: str, provider: str | None, when: datetime | None, **tokens: int) -> Any:
    from genai_prices import Usage, calc_price

    usage = Usage(**tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)


def _ask_genai_prices(model: str, provider: str | None) -> _Prices | None:
    """A model's per-token rates in each of its price periods, asked of genai-prices, or
    None when it does not know the model.

    calc_price costs about half a millisecond; a price is linear in each token count
    within a tier (tiers switch on total input tokens), so asking genai-prices once per
    tier and multiplying gives its answer for a fraction of the time. A price that starts
    on a date applies from that UTC day on, so the rates are asked once per period
    between such days. A model whose price changes with the time of day (or under a
    condition this code does not know), or that has a fixed fee per request, so that its
    price is not linear in the token counts, is priced call by call (None rates).
    """
    from genai_prices.types import StartDateConstraint

    try:
        model_info = _calc(model, provider, None, input_tokens=1).model
    except LookupError:
        return None
    conditional = model_info.prices if isinstance(model_info.prices, list) else []
    constraints = [p.constraint for p in conditional if p.constraint is not None]
    if not all(isinstance(c, StartDateConstraint) for c in constraints):
        return _Prices((), (None,))
    starts = tuple(sorted({c.start_date for c in constraints}))
    # A day in each period: the day before the first start, then each start day.
    days = [starts[0] - timedelta(days=1) if starts else date(2000, 1, 1), *starts]
    periods = tuple(
        _ask_rates(model, provider, datetime.combine(day, time(12), tzinfo=timezone.utc))
        for day in days
    )
    return _Prices(starts, periods)


def _ask_rates(model: str, provider: str | None, when: datetime) -> _Rates | None:
    """The per-tier rates genai-prices charges at ``when`` (see :func:`_ask_genai_prices`)."""
    from genai_prices.types import TieredPrices

    probe = _calc(model, provider, when, input_tokens=1)
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


# -- the cache of what genai-prices answered ------------------------------------------

#: (model, provider, snapshot) -> its prices, None for a model genai-prices does not know.
#: The snapshot is 0 for genai-prices' own price data, else the id() of the data set with
#: ``genai_prices.data_snapshot.set_custom_snapshot`` (then the disk is not used).
_memory: dict[tuple[str, str | None, int], _Prices | None] = {}
#: The disk cache's entries, once read: (model, provider) -> what it keeps for them.
_disk: dict[tuple[str, str | None], dict[str, Any]] | None = None


def _snapshot() -> int:
    """0 while genai-prices uses its own price data (always, until it is imported)."""
    module = sys.modules.get("genai_prices.data_snapshot")
    custom = getattr(module, "_custom_snapshot", None) if module is not None else None
    return 0 if custom is None else id(custom)


def _prices(model: str, provider: str | None) -> _Prices | None:
    """What genai-prices charges for ``model``: from memory, else disk, else asked."""
    key = (model, provider, _snapshot())
    try:
        return _memory[key]
    except KeyError:
        pass
    with _missing:
        if key not in _memory:
            _memory[key] = _look_up(model, provider, bundled=key[2] == 0)
        return _memory[key]


#: Held while a model missing from memory is looked up: asked and written once, and the
#: disk cache's entries never change under a thread writing them.
_missing = threading.Lock()


def _look_up(model: str, provider: str | None, bundled: bool) -> _Prices | None:
    """A model's prices from the disk cache, else asked of genai-prices and written there
    (prices from a custom snapshot are neither read nor written)."""
    global _disk
    if not bundled:
        return _ask_genai_prices(model, provider)
    if _disk is None:
        _disk = _read_cache()
    entry = _disk.get((model, provider))
    if entry is not None:
        try:
            return _decoded(entry)
        except (ArithmeticError, AttributeError, KeyError, TypeError, ValueError):
            pass  # not what this code writes: asked again, below
    prices = _ask_genai_prices(model, provider)
    _disk[(model, provider)] = _encoded(model, provider, prices)
    _write_cache(_disk)
    return prices


def _cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    version = re.sub(r"[^A-Za-z0-9.+-]", "_", GENAI_PRICES_VERSION)
    return os.path.join(base, "adw-orchestrator", f"rates-genai-prices-{version}.json")


def _read_cache() -> dict[tuple[str, str | None], dict[str, Any]]:
    """The entries of the disk cache written for this genai-prices version, or none."""
    try:
        with open(_cache_file(), encoding="utf-8") as handle:
            data = json.load(handle)
        if data["format"] != _CACHE_FORMAT or data["genai_prices"] != GENAI_PRICES_VERSION:
            return {}
        return {(entry["model"], entry["provider"]): entry for entry in data["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_cache(entries: dict[tuple[str, str | None], dict[str, Any]]) -> None:
    """Best effort, atomically: a cache that cannot be written only costs time. Entries
    another process wrote meanwhile are kept."""
    path = _cache_file()
    every = {**_read_cache(), **entries}
    data = {
        "format": _CACHE_FORMAT,
        "genai_prices": GENAI_PRICES_VERSION,
        "models": list(every.values()),
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(partial, path)  # readers see the whole file or none
    except OSError:
        pass


def _encoded(model: str, provider: str | None, prices: _Prices | None) -> dict[str, Any]:
    """A JSON entry; Decimals as text, which gives them back exactly."""
    entry: dict[str, Any] = {"model": model, "provider": provider, "known": prices is not None}
    if prices is None:
        return entry
    return {
        **entry,
        "starts": [day.isoformat() for day in prices.starts],
        "periods": [
            None
            if rates is None
            else {
                "tier_starts": list(rates.tier_starts),
                "by_tier": [
                    [str(rate) for rate in rates.by_tier[i]] for i in range(len(rates.by_tier))
                ],
            }
            for rates in prices.periods
        ],
    }


def _decoded(entry: dict[str, Any]) -> _Prices | None:
    if not entry["known"]:
        return None
    starts = tuple(date.fromisoformat(day) for day in entry["starts"])
    periods = tuple(
        None
        if period is None
        else _Rates(
            tuple(int(start) for start in period["tier_starts"]),
            {
                index: _five(Decimal(rate) for rate in rates)
                for index, rates in enumerate(period["by_tier"])
            },
        )
        for period in entry["periods"]
    )
    if len(periods) != len(starts) + 1 or any(
        rates is not None and len(rates.by_tier) != len(rates.tier_starts) + 1 for rates in periods
    ):
        raise ValueError("not a cache entry")
    return _Prices(starts, periods)


def _five(rates: Any) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    a, b, c, d, e = rates
    if not all(rate.is_finite() for rate in (a, b, c, d, e)):
        raise ValueError("not a rate")
    return a, b, c, d, e


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
        prices = _prices(model, provider)
        if prices is None:
            return None  # a model genai-prices does not know
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)  # naive means UTC, as for genai-prices
        day = (datetime.now(timezone.utc) if when is None else when).astimezone(timezone.utc)
        rates = prices.rates(day.date())
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
