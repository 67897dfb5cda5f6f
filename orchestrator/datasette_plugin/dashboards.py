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
SQL (``query: {report: usage_blocks}``), optionally with a ``select`` over the report's rows.
datasette-dashboards runs inline SQL only, so
:func:`orchestrator.reports.canned.fill_report_queries` puts the report's SQL there in the
metadata the plugin serves: the panel and the report are one SQL, written once.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

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
