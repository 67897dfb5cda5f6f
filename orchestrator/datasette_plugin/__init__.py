"""The Datasette plugin: reports, dashboard and live page for every orchestrator database.

Installed with the package (entry point ``orchestrator`` in Datasette's plugin group), it
makes plain ``datasette serve orchestrator.db`` show what ``orchestrator serve`` shows. A
served file is an orchestrator database when its ``_sqlite_migrations`` ledger holds the
``orchestrator`` migration set: one read of a small table, once per file (a file without
it is looked at again every few seconds, in case ``orchestrator init`` runs meanwhile).
Each one gets metadata.yml's database section (table docs, canned reports) under its own
name, and the overview dashboard (:func:`plugin_metadata`); ``/-/live`` streams its events
(:mod:`.live`). Started by ``orchestrator serve postgresql://...``, it keeps the snapshot
of the store fresh and says on every page as of when it is (:mod:`.snapshot`).

Metadata given with ``datasette -m`` wins over the plugin's, key by key. The plugin never
grants a permission: metadata.yml's ``allow_sql: true`` is left to Datasette's default,
so ``--setting default_allow_sql off`` still holds.
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
def register_routes() -> list[tuple[str, Any]]:
    from .live import live_events, live_page

    return [
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
    "extra_body_script",
    "get_metadata",
    "has_orchestrator_schema",
    "menu_links",
    "orchestrator_databases",
    "plugin_metadata",
    "register_routes",
    "startup",
    "state",
]
