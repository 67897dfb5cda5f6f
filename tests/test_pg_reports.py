"""Reports on PostgreSQL (``orchestrator.reports.postgres``): every canned report and dashboard
query gives, over the same history, the same columns, rows, order and values on both
backends; single SQLite expressions translate to PostgreSQL that gives SQLite's answers.

The PostgreSQL side runs in a database that sorts text by English rules (ICU ``en-US``)
when the server has ICU, as users' servers usually do: text order must not depend on it.
"""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from backends import (
    RUN_TOTALS,
    SUMMARY_TABLES,
    activity_payload,
    load_into_postgres,
    postgres_admin,
    rows,
    store_otlp_metrics,
    with_search_path,
)
from click.testing import CliRunner
from conftest import DEMO
from datasette_dashboards import replace_opts_in_query

from orchestrator import DatabaseManager
from orchestrator.cli import cli
from orchestrator.reports import pg_sql, sql_functions
from orchestrator.reports import postgres as pg_reports
from orchestrator.reports.canned import (
    Report,
    ReportResult,
    fill_report_queries,
    load_metadata,
    reports,
    run_report,
)
from orchestrator.reports.pg_sql import UnsupportedSQL, translate
from orchestrator.store.postgres import init_database
from orchestrator.writer.budgets import set_budget

STREAM = Path(__file__).parent / "data" / "claude_code" / "stream.jsonl"
TRANSCRIPTS = Path(__file__).parent / "data" / "claude-code-transcripts"
#: Names that sort differently by bytes and by English rules (case, punctuation, accents).
ODD_WORKFLOWS = ["Zeta-flow", "alpha_flow", "émile", "b-2", "b_1", "B3"]
ODD_SESSIONS = ["S-Upper", "s_lower", "ß-session", None]


# --- one history on both backends ------------------------------------------------------


async def _odd_history(path: Path) -> None:
    """Runs whose workflow, session and model names sort differently by bytes and by
    collation, with reported costs, unknown and unpriced models, failures and steps."""
    async with DatabaseManager(path) as db:
        for number, workflow in enumerate(ODD_WORKFLOWS):
            session = ODD_SESSIONS[number % len(ODD_SESSIONS)]
            for attempt in range(2):
                try:
                    name = f"run-{attempt}"
                    async with db.agent_run(workflow, session_id=session, name=name) as run:
                        with run.step("plan"):
                            await run.prompt(
                                f"plan {workflow}",
                                "ok",
                                model="claude-sonnet-4-5",
                                tokens_input=1000 + number,
                                tokens_output=200 * attempt,
                                tokens_cache_read=5000,
                                tokens_cache_write=2,  # $0.0000075: a tie at 6 decimals
                            )
                            await run.prompt(
                                "reported",
                                "ok",
                                model=None if attempt else "Mystery-Model",
                                tokens_input=10,
                                tokens_output=10,
                                cost_usd=0.0125 * (number + 1),
                            )
                            run.log("tool_use", f"Bash: step {number}")
                        if workflow == "b_1" and attempt:
                            raise RuntimeError("boom: the build broke")
                except RuntimeError:
                    pass
        await db.log_system_event("ERROR", "disk full", source="Zeta")
        await db.log_system_event("WARNING", "slow", source="alpha")
        await db.log_system_event("WARNING", "no source")


@pytest.fixture(scope="module")
def parity_db(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared demo history plus Claude Code imports (reported costs, today), budgets
    and the odd names above: one SQLite file, read-only once built."""
    path = tmp_path_factory.mktemp("parity") / "orchestrator.db"
    shutil.copy(demo_db, path)
    started = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["import", "stream-json", "--db", str(path), "--started-at", started, str(STREAM)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["import", "claude-code", "--db", str(path), str(TRANSCRIPTS)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    asyncio.run(_odd_history(path))
    store_otlp_metrics(path, activity_payload())  # Claude Code's metrics, as collect stores
    set_budget(path, "workflow", "plan_build", daily_usd=0.01, monthly_usd=500)
    set_budget(path, "workflow", "alpha_flow", daily_usd=100)
    set_budget(path, "model", "claude-sonnet-4-5", monthly_usd=0.5)
    set_budget(path, "session", "S-Upper", daily_usd=1, monthly_usd=2)
    return path


@pytest.fixture(scope="module")
def parity_server(postgres_database: str) -> Iterator[str]:
    """A database of its own on the test server, sorting text by English rules (ICU
    ``en-US``) when the server has ICU, else by the server's default."""
    name = f"orchestrator_parity_{uuid.uuid4().hex[:10]}"
    try:
        postgres_admin(
            postgres_database,
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
        )
    except Exception:  # PostgreSQL < 15 or built without ICU: the server's default
        postgres_admin(postgres_database, f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        yield urlunsplit(urlsplit(postgres_database)._replace(path=f"/{name}"))
    finally:
        postgres_admin(postgres_database, f"DROP DATABASE {name} WITH (FORCE)", check=False)


@pytest.fixture(scope="module")
def parity_pg(parity_db: Path, parity_server: str) -> str:
    """The same history in PostgreSQL, as users move it: ``orchestrator copy`` (summaries
    and run totals carried as SQLite has them, then verified)."""
    from orchestrator.commands.copy import copy_database

    result = copy_database(parity_db, parity_server)
    assert result.inserted > 20_000
    return parity_server


@pytest.fixture(scope="module")
def parity_rebuilt(parity_db: Path, parity_server: str) -> str:
    """The same rows inserted with PostgreSQL's triggers on (a schema of its own), so that
    they compute the summaries and run totals themselves."""
    postgres_admin(parity_server, "CREATE SCHEMA rebuilt")
    url = with_search_path(parity_server, "rebuilt")
    init_database(url)
    copied = load_into_postgres(parity_db, url)
    assert copied["prompts"] > 2000 and copied["claude_code_runs"] == 1
    return url


# --- comparing results -----------------------------------------------------------------


def same(expected: Any, actual: Any) -> bool:
    """Same type; ints and text equal; floats within 1e-9 relative."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        return math.isclose(expected, actual, rel_tol=1e-9)
    return bool(expected == actual)


def differences(expected: ReportResult, actual: ReportResult, limit: int = 5) -> list[str]:
    if expected.columns != actual.columns:
        return [f"columns: SQLite {expected.columns}, PostgreSQL {actual.columns}"]
    found = []
    if len(expected.rows) != len(actual.rows):
        found.append(f"{len(expected.rows)} rows on SQLite, {len(actual.rows)} on PostgreSQL")
    for number, (left, right) in enumerate(zip(expected.rows, actual.rows, strict=False)):
        for column, x, y in zip(expected.columns, left, right, strict=True):
            if not same(x, y):
                found.append(f"row {number} {column}: SQLite {x!r}, PostgreSQL {y!r}")
    return found[:limit]


def one(db: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with sqlite3.connect(db) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def parameter_sets(db: Path) -> dict[str, dict[str, str]]:
    """Defaults (every parameter ''), and real values from the data: a window inside the
    demo's history with a session, run and workflow active in it; a window up to today
    (the imports and odd names); patterns, limits and thresholds."""
    first, last = one(db, "SELECT min(day) FROM usage_daily"), DEMO["end"].date().isoformat()
    start = (date.fromisoformat(first) + timedelta(days=10)).isoformat()
    end = (date.fromisoformat(last) - timedelta(days=10)).isoformat()

    def busiest(column: str, since: str, until: str) -> str:
        return str(
            one(
                db,
                f"SELECT {column} FROM agents WHERE {column} IS NOT NULL AND created_at >= ? "
                f"AND created_at < date(?, '+1 day') GROUP BY {column} "
                "ORDER BY count(*) DESC, max(prompt_count) DESC LIMIT 1",
                (since, until),
            )
        )

    busiest_run = str(
        one(
            db,
            "SELECT a.id FROM agents a JOIN agent_logs l ON l.agent_id = a.id "
            "WHERE a.created_at >= ? AND a.created_at < date(?, '+1 day') "
            "GROUP BY a.id ORDER BY count(*) DESC, a.id LIMIT 1",
            (start, end),
        )
    )
    median_cost = one(
        db,
        "SELECT total_cost_usd FROM agents ORDER BY total_cost_usd "
        "LIMIT 1 OFFSET (SELECT count(*) / 2 FROM agents)",
    )
    recent = (datetime.now(timezone.utc) - timedelta(days=45)).date().isoformat()
    today = datetime.now(timezone.utc).date().isoformat()
    # usage_blocks judges the active block at :now; the engines run a moment apart, so
    # every set fixes it (the imported stream ended an hour ago: its block is active).
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "defaults": {"now": now},
        "window inside the history": {
            "tz": "Europe/Madrid",
            "week_starts_on": "monday",
            "period": "week",
            "now": now,
            "start": start,
            "end": end,
            "session_id": busiest("session_id", start, end),
            "agent_id": busiest_run,
            "orchestrator": "plan_build",
            "limit": "7",
            "budget_usd": str(median_cost),
            "min_diff_usd": "0.001",
        },
        "up to today": {
            "tz": "America/Los_Angeles",
            "week_starts_on": "saturday",
            "period": "month",
            "now": now,
            "start": recent,
            "end": today,
            "session_id": "S-Upper",
            "agent_id": str(one(db, "SELECT id FROM agents ORDER BY created_at DESC LIMIT 1")),
            "orchestrator": "claude-code:%",
            "limit": "-1",
            "budget_usd": "0.01",
            "min_diff_usd": "0",
        },
        "case-folded pattern, no window": {
            "orchestrator": "PLAN_%",
            "limit": "3",
            "tz": "Asia/Kolkata",  # a half-hour offset
            "now": now,
        },
    }


# --- the reports -----------------------------------------------------------------------


def test_every_report_and_dashboard_query_translates() -> None:
    for report in reports().values():
        translation = translate(report.sql)
        assert sorted(translation.parameters) == sorted(report.parameters), report.name
        assert "$" in translation.sql or not report.parameters
    for _name, sql in dashboard_queries():
        translate(sql)  # raises UnsupportedSQL for anything without a translation


@pytest.mark.parametrize(
    "case",
    ["defaults", "window inside the history", "up to today", "case-folded pattern, no window"],
)
def test_every_report_gives_the_same_rows_on_both_backends(
    case: str, parity_db: Path, parity_pg: str
) -> None:
    values = parameter_sets(parity_db)[case]
    found = {}
    nonempty = 0
    for report in reports().values():
        params = {key: value for key, value in values.items() if key in report.parameters}
        expected = run_report(report.name, parity_db, params)
        actual = run_report(report.name, parity_pg, params)
        nonempty += bool(expected.rows)
        problems = differences(expected, actual)
        if problems:
            found[report.name] = problems
    assert found == {}
    assert nonempty >= 18  # real values: (almost) every report has rows to compare


#: Every dashboard filter set, to values inside the history.
FILTERS = {
    "start": "2026-10-10",
    "end": "2026-10-25",
    "orchestrator": "plan_build",
    "model": "claude-sonnet-4-5",
}


def dashboard_queries() -> list[tuple[str, str]]:
    """Every dashboard chart and filter query, rendered as the dashboard page renders
    it with no filter and with every filter set."""
    metadata = fill_report_queries(load_metadata())  # a panel naming a report: its SQL
    dashboards = metadata.get("plugins", {}).get("datasette-dashboards", {})
    found = []
    for slug, dashboard in dashboards.items():
        items = {**dashboard.get("charts", {}), **dashboard.get("filters", {})}
        for name, item in items.items():
            if "query" not in item:
                continue
            query = item["query"]
            found.append((f"{slug}/{name} (no filter)", replace_opts_in_query(query, {})))
            found.append((f"{slug}/{name} (filters)", replace_opts_in_query(query, FILTERS)))
    return found


def test_dashboard_queries_give_the_same_rows(parity_db: Path, parity_pg: str) -> None:
    found = {}
    for name, sql in dashboard_queries():
        params = {key: FILTERS.get(key, "") for key in Report("", "", "", sql).parameters}
        with sqlite3.connect(parity_db) as conn:
            sql_functions.register(conn)  # as Datasette's connections have them (the plugin)
            cursor = conn.execute(sql, params)
            expected = ReportResult([d[0] for d in cursor.description], cursor.fetchall())
        actual = ReportResult(*pg_reports.run(parity_pg, sql, params))
        assert expected.rows, name
        if problems := differences(expected, actual):
            found[name] = problems
    assert found == {}


def test_postgresql_triggers_keep_the_summaries_sqlite_keeps(
    parity_db: Path, parity_rebuilt: str
) -> None:
    """Loaded without summaries and run totals, PostgreSQL's triggers computed them.

    Rows that count nothing are left out: SQLite keeps the row a run left when the import
    moved it to another day; loaded with its final day, it never was on PostgreSQL.
    """
    for table, key, counts_something in [
        ("usage_daily", "day, orchestrator_agent_id, model", "prompts <> 0"),
        ("runs_daily", "day, orchestrator_agent_id", "runs <> 0"),
        ("step_histogram_daily", "day, orchestrator_agent_id, step, bucket_ms", "steps <> 0"),
        ("sessions", "session_id", "runs <> 0"),
        ("agents", "id", "TRUE"),
    ]:
        columns = [c for c in _columns(parity_db, table) if table != "agents" or c in RUN_TOTALS]
        select = f"SELECT {key}, {', '.join(columns)} FROM {table} WHERE {counts_something}"
        width = key.count(",") + 1

        def by_key(row: tuple[Any, ...], width: int = width) -> tuple[Any, ...]:
            return tuple((value is None, value or 0) for value in row[:width])

        with sqlite3.connect(parity_db) as conn:
            expected = sorted(conn.execute(select).fetchall(), key=by_key)
        actual = sorted(rows(parity_rebuilt, select), key=by_key)
        names = [*key.split(", "), *columns]
        result = differences(ReportResult(names, expected), ReportResult(names, actual))
        assert result == [], table
    assert set(SUMMARY_TABLES) <= {"usage_daily", "runs_daily", "step_histogram_daily", "sessions"}


def _columns(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_report_command_takes_a_url_and_prints_what_it_prints_for_sqlite(
    parity_db: Path, parity_pg: str
) -> None:
    runner = CliRunner()
    for args in (["spend_by_orchestrator", "--start", "2026-10-01"], ["daily_tokens"]):
        sqlite_out = runner.invoke(cli, ["report", *args, "--db", str(parity_db)])
        pg_out = runner.invoke(cli, ["report", *args, "--db", parity_pg])
        assert pg_out.exit_code == 0, pg_out.output
        assert pg_out.output == sqlite_out.output
    bad = runner.invoke(cli, ["report", "runs", "--db", parity_pg, "--start", "2026-13-01"])
    assert bad.exit_code == 1 and "start must be a UTC day" in bad.output


# --- single expressions ------------------------------------------------------------------

EXPRESSIONS = [
    # numbers: integer division, division by zero, SQLite's doubles, rounding half away
    "1 / 2",
    "-7 / 2",
    "7 / 2.0",
    "5 / 0",
    "1.0 * 3 / 4",
    "100.0 * 1 / 3",
    "round(2.675, 2)",
    "round(-2.5)",
    "round(0.5)",
    "round(1234.5678, -2)",
    "round(1.0000005, 6)",
    "round(7)",
    "abs(-2.5)",
    "max(1, 2)",
    "max(1, NULL)",
    "min(3, 2.5)",
    "max(coalesce(NULL, 0), 1)",
    "coalesce(nullif('', ''), 50)",
    "coalesce(nullif('7', ''), 50) + 0",
    "coalesce(nullif('0.75', ''), 0.5) * 2",
    "cast('07' AS INTEGER)",
    "cast(3.7 AS INTEGER)",
    "cast(-3.7 AS INTEGER)",
    "cast('2.9' AS INTEGER)",
    "cast('0.75' AS REAL)",
    "1 = 1",
    "2 > 1 AND 'a' < 'b'",
    # text
    "'a' || NULL",
    "'x' || 3",
    "substr('héllo wörld', 2, 4)",
    "substr('abc', 2)",
    "length('héllo')",
    "'ABC' LIKE 'a%'",
    "'a_c' LIKE 'a\\_c'",
    "'abc' LIKE 'a\\_c'",
    "'Ä' LIKE 'ä'",
    "'B' < 'a'",
    "'_x' > 'a'",
    "NULL IS NULL",
    "'a' IS 'a'",
    "NULL IS 'a'",
    "CASE WHEN 1 = 1 THEN 'y' END",
    "iif(1 > 2, 'a', 'b')",
    # dates: modifiers, month ends, leap days, SQLite's month overflow, 'now' in UTC
    "date('2026-01-31', '+1 month')",
    "date('2024-02-29', '+1 year')",
    "date('2026-03-31', '-1 month')",
    "date('2026-11-01T23:59:59.999Z', '+1 day')",
    "date('2026-12-31', 'start of month', '+1 month', '-1 day')",
    "date('2026-02-10', 'start of year')",
    "strftime('%Y-%m-01', '2026-02-14')",
    "strftime('%d', date('2024-02-01', 'start of month', '+1 month', '-1 day'))",
    "datetime('2026-11-01T10:20:30.456Z', '+90 minutes')",
    "strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-01T10:20:30.456Z', '+1.5 days')",
    "strftime('%j|%H:%M:%S', '2024-12-31T01:02:03Z')",
    "time('2026-11-01T10:20:30Z', '+30 seconds')",
    "strftime('100%% %Y', '2026-01-01')",
    "date('')",
    "date(NULL, '+1 day')",
    "date('now')",
    "strftime('%Y-%m-01', 'now')",
    "cast(strftime('%d', date('now', 'start of month', '+1 month', '-1 day')) AS INTEGER)",
]


def _generated_expressions(count: int = 400) -> list[str]:
    """Dates across month ends and leap years with modifiers, and costs (token counts
    times per-token prices) rounded to the report's digits: ties are frequent."""
    rng = random.Random(12)
    modifiers = [
        "+1 month",
        "-1 month",
        "+13 months",
        "+1 year",
        "-2 years",
        "+1 day",
        "-31 days",
        "start of month",
        "start of year",
        "+36 hours",
        "start of day",
    ]
    found = []
    for _ in range(count // 2):
        day = date(1996, 1, 1) + timedelta(days=rng.randrange(40_000))
        if rng.random() < 0.3:  # the last days of months, where months overflow
            day = day.replace(day=1) + timedelta(days=rng.choice([27, 28, 29, 30]))
        chosen = ", ".join(f"'{m}'" for m in rng.sample(modifiers, rng.randint(1, 3)))
        found.append(f"date('{day.isoformat()}', {chosen})")
    for _ in range(count // 2):
        tokens = [rng.randrange(0, 200_000) for _ in range(4)]
        cost = tokens[0] * 3e-6 + tokens[1] * 15e-6 + tokens[2] * 3e-7 + tokens[3] * 3.75e-6
        found.append(f"round({cost!r}, {rng.choice([1, 2, 4, 6])})")
    return found


def test_expressions_give_sqlites_answers_on_postgresql(parity_pg: str) -> None:
    expressions = EXPRESSIONS + _generated_expressions()
    found = []
    for start in range(0, len(expressions), 100):
        chunk = expressions[start : start + 100]
        sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, e in enumerate(chunk))
        with sqlite3.connect(":memory:") as conn:
            expected = conn.execute(sql).fetchone()
        _, (actual,) = pg_reports.run(parity_pg, sql, {})
        found += [
            f"{e}: SQLite {x!r}, PostgreSQL {y!r}"
            for e, x, y in zip(chunk, expected, actual, strict=True)
            if not same(x, y)
        ]
    assert found == []


def test_text_sorts_compares_and_aggregates_in_bytes(parity_pg: str) -> None:
    values = ["b", "B", "_a", "a", "é", "e", "Z-1", "Z_0", "z", "10", "9", None]
    table = (
        "WITH t AS ("
        + " UNION ALL ".join(
            f"SELECT {'NULL' if v is None else repr(v)} AS name, {i} AS n"
            for i, v in enumerate(values)
        )
        + ")"
    )
    queries = [
        f"{table} SELECT name FROM t ORDER BY name",
        f"{table} SELECT name FROM t ORDER BY name DESC",
        f"{table} SELECT DISTINCT name FROM t ORDER BY name",
        f"{table} SELECT upper(name) AS name FROM t ORDER BY 1, n",
        f"{table} SELECT min(name) AS a, max(name) AS b, sum(n) AS c, avg(n) AS d, "
        "count(name) AS e FROM t",
        f"{table} SELECT name FROM t WHERE name > 'a' ORDER BY n",
        f"{table} SELECT name FROM t WHERE name LIKE 'z%' ORDER BY n",
        f"{table} SELECT group_concat(name) AS a FROM (SELECT name FROM t ORDER BY name)",
        f"{table} SELECT group_concat(DISTINCT name) AS a FROM (SELECT name FROM t ORDER BY name)",
        f"{table} SELECT name, sum(n) AS total FROM t GROUP BY name ORDER BY total DESC, name",
    ]
    for sql in queries:
        with sqlite3.connect(":memory:") as conn:
            cursor = conn.execute(sql)
            expected = ReportResult([d[0] for d in cursor.description], cursor.fetchall())
        actual = ReportResult(*pg_reports.run(parity_pg, sql, {}))
        assert differences(expected, actual) == [], sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a' GLOB 'a*'",
        "SELECT printf('%d', 1)",
        "SELECT date('2026-01-01', 'weekday 0')",
        "SELECT date('2026-01-01', '+1.5 months')",
        "SELECT strftime('%w', '2026-01-01')",
        "SELECT substr('abc', -2)",
        "SELECT round(1.5, prompt_count) FROM agents",
        "SELECT group_concat(total_cost_usd) FROM agents",
        "SELECT 'x' || total_cost_usd FROM agents",
        "SELECT julianday('2026-01-01')",
        "INSERT INTO budgets VALUES ('model', 'x', 1, 1, '')",
        "SELECT count(*) FROM agents",  # unnamed: SQLite names it 'count(*)'
    ],
)
def test_sql_without_an_exact_translation_is_refused(sql: str) -> None:
    with pytest.raises(UnsupportedSQL):
        translate(sql)


def test_translations_are_kept_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sql = reports()["spend_by_day"].sql + "\n-- a fresh copy"
    pg_reports.translated.cache_clear()
    first = pg_reports.translated(sql)
    assert len(list((tmp_path / "adw-orchestrator").glob("pg-sql-*.json"))) == 1

    def fail(sql: str) -> None:
        raise AssertionError("translated again")

    monkeypatch.setattr(pg_sql, "translate", fail)
    pg_reports.translated.cache_clear()
    assert pg_reports.translated(sql) == first  # read back, sqlglot not needed


# --- notebooks ---------------------------------------------------------------------------

#: Every analysis function of the notebooks, with arguments that make it return rows.
ANALYSES: list[tuple[str, dict[str, Any]]] = [
    ("has_history", {}),
    ("history_span", {}),
    ("daily_usage", {}),
    ("spend_over_time", {"by": "model"}),
    ("token_mix", {}),
    ("runs_by_day", {"start": "2026-10-01"}),
    ("failure_rates", {}),
    ("failures_by_workflow", {}),
    ("common_errors", {}),
    ("run_durations", {}),
    ("step_durations", {}),
    ("cost_anomalies", {"threshold": 0, "limit": 20}),
    ("expensive_sessions", {}),
    ("week_over_week", {"end": "2026-10-25"}),
    ("latest_session", {}),
]


def test_analysis_gives_the_same_frames_on_postgresql(parity_db: Path, parity_pg: str) -> None:
    import pandas as pd

    from orchestrator.reports import analysis

    def check(expected: Any, actual: Any, what: str) -> None:
        if isinstance(expected, pd.DataFrame):
            assert len(expected), what
            pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)
        else:
            assert actual == expected, what

    for name, kwargs in ANALYSES:
        function = getattr(analysis, name)
        check(function(parity_db, **kwargs), function(parity_pg, **kwargs), name)
    expected = analysis.session_drilldown("S-Upper", parity_db)
    actual = analysis.session_drilldown("S-Upper", parity_pg)
    for part in ("runs", "timeline", "gantt", "prompts", "tools", "errors"):
        check(getattr(expected, part), getattr(actual, part), f"session_drilldown.{part}")


def test_run_history_notebook_runs_on_postgresql(parity_db: Path, parity_pg: str) -> None:
    from orchestrator.reports.notebooks import NOTEBOOKS_DIR, execute_notebook

    nb = execute_notebook(NOTEBOOKS_DIR / "run_history.ipynb", parity_pg)  # raises on errors
    first = "".join(
        str(output.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    first_day = one(parity_db, "SELECT min(substr(created_at, 1, 10)) FROM prompts")
    assert f"prompts from **{first_day}**" in first
    assert "postgresql://" in first and "Traceback" not in first
    charts = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in charts) >= 10
