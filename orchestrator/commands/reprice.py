"""Re-pricing: recompute stored costs with the installed price data.

When genai-prices is updated (a price changes, a model is added), the costs
computed at write time can be recomputed: :func:`reprice` prices every prompt
again at its own time, records which price data priced it (``priced_with``),
keeps a reported cost as reported (only the computed figure beside it moves),
and turns unpriced prompts of a model that now has a price into priced ones.
The summaries and run totals follow through the schema's triggers, so every
report stays true. The change is one transaction; ``dry_run`` rolls it back. An SQLite
file or a PostgreSQL store (``postgresql://`` URL), through the same SQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..core.ids import parse_timestamp
from ..core.models import CostSource
from ..core.pricing import PRICED_WITH, resolve_cost
from ..core.rows import RECONCILIATION
from ..store.backend import Backend, run_blocking
from ..store.targets import backend_for

BATCH = 5_000


@dataclass
class ModelChange:
    """One model's cost before and after (USD over its prompts in the range)."""

    prompts: int = 0
    changed: int = 0  # prompts whose stored figures moved
    old_usd: float = 0.0
    new_usd: float = 0.0
    newly_priced: int = 0  # unpriced before, priced now

    @property
    def difference_usd(self) -> float:
        return self.new_usd - self.old_usd


@dataclass
class RepriceResult:
    """What :func:`reprice` changed (or would change, with ``dry_run``)."""

    priced_with: str
    dry_run: bool
    by_model: dict[str, ModelChange] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(change.changed for change in self.by_model.values())


_TOKENS = (
    "tokens_input",
    "tokens_output",
    "tokens_cache_read",
    "tokens_cache_write",
    "tokens_cache_write_1h",
)


def reprice(
    db_path: str | os.PathLike[str],
    *,
    since: str | None = None,
    model: str | None = None,
    dry_run: bool = False,
) -> RepriceResult:
    """Recompute the computed cost of every prompt created on or after ``since`` (a day,
    ``YYYY-MM-DD``) whose model is ``model`` (default: all), with today's price data."""
    where, params = ["1 = 1"], []
    if since is not None:
        parse_timestamp(since)  # raises ValueError for a bad day
        where.append("created_at >= ?")
        params.append(since)
    if model is not None:
        where.append("coalesce(model, 'unknown') = ?")
        params.append(model)
    result = RepriceResult(PRICED_WITH, dry_run)
    db = backend_for(db_path, in_thread=True)
    run_blocking(db, _reprice(db, where, params, result))
    return result


async def _reprice(db: Backend, where: list[str], params: list[Any], result: RepriceResult) -> None:
    """Reprice the prompts matching ``where`` in one transaction (rolled back on a dry run),
    read BATCH at a time in id order (memory stays flat)."""
    if await db.identity() is None:
        raise FileNotFoundError(f"no database at {db.location}: `orchestrator init` creates one")
    await db.open()
    try:
        async with db.transaction():
            after = ""
            while True:
                batch = await db.fetchall(
                    f"SELECT id, model, created_at, cost_usd, cost_source, cost_computed_usd, "
                    f"cache_savings_usd, priced_with, content LIKE '{RECONCILIATION}%' AS summed, "
                    f"{', '.join(_TOKENS)} FROM prompts "
                    f"WHERE {' AND '.join(where)} AND id > ? ORDER BY id LIMIT {BATCH}",
                    [*params, after],
                )
                if not batch:
                    break
                after = batch[-1]["id"]
                updates = [_repriced(tuple(row.values()), result) for row in batch]
                changed = [update for update in updates if update is not None]
                if changed:
                    await db.executemany(
                        "UPDATE prompts SET cost_usd = ?, cost_source = ?, "
                        "cost_computed_usd = ?, cache_savings_usd = ?, priced_with = ? "
                        "WHERE id = ?",
                        changed,
                    )
            if result.dry_run:
                raise _DryRun
    except _DryRun:
        pass  # rolled back
    finally:
        await db.close()


class _DryRun(Exception):
    """Raised to roll a dry run's changes back."""


def _repriced(row: tuple[Any, ...], result: RepriceResult) -> tuple[Any, ...] | None:
    (
        prompt_id,
        model,
        created_at,
        cost,
        source,
        computed,
        savings,
        priced_with,
        summed,
        *tokens,
    ) = row
    reported = cost if source == CostSource.REPORTED.value else None
    new = resolve_cost(
        model,
        reported_usd=reported,
        when=parse_timestamp(created_at),
        base_tier=bool(summed),  # a sum of requests (see rows.PromptFields.base_tier)
        **dict(zip(_TOKENS, tokens, strict=True)),
    )
    change = result.by_model.setdefault(model or "unknown", ModelChange())
    change.prompts += 1
    change.old_usd += cost or 0.0
    change.new_usd += new.cost_usd or 0.0
    values = (new.cost_usd, new.source.value, new.computed_usd, new.cache_savings_usd)
    if values == (cost, source, computed, savings) and new.priced_with == priced_with:
        return None
    change.changed += 1
    if source == CostSource.UNPRICED.value and new.source != CostSource.UNPRICED:
        change.newly_priced += 1
    return (*values, new.priced_with, prompt_id)
