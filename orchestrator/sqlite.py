"""SQLite: opening a database file the way every part of the project needs it,
and :class:`SQLiteBackend`, the writer's backend for it.

The connection settings that only SQLite speaks live here (with the DDL in
``migrations``): WAL so readers such as Datasette never block the writer,
``synchronous=FULL`` so a committed batch survives power loss as well as a
killed process, a busy timeout so concurrent writers wait instead of failing,
``BEGIN IMMEDIATE`` so a write transaction takes its lock at once, and
enforced foreign keys. A PostgreSQL backend is a second
:class:`~orchestrator.backend.Backend`, not a fork of the writer.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import migrations
from .backend import Backend, Params
from .errors import OrchestratorError

if TYPE_CHECKING:
    from sqlite_utils import Database

#: Seconds a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 60.0

#: Statements run on every new connection (after the journal mode is WAL).
CONNECTION_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
    f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA cache_size = -32768",  # 32 MiB of page cache: indexes of millions of rows
    "PRAGMA temp_store = MEMORY",
)

#: Starts a write transaction that takes the write lock at once, so two
#: writers never both read then deadlock on upgrading to a write.
BEGIN_WRITE = "BEGIN IMMEDIATE"

DEFAULT_DB = "orchestrator.db"


def default_db_path() -> Path:
    """The database the user means: ``$ORCHESTRATOR_DB``, the seed's ``$DATABASE_PATH``,
    else ``./orchestrator.db``."""
    value = os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH") or DEFAULT_DB
    return Path(value)


def configure(conn: sqlite3.Connection) -> None:
    """Apply the project's connection settings to an open connection."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() not in ("wal", "memory"):  # in-memory databases have no WAL
        raise sqlite3.OperationalError(f"could not switch the database to WAL (got {mode!r})")
    for pragma in CONNECTION_PRAGMAS:
        conn.execute(pragma)


def connect(path: str | os.PathLike[str], *, migrate: bool = True) -> sqlite3.Connection:
    """Open ``path`` (created if missing) in autocommit mode, configured and migrated."""
    try:
        conn = sqlite3.connect(
            os.fspath(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA schema_version").fetchone()  # opening is lazy: touch the file
    except sqlite3.OperationalError as exc:
        raise sqlite3.OperationalError(
            f"cannot open the database {os.fspath(path)!r}: {exc}"
        ) from None
    try:
        configure(conn)
        if migrate and not migrations.is_current(conn):
            from sqlite_utils import Database

            migrations.apply(Database(conn))
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: str | os.PathLike[str] | None = None) -> Database:
    """A migrated sqlite-utils ``Database`` for ``path`` (default: :func:`default_db_path`)."""
    from sqlite_utils import Database

    return Database(connect(path if path is not None else default_db_path()))


def schema_sql() -> str:
    """The full schema as SQL, read from a freshly migrated in-memory database."""
    from sqlite_utils import Database

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.apply(Database(conn))
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND tbl_name != '_sqlite_migrations' "
        "AND name NOT LIKE '%_fts_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
    ).fetchall()
    conn.close()
    return ";\n\n".join(row[0] for row in rows) + ";\n"


class DatabaseReplaced(sqlite3.OperationalError, OrchestratorError):
    """The database file was deleted or replaced under an open writer."""


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino)


class SQLiteBackend(Backend):
    """The writer's connection to an SQLite file (aiosqlite: the driver runs in a thread)."""

    integrity_error = sqlite3.IntegrityError
    database_error = sqlite3.Error
    row_errors = (
        sqlite3.IntegrityError,
        sqlite3.InterfaceError,
        sqlite3.ProgrammingError,
        sqlite3.DataError,
    )

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn: Any = None  # aiosqlite.Connection
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened

    @property
    def location(self) -> str:
        return os.fspath(self.path)

    @property
    def connection(self) -> Any:
        """The open ``aiosqlite.Connection``."""
        return self._conn

    async def open(self) -> None:
        import aiosqlite

        # Migrate synchronously, on a connection of its own, before the writer starts.
        await asyncio.to_thread(lambda: connect(self.path).close())
        conn = await aiosqlite.connect(
            os.fspath(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None
        )
        try:
            for pragma in CONNECTION_PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            await conn.close()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._identity = _identity(self.path)

    def check(self) -> None:
        if self._identity is None:
            return
        try:
            now: tuple[int, int] | None = _identity(self.path)
        except FileNotFoundError:
            now = None
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise DatabaseReplaced(
                f"{self.path} was {what} while this writer had it open; nothing more is "
                "written to it (restart the writer to use the new file)"
            )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn is not None and self._conn.in_transaction)

    async def begin(self) -> None:
        await self._conn.execute(BEGIN_WRITE)

    async def commit(self) -> None:
        await self._conn.execute("COMMIT")

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        return int(cursor.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else dict(row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        async with self._conn.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def defer_search_index(self) -> dict[str, tuple[str, int]]:
        """Stop indexing new rows for full-text search row by row (for bulk loads); return
        what :meth:`catch_up_search_index` needs. FTS5 indexes a batch of rows ~15x faster
        than one row per trigger call; rows other writers add meanwhile are caught up too."""
        deferred: dict[str, tuple[str, int]] = {}
        for name, table, sql in await self._conn.execute_fetchall(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND sql LIKE '%AFTER INSERT%' AND sql LIKE '%\\_fts %' ESCAPE '\\'"
        ):
            (watermark,) = await self._conn.execute_fetchall(f"SELECT max(rowid) FROM {table}")
            deferred[name] = (sql, watermark[0] or 0)
            await self._conn.execute(f"DROP TRIGGER {name}")
        return deferred

    async def catch_up_search_index(self, deferred: dict[str, tuple[str, int]]) -> None:
        """Index every row added since :meth:`defer_search_index`, then restore its triggers."""
        for name, (sql, watermark) in deferred.items():
            exists = await self._conn.execute_fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
            )
            if exists:  # rolled back before any commit: the trigger and its index are whole
                continue
            match = _FTS_INSERT.search(sql)
            if match is None:  # pragma: no cover - the migrations' trigger shape changed
                raise sqlite3.OperationalError(f"cannot read the search trigger {name}: {sql}")
            columns = match["values"].replace("new.", "")
            await self._conn.execute(
                f"INSERT INTO {match['fts']} ({match['columns']}) SELECT {columns} "
                f"FROM {match['table']} WHERE rowid > ?",
                (watermark,),
            )
            await self._conn.execute(sql)


#: The statement of a full-text search trigger, as the migrations write it.
_FTS_INSERT = re.compile(
    r"AFTER INSERT ON (?P<table>\w+) BEGIN\s+INSERT INTO (?P<fts>\w+) \((?P<columns>[^)]*)\) "
    r"VALUES \((?P<values>[^)]*)\)"
)
