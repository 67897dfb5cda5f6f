"""The Datasette plugin: reports, dashboard and live page for every orchestrator database.

Installed with the package (entry point ``orchestrator`` in Datasette's plugin group), it
makes plain ``datasette serve orchestrator.db`` show what ``orchestrator serve`` shows. A
served file is an orchestrator database when its ``_sqlite_migrations`` ledger holds the
``orchestrator`` migration set: one read of a small table, once per file (a file without
it is looked at again every few seconds, in case ``orchestrator init`` runs meanwhile).
Each one gets metadata.yml's database section (table docs, canned reports) under its own
name, and the overview dashboard (:func:`plugin_metadata`); ``/-/live`` streams its events
(:mod:`.live`). Its tables' configured facets are served by the plugin so that pages
stay fast at millions of rows (:mod:`.facets`).

Metadata given with ``datasette -m`` wins over the plugin's, key by key. The plugin never
grants a permission: metadata.yml's ``allow_sql: true`` is left to Datasette's default,
so ``--setting default_allow_sql off`` still holds.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl

from .metadata import has_orchestrator_schema, orchestrator_databases, plugin_metadata, state


@hookimpl
def get_metadata(datasette: Any, key: str | None) -> dict[str, Any]:
    return state(datasette).metadata(datasette, key)


@hookimpl
def register_facet_classes() -> list[Any]:
    from .facets import ConfiguredFacet

    return [ConfiguredFacet]


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    from .live import live_events, live_page

    return [(r"^/-/live$", live_page), (r"^/-/live/events$", live_events)]


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
    "get_metadata",
    "has_orchestrator_schema",
    "menu_links",
    "orchestrator_databases",
    "plugin_metadata",
    "register_facet_classes",
    "register_routes",
    "state",
]
