"""SQLite: opening a database file the way every part of the project needs it,
and :class:`SQLiteBackend`, the writer's backend for it.

The connection settings that only SQLite speaks live here (with the DDL in
``migrations``): WAL so readers such as Datasette never block the writer,
``synchronous=FULL`` so a committed batch survives power loss as well as a
killed process, a busy timeout so concurrent writers wait instead of failing,
``BEGIN IMMEDIATE`` so a write transaction takes its lock at once, and
enforced foreign keys. A PostgreSQL backend is a second
:class:`~orchestrator.store.backend.Backend`, not a fork of the writer.

Opening checks the schema: a file migrated by a newer orchestrator, one that is not
SQLite, and one missing a table, index or trigger the migrations create are refused
with a one-line :class:`SchemaError` or :class:`NotADatabase` naming the file. The
check stays cheap: once a file's objects have been checked, ``PRAGMA user_version``
holds its ``PRAGMA schema_version`` (which SQLite bumps on every schema change), so
opening it again compares two header fields; only a changed schema costs the full
comparison with a freshly migrated in-memory database.

A file deleted or replaced under an open connection (:class:`OpenedFiles`): the old
file's write-ahead log, named after the path, is let go of (checkpointed into the old
file, then deleted) before anything opens the new file, or left alone when something
already has: it is never read, checkpointed or deleted as the new file's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import OrchestratorError
from ..core.ids import utc_now
from . import migrations
from .backend import (
    Backend,
    CopyBackup,
    Feed,
    InitResult,
    KeyRange,
    Params,
    insert_sql,
    key_digest,
    key_range_where,
)

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

#: Rows in one INSERT of :meth:`SQLiteBackend.insert_many` (fewer where the columns would
#: pass the variables a statement may hold: 32,766 since SQLite 3.32, 999 before).
ROWS_PER_INSERT = 100
_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999

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


class NotADatabase(sqlite3.DatabaseError, OrchestratorError):
    """The file is not an SQLite database (nothing was written to it)."""


class SchemaError(sqlite3.DatabaseError, OrchestratorError):
    """The database's schema is not the one this version of orchestrator writes.

    The message is one line naming the file and what to do; ``path`` is the file.
    """

    def __init__(self, message: str, path: str | os.PathLike[str]) -> None:
        super().__init__(message)
        self.path = Path(path)


class SchemaTooNew(SchemaError):
    """A newer orchestrator migrated the file: its ledger names migrations (``unknown``)
    this version does not have."""

    def __init__(self, path: str | os.PathLike[str], unknown: list[str]) -> None:
        super().__init__(
            f"{path}: its schema is newer than this version of orchestrator (unknown "
            f"migration {', '.join(unknown)}); upgrade adw-orchestrator",
            path,
        )
        self.unknown = unknown


class SchemaDrift(SchemaError):
    """Tables, indexes or triggers the migrations create are missing (``missing``), so
    totals would silently stop adding up or writes would fail; ``orchestrator init``
    re-creates them."""

    def __init__(self, path: str | os.PathLike[str], missing: list[str]) -> None:
        super().__init__(
            f"{path}: the schema is missing {', '.join(missing)} (dropped by hand?); "
            "`orchestrator init` re-creates them and recomputes the totals",
            path,
        )
        self.missing = missing


class SchemaOutdated(SchemaError):
    """A file that cannot be written needs migrations (``pending``) before it can be read."""

    def __init__(self, path: str | os.PathLike[str], pending: list[str]) -> None:
        super().__init__(
            f"{path} cannot be written and its schema is older than this version of "
            f"orchestrator (missing migration {', '.join(pending)}); run `orchestrator init` "
            "on a writable copy, or read it with the version that wrote it",
            path,
        )
        self.pending = pending


class DatabaseInUse(sqlite3.OperationalError, OrchestratorError):
    """Another connection has the database open, so it may not be replaced."""


class SchemaCheck:
    """What :func:`ensure_schema` did to a database (a plain class: opening stays cheap)."""

    __slots__ = ("applied", "repaired")

    def __init__(self, applied: list[str] | None = None, repaired: list[str] | None = None):
        self.applied = applied or []  # migrations applied just now
        self.repaired = repaired or []  # objects re-created by ``repair``


def _connect_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> sqlite3.Error:
    """The one-line error for a file SQLite could not open or read."""
    code = getattr(exc, "sqlite_errorname", "")
    if code == "SQLITE_NOTADB" or (not code and "file is not a database" in str(exc)):
        return NotADatabase(f"{os.fspath(path)} is not an SQLite database")
    if isinstance(exc, sqlite3.OperationalError):
        return sqlite3.OperationalError(f"cannot open the database {os.fspath(path)!r}: {exc}")
    return type(exc)(f"{os.fspath(path)}: {exc}")  # e.g. "database disk image is malformed"


def _open(
    path: str | os.PathLike[str], *, uri: str | None = None, timeout: float = BUSY_TIMEOUT_S
) -> sqlite3.Connection:
    """An autocommit connection to ``path`` (or to ``uri`` naming it), its file read once
    (opening is lazy): raises NotADatabase or a one-line OperationalError naming it."""
    target = uri if uri is not None else os.fspath(path)
    try:
        conn = sqlite3.connect(
            target,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=uri is not None,
        )
    except sqlite3.Error as exc:
        raise _connect_error(path, exc) from None
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise _connect_error(path, exc) from None
    return conn


def connect(path: str | os.PathLike[str], *, migrate: bool = True) -> sqlite3.Connection:
    """Open ``path`` (created if missing) in autocommit mode, configured, migrated and its
    schema checked (:func:`ensure_schema`); ``migrate=False`` skips both.

    Raises NotADatabase, SchemaTooNew, SchemaDrift (``orchestrator init`` repairs), or
    sqlite3.OperationalError naming the file when it cannot be opened.
    """
    conn = _open(path)
    try:
        configure(conn)
        if migrate:
            ensure_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _fingerprint(conn: sqlite3.Connection) -> tuple[int, int]:
    """(``user_version``, ``schema_version``): equal once the schema has been checked."""
    row = conn.execute("SELECT * FROM pragma_user_version, pragma_schema_version").fetchone()
    return int(row[0]), int(row[1])


def _record_checked(conn: sqlite3.Connection, version: int) -> None:
    """Remember that the schema at ``version`` was checked, unless it changed since."""
    with migrations.write_transaction(conn):
        if _fingerprint(conn)[1] == version:
            conn.execute(f"PRAGMA user_version = {int(version)}")


def ensure_schema(
    conn: sqlite3.Connection,
    path: str | os.PathLike[str],
    *,
    writable: bool = True,
    verify: bool = False,
    repair: bool = False,
) -> SchemaCheck:
    """Bring ``conn``'s schema up to date and check every object the migrations create is
    there; ``path`` names the file in errors.

    Cheap when nothing changed: one read of the migration ledger and of two header fields;
    sqlite-utils is imported only to migrate a file that is neither empty nor current
    (:func:`orchestrator.store.migrations.migrate`). ``verify`` runs the full check anyway;
    ``repair`` re-creates what is missing and recomputes the totals
    (:func:`orchestrator.store.migrations.repair`) instead of raising SchemaDrift.
    ``writable=False`` changes nothing: pending migrations raise SchemaOutdated.
    Raises SchemaTooNew when a newer orchestrator migrated the file.
    """
    pending, unknown = migrations.pending_and_unknown(migrations.applied_names(conn))
    if unknown:
        raise SchemaTooNew(path, unknown)
    applied: list[str] = []
    if pending:
        if not writable:
            raise SchemaOutdated(path, pending)
        applied = migrations.migrate(conn)
    elif not verify:
        user_version, schema_version = _fingerprint(conn)
        if user_version == schema_version != 0:
            return SchemaCheck()
    version = _fingerprint(conn)[1]
    missing = [name for _, name in migrations.missing_objects(conn)]
    repaired: list[str] = []
    if missing and repair:
        repaired = migrations.repair(conn)
        version = _fingerprint(conn)[1]
        missing = [name for _, name in migrations.missing_objects(conn)]
    if missing:
        raise SchemaDrift(path, missing)
    if writable:
        _record_checked(conn, version)
    return SchemaCheck(applied, repaired)


def is_writable(path: str | os.PathLike[str]) -> bool:
    """Whether this process may write the database at ``path``: the file, and its folder
    (for the ``-wal`` and ``-shm`` files) unless both of those exist and are writable."""
    path = Path(path)
    if path.exists() and not os.access(path, os.W_OK):
        return False
    if os.access(path.parent, os.W_OK):
        return True
    return all(os.access(f"{path}{suffix}", os.W_OK) for suffix in ("-wal", "-shm"))


def _uri(path: Path, query: str) -> str:
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"


def open_for_reading(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to the database at ``path``, its schema current and checked.

    A file this process can write (:func:`is_writable`) is brought up to date first, as
    :func:`connect` does. One it cannot (a read-only filesystem or folder) is opened
    ``mode=ro``, or ``immutable=1`` when its ``-shm`` file cannot be created either (a
    ``-wal`` left beside it by a writer that crashed is then not read), and only checked:
    SchemaOutdated when it needs migrating, SchemaTooNew, SchemaDrift. Raises
    FileNotFoundError when there is no file and NotADatabase when it is not SQLite.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}")
    if is_writable(path):
        connect(path).close()
        return _open(path, uri=_uri(path, "mode=ro"))
    try:
        conn = _open(path, uri=_uri(path, "mode=ro"))
    except NotADatabase:
        raise
    except sqlite3.OperationalError:  # no -shm, and it cannot be created
        conn = _open(path, uri=_uri(path, "immutable=1"))
    try:
        ensure_schema(conn, path, writable=False)
    except BaseException:
        conn.close()
        raise
    return conn


#: How long ``init --force`` waits for other connections to close before refusing.
EXCLUSIVE_TIMEOUT_S = 1.0


def lock_exclusively(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection that keeps every other one out of ``path`` until it is closed.

    In WAL mode each connection that has read the database holds a shared lock until it
    is closed (writers, Datasette, notebooks, even idle), so this raises DatabaseInUse
    while any is open, after waiting ``EXCLUSIVE_TIMEOUT_S``. NotADatabase when the file
    is not SQLite.
    """
    try:
        conn = sqlite3.connect(os.fspath(path), timeout=EXCLUSIVE_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise _connect_error(path, exc) from None
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # keep the lock after COMMIT
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or (
            "locked" in str(exc)
        ):
            raise DatabaseInUse(
                f"{os.fspath(path)} is open in another process (an ADW writer, "
                "`orchestrator serve`, a notebook): stop it first; nothing was changed"
            ) from None
        raise _connect_error(path, exc) from None
    return conn


def backup_connection(
    source: sqlite3.Connection, source_path: Path, dest: str | os.PathLike[str] | None
) -> Path:
    """Copy the database ``source`` (open on ``source_path``) to ``dest`` (default
    ``<path>.<UTC timestamp>.bak``) with SQLite's online backup API, checked with
    ``PRAGMA integrity_check`` (:func:`orchestrator.commands.maintenance.backup`)."""
    if dest is None:
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        target = source_path.with_name(f"{source_path.name}.{stamp}.bak")
    else:
        target = Path(dest)
    if target.exists():
        raise FileExistsError(f"{target} exists: not overwriting it with a backup")
    try:
        copy = sqlite3.connect(os.fspath(target))
        try:
            source.backup(copy)
            problems = integrity_problems(copy)
        finally:
            copy.close()
    except BaseException:
        remove_files(target)
        raise
    if problems:
        remove_files(target)
        raise sqlite3.DatabaseError(
            f"the backup of {source_path} failed its integrity check: {'; '.join(problems)}"
        )
    return target


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong; empty when the database is intact."""
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:  # damage bad enough that the check cannot run
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def remove_files(path: Path) -> None:
    """Delete the database file ``path`` and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def start_afresh(path: Path) -> Path:
    """Back up the database at ``path``, then replace its content with an empty, migrated
    schema, in place and under an exclusive lock; returns the backup's path.

    In place, not by deleting the file: a process that opened the old file could otherwise
    go on writing to a deleted inode, and every row it wrote would be lost.
    """
    from sqlite_utils import Database

    conn = lock_exclusively(path)
    try:
        saved = backup_connection(conn, path, None)
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        fresh = sqlite3.connect(":memory:", isolation_level=None)
        try:
            fresh.execute(f"PRAGMA page_size = {int(page_size)}")  # backup needs them equal
            migrations.apply(Database(fresh))
            fresh.backup(conn)
        finally:
            fresh.close()
    finally:
        conn.close()
    return saved


def open_database(path: str | os.PathLike[str] | None = None) -> Database:
    """A migrated sqlite-utils ``Database`` for ``path`` (default: :func:`default_db_path`)."""
    from sqlite_utils import Database

    return Database(connect(path if path is not None else default_db_path()))


def schema_sql() -> str:
    """The full schema as SQL, read from a freshly migrated in-memory database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.migrate(conn)
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND tbl_name != '_sqlite_migrations' "
        "AND name NOT LIKE '%_fts_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
    ).fetchall()
    conn.close()
    return ";\n\n".join(row[0] for row in rows) + ";\n"


class DatabaseReplaced(sqlite3.OperationalError, OrchestratorError):
    """The database file was deleted or replaced under an open writer or follower."""


def file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


class OpenedFiles:
    """Which files a connection opened: the database at ``path`` and the ``-wal`` and
    ``-shm`` beside it (taken after its first read), to tell when they were swapped out.

    SQLite names a database's write-ahead log and its index by the database's path. When
    the file there is replaced or deleted while a connection has it open, those two
    still hold the old file's pages: the next connection to the new file would read (or
    recover) them as its own, and an SQLite closing a moved database leaves them there
    (it checkpoints and deletes them only while its file is unmoved). :meth:`release`
    closes a connection so that neither happens.
    """

    __slots__ = ("db", "path", "shm", "wal")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.db = file_id(self.path)
        self.wal = file_id(f"{self.path}-wal")
        self.shm = file_id(f"{self.path}-shm")

    def moved(self) -> bool:
        """Whether the file at ``path`` is no longer the one opened (one ``stat``)."""
        return file_id(self.path) != self.db

    def replaced(self) -> DatabaseReplaced:
        """The error to raise, saying what happened to the file."""
        what = "deleted" if not self.path.exists() else "replaced by another file"
        return DatabaseReplaced(
            f"{self.path} was {what} while it was open here; nothing more is written to or "
            "read from the old file (open the database again to use the new one)"
        )

    @contextlib.contextmanager
    def release(self) -> Iterator[bool]:
        """Around closing a connection whose file was moved: yields whether no connection
        has the new file at ``path`` open (then the caller may checkpoint its log into
        the old file, which only it can still reach), and then deletes the old ``-wal``
        and ``-shm`` if they are still the ones opened, so the new file starts clean.

        Meanwhile SQLite connections are kept out of the new file: a write lock on the
        bytes where each holds its shared lock (one it keeps for as long as it has a WAL
        database open), so one opening it waits until the old log is gone. When one has
        it open already, it reads the old log's shared index with it: nothing is
        touched, since checkpointing or deleting would now change its view.
        """
        with _kept_out(self.path) as alone:
            yield alone
            if alone:
                for suffix, opened in (("-wal", self.wal), ("-shm", self.shm)):
                    name = f"{self.path}{suffix}"
                    if opened is not None and file_id(name) == opened:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(name)


#: Where SQLite's unix and Windows VFSes place their locks in a database file: a shared
#: lock is a read lock on one byte of SHARED_SIZE starting at SHARED_FIRST (os_unix.c).
_PENDING_BYTE = 0x40000000
_SHARED_FIRST = _PENDING_BYTE + 2
_SHARED_SIZE = 510


@contextlib.contextmanager
def _kept_out(path: Path) -> Iterator[bool]:
    """Hold SQLite connections out of the file at ``path`` (none is there: nothing to
    hold); yields False when one has it open already, or it cannot be locked."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: leave everything as it is
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield True
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _SHARED_SIZE, _SHARED_FIRST)
        except OSError:
            yield False
            return
        yield True
    finally:
        # Closing drops this process's locks on that file: it had none (it never opened
        # the new file) unless it opened it again before closing the old connection.
        os.close(fd)


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

    served_directly = True  # Datasette reads SQLite files
    replaced_error = DatabaseReplaced

    def __init__(
        self, path: str | os.PathLike[str], *, in_thread: bool = False, read_only: bool = False
    ) -> None:
        """``in_thread=True``: the driver runs in the caller's thread (each call blocks
        it, no event loop is needed: :func:`~orchestrator.store.backend.run_blocking`), for a
        bulk load that is the only thing running; a call then costs what sqlite3's does.
        ``read_only=True`` (with ``in_thread``): opened by :func:`open_for_reading`, so that
        a file this process cannot write is read (its schema only checked)."""
        if read_only and not in_thread:
            raise ValueError("an SQLite file is opened read-only in the caller's thread")
        self.path = Path(path)
        self.in_thread = in_thread
        self.read_only = read_only
        self.suspends = not in_thread
        self._conn: Any = None  # aiosqlite.Connection
        self._opened: OpenedFiles | None = None  # the files it opened, to see them swapped
        self._finalizer: weakref.finalize | None = None
        self._checked_before_defer = False
        #: Triggers :meth:`pause_triggers` dropped, by table: (name, sql), and whether the
        #: schema had been checked before.
        self._paused: dict[str, tuple[list[tuple[str, str]], bool]] = {}

    @property
    def location(self) -> str:
        return os.fspath(self.path)

    @property
    def connection(self) -> Any:
        """The open ``aiosqlite.Connection``."""
        return self._conn

    async def open(self) -> None:
        conn: Any
        if self.in_thread:  # migrated and configured (read-only: migrated, or only checked)
            conn = _InThread(open_for_reading(self.path) if self.read_only else connect(self.path))
        else:
            # Migrate synchronously, on a connection of its own, before the writer starts.
            import asyncio  # here: a command that only reads never pays for importing it

            import aiosqlite

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
        try:
            await conn.execute_fetchall("PRAGMA schema_version")  # opens the -wal and -shm
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._opened = opened = OpenedFiles(self.path)
        # A writer never closed (garbage, or the interpreter exiting) must not leave its
        # log beside a file that replaced its own either.
        self._finalizer = weakref.finalize(self, _forget_moved, opened)

    async def check(self) -> None:
        """Raise DatabaseReplaced once the file at ``path`` is not the one opened, having
        closed the connection first (:meth:`OpenedFiles.release`): the old file's log is
        checkpointed into it and removed unless a connection to the new file uses it."""
        opened = self._opened
        if opened is None or not opened.moved():
            return
        if self._conn is not None:
            await self._release(opened)
        raise opened.replaced()

    async def _release(self, opened: OpenedFiles) -> None:
        conn, self._conn = self._conn, None
        with opened.release() as alone:
            if alone:  # the log's pages belong to the old file: put them there
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute_fetchall("PRAGMA busy_timeout = 100")  # its readers
                    if conn.in_transaction:
                        await conn.execute_fetchall("ROLLBACK")
                    await conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
            await conn.close()

    async def close(self) -> None:
        opened = self._opened
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._conn is None:
            return
        if opened is not None and opened.moved():
            await self._release(opened)
        else:
            conn, self._conn = self._conn, None
            await conn.close()

    @property
    def _live(self) -> Any:
        """The open connection; DatabaseReplaced once :meth:`check` let go of it."""
        if self._conn is None:
            if self._opened is not None:
                raise self._opened.replaced()
            raise sqlite3.ProgrammingError(f"{self.path} is not open")
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn is not None and self._conn.in_transaction)

    async def begin(self) -> None:
        await self._live.execute(BEGIN_WRITE)

    async def lock(self, name: str) -> None:
        """Nothing to do: a write transaction (BEGIN IMMEDIATE) is the only one."""

    async def commit(self) -> None:
        await self._live.execute("COMMIT")

    async def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            await self._live.execute("ROLLBACK")

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._live.execute(sql, params)
        return int(cursor.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._live.executemany(sql, rows)

    async def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """Up to :data:`ROWS_PER_INSERT` rows to an INSERT, not one (an executemany): a
        statement's cost is paid once per chunk, and so is FTS5's, which writes out the
        terms it holds at the end of every statement that added some (a search index kept
        by triggers costs about 2 us a row this way, 15 us one INSERT a row). A chunk is
        one statement: a refused row leaves none of its chunk inserted."""
        if not rows:
            return
        per = max(1, min(ROWS_PER_INSERT, _VARIABLES // len(columns)))
        tail = f" {on_conflict}" if on_conflict else ""
        full = insert_sql(table, columns, rows=per) + tail
        live = self._live
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            sql = full if len(chunk) == per else insert_sql(table, columns, rows=len(chunk)) + tail
            await live.execute(sql, list(chain.from_iterable(chunk)))

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        async with self._live.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else dict(row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        async with self._live.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        async with self._live.execute(sql, params) as cursor:
            return list(map(tuple, await cursor.fetchall()))

    async def identity(self) -> str | None:
        """The file's (device, inode): the same through a symlink, a hard link or ``..``."""
        found = file_id(self.path)
        return None if found is None else f"sqlite:{found[0]}:{found[1]}"

    def missing(self) -> str | None:
        return None if self.path.is_file() else f"no database at {self.location}"

    def read(
        self, sql: str, params: Params = (), *, functions: Callable[[Any], None] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """On a connection of :func:`open_for_reading`, with ``functions`` registered."""
        conn = open_for_reading(self.path)
        try:
            if functions is not None:
                functions(conn)
            cursor = conn.execute(sql, params)
            columns = [description[0] for description in cursor.description or []]
            return columns, [tuple(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def feed(self, *, upgrade: bool = False) -> SQLiteFeed:
        """A :class:`SQLiteFeed` of the file; it raises :class:`DatabaseReplaced` once the file
        at :attr:`path` is deleted or replaced, having closed the connection to the old one."""
        absent = self.missing()
        if absent:
            raise FileNotFoundError(absent)
        if upgrade:
            connect(self.path).close()
        conn = sqlite3.connect(
            self.path.resolve().as_uri() + "?mode=ro",
            uri=True,
            isolation_level=None,  # autocommit: no read transaction held between looks
            check_same_thread=False,  # the live page polls from worker threads, one at a time
        )
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # opens the -wal and -shm
        except BaseException:
            conn.close()
            raise
        return SQLiteFeed(conn, OpenedFiles(self.path))

    async def initialise(
        self, *, force: bool, copy_backup: CopyBackup, tables: Sequence[str]
    ) -> InitResult:
        """Every table, index and trigger the migrations create is checked; a missing one is
        re-created and the totals and summaries it keeps recomputed from the recorded rows
        (``repaired``). ``force``: :func:`start_afresh` first (the file backed up beside
        itself, verified, then emptied in place under an exclusive lock: DatabaseInUse, and
        nothing changed, while another connection has it open); neither ``copy_backup`` nor
        ``tables`` is needed (the whole file is emptied). Raises NotADatabase, SchemaTooNew,
        or sqlite3.OperationalError when the file cannot be opened."""
        path, saved = self.path, None
        created = not path.exists()
        if force and not created:
            saved = start_afresh(path)
            created = True
        conn = connect(path, migrate=False)
        try:
            check = ensure_schema(conn, path, verify=True, repair=True)
            names = migrations.applied_names(conn) or []
        finally:
            conn.close()
        return InitResult(
            path=path,
            created=created,
            migrations=names,
            backup=saved,
            applied=check.applied,
            repaired=check.repaired,
        )

    def back_up_whole(self, dest: str | os.PathLike[str] | None) -> Path | None:
        """SQLite's online backup API (:func:`backup_connection`): consistent, committed WAL
        content included, while other processes write; ``dest`` defaults to
        ``<path>.<UTC timestamp>.bak``."""
        source = sqlite3.connect(os.fspath(self.path), timeout=BUSY_TIMEOUT_S)
        try:
            return backup_connection(source, self.path, dest)
        finally:
            source.close()

    async def free_bytes(self) -> int | None:
        found = await self.fetchone(
            "SELECT page_size * freelist_count AS free FROM pragma_page_size, pragma_freelist_count"
        )
        assert found is not None
        return int(found["free"])

    async def empty(self, tables: Sequence[str]) -> None:
        """As ``orchestrator init --force`` does (:func:`start_afresh`): the file backed up
        beside itself, then its content replaced by an empty, migrated schema, in place and
        under an exclusive lock (DatabaseInUse, and nothing changed, while another
        connection has it open): every table, not only ``tables``."""
        if os.path.exists(self.path):
            import asyncio

            await asyncio.to_thread(start_afresh, Path(self.path))

    async def begin_snapshot(self) -> None:
        await self._live.execute("BEGIN DEFERRED")  # WAL: the first read fixes what is seen

    async def read_marks(self, tables: dict[str, Sequence[str]]) -> dict[str, str]:
        """``[rowid, key]`` of each table's last row (``[0, null]``: it is empty)."""
        marks = {}
        for table, key in tables.items():
            row = await self.fetchone(
                f"SELECT rowid AS rowid_, {', '.join(key)} FROM {table} "
                f"WHERE rowid = (SELECT max(rowid) FROM {table})"
            )
            last = [row["rowid_"], [row[column] for column in key]] if row else [0, None]
            marks[table] = json.dumps(last)
        return marks

    async def mark_holds(self, table: str, key: Sequence[str], then: str, now: str) -> bool:
        """The row that was the table's last is still there under its rowid: SQLite gives a
        new row the rowid after the largest (one writer at a time: a later commit's rows
        have larger rowids), so while that row stays, every new one comes after it."""
        rowid, values = json.loads(then)
        if not rowid:
            return True
        row = await self.fetchone(f"SELECT {', '.join(key)} FROM {table} WHERE rowid = ?", (rowid,))
        return row is not None and [row[column] for column in key] == values

    async def rows_since(
        self,
        table: str,
        key: Sequence[str],
        columns: Sequence[str],
        mark: str,
        chunk: int,
        *,
        newer: str | None = None,
        changed_since: str | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The rows after the mark's rowid; then those whose ``newer`` column is from
        ``changed_since`` on (rows changed in place: few, by the column's index)."""
        select = ", ".join(f"t.{column}" for column in columns)
        last, _ = json.loads(mark)
        while True:
            rows = await self.fetchall(
                f"SELECT t.rowid AS rowid_, {select} FROM {table} t "
                f"WHERE t.rowid > ? ORDER BY t.rowid LIMIT {chunk}",
                (last,),
            )
            if rows:
                yield rows
            if len(rows) < chunk:
                break
            last = rows[-1]["rowid_"]
        if newer and changed_since is not None:
            rows = await self.fetchall(
                f"SELECT {select} FROM {table} t WHERE t.{newer} >= ?", (changed_since,)
            )
            for at in range(0, len(rows), chunk):
                yield rows[at : at + chunk]

    async def table_columns(self, table: str) -> list[tuple[str, bool]]:
        rows = await self.fetchall("SELECT name, type FROM pragma_table_info(?)", (table,))
        return [(row["name"], row["type"] in ("INTEGER", "REAL")) for row in rows]

    async def fetch_by_keys(
        self,
        table: str,
        key: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        select: str,
        where: str = "",
    ) -> list[dict[str, Any]]:
        # The keys as one JSON array parameter (json_each): no limit on their number.
        if len(key) == 1:
            match = f"t.{key[0]} = k.value"
            payload = json.dumps([one[0] for one in keys])
        else:
            match = " AND ".join(
                f"t.{column} = json_extract(k.value, '$[{i}]')" for i, column in enumerate(key)
            )
            payload = json.dumps([list(one) for one in keys])
        extra = f" AND {where}" if where else ""
        return await self.fetchall(
            f"SELECT {select} FROM json_each(?) k JOIN {table} t ON {match}{extra}", (payload,)
        )

    async def key_range(
        self,
        table: str,
        key: Sequence[str],
        after: Sequence[Any] | None,
        last: Sequence[Any],
        numeric: Sequence[str],
    ) -> KeyRange:
        """In one statement, the keys read as one text and sorted here (the portable form
        when a key holds a line break or a NULL, as the text then shows)."""
        where, params = key_range_where(key, after, last)
        text = " || char(31) || ".join(key)
        sums = "".join(f", sum({column}) AS {column}" for column in numeric)
        row = await self.fetchone(
            f"SELECT count(*) AS n, group_concat({text}, char(10)) AS keys{sums} "
            f"FROM {table} WHERE {where}",
            params,
        )
        assert row is not None
        keys = row["keys"].split("\n") if row["keys"] is not None else []
        if len(keys) != row["n"]:
            return await super().key_range(table, key, after, last, numeric)
        sums_found = {column: float(row[column] or 0) for column in numeric}
        return KeyRange(int(row["n"]), sums_found, key_digest(keys))

    async def defer_search_index(
        self, tables: Sequence[str] | None = None, *, summaries: bool = False
    ) -> dict[str, tuple[str, int]]:
        """Stop indexing new rows for full-text search row by row (for bulk loads); return
        what :meth:`catch_up_search_index` needs. FTS5 indexes a batch of rows ~15x faster
        than one row per trigger call; rows other writers add meanwhile are caught up too.

        ``summaries=True`` defers the prompts' summary triggers too
        (:func:`migrations.prompt_summary_triggers`: a run's totals, usage_daily): each new
        prompt then costs one INSERT instead of four statements, and the catch-up adds them
        up per run and per day (only for a load that never updates or deletes the prompts
        it inserts: their update triggers would take out sums never added)."""
        deferred: dict[str, tuple[str, int]] = {}
        versions = await self._live.execute_fetchall(
            "SELECT * FROM pragma_user_version, pragma_schema_version"
        )
        # Dropping and re-creating the triggers changes the schema's version, not its
        # objects: a schema checked before stays checked (catch_up_search_index records it).
        self._checked_before_defer = versions[0][0] == versions[0][1] != 0
        for name, table, sql in await self._live.execute_fetchall(_SEARCH_INSERT_TRIGGERS):
            if tables is not None and table not in tables:
                continue
            deferred[name] = (sql, await self._max_rowid(table))
            await self._live.execute(f"DROP TRIGGER {name}")
        if summaries:
            for name, (expected, _) in migrations.prompt_summary_triggers().items():
                row = await self._live.execute_fetchall(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
                )
                if row and row[0][0] == expected:
                    deferred[name] = (expected, await self._max_rowid("prompts"))
                    await self._live.execute(f"DROP TRIGGER {name}")
        return deferred

    async def _max_rowid(self, table: str) -> int:
        (row,) = await self._live.execute_fetchall(f"SELECT max(rowid) FROM {table}")
        return int(row[0] or 0)

    async def catch_up_search_index(self, deferred: dict[str, tuple[str, int]]) -> None:
        """Index every row added since :meth:`defer_search_index`, then restore its triggers."""
        for name, (sql, watermark) in deferred.items():
            exists = await self._live.execute_fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
            )
            if exists:  # rolled back before any commit: the trigger and its index are whole
                continue
            await self._live.execute(_catch_up_sql(name, sql), (watermark,))
            await self._live.execute(sql)
        if deferred and self._checked_before_defer:
            versions = await self._live.execute_fetchall("SELECT * FROM pragma_schema_version")
            await self._live.execute(f"PRAGMA user_version = {int(versions[0][0])}")

    async def may_pause_triggers(self, tables: Sequence[str]) -> bool:
        return True

    async def pause_triggers(self, table: str, paused: bool) -> None:
        """Drop the triggers of ``table`` that keep the summaries (not those of its search
        index: :meth:`defer_search_index`), and re-create them as they were: inside the
        caller's write transaction, which other connections wait for (a rollback or a
        killed process leaves them as they were). A schema checked before stays checked."""
        if paused:
            versions = await self._live.execute_fetchall(
                "SELECT * FROM pragma_user_version, pragma_schema_version"
            )
            found = await self._live.execute_fetchall(_SUMMARY_TRIGGERS, (table,))
            triggers = [(name, sql) for name, sql in found]
            self._paused[table] = (triggers, versions[0][0] == versions[0][1] != 0)
            for name, _ in triggers:
                await self._live.execute(f"DROP TRIGGER {name}")
            return
        triggers, checked = self._paused.pop(table, ([], False))
        for _, sql in triggers:
            await self._live.execute(sql)
        if triggers and checked:
            versions = await self._live.execute_fetchall("SELECT * FROM pragma_schema_version")
            await self._live.execute(f"PRAGMA user_version = {int(versions[0][0])}")

    async def secure_delete(self) -> None:
        # On whatever SQLite the interpreter links (Debian's has it on by default; others
        # leave a row's old bytes in the page's free space).
        await self.execute("PRAGMA secure_delete = ON")

    async def merge_search_index(self, table: str, *, changed: bool) -> str | None:
        """``optimize`` of the FTS5 index ``<table>_fts`` (the migrations' name), when the
        table has one, in a write transaction of its own."""
        index = f"{table}_fts"
        if not await self.fetchone("SELECT 1 FROM sqlite_master WHERE name = ?", (index,)):
            return None
        async with self.transaction():
            if changed or not await self._merged(index):
                await self.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")
                return index
        return None

    async def _merged(self, index: str) -> bool:
        """Whether the search index ``index`` is one segment (or none)."""
        row = await self.fetchone(
            f"SELECT (SELECT min(id) FROM {index}_data WHERE id >= ?) AS first, "
            f"(SELECT max(id) FROM {index}_data) AS last",
            (1 << _SEGMENT_BITS,),
        )
        if row is None or row["first"] is None:
            return True
        return bool(row["first"] >> _SEGMENT_BITS == row["last"] >> _SEGMENT_BITS)

    async def checkpoint(self) -> bool | None:
        """``PRAGMA wal_checkpoint(TRUNCATE)``: False when a reader held part of it back."""
        row = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        return row is not None and row["busy"] == 0


class SQLiteFeed(Feed):
    """A :class:`~orchestrator.store.backend.Feed` of an SQLite file: a read-only connection,
    ``PRAGMA data_version`` for "anything committed?" (no table read), a rowid per table
    as its mark, read through the tables' rowid b-trees."""

    def __init__(self, conn: sqlite3.Connection, opened: OpenedFiles | None = None) -> None:
        self.conn = conn
        self.opened = opened  # the file followed, to see it replaced
        self._version: int | None = None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def changed(self) -> bool:
        opened = self.opened
        if opened is not None and opened.moved():
            # The old file's log must not stay beside the new one (OpenedFiles.release).
            with opened.release():
                self.conn.close()
            raise opened.replaced()
        version = self.rows("PRAGMA data_version")[0][0]
        if version == self._version:
            return False
        self._version = version
        return True

    def again(self) -> None:
        self._version = None

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def end(self) -> None:
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def mark(self, table: str) -> int:
        return int(self.rows(f"SELECT coalesce(max(rowid), 0) FROM {table}")[0][0])

    def range(
        self, alias: str, after: int | None, upto: int, limit: int
    ) -> tuple[str, str, list[Any], str]:
        if after is None:  # newest first by the time index every table has
            order = f"{alias}.created_at DESC, {alias}.rowid DESC LIMIT {limit}"
            return f"{alias}.rowid", f"{alias}.rowid <= ?", [upto], order
        return f"{alias}.rowid", f"{alias}.rowid > ?", [after], f"{alias}.rowid LIMIT {limit}"

    def moved_past(self, table: str, after: int, rows: list[tuple[Any, ...]], limit: int) -> int:
        if len(rows) >= limit:
            self.again()
            return int(rows[-1][0])
        return max(after, self.mark(table))


#: An FTS5 index's blocks are rows of ``<index>_data`` keyed by their segment's id
#: shifted left 37 bits (fts5_index.c, FTS5_SEGMENT_ROWID; smaller keys hold the
#: index's structure and averages): one key lookup each gives its first and last segment.
_SEGMENT_BITS = 37


class _InThread:
    """What :class:`SQLiteBackend` uses of ``aiosqlite.Connection``, over a sqlite3
    connection used in the caller's thread: each call runs when it is made, and awaiting
    it never suspends."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def row_factory(self) -> Any:
        return self._conn.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._conn.row_factory = factory

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, params: Any = ()) -> _Done:
        return _Done(_Cursor(self._conn.execute(sql, params)))

    async def executemany(self, sql: str, rows: Any) -> None:
        self._conn.executemany(sql, rows)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    async def close(self) -> None:
        self._conn.close()


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _Done:
    """A statement run already: awaited, or entered with ``async with``, gives its cursor."""

    def __init__(self, cursor: _Cursor) -> None:
        self.cursor = cursor

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self.cursor
        yield  # a generator that never yields: awaiting it never suspends

    async def __aenter__(self) -> _Cursor:
        return self.cursor

    async def __aexit__(self, *exc: object) -> None:
        self.cursor._cursor.close()


def _forget_moved(opened: OpenedFiles) -> None:
    """At garbage collection or exit of an SQLite backend never closed: if its file was
    moved meanwhile, delete the old ``-wal`` and ``-shm`` it leaves (when no connection
    to the new file uses them), as :meth:`SQLiteBackend.close` would."""
    if opened.moved():
        with opened.release():
            pass


#: The full-text search triggers that index each new row (``<table>_ai``).
_SEARCH_INSERT_TRIGGERS = (
    "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
    "AND sql LIKE '%AFTER INSERT%' AND sql LIKE '%\\_fts %' ESCAPE '\\'"
)


#: A table's triggers other than its full-text search index's: the summaries'.
_SUMMARY_TRIGGERS = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
    "AND sql NOT LIKE '%\\_fts %' ESCAPE '\\'"
)


def _catch_up_sql(name: str, sql: str) -> str:
    """The statement doing at once what the search or summary trigger ``name`` (``sql``)
    would have done row by row, for rows past a rowid (its one parameter)."""
    summary = migrations.prompt_summary_triggers().get(name)
    if summary is not None:
        return summary[1]
    match = _FTS_INSERT.search(sql)
    if match is None:  # pragma: no cover - the migrations' trigger shape changed
        raise sqlite3.OperationalError(f"cannot read the search trigger {name}: {sql}")
    columns = match["values"].replace("new.", "")
    return (
        f"INSERT INTO {match['fts']} ({match['columns']}) SELECT {columns} "
        f"FROM {match['table']} WHERE rowid > ?"
    )


#: The statement of a full-text search trigger, as the migrations write it.
_FTS_INSERT = re.compile(
    r"AFTER INSERT ON (?P<table>\w+) BEGIN\s+INSERT INTO (?P<fts>\w+) \((?P<columns>[^)]*)\) "
    r"VALUES \((?P<values>[^)]*)\)"
)
