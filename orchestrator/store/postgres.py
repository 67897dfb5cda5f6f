"""PostgreSQL: :class:`PostgresBackend`, the writer's backend for a ``postgresql://`` URL.

For teams whose ADWs run on several machines that write to one store. The writer
(:class:`~orchestrator.writer.db.DatabaseManager`, the batched log writer, the run API) is
the same; this module is what PostgreSQL needs behind the
:class:`~orchestrator.store.backend.Backend` seam: connecting and migrating
(:mod:`orchestrator.store.postgres_migrations`), ``?`` placeholders turned into ``$1, $2, ...``,
the driver's errors sorted into "the row is bad" and "the database failed", and log
batches sent with ``COPY``.

The driver is asyncpg, chosen by ``scripts/bench_pg_drivers.py`` (batches of 5,000
agent-log rows into a table shaped like ``agent_logs``, PostgreSQL 15 on the same 2-core
machine, median of rounds; rows/s, asyncpg / psycopg 3 async):

=============  ================  ================
method         quiet machine     loaded machine
=============  ================  ================
COPY           55,500 / 56,400   48,400 / 37,200
executemany    43,700 / 25,400   26,400 / 21,600
unnest         40,800 / 20,700   33,900 / 14,900
=============  ================  ================

``COPY`` ties on a quiet machine; otherwise asyncpg is faster, by 1.2x to 2.3x, and its
``$n`` placeholders need no escaping of ``%``. Batches go by ``COPY``, or with a conflict
clause by an INSERT from arrays (``unnest``): one statement, so the statement-level
triggers run once per batch (``executemany`` is one statement per row). asyncpg is
imported when a URL is opened, so SQLite users never load it.

What is stored differs from SQLite in one way: PostgreSQL's text cannot hold the NUL
character, so a NUL in a string is stored as U+FFFD (the replacement character).
Committed means durable as on SQLite: each direct write and each log batch is one
transaction, acknowledged after the server's commit, with ``synchronous_commit`` on
(turned on for the writer's connection when the server's default is off).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import postgres_migrations as pg_migrations
from .backend import Backend, CopyBackup, Feed, InitResult, KeyRange, Params, key_range_where
from .urls import redact_url

SCHEMES = ("postgresql", "postgres")

T = TypeVar("T")

_TOKENS = re.compile(
    r"""'(?:[^']|'')*'            # a string literal
      | "(?:[^"]|"")*"            # a quoted identifier
      | --[^\n]*                  # a line comment
      | /\*.*?\*/                 # a block comment
      | \$(\w*)\$.*?\$\1\$        # a dollar-quoted body
      | \?                        # a placeholder
    """,
    re.VERBOSE | re.DOTALL,
)


@functools.lru_cache(maxsize=1024)
def to_dollar(sql: str) -> str:
    """``sql`` with each ``?`` placeholder (outside literals and comments) numbered ``$n``."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _TOKENS.sub(number, sql)


def _storable(value: Any) -> Any:
    if type(value) is str and "\x00" in value:
        return value.replace("\x00", "\ufffd")  # PostgreSQL's text cannot hold NUL
    return value


def _storable_row(row: Sequence[Any]) -> Sequence[Any]:
    for value in row:
        if type(value) is str and "\x00" in value:
            return [_storable(item) for item in row]
    return row


def _positional(params: Params) -> Sequence[Any]:
    if isinstance(params, dict):
        raise TypeError("named parameters are SQLite's: use ? placeholders on PostgreSQL")
    return params


def _changed(status: str) -> int:
    """The row count of a command tag such as ``INSERT 0 3`` or ``UPDATE 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def connect(url: str, *, migrate: bool = True) -> Any:
    """An asyncpg connection to ``url``, its schema created or upgraded first.

    Raises ConnectionError when the server cannot be reached, and
    :class:`~orchestrator.store.postgres_migrations.SchemaTooNew` when a newer orchestrator migrated
    the database."""
    import asyncpg

    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot connect to {redact_url(url)}: {exc}") from exc
    try:
        # Acknowledged means durable, whatever the server's default: a commit waits for
        # its WAL flush (a stronger setting, such as remote_apply, is kept).
        if await conn.fetchval("SHOW synchronous_commit") == "off":
            await conn.execute("SET synchronous_commit = on")
        # A newer orchestrator's schema is refused, as on SQLite: its writes could break
        # what that version keeps (triggers, summaries) in ways this one cannot see.
        if migrate and pg_migrations.pending(
            await pg_migrations.applied_names(conn), redact_url(url)
        ):
            await pg_migrations.apply(conn, redact_url(url))
    except BaseException:
        await conn.close()
        raise
    return conn


class PostgresBackend(Backend):
    """The writer's connection to a PostgreSQL database (asyncpg)."""

    #: A server stopped or cut off must not hang an ADW (DatabaseManager's timeout).
    timeout = 30.0
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        import asyncpg

        self.url = url
        self._conn: Any = None  # asyncpg.Connection
        # One operation at a time on the connection: the manager's lock covers writes,
        # not reads, and asyncpg (unlike aiosqlite's queue) refuses overlapping calls.
        self._busy = asyncio.Lock()
        #: Per table, each column's type (:meth:`insert_many`'s arrays), read once.
        self._column_types: dict[str, dict[str, str]] = {}
        self.integrity_error = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
        self.database_error = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
        self.row_errors = (
            asyncpg.IntegrityConstraintViolationError,
            asyncpg.DataError,
            UnicodeError,
        )

    @property
    def location(self) -> str:
        return redact_url(self.url)

    @property
    def connection(self) -> Any:
        """The open ``asyncpg.Connection``."""
        return self._conn

    async def open(self) -> None:
        self._conn = await connect(self.url)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _reconnect_if_lost(self) -> None:
        """Outside a transaction, a connection the server closed (restart, failover) or
        that was cut off (:meth:`_answer`) is opened again; inside one, the failure reaches
        the caller."""
        if self._conn.is_closed():
            self._conn = await connect(self.url, migrate=False)

    async def _answer(self, call: Awaitable[T]) -> T:
        """The driver's answer to ``call``. A call cancelled while it waits (a caller's
        timeout: the server stopped) drops the connection at once: asyncpg would otherwise
        wait for the server to cancel the statement, and a transaction cut off this way
        is rolled back by the server; the next use reconnects."""
        try:
            return await call
        except asyncio.CancelledError:
            self._conn.terminate()
            raise

    @property
    def in_transaction(self) -> bool:
        # A connection cut off has no transaction left: the server rolls it back.
        conn = self._conn
        return bool(conn is not None and not conn.is_closed() and conn.is_in_transaction())

    async def begin(self) -> None:
        async with self._busy:
            await self._reconnect_if_lost()
            await self._answer(self._conn.execute("BEGIN"))

    async def commit(self) -> None:
        async with self._busy:
            await self._answer(self._conn.execute("COMMIT"))

    async def rollback(self) -> None:
        async with self._busy:
            if self.in_transaction:
                await self._answer(self._conn.execute("ROLLBACK"))

    async def execute(self, sql: str, params: Params = ()) -> int:
        args = _positional(params)
        async with self._busy:
            if not self._conn.is_in_transaction():  # a transaction lost is the caller's error
                await self._reconnect_if_lost()
            if not args:
                return _changed(await self._answer(self._conn.execute(sql)))
            call = self._conn.execute(to_dollar(sql), *_storable_row(args))
            return _changed(await self._answer(call))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        records = [_storable_row(row) for row in rows]
        async with self._busy:
            await self._answer(self._conn.executemany(to_dollar(sql), records))

    async def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """``COPY`` the rows in (triggers and constraints apply as for INSERT); with
        ``on_conflict``, which COPY has not, one ``INSERT ... SELECT FROM unnest(...)`` of
        one typed array a column: one statement, so the statement-level triggers run once,
        as for COPY. A refused row leaves none of the rows inserted, and ``DO UPDATE``
        refuses rows that repeat a key (PostgreSQL will not change a row twice in one
        statement)."""
        if not rows:
            return
        records = [_storable_row(row) for row in rows]
        if not on_conflict:
            async with self._busy:
                call = self._conn.copy_records_to_table(
                    table, records=records, columns=list(columns)
                )
                await self._answer(call)
            return
        types = self._column_types.get(table)
        if types is None:
            found = await self.fetch_rows(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            types = self._column_types[table] = {str(name): str(kind) for name, kind in found}
        arrays = ", ".join(
            f"${number}::{types.get(column, 'text')}[]" for number, column in enumerate(columns, 1)
        )
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            f"{on_conflict}"
        )
        async with self._busy:
            await self._answer(self._conn.execute(sql, *zip(*records, strict=True)))

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        args = _positional(params)
        async with self._busy:
            if not self._conn.is_in_transaction():  # a transaction lost is the caller's error
                await self._reconnect_if_lost()
            row = await self._answer(self._conn.fetchrow(to_dollar(sql), *args))
        return None if row is None else dict(row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        args = _positional(params)
        async with self._busy:
            if not self._conn.is_in_transaction():  # a transaction lost is the caller's error
                await self._reconnect_if_lost()
            found = await self._answer(self._conn.fetch(to_dollar(sql), *args))
        return [dict(row) for row in found]

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        args = _positional(params)
        async with self._busy:
            if not self._conn.is_in_transaction():  # a transaction lost is the caller's error
                await self._reconnect_if_lost()
            found = await self._answer(self._conn.fetch(to_dollar(sql), *args))
        return list(map(tuple, found))

    async def identity(self) -> str | None:
        """The server's system identifier (set by ``initdb``, the same whatever host name,
        address or port reaches it), the database and the schema the tables resolve to
        (a ``search_path`` naming another schema is another store), each with its oid: a
        database or schema dropped and created again under its name is another store."""
        import asyncpg

        conn = self._conn
        if conn is None:
            conn = await connect(self.url, migrate=False)
        try:
            try:
                server = await conn.fetchval(
                    "SELECT system_identifier::text FROM pg_control_system()"
                )
            except asyncpg.InsufficientPrivilegeError:  # revoked from PUBLIC on some hosts
                server = await conn.fetchval(
                    "SELECT pg_postmaster_start_time()::text || ' ' || "
                    "coalesce(inet_server_port(), 0)::text"
                )
            where = await conn.fetchrow(
                "SELECT current_database() AS db, "
                "coalesce(current_schema(), current_setting('search_path')) AS schema, "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) AS db_oid, "
                "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AS schema_oid"
            )
        finally:
            if conn is not self._conn:
                await conn.close()
        return (
            f"postgresql:{server}/{where['db']}@{where['db_oid']}/"
            f"{where['schema']}@{where['schema_oid']}"
        )

    async def initialise(
        self, *, force: bool, copy_backup: CopyBackup, tables: Sequence[str]
    ) -> InitResult:
        """The schema created or upgraded (:func:`init_database`); ``force``: then backed up by
        ``copy_backup`` and emptied (``TRUNCATE`` of ``tables``), its
        tables locked against writes from before the backup's first read to the end
        (readers go on): nothing written in between is lost."""
        saved, verified = None, None
        await self.open()  # creates or upgrades the schema
        try:
            names = await pg_migrations.applied_names(self._conn) or []
            if force:
                names_sql = ", ".join(tables)
                async with self.transaction():
                    await self.execute(f"LOCK TABLE {names_sql} IN EXCLUSIVE MODE")
                    saved, verified = await copy_backup()
                    await self.execute(f"TRUNCATE {names_sql}")
        finally:
            await self.close()
        return InitResult(
            path=self.location,
            created=None,
            migrations=names,
            backup=saved,
            backup_verified=verified,
            emptied=force,
        )

    async def empty(self, tables: Sequence[str]) -> None:
        """``TRUNCATE`` of ``tables``, in one statement (a store with no schema yet gets
        one first)."""
        conn = self._conn
        if conn is None:
            conn = await connect(self.url)
        try:
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
        finally:
            if conn is not self._conn:
                await conn.close()

    async def lock(self, name: str) -> None:
        # A transaction-level advisory lock: released at COMMIT or ROLLBACK.
        await self.fetchone("SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(?))", (name,))

    async def begin_snapshot(self) -> None:
        async with self._busy:
            await self._reconnect_if_lost()
            call = self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await self._answer(call)

    async def read_marks(self, tables: dict[str, Sequence[str]]) -> dict[str, str]:
        """The snapshot of this read (:class:`Snapshot`), the same for every table."""
        row = await self.fetchone(f"{CURRENT_SNAPSHOT} AS s")
        assert row is not None
        return dict.fromkeys(tables, row["s"])

    async def mark_holds(self, table: str, key: Sequence[str], then: str, now: str) -> bool:
        """``then`` may be an earlier snapshot of this server (not another's, since)."""
        return Snapshot(then).before(Snapshot(now))

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
        """The rows of the transactions the mark's snapshot did not show as ended, by
        ``tx_id`` (which an update renews in the tables whose rows change in place: no
        ``newer`` column is needed), in ``tx_id`` order: index range scans."""
        select = ", ".join(f"t.{column}" for column in columns)
        keys = ", ".join(f"t.{column}" for column in key)
        places = ", ".join("?" for _ in key)
        condition, params = Snapshot(mark).written_after("t")
        after: list[Any] = []
        while True:
            where = condition
            if after:
                where += f" AND t.tx_id >= ?::text::xid8 AND (t.tx_id, {keys}) > "
                where += f"(?::text::xid8, {places})"
            rows = await self.fetchall(
                f"SELECT t.tx_id::text AS tx_id_, {select} FROM {table} t "
                f"WHERE {where} ORDER BY t.tx_id, {keys} LIMIT {chunk}",
                [*params, *after[:1], *after],
            )
            if rows:
                yield rows
            if len(rows) < chunk:
                return
            after = [rows[-1]["tx_id_"], *(rows[-1][column] for column in key)]

    async def table_columns(self, table: str) -> list[tuple[str, bool]]:
        rows = await self.fetchall(
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() "
            "AND is_generated = 'NEVER' ORDER BY ordinal_position",  # not `search`
            (table,),
        )
        return [
            (row["name"], row["type"] in _NUMERIC_TYPES)
            for row in rows
            if row["name"] not in pg_migrations.BOOKKEEPING_COLUMNS  # each store its own
        ]

    async def fetch_by_keys(
        self,
        table: str,
        key: Sequence[str],
        keys: Sequence[tuple[Any, ...]],
        select: str,
        where: str = "",
    ) -> list[dict[str, Any]]:
        extra = f" AND {where}" if where else ""
        if len(key) == 1:
            return await self.fetchall(
                f"SELECT {select} FROM {table} t WHERE t.{key[0]} = ANY(?){extra}",
                ([one[0] for one in keys],),
            )
        # Several key columns: one array per column, unnested side by side.
        match = " AND ".join(f"t.{column} = k.{column}" for column in key)
        arrays = ", ".join(
            f"?::{'double precision' if isinstance(value, float) else 'text'}[]"
            for value in keys[0]
        )
        return await self.fetchall(
            f"SELECT {select} FROM {table} t JOIN unnest({arrays}) AS k({', '.join(key)}) "
            f"ON {match}{extra}",
            [list(column) for column in zip(*keys, strict=True)],
        )

    async def key_range(
        self,
        table: str,
        key: Sequence[str],
        after: Sequence[Any] | None,
        last: Sequence[Any],
        numeric: Sequence[str],
    ) -> KeyRange:
        """In one statement, the digest too: the keys' text sorted by code point (the "C"
        collation) and hashed by the server; only the sums and the digest travel."""
        where, params = key_range_where(key, after, last)
        text = " || chr(31) || ".join(f"t.{column}::text" for column in key)
        sums = "".join(f", sum(t.{column}) AS {column}" for column in numeric)
        row = await self.fetchone(
            f"SELECT count(*) AS n, sha256(convert_to(coalesce(string_agg({text}, chr(10) "
            f"ORDER BY ({text}) COLLATE \"C\"), ''), 'UTF8')) AS digest{sums} "
            f"FROM {table} t WHERE {where}",
            params,
        )
        assert row is not None
        sums_found = {column: float(row[column] or 0) for column in numeric}
        return KeyRange(int(row["n"]), sums_found, bytes(row["digest"]))

    def json_text(self, expression: str, key: str) -> str:
        assert key.replace("_", "").isalnum(), key
        return f"({expression}::jsonb ->> '{key}')"

    def same(self, expression: str) -> str:
        return f"{expression} IS NOT DISTINCT FROM ?"

    def greatest(self, *expressions: str) -> str:
        return f"greatest({', '.join(expressions)})"

    def least(self, *expressions: str) -> str:
        return f"least({', '.join(expressions)})"

    def milliseconds_between(self, start: str, end: str) -> str:
        return (
            f"(extract(epoch FROM ({end})::timestamptz - ({start})::timestamptz)"
            " * 1000)::double precision"
        )

    def insertion_order(self) -> str:
        # A row's place in its table: the order rows were appended, as long as none was
        # updated (an update writes the row anew at the end).
        return "ctid"

    async def may_pause_triggers(self, tables: Sequence[str]) -> bool:
        """Whether this user owns ``tables`` (``ALTER TABLE ... DISABLE TRIGGER``)."""
        row = await self.fetchone(
            "SELECT bool_and(pg_has_role(tableowner, 'USAGE')) AS owns FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = ANY(?)",
            (list(tables),),
        )
        return bool(row and row["owns"])

    async def pause_triggers(self, table: str, paused: bool) -> None:
        await self.execute(f"ALTER TABLE {table} {'DISABLE' if paused else 'ENABLE'} TRIGGER USER")

    def read(
        self, sql: str, params: Params = (), *, functions: Callable[[Any], None] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """``sql`` with ``$n`` placeholders, in a read-only transaction (:func:`fetch`)."""
        return blocking(fetch(self.url, sql, _positional(params)))

    def feed(self, *, upgrade: bool = False) -> PostgresFeed:
        return PostgresFeed(self.url)


async def fetch(
    url: str, sql: str, args: Sequence[Any], conn: Any = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of PostgreSQL ``sql`` in a read-only transaction (on ``conn``, or
    on a connection of its own to ``url``, migrated first)."""
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


# -- following what is committed (orchestrator tail) -----------------------------------------
# Writers commit in any order, so no growing number marks what a follower has seen; a
# snapshot does. Each followed row holds the transaction that inserted it (``tx_id``,
# indexed); the rows new since the last look are those of the transactions that look's
# snapshot saw running or that began after it, committed by now: index range scans,
# whatever the tables' size. An idle poll compares the server's current snapshot with the
# last one (one short query, no table read).

#: The snapshot a read sees (in a REPEATABLE READ transaction, the transaction's).
CURRENT_SNAPSHOT = "SELECT pg_current_snapshot()::text"


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot (``pg_current_snapshot()``): every transaction below ``xmax``
    but those in ``xip`` had ended when it was taken."""

    text: str  # xmin:xmax:xip,xip,...

    @property
    def xmin(self) -> str:
        return self.text.split(":")[0]

    @property
    def xmax(self) -> str:
        return self.text.split(":")[1]

    @property
    def xip(self) -> str:
        return self.text.split(":")[2]

    def written_after(self, alias: str) -> tuple[str, list[Any]]:
        """The condition that the row ``alias`` (a table with ``tx_id``) was written by a
        transaction this snapshot did not show as ended: one it saw running or one begun
        after it (index range scans on ``tx_id``, whatever the table's size). It says
        ``tx_id >= xmin`` too (implied: every transaction it saw running is at least
        ``xmin``), so that a scan in ``tx_id`` order starts there rather than at the
        index's start (10M entries read for a page of new rows, without it)."""
        condition = (
            f"{alias}.tx_id >= ?::text::xid8 AND ({alias}.tx_id >= ?::text::xid8 "
            f"OR {alias}.tx_id = ANY(string_to_array(?::text, ',')::xid8[]))"
        )
        return condition, [self.xmin, self.xmax, self.xip]

    def before(self, other: Snapshot) -> bool:
        """Whether this snapshot may be an earlier one of the same server as ``other``."""
        return int(self.xmax) <= int(other.xmax)


@dataclass(frozen=True)
class _Mark:
    """Where a follower is in one table: every row of a transaction ``seen`` shows as ended
    has been read; a round of reading the rows ``round`` shows as ended has reached
    ``cursor`` (tx_id, id) when a batch did not hold them all."""

    seen: Snapshot
    round: Snapshot | None = None
    cursor: tuple[str, str] | None = None


class PostgresFeed(Feed):
    """A :class:`~orchestrator.store.backend.Feed` of a PostgreSQL store: one connection
    (asyncpg, on an event loop in a thread of its own, so that it is called like sqlite3
    from any thread, a running event loop's included), read-only REPEATABLE READ
    transactions, a snapshot per table as its mark (:class:`_Mark`)."""

    def __init__(self, url: str) -> None:
        import threading

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="orchestrator-tail", daemon=True
        )
        self._thread.start()
        try:
            self.conn = self._run(connect(url))  # migrated first
        except BaseException:
            self._stop()
            raise
        self._last: str | None = None  # the snapshot of the last look
        self._current: Snapshot | None = None  # the open read's

    def _run(self, call: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._run(self.conn.fetch(to_dollar(sql), *params))]

    def changed(self) -> bool:
        # Any transaction that began writing or ended since changes the snapshot.
        return bool(self._run(self.conn.fetchval(CURRENT_SNAPSHOT)) != self._last)

    def again(self) -> None:
        self._last = None

    def begin(self) -> None:
        self._run(self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        self._current = Snapshot(self._run(self.conn.fetchval(CURRENT_SNAPSHOT)))
        self._last = self._current.text

    def end(self) -> None:
        self._run(self.conn.execute("COMMIT"))

    def close(self) -> None:
        try:
            self._run(self.conn.close())
        finally:
            self._stop()

    def mark(self, table: str) -> _Mark:
        assert self._current is not None
        return _Mark(self._current)

    def range(
        self, alias: str, after: _Mark | None, upto: _Mark, limit: int
    ) -> tuple[str, str, list[Any], str]:
        position = f"{alias}.tx_id::text || ' ' || {alias}.id"
        if after is None:  # the backlog, read with the marks: every row seen is up to them
            return position, "TRUE", [], f"{alias}.created_at DESC, {alias}.id DESC LIMIT {limit}"
        assert self._current is not None
        round_ = after.round or self._current
        # The transactions `seen` showed running or began after it (index range scans),
        # that had ended when `round_` was taken (committed: their rows are visible).
        condition, params = after.seen.written_after(alias)
        condition += (
            f" AND {alias}.tx_id < ?::text::xid8 "
            f"AND pg_visible_in_snapshot({alias}.tx_id, ?::text::pg_snapshot)"
        )
        params += [round_.xmax, round_.text]
        if after.cursor is not None:
            condition += f" AND ({alias}.tx_id, {alias}.id) > (?::text::xid8, ?)"
            params += list(after.cursor)
        return position, condition, params, f"{alias}.tx_id, {alias}.id LIMIT {limit}"

    def moved_past(
        self, table: str, after: _Mark, rows: list[tuple[Any, ...]], limit: int
    ) -> _Mark:
        assert self._current is not None
        round_ = after.round or self._current
        if len(rows) >= limit:
            self.again()
            tx_id, _, row_id = str(rows[-1][0]).partition(" ")
            return _Mark(after.seen, round_, (tx_id, row_id))
        return _Mark(round_)


_NUMERIC_TYPES = frozenset({"bigint", "integer", "double precision", "real", "numeric", "smallint"})


def init_database(url: str) -> list[str]:
    """Create or upgrade the schema of the PostgreSQL database at ``url``; return every
    migration it now has, oldest first."""
    import asyncio

    async def run() -> list[str]:
        conn = await connect(url)
        try:
            return await pg_migrations.applied_names(conn) or []
        finally:
            await conn.close()

    return asyncio.run(run())


def schema_sql(url: str) -> str:
    """The PostgreSQL schema as SQL: migrated into a throw-away schema on the server at
    ``url``, read from the catalog
    (:func:`orchestrator.store.postgres_migrations.schema_sql`), dropped."""
    import asyncio
    import uuid

    import asyncpg

    async def run() -> str:
        schema = f"orchestrator_schema_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(url)
        try:
            await admin.execute(f"CREATE SCHEMA {schema}")
            conn = await asyncpg.connect(url, server_settings={"search_path": schema})
            try:
                await pg_migrations.apply(conn)
                return await pg_migrations.schema_sql(conn)
            finally:
                await conn.close()
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await admin.close()

    return asyncio.run(run())
