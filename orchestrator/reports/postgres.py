"""The canned reports on PostgreSQL: each report's SQL, translated once, run with asyncpg.

:func:`orchestrator.reports.canned.run_report` comes here (``IN_DIALECT``) for a store whose
:attr:`~orchestrator.store.backend.Backend.dialect` is PostgreSQL's. The SQL is metadata.yml's,
written for SQLite; :mod:`orchestrator.reports.pg_sql` translates it into PostgreSQL that
returns the same rows. Translating costs sqlglot's import (about 0.25 s)
and the schema's (0.6 s), so each translation is kept on disk beside the parsed metadata
(:func:`translated`): a report on PostgreSQL imports neither once its SQL has been
translated by this version of the code. Reports run through the store's
:meth:`~orchestrator.store.backend.Backend.read`: in a read-only transaction, on a database
migrated first like every opener does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pg_sql import Translation


# -- the cache -------------------------------------------------------------------------------


def _version_key() -> str:
    """What a translation depends on besides its SQL: the translator, the schema's
    migrations and sqlglot (their files' sizes and times; nothing imported)."""
    parts = []
    here = Path(__file__).resolve().parents[1]  # orchestrator/
    spec = importlib.util.find_spec("sqlglot")
    origin = spec.origin if spec else None
    for path in (
        here / "reports" / "pg_sql.py",
        here / "store" / "migrations.py",
        Path(origin) if origin else None,
    ):
        if path is not None:
            stat = path.stat()
            parts.append(f"{path}:{stat.st_mtime_ns}:{stat.st_size}")
    return "\n".join(parts)


@functools.lru_cache(maxsize=256)
def translated(sql: str) -> Translation:
    """:func:`orchestrator.reports.pg_sql.translate`, kept on disk
    (in :func:`~orchestrator.reports.cache.cache_dir`) and in memory.

    A cache that cannot be read or written only costs the translation.
    """
    from .cache import cache_dir, write_cache_file

    digest = hashlib.sha256(f"{_version_key()}\n{sql}".encode()).hexdigest()[:32]
    cached = cache_dir() / f"pg-sql-{digest}.json"
    try:
        with cached.open(encoding="utf-8") as handle:
            data = json.load(handle)
        from .pg_sql import Translation

        return Translation(str(data["sql"]), [str(p) for p in data["parameters"]])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from . import pg_sql

    result = pg_sql.translate(sql)
    write_cache_file(cached, {"sql": result.sql, "parameters": result.parameters})
    return result


# -- running ---------------------------------------------------------------------------------


def in_postgres(sql: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """SQLite report SQL as PostgreSQL runs it (:func:`translated`) and its arguments, from
    ``values`` by parameter name (missing: ``''``)."""
    translation = translated(sql)
    return translation.sql, [values.get(name, "") for name in translation.parameters]


def run(url: str, sql: str, values: dict[str, str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run SQLite report SQL on the PostgreSQL database at ``url`` (migrated first, like
    every opener), read-only; ``values`` by parameter name (missing: ``''``). Returns
    the column names and the rows."""
    from ..store.targets import backend_for

    return backend_for(url).read(*in_postgres(sql, values))
