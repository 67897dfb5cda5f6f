"""The canned reports on PostgreSQL: each report's SQL, translated once, run with asyncpg.

:func:`orchestrator.reports.canned.run_report` comes here for a ``postgresql://`` URL. The SQL is
metadata.yml's, written for SQLite; :mod:`orchestrator.reports.pg_sql` translates it into
PostgreSQL that returns the same rows. Translating costs sqlglot's import (about 0.25 s)
and the schema's (0.6 s), so each translation is kept on disk beside the parsed metadata
(:func:`translated`): a report on PostgreSQL imports neither once its SQL has been
translated by this version of the code. Reports run in a read-only transaction, on a
database migrated first like every opener does.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import json
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .pg_sql import Translation

T = TypeVar("T")


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


def run(url: str, sql: str, values: dict[str, str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run SQLite report SQL on the PostgreSQL database at ``url`` (migrated first, like
    every opener), read-only; ``values`` by parameter name (missing: ``''``). Returns
    the column names and the rows."""
    translation = translated(sql)
    args = [values.get(name, "") for name in translation.parameters]
    return blocking(fetch(url, translation.sql, args))


async def fetch(
    url: str, sql: str, args: Sequence[Any], conn: Any = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of PostgreSQL ``sql`` in a read-only transaction (on ``conn``, or
    on a connection of its own to ``url``)."""
    from ..store.postgres import connect

    own = conn is None
    if own:
        conn = await connect(url)
    try:
        async with conn.transaction(readonly=True):
            statement = await conn.prepare(sql)
            rows = await statement.fetch(*args)
            columns = [attribute.name for attribute in statement.get_attributes()]
    finally:
        if own:
            await conn.close()
    return columns, [tuple(row) for row in rows]


def blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from synchronous code, even where an event loop is
    already running (Jupyter's): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
