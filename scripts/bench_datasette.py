"""Time Datasette's own pages on a large database, as a browser meets them.

    python scripts/bench_datasette.py --db big.db [--repeat 10]

Serves ``--db`` in-process with the project's plugin (the same metadata, reports and
settings as ``orchestrator serve``: ``orchestrator.commands.serve.DATASETTE_SETTINGS``) and
fetches through Datasette's ASGI client, after one warm-up each, every page a user
reaches from the home page:

* the home page, the database page and the live page (its HTML; the stream is
  ``scripts/bench_tail.py``'s);
* every table page (first page, default sort), the JSON of it and its newest row's page;
* every canned report page with its defaults;
* the dashboards' list, the overview dashboard, each panel's page and the JSON each panel
  fetches for its data (its query with no filter, as the browser asks for it);
* full-text searches of the agent logs for their most common word, one in about 1% of
  them and one in about 100, and of the prompts for their most common word.

Prints the median and p95 in ms beside the baseline of the same run (Datasette's
``/-/versions.json``, a page that touches no table), and the ratio of each p95 to the
300 ms target (1 s for the search).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import tilde_encode

from orchestrator import datasette_plugin
from orchestrator.commands.serve import DATASETTE_SETTINGS
from orchestrator.reports.canned import reports


async def timed(ds: Datasette, path: str, repeat: int) -> tuple[float, float, int]:
    response = await ds.client.get(path)  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await ds.client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, response.status_code


def word_in(db: Path, index: str, rows: float | None = None) -> str:
    """The most frequent token of the full-text ``index``, or the one in the number of rows
    nearest ``rows`` (FTS5 vocabulary)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute(f"CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, '{index}', 'row')")
        order = "cnt DESC" if rows is None else f"abs(doc - {rows}), term"
        row = conn.execute(f"SELECT term FROM temp.vocab ORDER BY {order} LIMIT 1").fetchone()
        return str(row[0])
    finally:
        conn.close()


def newest_rows(db: Path, name: str, tables: list[str]) -> list[tuple[str, str]]:
    """The page of each table's newest row (by rowid), as its table page links to it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = []
        for table in tables:
            keys = [
                row[1]
                for row in sorted(conn.execute(f"PRAGMA table_info([{table}])"), key=lambda r: r[5])
                if row[5]
            ] or ["rowid"]
            columns = ", ".join(f"[{key}]" if key != "rowid" else key for key in keys)
            row = conn.execute(
                f"SELECT {columns} FROM [{table}] ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                path = ",".join(tilde_encode(str(value)) for value in row)
                found.append((table, f"/{name}/{tilde_encode(table)}/{path}"))
        return found
    finally:
        conn.close()


def dashboard_pages(ds: Datasette) -> list[tuple[str, str, float | None]]:
    """The dashboards' list, each dashboard, its panels' pages and the JSON each panel
    fetches (datasette-dashboards' own query for it: no filter given)."""
    from datasette_dashboards import replace_opts_in_query

    pages: list[tuple[str, str, float | None]] = [
        ("dashboards /-/dashboards", "/-/dashboards", 300.0)
    ]
    for slug, dashboard in (ds.plugin_config("datasette-dashboards") or {}).items():
        pages.append((f"dashboard {slug}", f"/-/dashboards/{slug}", 300.0))
        for chart_slug, chart in dashboard.get("charts", {}).items():
            pages.append((f"panel {chart_slug}", f"/-/dashboards/{slug}/{chart_slug}", 300.0))
            sql = replace_opts_in_query(chart["query"], {})
            data = f"/{chart['db']}.json?" + urlencode({"sql": sql, "_shape": "objects"})
            pages.append((f"panel {chart_slug}.json", data, 300.0))
    return pages


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if not pm.is_registered(datasette_plugin):  # installed: its entry point did it
        pm.register(datasette_plugin, name="orchestrator")
    ds = Datasette([str(args.db)], settings=dict(DATASETTE_SETTINGS))
    name = args.db.stem
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%_fts%' "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    logs = conn.execute("SELECT count(*) FROM agent_logs").fetchone()[0]
    conn.close()
    searches = [
        ("agent_logs", word_in(args.db, "agent_logs_fts")),
        ("agent_logs", word_in(args.db, "agent_logs_fts", logs / 100)),
        ("agent_logs", word_in(args.db, "agent_logs_fts", 100)),
        ("prompts", word_in(args.db, "prompts_fts")),
    ]
    pages = [("baseline /-/versions.json", "/-/versions.json", None)]
    pages += [("home /", "/", 300.0), (f"database /{name}", f"/{name}", 300.0)]
    pages += [("live /-/live", "/-/live", 300.0)]
    pages += [(f"table {t}", f"/{name}/{t}", 300.0) for t in tables]
    pages += [(f"table {t}.json", f"/{name}/{t}.json?_shape=array", 300.0) for t in tables]
    pages += [(f"row {t}", path, 300.0) for t, path in newest_rows(args.db, name, tables)]
    pages += [(f"report {r}", f"/{name}/{r}", 300.0) for r in sorted(reports())]
    pages += dashboard_pages(ds)
    pages += [(f"search {t} '{w}'", f"/{name}/{t}?_search={w}", 1000.0) for t, w in searches]
    await ds.invoke_startup()
    print(f"{'page':<52} {'status':>6} {'median ms':>10} {'p95 ms':>8} {'p95/target':>10}")
    for label, path, target in pages:
        median, p95, status = await timed(ds, path, args.repeat)
        ratio = "" if target is None else f"{p95 / target:.2f}"
        flag = " *" if target is not None and p95 > target else ""
        print(f"{label:<52} {status:>6} {median:>10.1f} {p95:>8.1f} {ratio:>10}{flag}")


if __name__ == "__main__":
    asyncio.run(main())
