"""Run-history analysis as pandas DataFrames, for the notebooks and anyone with a REPL.

Every function takes a database path (``None``: :func:`orchestrator.default_db_path`)
and returns a small, aggregated DataFrame. Where a canned report of ``metadata.yml``
answers the question, the function runs it through :func:`orchestrator.reports.run_report`
and reshapes the result; the SQL written here is only what no report holds (per-day
splits by workflow and model, run-duration quantiles, cost anomalies, one session's
runs and prompts). Aggregation happens in SQL: nothing here loads the whole
``prompts`` or ``agent_logs`` table into memory, so it stays fast on millions of rows.

Databases are opened read-only (after migrating, like every opener). Days are UTC
``YYYY-MM-DD`` text; ``start`` and ``end`` default to the whole history, as in the
reports.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from . import sqlite as backend
from .reports import run_report

DbPath = str | os.PathLike[str] | None

#: Start and end days that cover any history (``date(end, '+1 day')`` must stay valid).
ALL_TIME_START = "0001-01-01"
ALL_TIME_END = "2999-12-31"

#: Robust z-score above which a run's cost counts as an anomaly (Iglewicz and Hoaglin).
ANOMALY_Z = 3.5

TOKEN_COLUMNS = ["tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write"]


def _path(db_path: DbPath) -> Path:
    path = Path(db_path) if db_path is not None else backend.default_db_path()
    if not path.exists():
        raise FileNotFoundError(
            f"no database at {path}: run `orchestrator init` or `orchestrator demo` first"
        )
    return path


@contextmanager
def _read_only(db_path: DbPath) -> Iterator[sqlite3.Connection]:
    path = _path(db_path)
    backend.connect(path).close()  # migrate first, like every opener
    conn = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _query(db_path: DbPath, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    with _read_only(db_path) as conn:
        cursor = conn.execute(sql, params or {})
        columns = [d[0] for d in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def _range(start: str | None, end: str | None) -> dict[str, str]:
    return {"start": start or ALL_TIME_START, "end": end or ALL_TIME_END}


def report_frame(name: str, db_path: DbPath = None, **params: Any) -> pd.DataFrame:
    """The canned report ``name`` as a DataFrame (parameters as in ``run_report``)."""
    result = run_report(name, db_path, params)
    return pd.DataFrame(result.rows, columns=result.columns)


def has_history(db_path: DbPath = None) -> bool:
    """Whether the database holds at least one agent run."""
    frame = _query(db_path, "SELECT EXISTS (SELECT 1 FROM agents) AS any_run")
    return bool(frame.iloc[0, 0])


def history_span(db_path: DbPath = None) -> tuple[str, str] | None:
    """First and last UTC day with prompts, or None when there are none."""
    days = report_frame("spend_by_day", db_path, **_range(None, None))["day"]
    return (str(days.iloc[0]), str(days.iloc[-1])) if len(days) else None


# --- spend, tokens and cache -------------------------------------------------------------


def daily_usage(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Prompts, tokens, USD and cache savings per UTC day, workflow and model.

    Columns: day (datetime), orchestrator_agent, model, prompts, failed_prompts, the four
    token columns, cost_usd, cache_savings_usd, unpriced_prompts.
    """
    frame = _query(
        db_path,
        """
        SELECT u.day, o.name AS orchestrator_agent, u.model,
          sum(u.prompts) AS prompts, sum(u.failed_prompts) AS failed_prompts,
          sum(u.tokens_input) AS tokens_input, sum(u.tokens_output) AS tokens_output,
          sum(u.tokens_cache_read) AS tokens_cache_read,
          sum(u.tokens_cache_write) AS tokens_cache_write,
          sum(u.cost_usd) AS cost_usd, sum(u.cache_savings_usd) AS cache_savings_usd,
          sum(u.unpriced_prompts) AS unpriced_prompts
        FROM usage_daily u JOIN orchestrator_agents o ON o.id = u.orchestrator_agent_id
        WHERE u.day >= :start AND u.day <= :end
        GROUP BY u.day, o.name, u.model
        HAVING sum(u.prompts) <> 0
        ORDER BY u.day, o.name, u.model
        """,
        _range(start, end),
    )
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
    day) with ``day`` as datetime and the running total of the savings."""
    frame = report_frame("token_mix", db_path, **_range(start, end))
    frame["day"] = pd.to_datetime(frame["day"])
    frame["cache_savings_cumulative_usd"] = frame["cache_savings_usd"].cumsum()
    return frame


# --- runs: failures, durations, anomalies ------------------------------------------------


def runs_by_day(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Runs per UTC day (of creation) and workflow: runs, completed, failed, cancelled."""
    frame = _query(
        db_path,
        """
        SELECT r.day, o.name AS orchestrator_agent, sum(r.runs) AS runs,
          sum(r.completed) AS completed, sum(r.failed) AS failed, sum(r.cancelled) AS cancelled
        FROM runs_daily r JOIN orchestrator_agents o ON o.id = r.orchestrator_agent_id
        WHERE r.day >= :start AND r.day <= :end
        GROUP BY r.day, o.name
        HAVING sum(r.runs) <> 0
        ORDER BY r.day, o.name
        """,
        _range(start, end),
    )
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
    frame = report_frame("spend_by_orchestrator", db_path, **_range(start, end))
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


def run_durations(
    db_path: DbPath = None,
    start: str | None = None,
    end: str | None = None,
    status: str | None = "completed",
) -> pd.DataFrame:
    """Duration quantiles of runs per workflow and run name, in milliseconds.

    Runs of ``status`` (None: every finished run) created between ``start`` and ``end``.
    Percentiles are nearest-rank, as in the ``step_durations`` report. Columns:
    orchestrator_agent, run, runs, mean_ms, min_ms, p5_ms, p25_ms, p50_ms, p75_ms, p95_ms,
    max_ms; slowest p95 first.
    """
    quantiles = ",\n".join(
        f"max(CASE WHEN r.rank = (r.n * {p} + 99) / 100 THEN r.duration_ms END) AS p{p}_ms"
        for p in (5, 25, 50, 75, 95)
    )
    return _query(
        db_path,
        f"""
        WITH r AS (
          SELECT a.orchestrator_agent_id, coalesce(a.name, '') AS run, a.duration_ms,
            row_number() OVER w AS rank,
            count(*) OVER (PARTITION BY a.orchestrator_agent_id, coalesce(a.name, '')) AS n
          FROM agents a
          WHERE a.duration_ms IS NOT NULL
            AND (:status = '' OR a.status = :status)
            AND a.created_at >= :start AND a.created_at < date(:end, '+1 day')
          WINDOW w AS (PARTITION BY a.orchestrator_agent_id, coalesce(a.name, '')
            ORDER BY a.duration_ms)
        )
        SELECT o.name AS orchestrator_agent, r.run, max(r.n) AS runs,
          avg(r.duration_ms) AS mean_ms, min(r.duration_ms) AS min_ms,
          {quantiles},
          max(r.duration_ms) AS max_ms
        FROM r JOIN orchestrator_agents o ON o.id = r.orchestrator_agent_id
        GROUP BY o.name, r.run
        ORDER BY p95_ms DESC, o.name, r.run
        """,
        {**_range(start, end), "status": status or ""},
    )


def step_durations(
    db_path: DbPath = None, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """The ``step_durations`` report (p50 / p95 per workflow and step) over the range."""
    return report_frame("step_durations", db_path, **_range(start, end))


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
    (cost > 0). A run scores above ``threshold`` to count; groups of fewer than
    ``min_runs`` runs are skipped. Columns: orchestrator_agent, run, session_id, status,
    created_at, prompts, cost_usd, typical_usd (the group's median), p95_usd (its
    nearest-rank p95), times_typical, robust_z, agent_id; highest score first.
    """
    middle = "r.rank IN ((r.n + 1) / 2, (r.n + 2) / 2)"
    return _query(
        db_path,
        f"""
        WITH runs AS MATERIALIZED (
          SELECT a.id, a.orchestrator_agent_id, coalesce(a.name, '') AS run, a.session_id,
            a.status, a.created_at, a.prompt_count, a.total_cost_usd AS cost_usd,
            ln(a.total_cost_usd) AS x
          FROM agents a
          WHERE a.total_cost_usd > 0 AND a.completed_at IS NOT NULL
            AND a.created_at >= :start AND a.created_at < date(:end, '+1 day')
        ), r AS (
          SELECT orchestrator_agent_id, run, x, cost_usd,
            row_number() OVER (PARTITION BY orchestrator_agent_id, run ORDER BY x) AS rank,
            count(*) OVER (PARTITION BY orchestrator_agent_id, run) AS n
          FROM runs
        ), stats AS (
          SELECT r.orchestrator_agent_id, r.run, max(r.n) AS n,
            avg(CASE WHEN {middle} THEN r.x END) AS median_x,
            max(CASE WHEN r.rank = (r.n * 95 + 99) / 100 THEN r.cost_usd END) AS p95_usd
          FROM r GROUP BY r.orchestrator_agent_id, r.run
          HAVING max(r.n) >= :min_runs
        ), d AS (
          SELECT runs.orchestrator_agent_id, runs.run, s.n,
            row_number() OVER (PARTITION BY runs.orchestrator_agent_id, runs.run
              ORDER BY abs(runs.x - s.median_x)) AS rank,
            abs(runs.x - s.median_x) AS deviation
          FROM runs JOIN stats s
            ON s.orchestrator_agent_id = runs.orchestrator_agent_id AND s.run = runs.run
        ), mad AS (
          SELECT r.orchestrator_agent_id, r.run, avg(r.deviation) AS mad
          FROM d AS r WHERE {middle}
          GROUP BY r.orchestrator_agent_id, r.run
        ), scored AS (
          SELECT runs.*, s.median_x, s.p95_usd,
            0.6745 * (runs.x - s.median_x) / nullif(m.mad, 0) AS robust_z
          FROM runs
          JOIN stats s ON s.orchestrator_agent_id = runs.orchestrator_agent_id
            AND s.run = runs.run
          JOIN mad m ON m.orchestrator_agent_id = runs.orchestrator_agent_id
            AND m.run = runs.run
        )
        SELECT o.name AS orchestrator_agent, scored.run, scored.session_id, scored.status,
          scored.created_at, scored.prompt_count AS prompts, scored.cost_usd,
          exp(scored.median_x) AS typical_usd, scored.p95_usd,
          scored.cost_usd / exp(scored.median_x) AS times_typical,
          scored.robust_z, scored.id AS agent_id
        FROM scored JOIN orchestrator_agents o ON o.id = scored.orchestrator_agent_id
        WHERE scored.robust_z > :threshold
        ORDER BY scored.robust_z DESC, scored.id
        LIMIT :limit
        """,
        {**_range(start, end), "threshold": threshold, "min_runs": min_runs, "limit": limit},
    )


# --- sessions and weeks ------------------------------------------------------------------


def expensive_sessions(db_path: DbPath = None, limit: int = 15) -> pd.DataFrame:
    """The ``spend_by_session`` report over the whole history: the costliest sessions."""
    return report_frame("spend_by_session", db_path, limit=limit, **_range(None, None))


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
    frame = _query(
        db_path,
        """
        SELECT session_id FROM agents WHERE session_id IS NOT NULL
        ORDER BY created_at DESC, id DESC LIMIT 1
        """,
    )
    return None if frame.empty else str(frame.iloc[0, 0])


def session_runs(session_id: str, db_path: DbPath = None) -> pd.DataFrame:
    """The runs of one session, in the order they were created."""
    return _query(
        db_path,
        """
        SELECT a.id AS agent_id, o.name AS orchestrator_agent, a.name AS run, a.status,
          a.created_at, a.started_at, a.completed_at, a.duration_ms, a.prompt_count AS prompts,
          a.total_tokens_input + a.total_tokens_output + a.total_tokens_cache_read
            + a.total_tokens_cache_write AS tokens,
          a.total_cost_usd AS cost_usd, a.unpriced_prompt_count AS unpriced_prompts, a.error,
          a.parent_agent_id
        FROM agents a JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id
        WHERE a.session_id = :session_id
        ORDER BY a.created_at, a.id
        """,
        {"session_id": session_id},
    )


def session_prompts(session_id: str, db_path: DbPath = None) -> pd.DataFrame:
    """Every prompt of one session with its tokens by type, cost, model and duration."""
    frame = _query(
        db_path,
        """
        SELECT p.created_at, a.name AS run, p.model, p.status,
          p.tokens_input, p.tokens_output, p.tokens_cache_read, p.tokens_cache_write,
          p.cost_usd, p.cost_source, p.cache_savings_usd, p.duration_ms,
          substr(p.content, 1, 120) AS content, p.error, p.id AS prompt_id, p.agent_id
        FROM prompts p JOIN agents a ON a.id = p.agent_id
        WHERE a.session_id = :session_id
        ORDER BY p.created_at, p.id
        """,
        {"session_id": session_id},
    )
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
    "ALL_TIME_END",
    "ALL_TIME_START",
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
