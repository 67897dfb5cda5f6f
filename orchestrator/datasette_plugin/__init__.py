"""The Datasette plugin: reports, dashboard and live page for every orchestrator database.

Installed with the package (entry point ``orchestrator`` in Datasette's plugin group), it
makes plain ``datasette serve orchestrator.db`` show what ``orchestrator serve`` shows. A
served file is an orchestrator database when its ``_sqlite_migrations`` ledger holds the
``orchestrator`` migration set: one read of a small table, once per file (a file without
it is looked at again every few seconds, in case ``orchestrator init`` runs meanwhile).
Each one gets metadata.yml's database section (table docs, canned reports) under its own
name, and the overview dashboard (:func:`plugin_metadata`), whose panels it draws with
values as text (:mod:`.dashboards`); ``/-/live`` streams its events
(:mod:`.live`). Started by ``orchestrator serve postgresql://...``, it keeps the snapshot
of the store fresh and says on every page as of when it is (:mod:`.snapshot`). Its tables'
configured facets and full-text search are served by the
plugin so that pages stay fast at millions of rows (:mod:`.facets`, :mod:`.search`). A
report or dashboard page given a ``start`` or ``end`` that is not a UTC day says so
(:mod:`.windows`), as ``orchestrator report`` does.

Metadata given with ``datasette -m`` wins over the plugin's, key by key. The plugin never
grants a permission: metadata.yml's ``allow_sql: true`` is left to Datasette's default,
so ``--setting default_allow_sql off`` still holds.

May import: ``orchestrator.core``, ``store``, ``reports`` and ``commands`` (a snapshot is
a copy); never the CLI.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl

from .metadata import has_orchestrator_schema, orchestrator_databases, plugin_metadata, state
from .snapshot import body_script, snapshot_for


@hookimpl
def get_metadata(datasette: Any, key: str | None) -> dict[str, Any]:
    return state(datasette).metadata(datasette, key)


@hookimpl
def prepare_connection(conn: Any) -> None:
    """The SQL functions the reports call (days in a time zone, weeks): SQLite has none."""
    from ..reports.sql_functions import register

    register(conn)


@hookimpl
def register_facet_classes() -> list[Any]:
    from .facets import ConfiguredFacet

    return [ConfiguredFacet]


# Called after Datasette's own search filter, which finds no fts_table for these tables and
# says the page has no search: this one's "supports_search" is the one the page gets.
@hookimpl(trylast=True)
def filters_from_request(request: Any, database: str, table: str, datasette: Any) -> Any:
    from .search import filters_from_request as search

    return search(request, database, table, datasette)


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    def wrap(app: Any) -> Any:
        async def counted_as_needed(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope.get("type") == "http" and scope.get("method") == "GET":
                from .search import with_count_choice
                from .windows import with_window_checked

                scope = with_window_checked(datasette, scope)
                scope = await with_count_choice(datasette, scope)
            await app(scope, receive, send)

        return counted_as_needed

    return wrap


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    from .dashboards import SCRIPT_ROUTE, dashboards_script
    from .live import live_events, live_page
    from .windows import ROUTE, invalid_window

    return [
        (SCRIPT_ROUTE, dashboards_script),
        (ROUTE, invalid_window),
        (r"^/-/live$", live_page),
        (r"^/-/live/events$", live_events),
        (r"^/-/snapshot\.json$", snapshot_status),
    ]


@hookimpl
def startup(datasette: Any) -> None:
    snapshot = snapshot_for(datasette)
    if snapshot is not None:  # serving a PostgreSQL store: keep its snapshot fresh
        snapshot.start()


@hookimpl
def extra_body_script(datasette: Any) -> str:
    return body_script(datasette)


async def snapshot_status(datasette: Any, request: Any) -> Any:
    """``/-/snapshot.json``: which store the snapshot copies, as of when, the last error."""
    from datasette.utils.asgi import NotFound, Response

    await datasette.ensure_permissions(request.actor, ["view-instance"])
    snapshot = snapshot_for(datasette)
    if snapshot is None:
        raise NotFound("this Datasette serves no snapshot of a PostgreSQL store")
    return Response.json(snapshot.as_json())


@hookimpl
def menu_links(datasette: Any, actor: Any, request: Any) -> Any:
    async def inner() -> list[dict[str, str]]:
        from .live import can_view_live

        names = orchestrator_databases(datasette)
        if names and await can_view_live(datasette, actor, names[0]):
            return [{"href": datasette.urls.path("/-/live"), "label": "Live runs and events"}]
        return []

    return inner


__all__ = [
    "asgi_wrapper",
    "extra_body_script",
    "filters_from_request",
    "get_metadata",
    "has_orchestrator_schema",
    "menu_links",
    "orchestrator_databases",
    "plugin_metadata",
    "prepare_connection",
    "register_facet_classes",
    "register_routes",
    "startup",
    "state",
]
