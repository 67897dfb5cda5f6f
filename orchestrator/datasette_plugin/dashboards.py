"""The overview dashboard's script: datasette-dashboards' own, with safe panel renderers.

datasette-dashboards 0.8 draws a ``library: table`` or ``metric`` panel by setting each
value as HTML (``innerHTML``): a run name, an error or a budget name holding
``<img src=x onerror=...>`` ran script on the dashboard, as whoever looked at it (under
``--share`` the logged-in admin, who may run SQL). A panel with no rows threw and stayed
an empty box, and its Vega-Lite specs say v5 to the v6 it bundles.

The plugin serves that package's ``dashboards.js`` at its own URL (a plugin's routes come
before Datasette's static files) followed by ``static/dashboard_panels.js``, whose
renderers replace the package's (the later declaration of a function wins in a script):
values go in as text, an empty panel says so, and specs are v6. The package's templates
are left as they are, whichever plugin's templates Datasette finds first.

A panel can show a canned report's rows: its ``query`` names the report instead of giving
SQL (``query: {report: usage_blocks}``), optionally with a ``select`` over the report's rows
(the report is a common table expression named after it). datasette-dashboards runs inline
SQL only, so :func:`fill_report_queries` puts the report's SQL from metadata.yml's
``queries`` in its place in :func:`~orchestrator.reports.metadata_for`, the metadata the
plugin serves: the panel and the report are one SQL, written once.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

#: The keys of a chart's ``query`` when it names a report (see the module docstring).
REPORT_QUERY_KEYS = {"report", "select"}


def report_query(sql: str, name: str, select: str | None = None) -> str:
    """The SQL of a panel showing the report ``name`` (whose SQL is ``sql``): the report
    itself, or ``select`` over its rows, the report a common table expression ``name``."""
    if select is None:
        return sql
    return f"WITH {name} AS (\n{sql}\n)\n{select}"


def fill_report_queries(metadata: dict[str, Any]) -> dict[str, Any]:
    """Replace each dashboard chart's ``query: {report: NAME[, select: SQL]}`` in
    ``metadata`` (changed in place, and returned) by :func:`report_query` of the report
    ``NAME`` of the chart's database (its canned query in ``databases``). Raises ValueError
    naming the dashboard and chart for a report that does not exist or other keys."""
    databases = metadata.get("databases") or {}
    dashboards = (metadata.get("plugins") or {}).get("datasette-dashboards") or {}
    for slug, dashboard in dashboards.items():
        for name, chart in (dashboard.get("charts") or {}).items():
            query = chart.get("query")
            if not isinstance(query, dict):
                continue
            where = f"dashboard {slug!r}, chart {name!r}"
            if "report" not in query or set(query) - REPORT_QUERY_KEYS:
                raise ValueError(f"{where}: query takes report and select, not {sorted(query)}")
            queries = (databases.get(chart.get("db")) or {}).get("queries") or {}
            report = queries.get(query["report"])
            if not isinstance(report, dict) or "sql" not in report:
                raise ValueError(f"{where}: no report {query['report']!r} in {chart.get('db')!r}")
            chart["query"] = report_query(report["sql"], query["report"], query.get("select"))
    return metadata


#: The URL of datasette-dashboards' script (the hyphenated name is served too).
SCRIPT_ROUTE = r"^/-/static-plugins/datasette[-_]dashboards/dashboards\.js$"

OURS = Path(__file__).resolve().parent / "static" / "dashboard_panels.js"


@functools.cache
def _script(mtime_ns: int) -> bytes:
    upstream = resources.files("datasette_dashboards") / "static" / "dashboards.js"
    return upstream.read_bytes() + b"\n\n" + OURS.read_bytes()


def script() -> bytes:
    """The package's dashboards.js and then ours, as one script."""
    return _script(OURS.stat().st_mtime_ns)


async def dashboards_script(datasette: Any, request: Any) -> Any:
    from datasette.utils.asgi import Response

    return Response(script().decode("utf-8"), content_type="application/javascript; charset=utf-8")
