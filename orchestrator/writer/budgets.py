"""Budgets: spend allowed per UTC day and month, for a workflow, a model or a session.

A budget is a row of ``budgets`` (``scope``, ``name``, ``daily_usd``, ``monthly_usd``).
Spend is read from what the schema already keeps: ``usage_daily`` for workflows and
models, the session's prompts for a session. The SQL here is written once for both
backends; :func:`statuses` reads a store (an SQLite file or a server) for the CLI through
its backend, as :func:`set_budget` and :func:`remove_budget` write it, and the writer
(:meth:`DatabaseManager.budget_remaining`, and its warning in ``system_logs`` the first
time a window is crossed, recorded in ``budget_alerts``) runs the same SQL through its
backend.
"""

from __future__ import annotations

import calendar
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..store.backend import Backend

T = TypeVar("T")

SCOPES = ("workflow", "model", "session")

#: Spend of one budget's scope and name between two UTC days (both included).
SPEND_SQL = {
    "workflow": "SELECT coalesce(sum(u.cost_usd), 0) FROM usage_daily u "
    "JOIN orchestrator_agents o ON o.id = u.orchestrator_agent_id "
    "WHERE o.name = ? AND u.day >= ? AND u.day <= ?",
    "model": "SELECT coalesce(sum(cost_usd), 0) FROM usage_daily "
    "WHERE model = ? AND day >= ? AND day <= ?",
    "session": "SELECT coalesce(sum(p.cost_usd), 0) FROM prompts p "
    "JOIN agents a ON a.id = p.agent_id "
    "WHERE a.session_id = ? AND substr(p.created_at, 1, 10) >= ? "
    "AND substr(p.created_at, 1, 10) <= ?",
}
BUDGETS_SQL = "SELECT scope, name, daily_usd, monthly_usd FROM budgets ORDER BY scope, name"
ALERT_SQL = (
    "INSERT INTO budget_alerts (scope, name, period, spent_usd, budget_usd, alerted_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class Budget:
    scope: str
    name: str
    daily_usd: float | None = None
    monthly_usd: float | None = None


@dataclass
class BudgetStatus:
    """A budget with today's and this month's spend."""

    budget: Budget
    spent_today: float
    spent_month: float
    days_elapsed: int  # days of this month so far, today included
    days_in_month: int
    over: list[str] = field(default_factory=list)  # the windows crossed: 'YYYY-MM-DD', 'YYYY-MM'

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent now (the tighter of the two windows); None: no limit."""
        left = [
            limit - spent
            for limit, spent in (
                (self.budget.daily_usd, self.spent_today),
                (self.budget.monthly_usd, self.spent_month),
            )
            if limit is not None
        ]
        return min(left) if left else None

    @property
    def burn_usd_per_day(self) -> float:
        """This month's average spend per day so far."""
        return self.spent_month / self.days_elapsed

    @property
    def month_forecast_usd(self) -> float:
        """This month's spend if the burn rate holds."""
        return self.burn_usd_per_day * self.days_in_month


def windows(now: datetime | None = None) -> tuple[str, str, str, int, int]:
    """(today, first day of the month, the month, days elapsed, days in the month), UTC."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    today = now.strftime("%Y-%m-%d")
    days = calendar.monthrange(now.year, now.month)[1]
    return today, today[:8] + "01", today[:7], now.day, days


def spend_queries(budget: Budget, now: datetime | None = None) -> list[tuple[str, tuple[Any, ...]]]:
    """The two queries (SQL, parameters) giving ``budget``'s spend today and this month."""
    today, first, *_ = windows(now)
    sql = SPEND_SQL[budget.scope]
    return [(sql, (budget.name, today, today)), (sql, (budget.name, first, today))]


def status(
    budget: Budget, spent_today: float, spent_month: float, now: datetime | None = None
) -> BudgetStatus:
    """``budget`` with its spend (from :func:`spend_queries`, on any backend)."""
    today, _, month, elapsed, days = windows(now)
    result = BudgetStatus(budget, spent_today, spent_month, elapsed, days)
    if budget.daily_usd is not None and spent_today > budget.daily_usd:
        result.over.append(today)
    if budget.monthly_usd is not None and spent_month > budget.monthly_usd:
        result.over.append(month)
    return result


def _key_name(scope: str, name: str) -> str:
    """``name`` as stored: redacted, as the workflow names, models and session ids it is
    matched against are (a budget named by a secret is stored, and found, redacted)."""
    from ..core.errors import InvalidInput
    from ..core.redact import redact_text

    if scope not in SCOPES:
        raise InvalidInput("budgets.scope", f"must be one of {list(SCOPES)}, got {scope!r}")
    if not isinstance(name, str) or not name:
        raise InvalidInput("budgets.name", "must be a non-empty string")
    return redact_text(name)


def validate(scope: str, name: str, daily: float | None, monthly: float | None) -> Budget:
    """The budget, or InvalidInput naming the field: a limit is a finite amount of USD
    above 0 (an infinite one is no budget: leave it out, or remove the budget)."""
    from ..core.errors import InvalidInput

    name = _key_name(scope, name)
    for field_name, value in (("daily_usd", daily), ("monthly_usd", monthly)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value < math.inf
        ):
            raise InvalidInput(
                f"budgets.{field_name}", f"must be a finite number of USD above 0, got {value!r}"
            )
    if daily is None and monthly is None:
        raise InvalidInput("budgets.daily_usd", "give a daily or a monthly budget (or both)")
    return Budget(scope, name, daily, monthly)


def set_budget(
    path: str | os.PathLike[str],
    scope: str,
    name: str,
    *,
    daily_usd: float | None = None,
    monthly_usd: float | None = None,
) -> Budget:
    """Create or replace the budget of ``scope`` ``name``. Raises InvalidInput (nothing
    written), FileNotFoundError when there is no database (``orchestrator init``)."""
    from ..core.ids import utc_now

    budget = validate(scope, name, daily_usd, monthly_usd)
    sql = (
        "INSERT INTO budgets (scope, name, daily_usd, monthly_usd, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, name) DO UPDATE SET "
        "daily_usd = excluded.daily_usd, monthly_usd = excluded.monthly_usd, "
        "updated_at = excluded.updated_at"
    )
    params = (scope, budget.name, daily_usd, monthly_usd, utc_now())
    _on_store(path, lambda store: store.execute(sql, params), hint=_CREATE_ONE)
    return budget


def remove_budget(path: str | os.PathLike[str], scope: str, name: str) -> bool:
    """Delete the budget of ``scope`` ``name``; False when there was none (nothing
    changed). Its alerts stay in ``budget_alerts`` and ``system_logs``, as history.
    Raises InvalidInput for an unknown scope, FileNotFoundError when there is no
    database."""
    name = _key_name(scope, name)
    sql = "DELETE FROM budgets WHERE scope = ? AND name = ?"
    return bool(_on_store(path, lambda store: store.execute(sql, (scope, name)), hint=_CREATE_ONE))


def statuses(path: str | os.PathLike[str], now: datetime | None = None) -> list[BudgetStatus]:
    """Every budget of the store at ``path`` (an SQLite file or a URL) with its spend
    today and this month. Raises FileNotFoundError when there is no database."""

    async def read(store: Backend) -> list[BudgetStatus]:
        found = []
        listed = [Budget(*row.values()) for row in await store.fetchall(BUDGETS_SQL)]
        for budget in sorted(listed, key=lambda one: (one.scope, one.name)):  # any collation
            today, month = [
                float(next(iter(row.values())) if row else 0)
                for sql, params in spend_queries(budget, now)
                for row in [await store.fetchone(sql, params)]
            ]
            found.append(status(budget, today, month, now))
        return found

    return _on_store(path, read, read_only=True)


#: What a command that changes budgets says after "no database at PATH".
_CREATE_ONE = ": `orchestrator init` creates one"


def _on_store(
    path: str | os.PathLike[str],
    work: Callable[[Backend], Awaitable[T]],
    *,
    read_only: bool = False,
    hint: str = "",
) -> T:
    """``work`` done on the store at ``path`` (an SQLite file, in this thread, or a server),
    opened for it: migrated first; ``read_only``, a file this process cannot write is read
    (its schema only checked). Raises FileNotFoundError (``no database at PATH`` and
    ``hint``) when there is no file: no database is created to change nothing in."""
    from ..store.backend import run_blocking
    from ..store.targets import backend_for

    store = backend_for(path, in_thread=True, read_only=read_only)
    absent = store.missing()
    if absent:
        raise FileNotFoundError(absent + hint)

    async def run() -> T:
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return run_blocking(store, run())
