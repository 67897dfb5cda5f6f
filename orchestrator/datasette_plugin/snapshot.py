"""Serving a PostgreSQL store: a local SQLite snapshot, refreshed while Datasette runs.

Datasette reads only SQLite. ``orchestrator serve postgresql://...`` copies the store
into a snapshot file (:mod:`orchestrator.commands.copy`) and starts Datasette on it with these
environment variables set; the plugin then refreshes the snapshot every few seconds
with the same copy code (new rows, runs that finished; a copy's ``recent`` pass), and
every page says which store it shows and as of when.
"""

from __future__ import annotations

import html
import json
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import format_exception
from ..core.ids import parse_timestamp, utc_now

SOURCE_ENV = "ORCHESTRATOR_SNAPSHOT_OF"  # the store's URL
PATH_ENV = "ORCHESTRATOR_SNAPSHOT_PATH"  # the SQLite file Datasette serves
INTERVAL_ENV = "ORCHESTRATOR_SNAPSHOT_INTERVAL"  # seconds between refreshes
AS_OF_ENV = "ORCHESTRATOR_SNAPSHOT_AS_OF"  # when the copy made before Datasette began


@dataclass
class Snapshot:
    source: str
    path: str
    interval: float
    as_of: str  # when the last refresh that succeeded began: everything committed before is in
    since: float | None = None  # UNIX time the last copy began (None: not known)
    error: str | None = None
    refreshes: int = 0
    rows: int = 0  # rows the refreshes brought (new and caught up)
    #: The identity of the store it is a copy of (:func:`snapshot_source`): a refresh from
    #: another store at the URL copies nothing (a restart builds the snapshot anew).
    identity: str | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def shown_source(self) -> str:
        from ..store.targets import redact_url

        return redact_url(self.source)

    def refresh(self) -> None:
        """One refresh: the rows the store gained and runs that finished since the last."""
        from ..commands.copy import AnotherStore, copy_database

        if self.identity is None:
            self.identity = snapshot_source(self.path)
        began, started = utc_now(), time.time()
        try:
            result = copy_database(self.source, self.path, since=self.since, expect=self.identity)
        except AnotherStore as exc:  # never mixed into this one: a restart rebuilds
            self.error = f"{exc}; restart serve to build a snapshot of it"
            return
        except Exception as exc:  # a server away for a moment: keep serving, say so
            self.error = format_exception(exc)
            return
        self.as_of, self.since, self.error = began, started, None
        self.refreshes += 1
        self.rows += result.inserted + result.updated

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.refresh()

    def start(self) -> None:
        """Refresh every ``interval`` seconds from now on, in a thread of its own: Datasette
        calls startup hooks in an event loop that is not the server's."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)
            self._thread.start()

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.shown_source,
            "as_of": self.as_of,
            "refresh_seconds": self.interval,
            "refreshes": self.refreshes,
            "rows_refreshed": self.rows,
            "error": self.error,
        }

    def banner_html(self) -> str:
        text = (
            f"Snapshot of {self.shown_source} as of {self.as_of} UTC "
            f"(refreshed every {self.interval:g} s)"
        )
        if self.error:
            text += f"; the last refresh failed: {self.error}"
        return f'<p class="message-info orchestrator-snapshot">{html.escape(text)}</p>'


_snapshots: weakref.WeakKeyDictionary[Any, Snapshot] = weakref.WeakKeyDictionary()


def snapshot_for(datasette: Any) -> Snapshot | None:
    """The snapshot ``datasette`` serves, when it was started for a PostgreSQL store."""
    if datasette in _snapshots:
        return _snapshots[datasette]
    source, path = os.environ.get(SOURCE_ENV), os.environ.get(PATH_ENV)
    if not source or not path:
        return None
    served = {os.path.realpath(db.path) for db in datasette.databases.values() if db.path}
    if os.path.realpath(path) not in served:
        return None
    as_of = os.environ.get(AS_OF_ENV) or ""
    snapshot = Snapshot(
        source,
        path,
        float(os.environ.get(INTERVAL_ENV) or 5),
        as_of or "(not yet)",
        parse_timestamp(as_of).timestamp() if as_of else None,
    )
    _snapshots[datasette] = snapshot
    return snapshot


def body_script(datasette: Any) -> str:
    """JavaScript that puts the "as of" line at the top of the page."""
    snapshot = snapshot_for(datasette)
    if snapshot is None:
        return ""
    banner = json.dumps(snapshot.banner_html())
    return (
        "document.addEventListener('DOMContentLoaded', () => {"
        "const place = document.querySelector('section.content') || document.body;"
        f"place.insertAdjacentHTML('afterbegin', {banner});}});"
    )


def _source_file(path: Path) -> Path:
    return path.with_name(f"{path.name}.source")


def snapshot_source(path: str | os.PathLike[str]) -> str | None:
    """The identity of the store the snapshot at ``path`` is a copy of, as recorded when it
    was built (None: not recorded)."""
    try:
        return _source_file(Path(path)).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def record_source(path: Path, identity: str) -> None:
    """Record beside the snapshot at ``path`` the identity of the store it copies."""
    written = _source_file(path).with_suffix(f".source-{os.getpid()}")
    written.write_text(identity + "\n", encoding="utf-8")
    os.replace(written, _source_file(path))
