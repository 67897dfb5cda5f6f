"""Run-history analysis as pandas DataFrames, for the notebooks and anyone with a REPL.

Every function takes a database, an SQLite path or a ``postgresql://`` URL (``None``:
``$ORCHESTRATOR_DB``, else ``./orchestrator.db``), and returns a small, aggregated
DataFrame: it runs canned reports of ``metadata.yml`` (the one home of their SQL)
through :func:`orchestrator.reports.canned.run_report` and reshapes them in pandas. Aggregation
happens in the reports' SQL, except the per-run statistics (duration percentiles, cost
anomalies): medians over every run are too slow in SQLite, so pandas computes them from
the ``runs`` report, one row per run. Nothing here loads the ``prompts`` or
``agent_logs`` tables, so it stays fast on millions of rows.

Databases are read in read-only transactions (after migrating, like every opener); on
PostgreSQL the reports run translated (:mod:`orchestrator.reports.postgres`). Days are UTC
``YYYY-MM-DD`` text; ``start`` and ``end`` are both included and, as in every report,
None (or empty) means no bound: by default the whole history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from .canned import run_report

DbPath = str | os.PathLike[str] | None

#: Robust z-score above which a run's cost counts as an anomaly (Iglewicz and Hoaglin).
ANOMALY_Z = 3.5

TOKEN_COLUMNS = ["tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write"]
#: :func:`token_mix`'s token columns that add up (cache writes split by lifetime), to stack.
TOKEN_MIX_COLUMNS = [
    "tokens_input",
    "tokens_output",
    "tokens_cache_read",
    "tokens_cache_write_5m",
    "tokens_cache_write_1h",
]


def report_frame(name: str, db_path: DbPath = None, **params: Any) -> pd.DataFrame:
    """The canned report ``name`` as a DataFrame (parameters as in ``run_report``)."""
    result = run_report(name, db_path, params)
    return pd.DataFrame(result.rows, columns=result.columns)


def has_history(db_path: DbPath = None) -> bool:
    """Whether the database holds at least one agent run."""
    return not report_frame("runs_by_day", db_path).empty


def history_span(db_path: DbPath = None) -> tuple[str, str] | None:
    """First and last UTC day with prompts, or None when there are none."""
    days = report_frame("spend_by_day", db_path)["day"]
    return (str(days.iloc[0]), str(days.iloc[-1])) if len(days) else None


# --- spend, tokens and cache -------------------------------------------------------------


def daily_usage(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Prompts, tokens, USD and cache savings per UTC day, workflow and model.

    Columns: day (datetime), orchestrator_agent, model, prompts, failed_prompts, the four
    token columns, cost_usd, cache_savings_usd, unpriced_prompts.
    """
    frame = report_frame("usage_by_day", db_path, start=start, end=end)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def spend_over_time(
    db_path: DbPath = None,
    by: str = "orchestrator_agent",
    start: str | None = None,
    end: str | None = None,
) -> pd.DataFrame:
    """USD and prompts per day split by ``by`` ("orchestrator_agent" or "model")."""
    if by not in ("orchestrator_agent", "model"):
        raise ValueError(f"by must be 'orchestrator_agent' or 'model', not {by!r}")
    usage = daily_usage(db_path, start, end)
    return usage.groupby(["day", by], as_index=False)[
        ["cost_usd", "prompts", "unpriced_prompts"]
    ].sum()


def token_mix(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """The ``token_mix`` report (tokens by type, cache hit ratio, USD saved by caching per
    day) with ``day`` as datetime, the cache writes cached for 5 minutes
    (``tokens_cache_write_5m``: the writes not cached for an hour) and the running total of
    the savings."""
    frame = report_frame("token_mix", db_path, start=start, end=end)
    frame["day"] = pd.to_datetime(frame["day"])
    frame["tokens_cache_write_5m"] = frame["tokens_cache_write"] - frame["tokens_cache_write_1h"]
    frame["cache_savings_cumulative_usd"] = frame["cache_savings_usd"].cumsum()
    return frame


# --- runs: failures, durations, anomalies ------------------------------------------------


def runs_by_day(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Runs per UTC day (of creation) and workflow: runs, completed, failed, cancelled."""
    frame = report_frame("runs_by_day", db_path, start=start, end=end)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def failure_rates(
    db_path: DbPath = None,
    freq: str = "W",
    start: str | None = None,
    end: str | None = None,
) -> pd.DataFrame:
    """Runs, failed runs and failure rate (0..1) per period and workflow.

    ``freq`` is a pandas period alias ("D", "M", ...); "W" (the default) buckets weeks
    that start on Monday. ``period`` is the first day of each period.
    """
    runs = runs_by_day(db_path, start, end)
    runs["period"] = _period_start(runs["day"], freq)
    frame = runs.groupby(["period", "orchestrator_agent"], as_index=False)[["runs", "failed"]].sum()
    frame["failure_rate"] = frame["failed"] / frame["runs"]
    return frame


def _period_start(days: pd.Series, freq: str) -> pd.Series:
    """The first day of the period of each day; weeks ("W...") start on Monday."""
    if freq.startswith("W"):
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return days.dt.to_period(freq).dt.start_time


def failures_by_workflow(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Runs, failed runs and failure rate per workflow (from ``spend_by_orchestrator``)."""
    frame = report_frame("spend_by_orchestrator", db_path, start=start, end=end)
    frame = frame[["orchestrator_agent", "runs", "failed_runs"]].copy()
    frame["failure_rate"] = frame["failed_runs"] / frame["runs"].where(frame["runs"] > 0)
    return frame.sort_values("failure_rate", ascending=False, ignore_index=True)


def error_kind(message: object) -> str:
    """The class of an error message: the exception name before the first colon
    ("RateLimitError: 429 ..." -> "RateLimitError"), else its first 60 characters."""
    text = str(message or "").strip() or "(no error recorded)"
    head = text.split(":", 1)[0].strip()
    return head if head and len(head) <= 60 and " " not in head else text[:60]


def common_errors(db_path: DbPath = None, limit: int = 10) -> pd.DataFrame:
    """The errors that ended failed runs, grouped by kind, most frequent first.

    From the ``failed_runs`` report (every failed run, its error or last error log).
    Columns: error_kind, runs, workflows, last_failed_at, example.
    """
    failed = report_frame("failed_runs", db_path, limit=-1)
    columns = ["error_kind", "runs", "workflows", "last_failed_at", "example"]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    failed["error_kind"] = failed["last_error"].map(error_kind)
    grouped = failed.groupby("error_kind").agg(
        runs=("agent_id", "size"),
        workflows=("orchestrator_agent", lambda s: ", ".join(sorted(set(s)))),
        last_failed_at=("failed_at", "max"),
        example=("last_error", "first"),  # the report lists newest first
    )
    grouped = grouped.reset_index().sort_values(
        ["runs", "error_kind"], ascending=[False, True], ignore_index=True
    )
    return grouped[columns].head(limit)


_DURATION_COLUMNS = (
    ["orchestrator_agent", "run", "runs", "mean_ms", "min_ms"]
    + [f"p{p}_ms" for p in (5, 25, 50, 75, 95)]
    + ["max_ms"]
)


def _runs(db_path: DbPath, start: str | None, end: str | None) -> pd.DataFrame:
    """The ``runs`` report (every run started in the range) with ``run`` (its name) ``''``
    where the run has none, as the per-run statistics group it."""
    frame = report_frame("runs", db_path, start=start, end=end)
    if len(frame):
        frame["run"] = frame["run"].fillna("")
    return frame


def _nearest_rank(values: pd.Series, percentile: int) -> float:
    """The smallest of ``values`` with at least ``percentile``% of them at or below it."""
    ordered = np.sort(values.to_numpy(dtype=float))
    return float(ordered[(len(ordered) * percentile + 99) // 100 - 1])


def run_durations(
    db_path: DbPath = None,
    start: str | None = None,
    end: str | None = None,
    status: str | None = "completed",
) -> pd.DataFrame:
    """Duration quantiles of runs per workflow and run name, in milliseconds.

    Runs of ``status`` (None: every finished run) created between ``start`` and ``end``,
    from the ``runs`` report. Percentiles are nearest-rank, as in the ``step_durations``
    report. Columns: orchestrator_agent, run, runs, mean_ms, min_ms, p5_ms, p25_ms,
    p50_ms, p75_ms, p95_ms, max_ms; slowest p95 first.
    """
    finished = _runs(db_path, start, end)
    if len(finished):
        finished = finished[finished["duration_ms"].notna()]
        if status:
            finished = finished[finished["status"] == status]
    if finished.empty:
        return pd.DataFrame(columns=_DURATION_COLUMNS)
    keys = ["orchestrator_agent", "run"]
    groups = finished.astype({"duration_ms": float}).groupby(keys)["duration_ms"]
    frame = groups.agg(runs="size", mean_ms="mean", min_ms="min", max_ms="max")
    for p in (5, 25, 50, 75, 95):
        frame[f"p{p}_ms"] = groups.agg(_nearest_rank, p)
    frame = frame.reset_index()[_DURATION_COLUMNS]
    return frame.sort_values(
        ["p95_ms", *keys], ascending=[False, True, True], kind="mergesort", ignore_index=True
    )


def step_durations(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """The ``step_durations`` report (p50 / p95 per workflow and step) over the range."""
    return report_frame("step_durations", db_path, start=start, end=end)


_ANOMALY_COLUMNS = [
    "orchestrator_agent",
    "run",
    "session_id",
    "status",
    "created_at",
    "prompts",
    "cost_usd",
    "typical_usd",
    "p95_usd",
    "times_typical",
    "robust_z",
    "agent_id",
]


def cost_anomalies(
    db_path: DbPath = None,
    start: str | None = None,
    end: str | None = None,
    threshold: float = ANOMALY_Z,
    min_runs: int = 20,
    limit: int = 50,
) -> pd.DataFrame:
    """Runs that cost far more than runs of the same workflow and name usually do.

    The score is the robust z-score of the log of the run's cost within its group
    (workflow and run name): ``0.6745 * (ln cost - median) / MAD``, where the median and
    the median absolute deviation are taken over the group's finished, priced runs
    (cost > 0) created between ``start`` and ``end`` (from the ``runs`` report). A run
    scores above ``threshold`` to count; groups of fewer than ``min_runs`` runs, or whose
    MAD is 0, are skipped; at most ``limit`` runs (negative: all). Columns:
    orchestrator_agent, run, session_id, status, created_at, prompts, cost_usd,
    typical_usd (the group's median), p95_usd (its nearest-rank p95), times_typical,
    robust_z, agent_id; highest score first.
    """
    priced = _runs(db_path, start, end)
    if len(priced):
        priced = priced[(priced["cost_usd"] > 0) & priced["completed_at"].notna()].copy()
    if priced.empty:
        return pd.DataFrame(columns=_ANOMALY_COLUMNS)
    priced["x"] = np.log(priced["cost_usd"].astype(float))
    by = [priced["orchestrator_agent"], priced["run"]]
    groups = priced.groupby(by)["x"]
    size = groups.transform("size")
    median = groups.transform("median")
    mad = (priced["x"] - median).abs().groupby(by).transform("median")
    priced["typical_usd"] = np.exp(median)
    # ln is increasing: the run at rank k by log cost is the run at rank k by cost
    priced["p95_usd"] = priced.groupby(by)["cost_usd"].transform(_nearest_rank, 95)
    priced["times_typical"] = priced["cost_usd"] / priced["typical_usd"]
    priced["robust_z"] = 0.6745 * (priced["x"] - median) / mad.where(mad != 0)
    scored = priced[(size >= min_runs) & (priced["robust_z"] > threshold)]
    scored = scored.sort_values(
        ["robust_z", "agent_id"], ascending=[False, True], kind="mergesort", ignore_index=True
    )
    if limit >= 0:
        scored = scored.head(limit)
    if scored.empty:
        return pd.DataFrame(columns=_ANOMALY_COLUMNS)
    return scored[_ANOMALY_COLUMNS]


# --- sessions and weeks ------------------------------------------------------------------


def expensive_sessions(db_path: DbPath = None, limit: int = 15) -> pd.DataFrame:
    """The ``spend_by_session`` report over the whole history: the costliest sessions."""
    return report_frame("spend_by_session", db_path, limit=limit)


def week_over_week(db_path: DbPath = None, end: str | None = None) -> pd.DataFrame:
    """Each workflow's last 7 days against the 7 before, from ``spend_by_orchestrator``.

    ``end`` (a UTC day) defaults to the last day with prompts. Columns: orchestrator_agent,
    then runs, failed_runs, prompts, cost_usd and usd_per_run suffixed ``_last_week`` and
    ``_this_week``, and cost_change_pct (None when last week cost nothing). A final row
    "(all)" holds the totals.
    """
    if end is None:
        span = history_span(db_path)
        if span is None:
            return pd.DataFrame()
        end = span[1]
    last = date.fromisoformat(end)
    weeks = {
        "_this_week": (last - timedelta(days=6), last),
        "_last_week": (last - timedelta(days=13), last - timedelta(days=7)),
    }
    keep = ["runs", "failed_runs", "prompts", "cost_usd"]
    frames = []
    for suffix, (first, final) in weeks.items():
        frame = report_frame(
            "spend_by_orchestrator", db_path, start=first.isoformat(), end=final.isoformat()
        )
        frames.append(frame.set_index("orchestrator_agent")[keep].add_suffix(suffix))
    both = pd.concat(frames, axis=1).fillna(0)
    both.loc["(all)"] = both.sum()
    for suffix in weeks:
        both[f"usd_per_run{suffix}"] = both[f"cost_usd{suffix}"] / both[f"runs{suffix}"].where(
            both[f"runs{suffix}"] > 0
        )
    previous = both["cost_usd_last_week"].where(both["cost_usd_last_week"] > 0)
    both["cost_change_pct"] = 100 * (both["cost_usd_this_week"] - previous) / previous
    ordered = [f"{c}{s}" for c in [*keep, "usd_per_run"] for s in ("_last_week", "_this_week")]
    both = both[[*ordered, "cost_change_pct"]]
    both.index.name = "orchestrator_agent"
    return both.reset_index()


def latest_session(db_path: DbPath = None) -> str | None:
    """The session of the most recently created run, or None when no run has one."""
    frame = report_frame("latest_sessions", db_path, limit=1)
    return None if frame.empty else str(frame["session_id"].iloc[0])


def session_runs(session_id: str, db_path: DbPath = None) -> pd.DataFrame:
    """The runs of one session, in the order they were created."""
    return report_frame("session_runs", db_path, session_id=session_id)


def session_prompts(session_id: str, db_path: DbPath = None) -> pd.DataFrame:
    """Every prompt of one session with its tokens by type, cost, model and duration."""
    frame = report_frame("session_prompts", db_path, session_id=session_id)
    frame.insert(0, "prompt", range(1, len(frame) + 1))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame


@dataclass
class SessionDrilldown:
    """What one session did: its runs, timeline, Gantt bars, prompts, tools and errors."""

    session_id: str
    runs: pd.DataFrame
    timeline: pd.DataFrame  # the run_timeline report of each run, with its run's name
    gantt: pd.DataFrame  # lane, kind, start, finish, label: for plotly's px.timeline
    prompts: pd.DataFrame
    tools: pd.DataFrame  # tool, uses
    errors: pd.DataFrame  # at, run, source, message


def session_drilldown(session_id: str | None = None, db_path: DbPath = None) -> SessionDrilldown:
    """Everything :class:`SessionDrilldown` holds for ``session_id`` (default: the latest).

    Raises LookupError when there is no such session (or, by default, no session at all).
    """
    if session_id is None:
        session_id = latest_session(db_path)
        if session_id is None:
            raise LookupError("no session recorded yet")
    runs = session_runs(session_id, db_path)
    if runs.empty:
        raise LookupError(f"no session {session_id!r}")
    parts = []
    for run in runs.itertuples():
        part = report_frame("run_timeline", db_path, agent_id=run.agent_id)
        part.insert(0, "run", f"{run.run or run.orchestrator_agent}")
        part.insert(0, "agent_id", run.agent_id)
        parts.append(part)
    timeline = pd.concat(parts, ignore_index=True)
    timeline["created_at"] = pd.to_datetime(timeline["created_at"], utc=True, format="ISO8601")
    return SessionDrilldown(
        session_id=session_id,
        runs=runs,
        timeline=timeline,
        gantt=gantt_bars(timeline),
        prompts=session_prompts(session_id, db_path),
        tools=tool_uses(timeline),
        errors=session_errors(runs, timeline),
    )


def gantt_bars(timeline: pd.DataFrame) -> pd.DataFrame:
    """Bars for a Gantt chart of a timeline: one per step (step_start to step_end) and
    one per prompt (sent to sent + duration), each in the lane "run · step"."""
    columns = ["lane", "kind", "start", "finish", "label", "agent_id"]
    if timeline.empty:
        return pd.DataFrame(columns=columns)
    logs = timeline[(timeline["kind"] == "log") & timeline["step"].notna()]
    run_end = timeline.groupby("agent_id")["created_at"].max()
    steps = logs.groupby(["agent_id", "run", "step"], sort=False).agg(
        start=("created_at", "min"), finish=("created_at", "max")
    )
    steps = steps.reset_index()
    # A step with no step_end (the run crashed) lasts until the run's last event.
    ended = set(
        zip(*[logs.loc[logs["type"] == "step_end", c] for c in ("agent_id", "step")], strict=True)
    )
    open_steps = [
        (a, s) not in ended for a, s in zip(steps["agent_id"], steps["step"], strict=True)
    ]
    steps.loc[open_steps, "finish"] = steps.loc[open_steps, "agent_id"].map(run_end)
    steps["lane"] = steps["run"] + " · " + steps["step"]
    steps["kind"] = "step"
    steps["label"] = steps["step"]

    prompts = timeline[timeline["kind"] == "prompt"].copy()
    prompts["start"] = prompts["created_at"]
    prompts["finish"] = prompts["start"] + pd.to_timedelta(
        prompts["duration_ms"].fillna(0), unit="ms"
    )
    prompts["kind"] = "prompt (" + prompts["type"].astype(str) + ")"
    prompts["label"] = prompts["detail"].astype(str).str.slice(0, 80)
    # A prompt belongs to the step of its run that had started last when it was sent.
    prompts = prompts.sort_values("start")
    lanes = steps[["agent_id", "start", "lane"]].sort_values("start")
    prompts = pd.merge_asof(prompts, lanes, on="start", by="agent_id", direction="backward")
    prompts["lane"] = prompts["lane"].fillna(prompts["run"] + " · prompts")

    bars = pd.concat([steps[columns], prompts[columns]], ignore_index=True)
    return bars.sort_values(["start", "kind"], ignore_index=True)


def tool_uses(timeline: pd.DataFrame) -> pd.DataFrame:
    """How often each tool was used in a timeline (tool_use logs, named "Tool: input")."""
    uses = timeline.loc[
        (timeline["kind"] == "log") & (timeline["type"] == "tool_use"), "detail"
    ].astype(str)
    tools = uses.str.split(":", n=1).str[0].str.strip()
    counts = tools.value_counts().rename_axis("tool").reset_index(name="uses")
    return counts.sort_values(["uses", "tool"], ascending=[False, True], ignore_index=True)


def session_errors(runs: pd.DataFrame, timeline: pd.DataFrame) -> pd.DataFrame:
    """A session's errors, oldest first: error logs, failed prompts and failed runs whose
    error no log repeats."""
    columns = ["at", "run", "source", "message"]
    logs = timeline[(timeline["kind"] == "log") & (timeline["type"] == "error")]
    prompts = timeline[(timeline["kind"] == "prompt") & (timeline["type"] == "failed")]
    rows = [
        *((r.created_at, r.run, "error log", r.detail) for r in logs.itertuples()),
        *((r.created_at, r.run, "failed prompt", r.detail) for r in prompts.itertuples()),
    ]
    logged = set(logs["agent_id"])
    for run in runs.itertuples():
        if run.status == "failed" and run.agent_id not in logged:
            at = pd.to_datetime(run.completed_at, utc=True, format="ISO8601")
            rows.append((at, run.run, "failed run", run.error or "(no error recorded)"))
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("at", ignore_index=True) if len(frame) else frame


__all__ = [
    "ANOMALY_Z",
    "SessionDrilldown",
    "common_errors",
    "cost_anomalies",
    "daily_usage",
    "error_kind",
    "expensive_sessions",
    "failure_rates",
    "failures_by_workflow",
    "gantt_bars",
    "has_history",
    "history_span",
    "latest_session",
    "report_frame",
    "run_durations",
    "runs_by_day",
    "session_drilldown",
    "session_errors",
    "session_prompts",
    "session_runs",
    "spend_over_time",
    "step_durations",
    "token_mix",
    "tool_uses",
    "week_over_week",
]
