"""Time every canned report and dashboard query on a large demo database.

    python scripts/bench_reports.py [--db PATH] [--repeat 20] [--prompts 1000000]
        [--postgres URL]

Builds (or reuses ``--db PATH``, building it there when missing) a demo history
of ``--prompts`` prompts over 84 days ending on a fixed date (seed 1: about
9 agent logs per prompt), then runs, on a read-only sqlite3 connection as
Datasette does:

* every canned report of metadata.yml, with no parameters (``''`` for each, as
  Datasette passes them: all time) and with every parameter set to a realistic
  value (the last 30 days);
* every chart and select filter of every datasette-dashboards dashboard, with its
  ``[[ ... ]]`` optional clauses rendered by datasette-dashboards' own function
  (no filters: every clause dropped; all filters set: every clause kept);

each one warm-up run, then ``--repeat`` timed runs (execute and fetch what Datasette
fetches: at most ``max_returned_rows`` + 1, 1,001 rows; a report that lists every run
pages, one that sorts or aggregates pays for all its rows before the first).
Prints the median and p95 in ms beside two baselines measured in the same
process before and after (``SELECT 1`` and ``SELECT count(*) FROM prompts``),
the median as a multiple of the count(*) baseline, a ``*`` on every query whose
p95 is over 100 ms (``!`` over the 1000 ms ``sql_time_limit_ms`` that
``orchestrator serve`` sets: Datasette would cancel it), and the query plan
(EXPLAIN QUERY PLAN) of each marked query. A reused database is only read, never
migrated (unless ``--postgres`` copies it, below): a query on a table it lacks prints
ERROR (run any ``orchestrator`` command on it first).

With ``--postgres URL`` every query also runs on PostgreSQL, translated as
``orchestrator report`` runs it (:mod:`orchestrator.reports.postgres`), over the same rows: an
empty database at URL is first filled from the SQLite file with ``orchestrator copy``
(the time is printed), which opens the file as every opener does: a file older than the
migrations is upgraded first. Each timed run declares a cursor for the statement (parsed
and planned each time, for its first rows) and fetches at most 1,001 rows, in a
read-only transaction, on one connection: the first page, as for SQLite (``orchestrator
report`` and the notebooks fetch every row, on either engine). The connection itself
(with the schema check every opener makes) is timed apart. PostgreSQL's medians and p95
print beside SQLite's, with the same marks, and ``EXPLAIN (ANALYZE, BUFFERS)`` of each
query over 100 ms at p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasette_dashboards import replace_opts_in_query  # noqa: E402

from orchestrator.commands.demo import create_demo_database  # noqa: E402
from orchestrator.reports.canned import (  # noqa: E402
    Report,
    fill_report_queries,
    load_metadata,
    reports,
)
from orchestrator.reports.postgres import translated  # noqa: E402

END = datetime(2026, 11, 26, tzinfo=timezone.utc)  # the data's last day is the 25th
DAYS = 84
SEED = 1
SLOW_MS = 100.0
TIME_LIMIT_MS = 1000.0  # `orchestrator serve` runs datasette with sql_time_limit_ms 1000
FETCH_ROWS = 1001  # Datasette's max_returned_rows (1000) + 1, to tell it truncated


def parameters(sql: str) -> list[str]:
    """The named parameters of ``sql``, found as the reports module finds them."""
    return Report("", "", "", sql).parameters


def build(path: Path, prompts: int) -> None:
    """Build at ``path.partial`` then rename: an interrupted build is never reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for stale in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    step = max(prompts // 20, 1)
    marks = [0]

    def progress(count: int) -> None:
        if count - marks[0] >= step:
            marks[0] = count
            print(f"  ... {count:,} prompts", file=sys.stderr, flush=True)

    started = time.perf_counter()
    summary = asyncio.run(
        create_demo_database(
            partial, prompts=prompts, days=DAYS, seed=SEED, end=END, progress=progress
        )
    )
    elapsed = time.perf_counter() - started
    os.replace(partial, path)  # closed: the WAL is checkpointed into the file
    print(f"built {path} in {elapsed:.1f} s ({elapsed / 60:.1f} min): {summary}")


def timed(conn: sqlite3.Connection, sql: str, params: dict[str, str], repeat: int) -> Any:
    conn.execute(sql, params).fetchmany(FETCH_ROWS)  # warm-up: page cache, statement cache
    times = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(conn.execute(sql, params).fetchmany(FETCH_ROWS))
        times.append((time.perf_counter() - started) * 1000)
    return (*summarise(times), rows)


class Postgres:
    """One asyncpg connection to the database at ``url``, driven from synchronous code."""

    def __init__(self, url: str) -> None:
        from orchestrator.store.postgres import connect

        self.url = url
        self.loop = asyncio.new_event_loop()
        self.conn: Any = self.loop.run_until_complete(connect(url))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def value(self, sql: str) -> Any:
        return self.run(self.conn.fetchval(sql))

    async def _once(self, sql: str, args: list[str]) -> int:
        # A cursor is planned for its first rows, as SQLite streams them: the first page
        # is what both engines are timed for. Parsed and planned every time.
        # A cursor name per query: asyncpg caches FETCH with the columns it first saw.
        name = f"report_{abs(hash(sql))}"
        async with self.conn.transaction(readonly=True):
            await self.conn.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", *args)
            return len(await self.conn.fetch(f"FETCH {FETCH_ROWS} FROM {name}"))

    def timed(self, sql: str, params: dict[str, str], repeat: int) -> Any:
        """Median and p95 ms of report SQL (SQLite's, translated) and its rows."""
        translation = translated(sql)
        args = [params.get(name, "") for name in translation.parameters]
        self.run(self._once(translation.sql, args))  # warm-up: shared buffers
        times = []
        rows = 0
        for _ in range(repeat):
            started = time.perf_counter()
            rows = self.run(self._once(translation.sql, args))
            times.append((time.perf_counter() - started) * 1000)
        return (*summarise(times), rows)

    def timed_connect(self, repeat: int) -> tuple[float, float]:
        from orchestrator.store.postgres import connect

        async def once() -> None:
            conn = await connect(self.url)
            await conn.close()

        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            self.run(once())
            times.append((time.perf_counter() - started) * 1000)
        return summarise(times)

    def explain(self, sql: str, params: dict[str, str]) -> list[str]:
        translation = translated(sql)
        args = [params.get(name, "") for name in translation.parameters]
        plan = self.run(self.conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {translation.sql}", *args))
        return [row[0] for row in plan]

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


def summarise(times: list[float]) -> tuple[float, float]:
    times.sort()
    p95 = times[min(len(times) - 1, max(0, -(-len(times) * 95 // 100) - 1))]  # nearest rank
    return statistics.median(times), p95


def load_postgres(path: Path, url: str) -> None:
    """Fill an empty PostgreSQL database from the SQLite file with ``orchestrator copy``
    (verified); a filled one is reused as it is."""
    from orchestrator.commands.copy import copy_database
    from orchestrator.store.postgres import init_database

    init_database(url)
    pg = Postgres(url)
    try:
        prompts = pg.value("SELECT count(*) FROM prompts")
    finally:
        pg.close()
    if prompts:
        print(f"reusing the PostgreSQL database ({prompts:,} prompts; load time not measured)")
        return
    started = time.perf_counter()
    result = copy_database(path, url)
    pg = Postgres(url)
    try:
        pg.run(pg.conn.execute("ANALYZE"))  # statistics, as autovacuum keeps them
    finally:
        pg.close()
    elapsed = time.perf_counter() - started
    print(
        f"copied {result.inserted:,} rows into PostgreSQL in {elapsed:.0f} s "
        f"({result.inserted / elapsed:,.0f} rows/s; orchestrator copy, verified; ANALYZE)"
    )


def filter_values(conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, str]]:
    """Realistic values: the last 30 days of data, the busiest workflow and model."""
    last = conn.execute("SELECT max(day) FROM usage_daily").fetchone()[0]
    first = (datetime.fromisoformat(last) - timedelta(days=29)).date().isoformat()
    workflow = conn.execute(
        "SELECT o.name FROM usage_daily u JOIN orchestrator_agents o"
        " ON o.id = u.orchestrator_agent_id GROUP BY o.name ORDER BY sum(u.prompts) DESC"
    ).fetchone()[0]
    model = conn.execute(
        "SELECT model FROM usage_daily GROUP BY model ORDER BY sum(prompts) DESC"
    ).fetchone()[0]
    agent = conn.execute(
        "SELECT id, session_id FROM agents WHERE session_id IS NOT NULL"
        " ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 1000"
    ).fetchone()
    report_values = {
        "start": first,
        "end": last,
        "orchestrator": workflow,
        "limit": "50",
        "budget_usd": "0.75",
        "min_diff_usd": "0.01",
        "agent_id": agent[0] if agent else "",
        "session_id": agent[1] if agent else "",
    }
    dashboard_values = {
        "start": first,
        "end": last,
        "orchestrator": workflow,
        "model": model,
    }
    return report_values, dashboard_values


def queries(
    report_values: dict[str, str], dashboard_values: dict[str, str]
) -> list[tuple[str, str, str, dict[str, str]]]:
    """(name, mode, sql, parameters) for every query Datasette would run."""
    found: list[tuple[str, str, str, dict[str, str]]] = []
    for report in reports().values():
        names = report.parameters
        found.append((report.name, "no params", report.sql, dict.fromkeys(names, "")))
        if names:
            unknown = [name for name in names if name not in report_values]
            if unknown:
                print(f"note: {report.name}: no realistic value for {unknown}, left ''")
            given = {name: report_values.get(name, "") for name in names}
            found.append((report.name, "params set", report.sql, given))
    metadata = fill_report_queries(load_metadata())  # a panel naming a report: its SQL
    dashboards = metadata.get("plugins", {}).get("datasette-dashboards", {})
    for slug, dashboard in dashboards.items():
        items = [
            *((f"{slug}/{name}", chart) for name, chart in dashboard.get("charts", {}).items()),
            *(
                (f"{slug}/filter:{name}", flt)
                for name, flt in dashboard.get("filters", {}).items()
                if flt.get("query")
            ),
        ]
        for name, item in items:
            modes: list[tuple[str, dict[str, str]]] = [("no filters", {})]
            if "[[" in item["query"]:  # else the filters change nothing
                modes.append(("filters set", dashboard_values))
            for mode, options in modes:
                # What the dashboard page renders; Datasette then passes '' for the rest.
                sql = replace_opts_in_query(item["query"], options)
                given = {key: options.get(key, "") for key in parameters(sql)}
                found.append((name, mode, sql, given))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="reuse this database (built there if missing)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--prompts", type=int, default=1_000_000, help="when building")
    parser.add_argument("--postgres", metavar="URL", help="time PostgreSQL beside SQLite")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench-reports.db"
        if path.exists():
            print(f"reusing {path} (built before: build time not measured here)")
        else:
            build(path, args.prompts)
        pg = None
        if args.postgres:
            load_postgres(path, args.postgres)
            pg = Postgres(args.postgres)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            run(conn, args.repeat, pg)
        finally:
            conn.close()
            if pg is not None:
                pg.close()


def run(conn: sqlite3.Connection, repeat: int, pg: Postgres | None = None) -> None:
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("prompts", "agent_logs", "agents", "system_logs", "usage_daily")
    }
    if not counts["prompts"]:
        sys.exit("the database holds no prompts: build it with this script or `orchestrator demo`")
    span = conn.execute("SELECT min(day), max(day) FROM usage_daily").fetchone()
    print(
        "rows: " + ", ".join(f"{table} {n:,}" for table, n in counts.items()),
        f"| agent logs per prompt: {counts['agent_logs'] / max(counts['prompts'], 1):.2f}",
        f"| days {span[0]} .. {span[1]}",
        f"| today (date('now')): {conn.execute('SELECT date(?)', ('now',)).fetchone()[0]}",
    )
    print(f"sqlite {sqlite3.sqlite_version}, {repeat} timed runs each after one warm-up")
    if pg is not None:
        settings = ", ".join(
            f"{name} {pg.value(f'SHOW {name}')}" for name in ("jit", "shared_buffers", "work_mem")
        )
        collation = pg.value(
            "SELECT coalesce(daticulocale, datcollate) FROM pg_database "
            "WHERE datname = current_database()"
        )
        print(f"{pg.value('SELECT version()').split(' on ')[0]}: {settings}, collation {collation}")
        pg_rows = pg.value("SELECT count(*) FROM prompts")
        if pg_rows != counts["prompts"]:
            print(f"WARNING: PostgreSQL holds {pg_rows:,} prompts, SQLite {counts['prompts']:,}")
        connect = pg.timed_connect(repeat)
        print(f"PostgreSQL connection (with the schema check): {connect[0]:.2f} ms median")
    print()

    report_values, dashboard_values = filter_values(conn)
    print(f"report parameters set: {report_values}")
    print(f"dashboard filters set: {dashboard_values}\n")

    baselines = {
        "SELECT 1": "SELECT 1 AS one",
        "count(*) prompts": "SELECT count(*) AS n FROM prompts",
    }

    def measure_baselines(when: str) -> dict[str, float]:
        medians = {}
        for label, sql in baselines.items():
            median, p95, _ = timed(conn, sql, {}, repeat)
            medians[label] = median
            line = f"{'baseline ' + label + ' (' + when + ')':<60} {median:>9.2f} {p95:>9.2f}"
            if pg is not None:
                pg_median, pg_p95, _ = pg.timed(sql, {}, repeat)
                line += f" {'':>8} {pg_median:>9.2f} {pg_p95:>9.2f}"
            print(line)
        return medians

    def mark(p95: float) -> str:
        return " !" if p95 > TIME_LIMIT_MS else (" *" if p95 > SLOW_MS else "  ")

    header = f"{'query':<42} {'mode':<11} {'rows':>6} {'median ms':>9} {'p95 ms':>9} {'x base':>8}"
    if pg is not None:
        header += f" {'pg median':>9} {'pg p95':>9}"
    columns = f"{'':<60} {'median ms':>9} {'p95 ms':>9}"
    print(columns + (f" {'':>8} {'pg median':>9} {'pg p95':>9}" if pg is not None else ""))
    before = measure_baselines("before")
    results = []
    pg_results = []
    errors = 0
    todo = queries(report_values, dashboard_values)
    print()
    print(header)
    print("-" * len(header))
    for name, mode, sql, params in todo:
        try:
            median, p95, rows = timed(conn, sql, params, repeat)
        except sqlite3.Error as exc:  # e.g. a schema older than metadata.yml: not migrated
            print(f"{name:<42} {mode:<11} ERROR {type(exc).__name__}: {exc}", flush=True)
            errors += 1
            continue
        results.append((name, mode, sql, params, median, p95))
        ratio = median / before["count(*) prompts"]
        line = f"{name:<42} {mode:<11} {rows:>6} {median:>9.2f} {p95:>9.2f} {ratio:>7.2f}x"
        line += mark(p95)
        if pg is not None:
            pg_median, pg_p95, pg_count = pg.timed(sql, params, repeat)
            pg_results.append((name, mode, sql, params, pg_median, pg_p95))
            line += f"{pg_median:>8.2f} {pg_p95:>9.2f}{mark(pg_p95)}"
            if pg_count != rows:
                line += f" ({pg_count} rows on PostgreSQL!)"
        print(line.rstrip(), flush=True)
    print()
    measure_baselines("after")

    for engine, found in (("SQLite", results), ("PostgreSQL", pg_results)):
        if engine == "PostgreSQL" and pg is None:
            continue
        slow = [r for r in found if r[5] > SLOW_MS]
        print(
            f"\n{engine}: {len(slow)} of {len(found)} queries over {SLOW_MS:.0f} ms at p95"
            f" ({sum(r[5] > TIME_LIMIT_MS for r in found)} over {TIME_LIMIT_MS:.0f} ms)"
            + (f"; {errors} failed" if errors else "")
        )
    for name, mode, sql, params, _median, p95 in results:
        if p95 <= SLOW_MS:
            continue
        print(f"\n== SQLite: {name} ({mode}), p95 {p95:.0f} ms: EXPLAIN QUERY PLAN")
        depth = {0: 0}
        for node, parent, _unused, detail in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
            depth[node] = depth.get(parent, 0) + 1
            print("  " * depth[node] + detail)
    for name, mode, sql, params, _median, p95 in pg_results:
        if pg is not None and p95 > SLOW_MS:
            print(f"\n== PostgreSQL: {name} ({mode}), p95 {p95:.0f} ms: EXPLAIN (ANALYZE, BUFFERS)")
            print("\n".join("  " + line for line in pg.explain(sql, params)))


if __name__ == "__main__":
    main()
