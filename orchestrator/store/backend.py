"""The seam between the writer and a database engine.

:class:`~orchestrator.writer.db.DatabaseManager` and the batched log writer speak to
the database only through a :class:`Backend`: one connection, used under the
manager's lock, with SQL written with ``?`` placeholders in the dialect both
SQLite and PostgreSQL understand (``INSERT ... ON CONFLICT DO NOTHING``,
``SAVEPOINT``). What differs between engines lives behind it: opening and
migrating, connection settings, how a write transaction takes its lock, the
driver's exceptions and placeholder style. The schema itself (DDL, triggers,
full-text search) belongs to each backend's migrations.

Reading asks it too, with no :meth:`Backend.open`: :meth:`Backend.read` runs one query
read-only in the store's :attr:`Backend.dialect` (reports), :meth:`Backend.feed` follows
what is committed (``orchestrator tail``, through a :class:`Feed`), and a backend made
``read_only`` reads a file this process cannot write (budgets).

SQLite (:class:`orchestrator.store.sqlite.SQLiteBackend`) for a path, PostgreSQL
(:class:`orchestrator.store.postgres.PostgresBackend`) for a ``postgresql://`` URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]
#: An exception class, or a tuple of them (what ``except`` and ``isinstance`` take).
Errors = type[Exception] | tuple[type[Exception], ...]
#: How a store with no backup of its own (:meth:`Backend.back_up_whole` is None) is backed
#: up: a copy into a new SQLite file, verified (:func:`orchestrator.commands.copy.backup_store`),
#: its path and what the verification compared. Given by the command layer: copying is a
#: command, which this layer does not import.
CopyBackup = Callable[[], Awaitable[tuple[Path, str]]]


@dataclass(frozen=True)
class InitResult:
    """What ``orchestrator init`` did (:meth:`Backend.initialise`)."""

    path: Path | str  # the file; a server's store: its URL without the password
    created: bool | None  # a new store; False: upgraded in place; None: not told (a server's)
    migrations: list[str]  # every migration the schema now has, oldest first
    backup: Path | None = None  # where ``force`` copied the previous content
    applied: list[str] = field(default_factory=list)  # migrations applied by this call
    repaired: list[str] = field(default_factory=list)  # missing objects it re-created
    backup_verified: str | None = None  # what a copied backup was checked for, beyond integrity
    emptied: bool = False  # ``force`` emptied it in place (rather than creating it afresh)

    @property
    def latest(self) -> str:
        """The newest migration applied: the schema's version."""
        return self.migrations[-1]


class Backend(ABC):
    """One open connection to a store with the orchestrator schema."""

    #: Raised by the driver when a row breaks a constraint (the row is refused).
    integrity_error: Errors = Exception
    #: Raised by the driver when the database fails (disk full, locked, I/O): retry later.
    database_error: Errors = Exception
    #: The driver's errors that a row's values cause (constraint, binding, range).
    row_errors: tuple[type[Exception], ...] = ()
    #: Seconds a writer's awaited call waits for this store by default (None: no bound of
    #: the writer's own; ``DatabaseManager(timeout=...)`` overrides it).
    timeout: float | None = None
    #: Whether awaiting this backend's calls may suspend (a driver in another thread, a
    #: server's answer): then they need an event loop. An SQLite backend opened
    #: ``in_thread`` never suspends, and :func:`run_blocking` runs its work without one.
    suspends: bool = True

    #: Whether Datasette serves the store as it is (an SQLite file); ``orchestrator serve``
    #: serves any other from an SQLite snapshot copied from it.
    served_directly: bool = False

    #: The SQL dialect :meth:`read` takes (sqlglot's name). Report SQL is written in
    #: SQLite's; :mod:`orchestrator.reports` translates it for another.
    dialect: str = "sqlite"
    #: Raised by a :meth:`feed` whose store was replaced under it (a file deleted, or
    #: another moved there): follow the new one. None (``()``) where a store cannot be.
    replaced_error: Errors = ()

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages (a path, or a URL without its password)."""

    @property
    @abstractmethod
    def connection(self) -> Any:
        """The driver's open connection (None before :meth:`open`), for what the seam has
        no operation for."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, creating or upgrading the schema first."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def in_transaction(self) -> bool: ...

    @abstractmethod
    async def begin(self) -> None:
        """Start a write transaction that takes the write lock at once (no upgrade deadlock)."""

    @abstractmethod
    async def lock(self, name: str) -> None:
        """Inside a write transaction: wait for the lock ``name`` and hold it until the
        transaction ends, so that writers taking the same name write one at a time (what
        one reads is not written by another meanwhile)."""

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def rollback(self) -> None: ...

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``async with backend.transaction():`` one write transaction (:meth:`begin`),
        committed at the end of the block, rolled back on any exception."""
        await self.begin()
        try:
            yield
        except BaseException:
            await self.rollback()
            raise
        await self.commit()

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """Insert rows the fastest way the store has; ``on_conflict``: the clause for a
        row whose key is taken (``ON CONFLICT (id) DO NOTHING``), none by default."""
        sql = insert_sql(table, columns)
        await self.executemany(f"{sql} {on_conflict}" if on_conflict else sql, rows)

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Every row of a query as a tuple, in its columns' order: for bulk reads, where
        building a dict for each row would cost more than the read."""
        return [tuple(row.values()) for row in await self.fetchall(sql, params)]

    async def defer_search_index(
        self, tables: Sequence[str] | None = None, *, summaries: bool = False
    ) -> dict[str, tuple[str, int]]:
        """Stop indexing new rows (of ``tables``, default all) for full-text search one by
        one, inside a bulk load; return what :meth:`catch_up_search_index` needs (nothing,
        by default). Inside a write transaction, both belong to it (a rollback or a killed
        process leaves indexing as it was). ``summaries=True`` defers adding new prompts
        to the summaries (a run's totals, usage_daily) too, where a store adds them row by
        row: only for a load that never updates or deletes the prompts it inserts."""
        return {}

    async def catch_up_search_index(  # noqa: B027 - a hook with nothing to do by default
        self, deferred: dict[str, tuple[str, int]]
    ) -> None:
        """Index the rows added since :meth:`defer_search_index` and resume indexing."""

    # -- what reading asks of each engine (reports, budgets, tail) --------------------

    @abstractmethod
    def read(
        self, sql: str, params: Params = (), *, functions: Callable[[Any], None] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of one query in :attr:`dialect` (with its placeholders),
        run read-only on a connection of its own, the schema brought up to date first (or
        only checked where the store cannot be written). ``functions`` registers the SQL
        functions the query uses on the new driver connection, where an engine keeps them
        per connection (SQLite; PostgreSQL's are in its schema). Synchronous, needs no
        :meth:`open`, works under a running event loop (Jupyter's). Raises FileNotFoundError
        when there is no store (:meth:`missing`), ConnectionError when its server cannot be
        reached."""

    @abstractmethod
    def feed(self, *, upgrade: bool = False) -> Feed:
        """A :class:`Feed` of what is committed to the store, on a read-only connection of its
        own; ``upgrade``: bring the schema up to date first (a server's store always is).
        Raises as :meth:`read`. Needs no :meth:`open`."""

    # -- what the maintenance commands ask of each engine (init, backup, prune) ----------

    def missing(self) -> str | None:
        """``no database at …`` when it is known without connecting that there is no store
        here (an SQLite file not there); None otherwise (a server's store is found, or not,
        once connected). For a command that reads or changes a store it expects."""
        return None

    @abstractmethod
    async def initialise(
        self, *, force: bool, copy_backup: CopyBackup, tables: Sequence[str]
    ) -> InitResult:
        """Create the store or bring its schema up to date (``orchestrator init``). With
        ``force``, first back up what it holds (by the engine's own means, else by
        ``copy_backup``) and empty it (``tables``, where an engine empties them one by one:
        the migrations' fixed rows stay), with writers kept out until it is empty. Needs
        no :meth:`open`."""

    def back_up_whole(self, dest: str | os.PathLike[str] | None) -> Path | None:
        """Copy the store into the new SQLite file ``dest`` by the engine's own means, checked
        with ``PRAGMA integrity_check``, and return its path; None where the engine has none
        (by default: a backup is then a copy row by row, :data:`CopyBackup`). Needs no
        :meth:`open`."""
        return None

    async def free_bytes(self) -> int | None:
        """The bytes of free pages the store's file can reuse, inside the caller's
        transaction; None where free space is not the file's (a server's: reused after
        ``VACUUM``)."""
        return None

    # -- what removing stored text for good asks of each engine (``orchestrator redact``)

    async def secure_delete(self) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Have this connection overwrite what it deletes or changes from now on, where the
        engine leaves old bytes in the store's free space (nothing to do, by default)."""

    async def merge_search_index(self, table: str, *, changed: bool) -> str | None:
        """Merge the full-text search index of ``table`` whole, where a deleted row's words
        stay in the index until it is merged: when this run ``changed`` its rows or the index
        is in more than one piece. Returns the index's name when it was merged (None, by
        default: a search column that follows its row)."""
        return None

    async def checkpoint(self) -> bool | None:
        """Move the store's write-ahead log into it and truncate the log (the pages' old
        versions): whether that was done whole (a reader may hold it back), or None where
        the log is not the store's to truncate (by default)."""
        return None

    # -- SQL that differs between engines, by name ---------------------------------------
    # Callers write one statement and ask for the parts that differ (no engine branches).

    def json_text(self, expression: str, key: str) -> str:
        """SQL for the text of ``key`` in the JSON object ``expression`` holds (NULL when
        absent); ``key`` is a literal name (letters, digits, ``_``)."""
        assert key.replace("_", "").isalnum(), key
        return f"json_extract({expression}, '$.{key}')"

    def same(self, expression: str) -> str:
        """SQL comparing ``expression`` with the next ``?``, a NULL equal to a NULL."""
        return f"{expression} IS ?"

    def greatest(self, *expressions: str) -> str:
        """SQL for the largest of ``expressions``, none of which may be NULL (engines
        differ on a NULL: SQLite's is NULL, PostgreSQL's the largest of the others)."""
        return f"max({', '.join(expressions)})"

    def least(self, *expressions: str) -> str:
        """SQL for the smallest of ``expressions`` (none NULL, as for :meth:`greatest`)."""
        return f"min({', '.join(expressions)})"

    def milliseconds_between(self, start: str, end: str) -> str:
        """SQL for the milliseconds from ``start`` to ``end``, stored timestamps (ISO 8601
        text, UTC), as a float."""
        return f"(julianday({end}) - julianday({start})) * 86400000.0"

    def insertion_order(self) -> str:
        """SQL ordering a table's rows as they were inserted (rows never updated)."""
        return "rowid"

    # -- what a copy from one store to another asks of each engine ---------------------

    @abstractmethod
    async def identity(self) -> str | None:
        """What the store resolves to, however it was spelled (a path through a symlink or
        a hard link, a server's host name or address): two backends with the same identity
        are the same store. None when there is no store there yet. Needs no :meth:`open`
        and changes nothing."""

    @abstractmethod
    async def empty(self, tables: Sequence[str]) -> None:
        """Delete every row of ``tables`` (all the store's recorded and summary tables; the
        migrations' fixed rows stay), for a copy that replaces what the store holds.
        Needs no :meth:`open` (call it before, or after :meth:`close`); an SQLite file not
        there yet is not created."""

    @abstractmethod
    async def begin_snapshot(self) -> None:
        """Start a read-only transaction in which every read sees one state of the store
        (rows committed meanwhile are not seen)."""

    # -- what a copy's next round reads (watermarks kept in the target) ----------------

    @abstractmethod
    async def read_marks(self, tables: dict[str, Sequence[str]]) -> dict[str, str]:
        """Where this read of the store stands in each of ``tables`` (name -> key
        columns), inside :meth:`begin_snapshot`: a text only this engine reads back
        (:meth:`mark_holds`, :meth:`rows_since`)."""

    @abstractmethod
    async def mark_holds(self, table: str, key: Sequence[str], then: str, now: str) -> bool:
        """Whether every row ``table`` gained since the mark ``then`` (an earlier
        :meth:`read_marks`) comes after it, as of the mark ``now``; False sends the copy
        back to reading everything. Raises ValueError for a mark it cannot read (another
        engine's)."""

    @abstractmethod
    def rows_since(
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
        """The rows of ``table`` (``columns``) added or changed since the mark, ``chunk``
        at a time, without reading the whole table; ``newer`` names the column an update
        sets (a timestamp), for an engine that finds changed rows by it: those from
        ``changed_since`` on."""

    @abstractmethod
    async def table_columns(self, table: str) -> list[tuple[str, bool]]:
        """The stored columns of ``table`` in order (generated ones left out), each with
        whether it holds numbers."""

    @abstractmethod
    async def fetch_by_keys(
        self,
        table: str,
        key: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        select: str,
        where: str = "",
    ) -> list[dict[str, Any]]:
        """``SELECT select FROM table t`` for the rows whose ``key`` columns hold one of
        ``keys`` (and match ``where``, an expression of ``t``), in one statement."""

    async def key_range(
        self,
        table: str,
        key: Sequence[str],
        after: Sequence[Any] | None,
        last: Sequence[Any],
        numeric: Sequence[str],
    ) -> KeyRange:
        """The rows of ``table`` whose ``key`` sorts after ``after`` (from the first, with
        None) up to ``last``, in this store's order, summed up where they are: how many,
        the sums of the ``numeric`` columns and :func:`key_digest` of their keys. This
        portable form reads the keys; each engine computes it in one statement."""
        where, params = key_range_where(key, after, last)
        sums = "".join(f", sum({column}) AS {column}" for column in numeric)
        row = await self.fetchone(f"SELECT count(*) AS n{sums} FROM {table} WHERE {where}", params)
        assert row is not None
        keys = await self.fetchall(f"SELECT {', '.join(key)} FROM {table} WHERE {where}", params)
        return KeyRange(
            int(row["n"]),
            {column: float(row[column] or 0) for column in numeric},
            key_digest(key_text(found.values()) for found in keys),
        )

    async def may_pause_triggers(self, tables: Sequence[str]) -> bool:
        """Whether :meth:`pause_triggers` may be used on ``tables`` here (no, by default)."""
        return False

    async def pause_triggers(self, table: str, paused: bool) -> None:
        """Turn the user triggers of ``table`` off or on again, inside the caller's write
        transaction (other writers wait for it, and meet them on)."""
        raise NotImplementedError(f"{type(self).__name__} cannot pause triggers")

    async def check(self) -> None:  # noqa: B027 - a hook: most stores cannot be swapped out
        """Raise ``database_error`` if the store is no longer the one opened (its file was
        deleted or replaced): writes would "succeed" into a file nobody will read."""

    def is_row_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` was caused by the rows written (drop them) rather than by the
        database (keep them and retry): driver row errors, and any other Exception
        that is not the driver's (a value it could not bind, say)."""
        if isinstance(exc, self.row_errors):
            return True
        return isinstance(exc, Exception) and not isinstance(exc, self.database_error)


class Feed(ABC):
    """What is new in a store, read synchronously on a read-only connection of its own
    (:class:`orchestrator.reports.tail.EventSource` follows events through it), from any
    thread, one at a time. Each engine says in its own way whether anything was committed
    (without reading a table) and where a reader is in each table: a *mark*, which only
    the feed that made it understands."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (``?`` placeholders)."""

    @abstractmethod
    def changed(self) -> bool:
        """Whether anything was committed since the last look (the store's
        :attr:`Backend.replaced_error` once it was replaced, the connection closed)."""

    @abstractmethod
    def again(self) -> None:
        """More rows wait than one look reads: the next :meth:`changed` says True."""

    @abstractmethod
    def begin(self) -> None:
        """Start a read-only transaction: one look sees one state of the store."""

    @abstractmethod
    def end(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def mark(self, table: str) -> Any:
        """The mark of ``table`` in this look: every row up to it is seen."""

    @abstractmethod
    def range(
        self, alias: str, after: Any, upto: Any, limit: int
    ) -> tuple[str, str, list[Any], str]:
        """(SQL of a row's position, the condition, its values, the order) selecting the
        next ``limit`` rows of table ``alias`` after the mark ``after``, or the ``limit``
        newest up to the mark ``upto`` when ``after`` is None."""

    @abstractmethod
    def moved_past(self, table: str, after: Any, rows: list[tuple[Any, ...]], limit: int) -> Any:
        """The mark of ``table`` after reading ``rows`` (each with its position first) past
        ``after``: the last row's when a whole batch was read (more may wait), else all of
        this look."""


@dataclass(frozen=True)
class KeyRange:
    """What :meth:`Backend.key_range` finds in a range of keys."""

    rows: int
    sums: dict[str, float]
    digest: bytes


def key_text(key: Iterable[Any]) -> str:
    """A key's columns as one text (what :func:`key_digest` takes): each as ``str`` gives
    it, joined by U+001F."""
    return "\x1f".join(map(str, key))


def key_digest(keys: Iterable[str]) -> bytes:
    """The SHA-256 of ``keys`` (:func:`key_text`) sorted by code point, one a line: the same
    whatever order each engine keeps them in."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).digest()


def key_range_where(
    key: Sequence[str], after: Sequence[Any] | None, last: Sequence[Any]
) -> tuple[str, list[Any]]:
    """The condition ``key`` after ``after`` (if any) and up to ``last``, and its parameters."""
    columns = f"({', '.join(key)})"
    marks = f"({', '.join('?' for _ in key)})"
    where, params = f"{columns} <= {marks}", list(last)
    if after is not None:
        where, params = f"{columns} > {marks} AND {where}", [*after, *params]
    return where, params


def run_blocking(backend: Backend, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` (a coroutine using ``backend``) to its end from synchronous code: in
    this thread without an event loop when ``backend`` never suspends (asyncio is not
    even imported: an SQLite import of unchanged files costs what its queries cost), else
    under ``asyncio.run``."""
    if backend.suspends:
        import asyncio

        return asyncio.run(work)
    try:
        work.send(None)
    except StopIteration as done:
        return done.value
    work.close()
    raise RuntimeError(f"{type(backend).__name__} suspended, though it says it never does")


def insert_sql(
    table: str, columns: Sequence[str], *, ignore_conflicts: bool = False, rows: int = 1
) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` (``rows`` of them), optionally
    skipping conflicting rows."""
    one = f"({', '.join('?' for _ in columns)})"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"
    return sql + " ON CONFLICT DO NOTHING" if ignore_conflicts else sql
