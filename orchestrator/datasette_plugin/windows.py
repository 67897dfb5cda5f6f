"""Report and dashboard pages refuse a date window that the command line refuses.

Every report and the overview dashboard take ``start`` and ``end``, UTC days. Datasette
passes any text to the SQL, where ``date('2026-13-01')`` is NULL: the page showed no
rows, as if nothing had happened. Before Datasette's view runs, the plugin's ASGI wrapper
checks them with :func:`orchestrator.reports.canned.check_date_window` (what ``orchestrator
report`` and the notebooks call) and sends a page that fails it to the plugin's own route,
which answers 400: on the HTML page, the error and a form to correct the parameters; in
JSON, Datasette's error shape; in CSV, the error line. A visitor who may not see the page
gets 403, as from Datasette's view.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..reports.canned import DATE_PARAMETERS, check_date_window, reports
from .metadata import orchestrator_databases

TITLE = "Invalid date window"

#: Where the ASGI wrapper sends such a request (:func:`with_window_checked`), so that
#: Datasette's router gives the answer its actor, CSRF token and error handling.
ROUTE = r"^/-/orchestrator/invalid-window$"
_PATH = "/-/orchestrator/invalid-window"
_KEY = "orchestrator_invalid_window"  # the scope key holding what was asked


def with_window_checked(datasette: Any, scope: dict[str, Any]) -> dict[str, Any]:
    """``scope``, or one for :func:`invalid_window` when it asks for a report or a
    dashboard with a ``start`` or ``end`` that is not a UTC day. Runs no SQL."""
    query = scope.get("query_string") or b""
    if b"start=" not in query and b"end=" not in query:
        return scope
    pairs = urllib.parse.parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True)
    args = dict(reversed(pairs))  # the first value of each, as Datasette's request.args
    try:
        check_date_window({key: args.get(key) for key in DATE_PARAMETERS})
    except ValueError as exc:
        error = str(exc)
    else:
        return scope
    page = _page(datasette, scope)
    if page is None:
        return scope
    page.update(error=error, args=args)
    path = datasette.urls.path(_PATH)
    return dict(scope, path=path, raw_path=path.encode(), **{_KEY: page})


async def invalid_window(datasette: Any, request: Any) -> Any:
    """The 400 answer to a page :func:`with_window_checked` sent here (403 for a visitor
    who may not see the page, as Datasette's view would answer)."""
    from datasette.utils.asgi import Forbidden, NotFound, Response

    page = request.scope.get(_KEY)
    if page is None:
        raise NotFound("no such page")
    visible, _ = await datasette.check_visibility(request.actor, permissions=page["permissions"])
    if not visible:
        raise Forbidden("You do not have permission to view this page")
    error, args = page["error"], page["args"]
    if page["format"] == "json":
        body = {"ok": False, "error": error, "status": 400, "title": TITLE}
        return Response.json(body, status=400)
    if page["format"] == "csv":
        return Response.text(error + "\n", status=400)
    fields = [(name, args.get(name, "")) for name in page["fields"]]
    fields += [(key, value) for key, value in args.items() if key not in page["fields"]]
    html = await datasette.render_template(
        "orchestrator_bad_window.html",
        {
            "title": page["title"],
            "error": error,
            "database": page.get("database"),
            "action": page["action"],
            "fields": fields,
        },
        request=request,
    )
    return Response.html(html, status=400)


def _page(datasette: Any, scope: dict[str, Any]) -> dict[str, Any] | None:
    """What ``scope`` asks for, when it is a report (canned query of an orchestrator
    database) or a dashboard: its title, permissions, form fields and format."""
    path = scope.get("path", "")
    base_url = datasette.setting("base_url")
    if base_url != "/" and path.startswith(base_url):
        path = "/" + path[len(base_url) :]
    parts = path.strip("/").split("/")
    if parts[:2] == ["-", "dashboards"] and len(parts) >= 3:
        config = datasette.plugin_config("datasette-dashboards") or {}
        dashboard = config.get(parts[2])
        if not isinstance(dashboard, dict):
            return None
        return {
            "title": dashboard.get("title", parts[2]),
            "permissions": ["view-instance"],
            "fields": list(dashboard.get("filters", {})),
            "action": datasette.urls.path("/" + "/".join(parts)),
            "format": "html",
        }
    if len(parts) != 2 or parts[0].startswith("-"):
        return None
    name, _, suffix = parts[1].partition(".")
    try:
        database = datasette.get_database(route=parts[0]).name
    except KeyError:
        return None
    report = reports().get(name)
    if report is None or database not in orchestrator_databases(datasette):
        return None
    if suffix not in ("", "json", "csv"):
        return None
    return {
        "title": report.title,
        "database": database,
        "permissions": [
            ("view-query", (database, name)),
            ("view-database", database),
            "view-instance",
        ],
        "fields": report.parameters,
        "action": datasette.urls.query(database, name),
        "format": suffix or "html",
    }
