"""``orchestrator statusline``: one line for Claude Code's status bar, from the store.

Claude Code runs the ``statusLine`` command of its settings after each message, with a
JSON object on stdin (``session_id``, ``model``, ``workspace``, ``transcript_path``,
``cost``...), and shows the first line it prints. This prints this session's cost,
today's (UTC), the active 5-hour block's cost, time left and burn rate, and the budget
left when a budget applies to the session or its workflow::

    $0.84 session · $3.12 today · block $2.05, 3h12m left, $1.40/h · $6.88 budget left

It runs on every message, so it is a hot path: it imports only the standard library
modules it needs (no click, sqlglot, genai-prices, pydantic or YAML), opens the SQLite
file read-only without migrating it, and reads the report SQL (``usage_blocks``,
``budgets``: written once, in metadata.yml) from a small cache file that the first run
writes. It never fails loudly: any problem (no database, a PostgreSQL URL, a schema too
old, bad input) prints a short line and exits 0, because Claude Code shows whatever it
prints. ``scripts/bench_statusline.py`` times it beside a bare ``python3 -c``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

#: The reports the line reads.
REPORTS = ("usage_blocks", "budgets")


def _cache_dir() -> str:
    # Where orchestrator.reports.canned.cache_dir() keeps derived files (pathlib is not imported).
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "adw-orchestrator")


def _metadata_key() -> str | None:
    """What the cached SQL was read from: the metadata file, its time and size."""
    override = os.environ.get("ORCHESTRATOR_METADATA")
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = (
        [override]
        if override
        else [
            os.path.join(os.path.dirname(here), "metadata.yml"),
            os.path.join(here, "_data", "metadata.yml"),
        ]
    )
    for path in candidates:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        return f"{os.path.realpath(path)}:{stat.st_mtime_ns}:{stat.st_size}"
    return None


def report_sql() -> dict[str, str]:
    """The SQL of :data:`REPORTS`, from the cache file when it was made from the metadata
    file as it is now, else from :mod:`orchestrator.reports` (then cached)."""
    key = _metadata_key()
    cached = os.path.join(_cache_dir(), "statusline-sql.json")
    try:
        with open(cached, encoding="utf-8") as handle:
            kept = json.load(handle)
        if kept.get("key") == key and key is not None:
            return {name: str(kept["sql"][name]) for name in REPORTS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    from .reports.canned import get_report, write_cache_file

    sql = {name: get_report(name).sql for name in REPORTS}
    if key is not None:
        from pathlib import Path

        write_cache_file(Path(cached), {"key": key, "sql": sql})
    return sql


def _database(args: list[str]) -> str:
    """``--db PATH`` (or ``--db=PATH``), else what every command opens by default."""
    for number, word in enumerate(args):
        if word == "--db" and number + 1 < len(args):
            return args[number + 1]
        if word.startswith("--db="):
            return word[5:]
    # As orchestrator.store.sqlite.default_db_path() (not imported: it imports the schema).
    return os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH") or "orchestrator.db"


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _duration(minutes: float) -> str:
    minutes = max(0, int(minutes))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def status_line(status: dict[str, Any], db_path: str, now: datetime | None = None) -> str:
    """The line for Claude Code's status JSON ``status`` from the SQLite file ``db_path``.

    Raises sqlite3.Error or OSError when the file cannot be read; :func:`main` turns
    those into a short line.
    """
    if "://" in db_path:
        return "orchestrator: the status line reads an SQLite file (--db PATH)"
    if not os.path.exists(db_path):
        return f"orchestrator: no database at {db_path}"
    now = now or datetime.now(timezone.utc)
    session = status.get("session_id") if isinstance(status.get("session_id"), str) else None
    sql = report_sql()
    uri = "file:" + os.path.abspath(db_path).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=1)
    try:
        parts = []
        spent = None
        if session:
            row = conn.execute(
                "SELECT cost_usd FROM sessions WHERE session_id = ?", (session,)
            ).fetchone()
            spent = row[0] if row else None
        if spent is None:  # not imported yet: what Claude Code counted
            cost = status.get("cost")
            reported = cost.get("total_cost_usd") if isinstance(cost, dict) else None
            spent = reported if isinstance(reported, (int, float)) else None
        if spent is not None:
            parts.append(f"{_usd(spent)} session")
        today = now.strftime("%Y-%m-%d")
        (spent_today,) = conn.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM usage_daily WHERE day = ?", (today,)
        ).fetchone()
        parts.append(f"{_usd(spent_today)} today")
        parts.append(_block(conn, sql["usage_blocks"], now))
        left = _budget_left(conn, sql["budgets"], session)
        if left is not None:
            parts.append(f"{_usd(left)} budget left" if left >= 0 else f"{_usd(-left)} over budget")
        return " · ".join(part for part in parts if part)
    finally:
        conn.close()


def _block(conn: sqlite3.Connection, sql: str, now: datetime) -> str:
    from .reports.sql_functions import register

    register(conn)
    since = (now - timedelta(days=1)).strftime("%Y-%m-%d")
    cursor = conn.execute(
        sql,
        {
            "now": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "orchestrator": "",
            "tz": "",
            "start": since,
            "end": "",
        },
    )
    columns = [column[0] for column in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        if row["is_active"]:
            text = f"block {_usd(row['cost_usd'])}, {_duration(row['minutes_left'])} left"
            if row["usd_per_minute"] is not None:
                text += f", {_usd(row['usd_per_minute'] * 60)}/h"
            return text
    return "no active block"


def _budget_left(conn: sqlite3.Connection, sql: str, session: str | None) -> float | None:
    """The least USD left under a budget of this session or of its workflow (today's and
    this month's), None without one."""
    if session is None:
        return None
    names = {("session", session)}
    workflow = conn.execute(
        "SELECT o.name FROM agents a JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id "
        "WHERE a.session_id = ? LIMIT 1",
        (session,),
    ).fetchone()
    if workflow:
        names.add(("workflow", workflow[0]))
    cursor = conn.execute(sql, {"start": "", "end": ""})
    columns = [column[0] for column in cursor.description]
    left = []
    for values in cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        if (row["scope"], row["name"]) in names:
            if row["daily_usd"] is not None:
                left.append(row["daily_usd"] - row["spent_today"])
            if row["monthly_usd"] is not None:
                left.append(row["monthly_usd"] - row["spent_month"])
    return min(left) if left else None


def main(args: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read the status JSON, print the line; always exit 0."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        text = stdin.read() if not stdin.isatty() else ""
        status = json.loads(text) if text.strip() else {}
        if not isinstance(status, dict):
            status = {}
    except (OSError, ValueError):
        status = {}
    db_path = _database(args)
    try:
        line = status_line(status, db_path)
    except (sqlite3.Error, OSError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        line = f"orchestrator: cannot read {db_path}: {reason}"[:200]
    stdout.write(line + "\n")
    stdout.flush()
    return 0
