"""What the plugin knows of a Datasette instance: which of its databases have the
orchestrator schema, and the metadata (reports, dashboard, table docs) each one gets.
Kept apart from the hooks so that :mod:`.live` can use it without importing them.

Two table options of metadata.yml are kept from Datasette and served by the plugin
itself (:data:`OWN_TABLE_OPTIONS`): ``facets`` (:mod:`.facets`: not computed over
millions of rows) and ``fts_table`` (:mod:`.search`: a search that stops at the page's
rows). :meth:`_State.table_options` gives them to those modules."""

from __future__ import annotations

import pickle
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..reports.canned import DATABASE_NAME, metadata_for, metadata_path
from ..store.migrations import LEDGER, SET_NAME
from . import counts

#: Seconds before a file found without the orchestrator schema is looked at again.
RECHECK_S = 5.0

_PERMISSION_KEYS = ("allow", "allow_sql")

#: Table options of metadata.yml that the plugin serves instead of Datasette.
OWN_TABLE_OPTIONS = ("facets", "fts_table")

#: The table options Datasette 0.65 reads through ``metadata("tables")``: permissions
#: (``_table_permission_allows``, which deep-copies what it is given for every table it
#: checks: a database's page checks each table twice) and facets. Everything else of a
#: table (descriptions, columns, sort order, label column) is read through ``databases``,
#: so ``metadata("tables")`` gets only these.
READ_AS_TABLES = ("allow", "facets", "facet_size")


def has_orchestrator_schema(path: str | Path) -> bool:
    """Whether the SQLite file at ``path`` records the orchestrator's migrations.

    Read-only, and never waits for a lock: a file that cannot be read now is not one.
    """
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=0)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            f"SELECT 1 FROM {LEDGER} WHERE migration_set = ? LIMIT 1", (SET_NAME,)
        ).fetchone()
        return row is not None
    except sqlite3.Error:  # no ledger, not a database, locked
        return False
    finally:
        conn.close()


def _without_grants(value: Any) -> Any:
    """``value`` without any ``allow``/``allow_sql`` of ``true``: granting everything is
    Datasette's default, and writing it down would override an operator who turned it off."""
    if isinstance(value, dict):
        return {
            key: _without_grants(item)
            for key, item in value.items()
            if not (key in _PERMISSION_KEYS and item is True)
        }
    if isinstance(value, list):
        return [_without_grants(item) for item in value]
    return value


def _own_options(metadata: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Take :data:`OWN_TABLE_OPTIONS` out of ``metadata``'s tables: by (database, table)."""
    taken: dict[tuple[str, str], dict[str, Any]] = {}
    for name, database in (metadata.get("databases") or {}).items():
        for table, spec in (database.get("tables") or {}).items():
            if isinstance(spec, dict):
                options = {key: spec.pop(key) for key in OWN_TABLE_OPTIONS if key in spec}
                if options:
                    taken[(name, table)] = options
    return taken


def plugin_metadata(
    names: list[str] | tuple[str, ...],
    database_url: Callable[[str], str] = lambda name: f"/{name}",
    path: Path | None = None,
) -> dict[str, Any]:
    """The metadata the plugin adds for the orchestrator databases ``names`` (in order).

    metadata.yml (``path``, default :func:`~orchestrator.reports.canned.metadata_path`) with its
    database section under each name. The dashboards and the home page's link are for
    the first; each further database gets its own copy of every dashboard, its slug
    suffixed with ``-NAME``. A chart that names a report has its SQL
    (:func:`~orchestrator.reports.metadata_for`). Permission grants are left out (see the
    module docstring), and so are the table options the plugin serves itself
    (:data:`OWN_TABLE_OPTIONS`).
    """
    return _build(names, database_url, path)[0]


def _build(
    names: list[str] | tuple[str, ...],
    database_url: Callable[[str], str] = lambda name: f"/{name}",
    path: Path | None = None,
) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    """:func:`plugin_metadata` and the table options taken out of it (:func:`_own_options`)."""
    if not names:
        return {}, {}
    first = names[0]
    metadata = metadata_for(first, path)
    if "description_html" in metadata:
        metadata["description_html"] = metadata["description_html"].replace(
            f'href="/{DATABASE_NAME}"', f'href="{database_url(first)}"'
        )
    dashboards = metadata.get("plugins", {}).get("datasette-dashboards", {})
    for name in names[1:]:
        more = metadata_for(name, path)
        metadata.setdefault("databases", {}).update(more.get("databases", {}))
        for slug, dashboard in more.get("plugins", {}).get("datasette-dashboards", {}).items():
            dashboard["title"] = f"{dashboard.get('title', slug)} ({name})"
            dashboards[f"{slug}-{name}"] = dashboard
    options = _own_options(metadata)
    return dict(_without_grants(metadata)), options


def _for_key(metadata: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The part of ``metadata`` that Datasette's ``metadata(key)`` reads: ``key`` at the
    instance, database and table levels (all of it when ``key`` is None); for ``tables``,
    only the options Datasette reads that way (:data:`READ_AS_TABLES`)."""
    if key is None:
        return metadata
    part: dict[str, Any] = {key: metadata[key]} if key in metadata else {}
    databases = {}
    for name, database in (metadata.get("databases") or {}).items():
        entry = {key: database[key]} if key in database else {}
        if key == "tables" and entry:
            entry = {key: _read_as_tables(database[key])}
        tables = {
            table: {key: spec[key]}
            for table, spec in (database.get("tables") or {}).items()
            if isinstance(spec, dict) and key in spec
        }
        if tables and key != "tables":
            entry["tables"] = tables
        if entry:
            databases[name] = entry
    if databases:
        part["databases"] = databases
    return part


def _read_as_tables(tables: dict[str, Any]) -> dict[str, Any]:
    """``tables`` with only the options of each that Datasette reads through
    ``metadata("tables")`` (:data:`READ_AS_TABLES`)."""
    kept = {}
    for table, spec in tables.items():
        if isinstance(spec, dict):
            options = {key: spec[key] for key in READ_AS_TABLES if key in spec}
            if options:
                kept[table] = options
    return kept


class _State:
    """What the plugin knows about one Datasette instance."""

    def __init__(self) -> None:
        self.schema: dict[tuple[str, str], tuple[bool, float]] = {}  # (name, path) -> found, when
        self.seen: tuple[Any, float, tuple[str, ...]] = (None, 0.0, ())  # databases, until, names
        self.source: tuple[str, int] | None = None  # metadata.yml's path and mtime
        self.source_checked = -1.0  # when (monotonic) it was last looked at
        self.built: tuple[Any, ...] | None = None  # what the metadata below was built from
        self.full: dict[str, Any] = {}
        self.parts: dict[str | None, Any] = {}  # pickled (or shared) metadata for each key
        self.options: dict[tuple[str, str], dict[str, Any]] = {}  # (database, table) -> own

    def orchestrator_databases(self, datasette: Any) -> tuple[str, ...]:
        # Asked once per table cell (through get_metadata): the last answer stands for up
        # to a second while Datasette's databases are the same (it replaces the dict when
        # it adds or removes one) and no file is due to be looked at again.
        now = time.monotonic()
        databases = datasette.databases
        if databases is self.seen[0] and now < self.seen[1]:
            return self.seen[2]
        found = []
        recheck = now + 1.0
        for name, database in list(databases.items()):
            if database.is_memory or not database.path:
                continue
            key = (name, str(database.path))
            known = self.schema.get(key)
            if known is None or (not known[0] and now - known[1] > RECHECK_S):
                known = (has_orchestrator_schema(database.path), now)
                self.schema[key] = known
            if known[0]:
                found.append(name)
                counts.install(database)  # its database page's counts stop at their limit
            else:
                recheck = min(recheck, known[1] + RECHECK_S)
        self.seen = (databases, recheck, tuple(found))
        return self.seen[2]

    def _source(self) -> tuple[str, int]:
        """metadata.yml's path and mtime, looked up at most once a second (Datasette asks
        for metadata hundreds of times a page)."""
        now = time.monotonic()
        if self.source is None or now - self.source_checked > 1.0:
            path = metadata_path()
            self.source, self.source_checked = (str(path), path.stat().st_mtime_ns), now
        return self.source

    def _update(self, datasette: Any) -> bool:
        """Rebuild the metadata if the databases or metadata.yml changed; False: none."""
        names = self.orchestrator_databases(datasette)
        if not names:
            return False
        source = self._source()
        if (names, source) != self.built:
            self.built, self.parts = (names, source), {}
            self.full, self.options = _build(names, datasette.urls.database, Path(source[0]))
        return True

    def table_options(self, datasette: Any, database: str, table: str | None) -> dict[str, Any]:
        """metadata.yml's :data:`OWN_TABLE_OPTIONS` of ``table`` ({} for none; do not change)."""
        if table is None or not self._update(datasette):
            return {}
        return self.options.get((database, table), {})

    def metadata(self, datasette: Any, key: str | None) -> dict[str, Any]:
        if not self._update(datasette):
            return {}
        if key not in self.parts:
            part = _for_key(self.full, key)
            self.parts[key] = (
                part if key == "plugins" else pickle.dumps(part, pickle.HIGHEST_PROTOCOL)
            )
        if key == "plugins":
            # Asked once per table cell (render_cell plugins read their config): a copy of
            # the containers down to each plugin's config, which plugin_config() copies.
            return _spine(self.parts[key])
        # A fresh copy each time: Datasette and other plugins change what they are given
        # (canned queries get their name set, other plugins' queries are added to them).
        return dict(pickle.loads(self.parts[key]))


def _spine(value: dict[str, Any], depth: int = 4) -> dict[str, Any]:
    """``value`` with its dicts copied ``depth`` levels deep and the rest shared: enough
    that Datasette merging ``-m`` metadata into it changes none of ``value`` (at most the
    plugin configs under ``plugins``, with what ``-m`` gives them on every merge anyway)."""
    copy = value.copy()
    if depth > 1:
        for key, item in copy.items():
            if isinstance(item, dict):
                copy[key] = _spine(item, depth - 1)
    return copy


_states: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def state(datasette: Any) -> _State:
    found = _states.get(datasette)
    if found is None:
        found = _states[datasette] = _State()
    return found


def orchestrator_databases(datasette: Any) -> tuple[str, ...]:
    """The names of the databases of ``datasette`` that have the orchestrator schema."""
    return state(datasette).orchestrator_databases(datasette)
