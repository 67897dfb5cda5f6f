"""``/-/live``: the runs in progress and the newest events, streamed as they land.

The page is a template and a small script served by the plugin (no CDN: it works
offline). The script reads ``/-/live/events``, a server-sent-events stream fed by
:class:`orchestrator.reports.tail.EventSource` on a read-only connection of its own, polled every
quarter second (an idle poll is one pragma). Each stream ends after :data:`STREAM_S`
seconds and the browser reconnects at once, getting the newest events again (the page
drops those it has, by their key): so a server asked to stop (SIGTERM, Ctrl-C) is never
held open by a page left open, as an endless response would.

Both need what reading the tables the events come from needs: ``view-table`` on each,
which falls back to ``view-database`` and ``view-instance`` as Datasette's own table pages
do. ``orchestrator serve --share`` thus asks for the login here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from datasette.utils.asgi import Forbidden, NotFound, Response

from ..reports.tail import POLL_INTERVAL_S, EventSource
from ..store.sqlite import DatabaseReplaced
from .metadata import orchestrator_databases

#: The tables the live page shows rows of; seeing it needs permission to view each.
LIVE_TABLES = ("orchestrator_agents", "agents", "prompts", "agent_logs", "system_logs")

#: Events sent when a stream opens (the page shows as many).
BACKLOG = 100

#: Seconds a stream lasts before the browser reconnects (see the module docstring).
STREAM_S = 5.0

#: Milliseconds the browser waits before reconnecting.
RETRY_MS = 250

STATIC = Path(__file__).resolve().parent / "static"


def _script_url(datasette: Any) -> str:
    """Where Datasette serves static/live.js: under the distribution's name when the entry
    point registered the plugin (adw-orchestrator), else under the module's."""
    from datasette.plugins import get_plugins

    for plugin in get_plugins():
        if plugin["static_path"] and Path(plugin["static_path"]).resolve() == STATIC:
            return str(datasette.urls.static_plugins(plugin["name"], "live.js"))
    raise NotFound("the orchestrator plugin's static files are not served")


async def _ensure_can_view(datasette: Any, actor: Any, database: str) -> None:
    for table in LIVE_TABLES:
        await datasette.ensure_permissions(
            actor, [("view-table", (database, table)), ("view-database", database), "view-instance"]
        )


async def can_view_live(datasette: Any, actor: Any, database: str) -> bool:
    """Whether ``actor`` may see the live page of ``database``."""
    try:
        await _ensure_can_view(datasette, actor, database)
    except Forbidden:
        return False
    return True


async def _database(request: Any, datasette: Any) -> str:
    """The orchestrator database asked for (``?database=``, else the first), if allowed."""
    names = orchestrator_databases(datasette)
    name = request.args.get("database") or (names[0] if names else None)
    if name is None:
        raise NotFound("No database with the orchestrator schema is served")
    if name not in names:
        raise NotFound(f"{name} is not a database with the orchestrator schema")
    await _ensure_can_view(datasette, request.actor, name)
    return name


async def live_page(request: Any, datasette: Any) -> Response:
    name = await _database(request, datasette)
    query = urllib.parse.urlencode({"database": name})
    return Response.html(
        await datasette.render_template(
            "orchestrator_live.html",
            {
                "database": name,
                "databases": orchestrator_databases(datasette),
                "events_url": f"{datasette.urls.path('/-/live/events')}?{query}",
                "script_url": _script_url(datasette),
                "backlog": BACKLOG,
            },
            request=request,
        )
    )


def _message(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _runs(source: EventSource) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"now": now, "runs": [run.as_dict() for run in source.running]}


async def live_events(request: Any, datasette: Any, send: Any, receive: Any) -> None:
    """The event stream: ``event`` messages (one :class:`~orchestrator.reports.tail.Event` each,
    as JSON) and ``runs`` messages (the runs in progress, with the server's time) when
    the stream opens and whenever they change."""
    name = await _database(request, datasette)
    source = await asyncio.to_thread(
        EventSource.open, datasette.databases[name].path, backlog=BACKLOG
    )
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # nginx: pass each message on at once
                ],
            }
        )
        runs = _runs(source)
        chunks = [f"retry: {RETRY_MS}\n\n"]
        chunks += [_message("event", event.as_dict()) for event in source.backlog]
        chunks.append(_message("runs", runs))
        deadline = time.monotonic() + STREAM_S
        while not gone.is_set():
            if chunks:
                body = "".join(chunks).encode("utf-8")
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if time.monotonic() >= deadline:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(gone.wait(), POLL_INTERVAL_S)
            try:
                events = await asyncio.to_thread(source.poll)
            except DatabaseReplaced:  # the browser reconnects, to the new file
                break
            chunks = [_message("event", event.as_dict()) for event in events]
            now = _runs(source)
            if now["runs"] != runs["runs"]:
                runs = now
                chunks.append(_message("runs", runs))
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        source.close()
