"""``orchestrator copy SOURCE... TARGET``: move or merge stores between SQLite and PostgreSQL.

Each side is an SQLite path or a ``postgresql://`` URL. SQLite -> PostgreSQL is how a
team moves an existing ``orchestrator.db`` to a shared server; PostgreSQL -> SQLite
makes a snapshot (what ``orchestrator serve postgresql://...`` serves).

What a copy does, table by table in foreign-key order, in chunks of rows paged by key:

* **Ids are kept.** A row whose key the target lacks is inserted (PostgreSQL: ``COPY``);
  a row it already has is left as it is, with two exceptions that are not overwriting
  but catching up: a run still ``pending``/``running`` or a prompt still ``pending`` in
  the target takes the source's later state, and a row with an ``updated_at`` (or
  ``imported_at``) takes the source's when the source's is newer. So running it again
  copies only what is new, and a refresh follows runs as they finish.
* **Summaries.** The target's triggers keep its totals (runs' prompt totals, the daily
  summaries, sessions) as rows arrive. Into an empty target the source's summary tables
  are then carried over as they are, so days whose raw rows were pruned at the source
  keep their totals; an empty target takes each chunk with its summaries' triggers off,
  inside the chunk's transaction (PostgreSQL: when the user owns its tables), and the
  runs' totals as the source has them.
* **Verification** at the end, over the source's keys on both sides: row counts, the
  sums of every numeric column (tokens, costs, durations; floats equal within 1e-9
  relative) and a digest of the keys, range of keys by range, each side summing up its
  own rows (a range where the two differ is compared key by key). Any difference raises
  :class:`CopyMismatch`, naming the table and what differs. Summary tables are compared
  too when the target holds exactly the source's rows.
* **Merging** (:func:`merge_databases`: several sources, one after the other): a
  workflow is one per name, so a source's workflow whose name the target holds under
  another id is that one (its runs and summaries point at the target's id; budgets are
  keyed by name already). A source prompt whose response the target holds under another
  prompt (the same message id and request id: one transcript imported on two machines)
  is not copied, nor its response row; rows pointing at it point at the target's. The
  verification leaves those merged rows out, and the runs' totals the responses left out.
  Into a target holding other rows, the summaries are the triggers' sums over the rows
  copied (days a source pruned add nothing there).
* Nothing in the target is deleted, except with ``replace=True``, which empties it
  first (an SQLite target through ``init --force``: backed up, refused while open).

**Watermarks.** A verified copy records in the target, per source (its identity) and
table, where its read of the source stood (``copy_watermarks``, in one transaction after
the last chunk): from PostgreSQL the snapshot of the read (``pg_current_snapshot()``), from
SQLite the rowid and key of each table's last row. ``recent=True`` (a snapshot's refresh,
each round of ``copy --follow`` after its first) then reads only what is new since: from
PostgreSQL, the rows whose ``tx_id`` (the inserting transaction; an update renews it in
the tables rows change in place) is one the recorded snapshot saw running or that began
after it (:meth:`~orchestrator.store.postgres.Snapshot.written_after`, as ``tail`` does:
index range scans, a transaction committed after a later one is not missed); from SQLite,
the rows past the recorded rowid (one writer at a time: a new row's rowid follows the
largest) and, in tables with a ``newer`` column, the rows changed at most LOOKBACK_MS
before the last read began. Unfinished rows of the target catch up as before (found by
partial indexes). Such a round verifies that each row it read is in the target (by key),
not the whole tables; the full verification runs on every copy without ``recent`` and on
the first round of ``serve`` and ``copy --follow``. A killed round leaves the marks where
they were: the next reads its rows again and finds them there. Marks that no longer hold
(the table's last row deleted at an SQLite source, another server) make the round read
and verify everything; without marks (a target copied into before they were kept) a
refresh pages keys from ten minutes before the target's newest (or ``since``), checks the
whole tables' counts and scans everything when they differ, as it did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import OrchestratorError
from ..core.ids import format_timestamp, utc_now
from ..store.backend import Backend, key_digest, key_range_where, key_text
from ..store.targets import backend_for

#: Rows read and written at a time.
CHUNK = 5000
#: Keys verified at a time, as one range summed up on each side.
VERIFY_CHUNK = 50_000
#: How far before the target's newest key a refresh looks (commits can lag their ids).
LOOKBACK_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    #: Columns the target's triggers compute (not copied; verified).
    derived: tuple[str, ...] = ()
    #: A target row in this state takes the source's (an unfinished run or prompt).
    unfinished: str | None = None
    #: A target row takes the source's when this column is newer at the source.
    newer: str | None = None
    #: Keys are UUIDv7 text (time-ordered): a refresh may start near the newest.
    time_ordered: bool = True


#: The run totals on ``agents`` that the prompts' triggers keep.
RUN_TOTALS = (
    "prompt_count",
    "total_tokens_input",
    "total_tokens_output",
    "total_tokens_cache_read",
    "total_tokens_cache_write",
    "total_cost_usd",
    "unpriced_prompt_count",
)

#: The tables a copy moves, parents before children.
TABLES = (
    Table("orchestrator_agents", ("id",), newer="updated_at", time_ordered=False),
    Table("agents", ("id",), derived=RUN_TOTALS, unfinished="status IN ('pending', 'running')"),
    Table("prompts", ("id",), unfinished="status = 'pending'"),
    Table("prompt_responses", ("prompt_id",)),
    Table("claude_code_runs", ("agent_id",), newer="updated_at"),
    Table("agent_model_usage", ("agent_id", "model"), time_ordered=False),
    Table("claude_code_files", ("path",), newer="imported_at", time_ordered=False),
    Table("agent_logs", ("id",)),
    Table("system_logs", ("id",)),
    Table("budgets", ("scope", "name"), newer="updated_at", time_ordered=False),
    Table("budget_alerts", ("scope", "name", "period"), time_ordered=False),
    # orchestrator collect: a request's id and cost, user prompts, resource attributes, and
    # daily metric sums (added to as telemetry arrives: the newer day's sums win).
    Table("otel_requests", ("request_id",), time_ordered=False),
    Table("otel_user_prompts", ("otel_prompt_id",), time_ordered=False),
    Table("agent_attributes", ("agent_id", "key"), time_ordered=False),
    Table(
        "otel_metrics_daily", ("day", "name", "attributes"), newer="updated_at", time_ordered=False
    ),
    # orchestrator export otlp: the runs already sent to each endpoint.
    Table("otlp_exports", ("endpoint", "agent_id"), time_ordered=False),
)
#: Kept by the triggers; carried as they are into an empty target.
SUMMARIES = (
    Table("usage_daily", ("day", "orchestrator_agent_id", "model"), time_ordered=False),
    Table("runs_daily", ("day", "orchestrator_agent_id"), time_ordered=False),
    Table(
        "step_histogram_daily",
        ("day", "orchestrator_agent_id", "step", "bucket_ms"),
        time_ordered=False,
    ),
    Table("sessions", ("session_id",), time_ordered=False),
)


#: A first copy begun and not finished (one row per source): see :class:`_Copier`.
PROGRESS = Table("copy_progress", ("source",), time_ordered=False)
#: Where each source's verified rounds have reached, per table: see :class:`_Mark`.
WATERMARKS = Table("copy_watermarks", ("source", "table_name"), time_ordered=False)


@dataclass(frozen=True)
class _Mark:
    """Where a verified round read a source's table up to (kept in ``copy_watermarks``):
    from PostgreSQL, the snapshot of the round's read (``pg_snapshot`` text); from SQLite,
    ``[rowid, key]`` of the table's last row then (``[0, null]``: it was empty). ``at``:
    the UNIX time the read began."""

    text: str
    at: float


class AnotherStore(ValueError, OrchestratorError):
    """The source is another store than the one expected (:func:`copy`'s ``expect``)."""


class CopyMismatch(OrchestratorError):
    """The target does not hold what the source holds after a copy."""


@dataclass
class TableResult:
    name: str
    source_rows: int = 0
    inserted: int = 0
    updated: int = 0
    target_rows: int = 0  # of the source's keys, how many the target holds
    source_digest: str = ""
    target_digest: str = ""
    source_sums: dict[str, float] = field(default_factory=dict)
    target_sums: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class CopyResult:
    source: str
    target: str
    tables: list[TableResult]
    fresh: bool  # the target held nothing before
    recent: bool
    #: This copy finished a first copy from the same source that was interrupted.
    resumed: bool = False
    seconds: float = 0.0
    #: The target holds rows the source does not (its own, or ones the source deleted).
    holds_more: bool = False
    #: Source rows kept as the target's own: workflows of the same name, and prompts (with
    #: their responses) whose response the target held under another prompt.
    merged: int = 0

    @property
    def inserted(self) -> int:
        return sum(table.inserted for table in self.tables)

    @property
    def updated(self) -> int:
        return sum(table.updated for table in self.tables)

    @property
    def problems(self) -> list[str]:
        return [f"{t.name}: {problem}" for t in self.tables for problem in t.problems]


#: Called with (table, rows done, rows in the table at the source).
Progress = Callable[[str, int, int], None]


def copy_database(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    replace: bool = False,
    recent: bool = False,
    since: float | None = None,
    progress: Progress | None = None,
    expect: str | None = None,
) -> CopyResult:
    """Copy every row of ``source`` into ``target`` and verify it (see the module)."""
    return asyncio.run(
        copy(
            source,
            target,
            replace=replace,
            recent=recent,
            since=since,
            progress=progress,
            expect=expect,
        )
    )


def merge_databases(
    sources: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    replace: bool = False,
    recent: bool = False,
    progress: Progress | None = None,
    done: Callable[[CopyResult], None] | None = None,
) -> list[CopyResult]:
    """Copy each of ``sources`` in turn into ``target`` (see :func:`copy`): the stores of
    several machines merged into one. ``replace`` empties the target before the first;
    ``recent``: each only what it gained since its last verified copy there;
    ``done`` is called with each source's result as it is verified."""
    results = []
    for index, source in enumerate(sources):
        results.append(
            copy_database(
                source,
                target,
                replace=replace and index == 0,
                recent=recent,
                progress=progress,
            )
        )
        if done is not None:
            done(results[-1])
    return results


def follow_copy(
    sources: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    every: float = 30.0,
    rounds: int | None = None,
    done: Callable[[CopyResult], None] | None = None,
    failed: Callable[[str], None] | None = None,
) -> None:
    """Copy ``sources`` into ``target`` every ``every`` seconds (:func:`merge_databases`:
    the first round reads and verifies everything, each later one what the sources gained
    since the last verified round, by their watermarks), for ``rounds`` rounds or forever: a
    machine's file kept flowing into the team's store. A round that fails because the
    server is away (stopped, restarting, the network down) or another machine's first
    copy into it is under way is reported to ``failed`` in one line and tried again at
    the next round; the rows written meanwhile go with it. Restartable at any point: a
    copy keeps ids and finishes an interrupted first copy, so nothing is doubled or lost.
    Other errors (a mismatch, the same store on both sides) are raised."""
    count = 0
    verified = False  # a first round has read and verified everything
    while rounds is None or count < rounds:
        began = time.monotonic()
        try:
            merge_databases(sources, target, recent=verified, done=done)
            verified = True
        except Exception as exc:
            if not _retryable(exc):
                raise
            if failed is not None:
                failed(f"{str(exc) or type(exc).__name__}; trying again in {every:g} s")
        count += 1
        if rounds is None or count < rounds:
            time.sleep(max(0.0, every - (time.monotonic() - began)))


def _retryable(exc: BaseException) -> bool:
    """Whether a copy failed for a reason that passes (the server away, restarting, the
    network, another source's first copy into the target not finished yet) rather than
    one that another round would meet again: a mismatch, the same store on both sides,
    a file that is not a database, a schema too new, a row the server refuses."""
    if isinstance(exc, ValueError):
        return "that was interrupted" in str(exc)
    if isinstance(exc, (CopyMismatch, sqlite3.Error, OrchestratorError)):
        return isinstance(exc, ConnectionError)
    if type(exc).__module__.startswith("asyncpg"):
        from asyncpg import PostgresConnectionError, PostgresError

        # The server's own errors about a row or the schema are not passing.
        if isinstance(exc, PostgresConnectionError) or type(exc).__name__ in _PASSING:
            return True
        return not isinstance(exc, PostgresError)
    return isinstance(exc, Exception)


#: asyncpg errors of a server going away or coming back.
_PASSING = frozenset(
    {
        "AdminShutdownError",
        "CannotConnectNowError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "DeadlockDetectedError",
        "SerializationError",
        "LockNotAvailableError",
    }
)


async def copy(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    replace: bool = False,
    recent: bool = False,
    since: float | None = None,
    progress: Progress | None = None,
    expect: str | None = None,
) -> CopyResult:
    """Copy ``source`` into ``target``; raise CopyMismatch when the verification fails.
    With ``expect`` (a :meth:`~orchestrator.store.backend.Backend.identity`), raise
    :class:`AnotherStore` and copy nothing when the source is not that store."""
    src, dst = backend_for(source), backend_for(target)
    if (missing := src.missing()) is not None:
        raise FileNotFoundError(missing)
    identity = await src.identity()
    if expect is not None and identity != expect:
        raise AnotherStore(
            f"{src.location} is not the store {dst.location} was copied from (a database "
            "dropped and created again, another server at that address): nothing was copied"
        )
    if type(src) is type(dst) and identity is not None and identity == await dst.identity():
        # Asked of what each side resolves to (a file's inode; a server's identifier, its
        # database and schema), never of the spelling.
        raise ValueError(
            f"{src.location} and {dst.location} are the same database: nothing was copied"
        )
    if replace:
        await _empty(target)
    started, began = time.perf_counter(), time.time()
    await src.open()
    try:
        # Every read of the source, verification included, sees one state of it: rows its
        # writers commit meanwhile are for the next copy, not differences.
        await src.begin_snapshot()
        await dst.open()
        try:
            copier = _Copier(src, dst, progress, since, identity or src.location)
            copier.began = began
            result = await copier.run(recent or since is not None)
        finally:
            await dst.close()
    finally:
        await src.close()  # ends the read transaction
    result.seconds = time.perf_counter() - started
    if result.problems:
        shown = result.problems[:6]
        more = len(result.problems) - len(shown)
        raise CopyMismatch(
            f"the copy of {src.location} in {dst.location} differs: "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
            + " (run again with --replace to copy it anew)"
        )
    return result


def backup_store(
    source: str, dest: str | os.PathLike[str] | None = None
) -> tuple[Path, CopyResult]:
    """Copy the store at ``source`` (a URL) into a new SQLite file ``dest`` (default
    ``<database>.<UTC timestamp>.bak.db`` here), verified as every copy is, then checked
    with ``PRAGMA integrity_check``. Raises FileExistsError when ``dest`` exists; on any
    failure the partial file is deleted."""
    return asyncio.run(_backup_store(source, dest))


async def _backup_store(
    source: str, dest: str | os.PathLike[str] | None
) -> tuple[Path, CopyResult]:
    from ..store.sqlite import integrity_problems as _integrity_problems
    from ..store.sqlite import remove_files as _remove

    if dest is None:
        name = urlsplit(source).path.strip("/") or "orchestrator"
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        dest = f"{name}.{stamp}.bak.db"
    target = Path(dest)
    if target.exists():
        raise FileExistsError(f"{target} exists: not overwriting it with a backup")
    try:
        result = await copy(source, target)
        conn = sqlite3.connect(target)
        try:
            problems = _integrity_problems(conn)
        finally:
            conn.close()
        if problems:
            raise sqlite3.DatabaseError(
                f"the backup of {result.source} failed its integrity check: {'; '.join(problems)}"
            )
    except BaseException:
        _remove(target)
        raise
    return target, result


async def _empty(target: str | os.PathLike[str]) -> None:
    """Empty the target (``replace``), as its engine does it (:meth:`Backend.empty`: an
    SQLite file through what ``init --force`` does, a PostgreSQL store by truncating)."""
    tables = (*TABLES, *SUMMARIES, PROGRESS, WATERMARKS)
    await backend_for(target).empty([table.name for table in tables])


class _Copier:
    """One copy. A first copy (into a store holding none of the copied tables' rows) is
    recorded in ``copy_progress`` before its first row, and the record is deleted in the
    transaction that carries the source's summaries: a copy killed or cut off in between
    leaves it, and the next copy from the same source finishes that first copy the same
    way (the same trigger mode, rows already there skipped, summaries carried), whatever
    ADWs wrote into the target meanwhile. A copy from another source is refused until
    then."""

    def __init__(
        self,
        src: Backend,
        dst: Backend,
        progress: Progress | None,
        since: float | None,
        source: str,
    ) -> None:
        self.src, self.dst, self.progress, self.since = src, dst, progress, since
        self.source = source  # what the source resolves to (Backend.identity)
        self.began = time.time()  # when the source's read began (UNIX time)
        self.fresh = False  # the target held none of the copied tables' rows
        self.first = False  # a first copy: begun now (fresh) or resumed
        self.quiet_triggers = False
        #: Merging: a source's workflow id -> the target's workflow of the same name.
        self.workflows: dict[Any, Any] = {}
        #: A source prompt whose response the target holds already (the same message and
        #: request id, imported on another machine) -> the target's prompt of it.
        self.responses: dict[Any, Any] = {}
        #: What those prompts added to their runs' totals at the source (not added here).
        self.response_totals = dict.fromkeys(RUN_TOTALS, 0.0)

    async def run(self, recent: bool) -> CopyResult:
        fresh = self.fresh = not any([await _any_row(self.dst, table) for table in TABLES])
        resumed = not fresh and await self._resume()
        first = self.first = fresh or resumed
        marks = await self._marks_now()
        if recent and not first:
            then, recorded = await self._marks_then(marks)
            if then is not None:
                return await self._changes(then, marks)
            # Marks that no longer hold (the source's newest rows deleted, another server
            # at the address): everything is read and verified. None yet (a target copied
            # into before they were kept): the window of ids, checked by the counts.
            recent = not recorded
        if fresh:
            # Into an empty store, rows go in with the source's totals and
            # without the triggers (whose work the carried summaries replace): the copy's
            # largest cost.
            self.quiet_triggers = await self.dst.may_pause_triggers(
                [table.name for table in TABLES]
            )
            await self._begin_first()
        results = {table.name: TableResult(table.name) for table in TABLES}
        for table in TABLES:
            await self._copy_table(table, results[table.name], recent and not first)
        if first:
            await self._carry_summaries()
        if recent and not first:
            if await self._counts_match(results):
                tables = list(results.values())
                result = CopyResult(self.src.location, self.dst.location, tables, fresh, True)
                result.merged = self._merged_rows()
                await self._record(marks)
                return result
            for table in TABLES:  # something older than the window is missing: scan all
                await self._copy_table(table, results[table.name], False)
        for table in TABLES:
            await self._verify(table, results[table.name])
        tables = list(results.values())
        holds_only_source = [t.target_rows == await _count(self.dst, t.name) for t in tables]
        if all(holds_only_source):
            for table in SUMMARIES:
                summary = TableResult(table.name)
                await self._verify(table, summary)
                tables.append(summary)
        result = CopyResult(
            self.src.location, self.dst.location, tables, fresh, recent, resumed=resumed
        )
        result.holds_more = not all(holds_only_source)
        result.merged = self._merged_rows()
        if not result.problems:
            await self._record(marks)
        return result

    def _merged_rows(self) -> int:
        return len(self.workflows) + 2 * len(self.responses)

    async def _begin_first(self) -> None:
        """Record the first copy from this source before its first row goes in."""
        async with self.dst.transaction():
            await self.dst.execute(f"DELETE FROM {PROGRESS.name}")  # one that never began
            await self.dst.execute(
                f"INSERT INTO {PROGRESS.name} (source, location, quiet, started_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    self.source,
                    self.src.location,
                    int(self.quiet_triggers),
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                ),
            )

    async def _resume(self) -> bool:
        """Whether a first copy from this source was interrupted (then continue it in its
        trigger mode); raises ValueError when one from another source was."""
        rows = await self.dst.fetchall(f"SELECT source, location, quiet FROM {PROGRESS.name}")
        mine = [row for row in rows if row["source"] == self.source]
        if not mine:
            if rows:
                other = rows[0]["location"]
                raise ValueError(
                    f"{self.dst.location} holds part of a copy of {other} that was "
                    f"interrupted: finish it first (orchestrator copy {other} TARGET), or "
                    "give --replace; nothing was copied"
                )
            return False
        if mine[0]["quiet"] and not await self.dst.may_pause_triggers(
            [table.name for table in TABLES]
        ):
            raise ValueError(
                f"the interrupted copy into {self.dst.location} paused its tables' triggers, "
                "which this user may not: finish it as the tables' owner; nothing was copied"
            )
        self.quiet_triggers = bool(mine[0]["quiet"])
        return True

    async def _columns(self, table: Table) -> list[str]:
        source = [name for name, _ in await self.src.table_columns(table.name)]
        target = [name for name, _ in await self.dst.table_columns(table.name)]
        if source != target:
            raise CopyMismatch(
                f"{table.name} has columns {source} in {self.src.location} but {target} in "
                f"{self.dst.location}: upgrade both with `orchestrator init` first"
            )
        return source

    async def _copy_table(
        self, table: Table, result: TableResult, recent: bool, since: _Mark | None = None
    ) -> None:
        columns = await self._columns(table)
        copied = [c for c in columns if self.quiet_triggers or c not in table.derived]
        start = await self._window_start(table) if recent else None
        # The bar's length: a refresh does not count the source twice (its check does).
        total = 0 if start is not None or since else await _count(self.src, table.name)
        if (start is not None or since) and table.unfinished:
            result.updated += await self._catch_up_unfinished(table, copied)
        done = 0
        parents_missing: list[tuple[Any, Any]] = []
        if table.name == "orchestrator_agents":
            await self._match_workflows()
        merged = self._merged(table)
        # Into an empty target every row is new, and none is matched, translated or linked
        # (but runs, to their parents): rows go as the source gives them.
        plain = self.fresh and not merged and not self.workflows and table.name != "agents"
        if since is None:
            pages = _pages(self.src, table, copied, start, plain=plain)
        else:
            plain, pages = False, self._changed(table, copied, since)
        async for rows in pages:
            if plain:
                await self._insert_new(table, copied, rows)
                result.inserted += len(rows)
                done += len(rows)
                if self.progress is not None:
                    self.progress(table.name, done, max(total, done))
                continue
            self._translate(table, rows)
            keys = [_key(table, row) for row in rows]
            present = set() if self.fresh else await self._present(table, keys)
            new = [row for row, key in zip(rows, keys, strict=True) if key not in present]
            if table.name == "prompts" and new and not self.fresh:
                await self._match_responses(new)
                new = [row for row in new if row["id"] not in self.responses]
            if merged:
                new = [row for row in new if _key(table, row) not in merged]
            if table.name == "agents":
                parents_missing += await self._detach_parents(new)
                if present and self.first:  # an interrupted copy may not have linked them
                    parents_missing += await self._unlinked(rows, present)
            stale = bool(present) and bool(table.unfinished or table.newer)
            async with self.dst.transaction():
                # All in the chunk's transaction, so a copy killed between chunks leaves
                # the target as between two chunks: other writers wait for it, and meet
                # the triggers and the search index as they were.
                quiet = self.quiet_triggers and bool(new or stale)
                if quiet:
                    await self.dst.pause_triggers(table.name, True)
                deferred = await self.dst.defer_search_index([table.name]) if new else {}
                if new:
                    await self.dst.insert_many(table.name, copied, _values(copied, new))
                    result.inserted += len(new)
                if stale:
                    result.updated += await self._catch_up(table, copied, rows, present)
                if deferred:
                    await self.dst.catch_up_search_index(deferred)
                if quiet:
                    await self.dst.pause_triggers(table.name, False)
            done += len(rows)
            if since is not None:
                await self._verify_changed(table, result, keys)
            if self.progress is not None:
                self.progress(table.name, done, max(total, done))
        if parents_missing:
            await self.dst.begin()
            await self.dst.executemany(
                "UPDATE agents SET parent_agent_id = ? WHERE id = ?",
                [(parent, child) for child, parent in parents_missing],
            )
            await self.dst.commit()

    async def _insert_new(self, table: Table, columns: list[str], rows: list[Any]) -> None:
        """Insert rows none of which the target holds, in one transaction (as a chunk of
        :meth:`_copy_table`'s: its triggers paused, or its search index caught up, within)."""
        async with self.dst.transaction():
            if self.quiet_triggers:
                await self.dst.pause_triggers(table.name, True)
            deferred = await self.dst.defer_search_index([table.name])
            await self.dst.insert_many(table.name, columns, rows)
            if deferred:
                await self.dst.catch_up_search_index(deferred)
            if self.quiet_triggers:
                await self.dst.pause_triggers(table.name, False)

    def _merged(self, table: Table) -> set[tuple[Any, ...]]:
        """The source's keys of ``table`` merged into other rows of the target."""
        if table.name == "orchestrator_agents":
            return {(key,) for key in self.workflows}
        if table.name in ("prompts", "prompt_responses"):
            return {(key,) for key in self.responses}
        return set()

    def _translate(self, table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Point the source's rows at the target's workflows and responses."""
        column, mapping = {
            "otel_requests": ("prompt_id", self.responses),
        }.get(table.name, ("orchestrator_agent_id", self.workflows))
        if mapping:
            for row in rows:
                if column in row and row[column] in mapping:
                    row[column] = mapping[row[column]]
        return rows

    async def _match_workflows(self) -> None:
        """Workflows are one per name: a source's workflow whose name the target gives
        another id is that one (its runs, summaries and budgets join it)."""
        source = await self.src.fetchall("SELECT id, name FROM orchestrator_agents")
        target = {
            row["name"]: row["id"]
            for row in await self.dst.fetchall("SELECT id, name FROM orchestrator_agents")
        }
        self.workflows = {
            row["id"]: target[row["name"]]
            for row in source
            if row["name"] in target and target[row["name"]] != row["id"]
        }

    async def _match_responses(self, rows: list[dict[str, Any]]) -> None:
        """Prompts (new here by id) whose response the target holds already under another
        prompt, the same transcript imported on two machines: the same message id and
        request id. They are not copied; their rows of other tables point at the
        target's."""
        keys = [(row["id"],) for row in rows]
        responses = await _fetch_keys(
            self.src, TABLES[3], keys, ("prompt_id", "message_id", "request_id")
        )
        if not responses:
            return
        found: dict[tuple[Any, Any], Any] = {}
        messages = [(row["message_id"],) for row in responses]
        for row in await self.dst.fetch_by_keys(
            "prompt_responses", ("message_id",), messages, "t.prompt_id, t.message_id, t.request_id"
        ):
            found.setdefault((row["message_id"], row["request_id"]), row["prompt_id"])
        by_id = {row["id"]: row for row in rows}
        for response in responses:
            there = found.get((response["message_id"], response["request_id"]))
            if there is None or there == response["prompt_id"]:
                continue
            self.responses[response["prompt_id"]] = there
            prompt = by_id[response["prompt_id"]]
            totals = self.response_totals
            totals["prompt_count"] += 1
            for column in ("input", "output", "cache_read", "cache_write"):
                totals[f"total_tokens_{column}"] += prompt.get(f"tokens_{column}") or 0
            totals["total_cost_usd"] += prompt.get("cost_usd") or 0
            totals["unpriced_prompt_count"] += prompt.get("cost_source") == "unpriced"

    async def _window_start(self, table: Table) -> tuple[Any, ...] | None:
        if not table.time_ordered:
            return None
        if self.since is not None:
            ms = int(self.since * 1000)
        else:
            (column,) = table.key
            row = await self.dst.fetchone(f"SELECT max({column}) AS k FROM {table.name}")
            newest = row["k"] if row else None
            if not newest:
                return None
            ms = int(newest.replace("-", "")[:12], 16)
        head = f"{max(ms - LOOKBACK_MS, 0):012x}"
        return (f"{head[:8]}-{head[8:]}",)  # sorts before every id of that millisecond

    async def _present(self, table: Table, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        found = await _fetch_keys(self.dst, table, keys, table.key)
        return {_key(table, row) for row in found}

    async def _detach_parents(self, rows: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        """Runs whose parent run is not in the target yet are inserted without it, and get
        it once every run is in (a subagent's run may have the smaller id)."""
        parents = [(row["parent_agent_id"],) for row in rows if row.get("parent_agent_id")]
        if not parents:
            return []
        there = {row["id"] for row in await _fetch_keys(self.dst, TABLES[1], parents, ("id",))}
        detached = []
        for row in rows:
            parent = row.get("parent_agent_id")
            if parent and parent not in there:
                detached.append((row["id"], parent))
                row["parent_agent_id"] = None
            there.add(row["id"])
        return detached

    async def _unlinked(
        self, rows: list[dict[str, Any]], present: set[tuple[Any, ...]]
    ) -> list[tuple[Any, Any]]:
        """Runs in the target still without the parent run they have at the source."""
        keys = [
            (row["id"],) for row in rows if row.get("parent_agent_id") and (row["id"],) in present
        ]
        found = await _fetch_keys(
            self.dst, TABLES[1], keys, ("id",), where="t.parent_agent_id IS NULL"
        )
        parents = {row["id"]: row["parent_agent_id"] for row in rows}
        return [(row["id"], parents[row["id"]]) for row in found]

    async def _catch_up(
        self,
        table: Table,
        columns: list[str],
        rows: list[dict[str, Any]],
        present: set[tuple[Any, ...]],
    ) -> int:
        """Give target rows still unfinished (or older) the source's state."""
        keys = [_key(table, row) for row in rows if _key(table, row) in present]
        if table.newer:
            stale_rows = await _fetch_keys(self.dst, table, keys, (*table.key, table.newer))
            by_key = {_key(table, row): row for row in rows}
            stale = {
                _key(table, row)
                for row in stale_rows
                if (by_key[_key(table, row)][table.newer] or "") > (row[table.newer] or "")
            }
        else:
            # Only those the source has changed since: a run running for hours is not
            # written again at every refresh.
            found = await _fetch_keys(self.dst, table, keys, columns, where=table.unfinished)
            by_key = {_key(table, row): row for row in rows}
            stale = {
                _key(table, row)
                for row in found
                if any(row[c] != by_key[_key(table, row)][c] for c in columns)
            }
        changed = [row for row in rows if _key(table, row) in stale]
        settable = [c for c in columns if c not in table.key]
        updates = []
        for row in changed:
            updates.append([row[c] for c in settable] + [row[c] for c in table.key])
        if updates:
            sets = ", ".join(f"{c} = ?" for c in settable)
            where = " AND ".join(f"{c} = ?" for c in table.key)
            await self.dst.executemany(f"UPDATE {table.name} SET {sets} WHERE {where}", updates)
        return len(updates)

    async def _catch_up_unfinished(self, table: Table, columns: list[str]) -> int:
        """Unfinished rows older than a refresh's window (a long run) catch up too."""
        keys = [
            _key(table, row)
            for row in await self.dst.fetchall(
                f"SELECT {', '.join(table.key)} FROM {table.name} WHERE {table.unfinished}"
            )
        ]
        updated = 0
        for at in range(0, len(keys), CHUNK):
            chunk = keys[at : at + CHUNK]
            rows = self._translate(table, await _fetch_keys(self.src, table, chunk, columns))
            await self.dst.begin()
            try:
                updated += await self._catch_up(table, columns, rows, set(chunk))
                await self.dst.commit()
            except BaseException:
                await self.dst.rollback()
                raise
        return updated

    async def _carry_summaries(self) -> None:
        """Put the source's summary rows in place of what the target's triggers made, and
        end the first copy's record, in one transaction."""
        columns = {table.name: await self._columns(table) for table in SUMMARIES}
        async with self.dst.transaction():
            for table in SUMMARIES:
                await self.dst.execute(f"DELETE FROM {table.name}")
                async for rows in _pages(self.src, table, columns[table.name], None):
                    self._translate(table, rows)
                    names = columns[table.name]
                    await self.dst.insert_many(table.name, names, _values(names, rows))
            await self.dst.execute(f"DELETE FROM {PROGRESS.name} WHERE source = ?", (self.source,))

    async def _counts_match(self, results: dict[str, TableResult]) -> bool:
        matched = True
        for table in TABLES:
            source, target = await _count(self.src, table.name), await _count(self.dst, table.name)
            results[table.name].source_rows = results[table.name].target_rows = source
            matched = matched and source == target
        return matched

    # -- watermarks: what a round reads after a verified one -------------------------------

    async def _marks_now(self) -> dict[str, _Mark]:
        """Where this round's read of the source stands, table by table."""
        marks = await self.src.read_marks({table.name: table.key for table in TABLES})
        return {name: _Mark(text, self.began) for name, text in marks.items()}

    async def _marks_then(self, now: dict[str, _Mark]) -> tuple[dict[str, _Mark] | None, bool]:
        """The marks the last verified round from this source left in the target, when they
        still hold (else None), and whether there were any."""
        rows = await self.dst.fetchall(
            f"SELECT table_name, mark, copied_at FROM {WATERMARKS.name} WHERE source = ?",
            (self.source,),
        )
        then = {row["table_name"]: _Mark(row["mark"], float(row["copied_at"])) for row in rows}
        if not then:
            return None, False
        if any(table.name not in then for table in TABLES):
            return None, True
        try:
            for table in TABLES:
                if not await self._holds(table, then[table.name], now[table.name]):
                    return None, True
        except (ValueError, IndexError, TypeError):  # a mark of another engine's store
            return None, True
        return then, True

    async def _holds(self, table: Table, then: _Mark, now: _Mark) -> bool:
        """Whether every row the source gained since ``then`` is past it
        (:meth:`~orchestrator.store.backend.Backend.mark_holds`)."""
        return await self.src.mark_holds(table.name, table.key, then.text, now.text)

    async def _changes(self, then: dict[str, _Mark], now: dict[str, _Mark]) -> CopyResult:
        """A round after a verified one: only the rows added or changed since, each
        verified in the target, then the marks moved on in one transaction."""
        results = {table.name: TableResult(table.name) for table in TABLES}
        for table in TABLES:
            result = results[table.name]
            await self._copy_table(table, result, False, then[table.name])
            if result.target_rows != result.source_rows:
                missing = result.source_rows - result.target_rows
                result.problems.append(f"{missing} of {result.source_rows} new rows missing")
        tables = list(results.values())
        copied = CopyResult(self.src.location, self.dst.location, tables, False, True)
        copied.merged = self._merged_rows()
        if not copied.problems:
            await self._record(now)
        return copied

    def _changed(self, table: Table, columns: list[str], since: _Mark) -> Any:
        """The source's rows of ``table`` added or changed since the mark, CHUNK at a time
        (:meth:`~orchestrator.store.backend.Backend.rows_since`: by ``tx_id`` on
        PostgreSQL; on SQLite by rowid, and the rows whose ``newer`` column is at most
        LOOKBACK_MS older than the mark's read)."""
        start = datetime.fromtimestamp(since.at - LOOKBACK_MS / 1000, timezone.utc)
        return self.src.rows_since(
            table.name,
            table.key,
            columns,
            since.text,
            CHUNK,
            newer=table.newer,
            changed_since=format_timestamp(start),
        )

    async def _verify_changed(
        self, table: Table, result: TableResult, keys: list[tuple[Any, ...]]
    ) -> None:
        """Count the rows read since the mark in the target, by key (index lookups)."""
        merged = self._merged(table)  # as of this chunk: prompts merged in it included
        keys = [key for key in keys if key not in merged]
        found = await _fetch_keys(self.dst, table, keys, table.key)
        result.source_rows += len(keys)
        result.target_rows += len(found)

    async def _record(self, marks: dict[str, _Mark]) -> None:
        """Keep in the target where this verified round read the source up to."""
        async with self.dst.transaction():
            await self.dst.execute(
                f"DELETE FROM {WATERMARKS.name} WHERE source = ?", (self.source,)
            )
            await self.dst.executemany(
                f"INSERT INTO {WATERMARKS.name} (source, table_name, mark, copied_at) "
                "VALUES (?, ?, ?, ?)",
                [(self.source, name, mark.text, mark.at) for name, mark in marks.items()],
            )

    async def _verify(self, table: Table, result: TableResult) -> None:
        """Counts, numeric sums and a key digest of the source's rows, on both sides: range
        by range of VERIFY_CHUNK source keys, summed up by each store
        (:meth:`~orchestrator.store.backend.Backend.key_range`); a range where the two
        differ (or that holds merged rows) is compared key by key."""
        await self._columns(table)  # refuses tables whose columns differ
        numeric = [c for c, number in await self.src.table_columns(table.name) if number]
        source_digest, target_digest = _Digest(), _Digest()
        source_sums = dict.fromkeys(numeric, 0.0)
        target_sums = dict.fromkeys(numeric, 0.0)
        result.source_rows = result.target_rows = 0
        merged = self._merged(table)
        after: tuple[Any, ...] | None = None
        while (last := await _range_end(self.src, table, after)) is not None:
            if not merged:
                source = await self.src.key_range(table.name, table.key, after, last, numeric)
                target = await self.dst.key_range(table.name, table.key, after, last, numeric)
                if (source.rows, source.digest) == (target.rows, target.digest):
                    # The target holds exactly the source's keys there: its sums are theirs.
                    result.source_rows += source.rows
                    result.target_rows += target.rows
                    source_digest.update(source.digest)
                    target_digest.update(target.digest)
                    for column in numeric:
                        source_sums[column] += source.sums[column]
                        target_sums[column] += target.sums[column]
                    after = last
                    continue
            async for keys in _key_pages(self.src, table, after, last):
                if merged:  # kept in the target as its own row of the same workflow or response
                    keys = [key for key in keys if key not in merged]
                    if not keys:
                        continue
                found = await _fetch_keys(self.dst, table, keys, table.key)
                result.source_rows += len(keys)
                result.target_rows += len(found)
                source_digest.add(keys)
                target_digest.add(_key(table, row) for row in found)
                for sums, backend in ((source_sums, self.src), (target_sums, self.dst)):
                    totals = await _sums(backend, table, keys, numeric)
                    for column in numeric:
                        sums[column] += totals[column]
            after = last
        if table.name == "agents" and not self.quiet_triggers:
            # The runs' totals here leave out the responses the target held already.
            for column in table.derived:
                source_sums[column] -= self.response_totals[column]
        result.source_digest, result.target_digest = source_digest.hex(), target_digest.hex()
        result.source_sums, result.target_sums = source_sums, target_sums
        if result.target_rows != result.source_rows:
            result.problems.append(
                f"{result.source_rows - result.target_rows} of {result.source_rows} rows missing"
            )
        elif result.source_digest != result.target_digest:
            result.problems.append("the keys differ")
        for column in numeric:
            a, b = source_sums[column], target_sums[column]
            if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
                result.problems.append(f"sum({column}) is {b!r}, not {a!r}")


class _Digest:
    """A digest of keys, fed range by range (the same ranges on both sides), each range's
    as :func:`~orchestrator.store.backend.key_digest` (the keys sorted: the two databases
    may sort text differently)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, keys: Iterable[tuple[Any, ...]]) -> None:
        self.update(key_digest(key_text(key) for key in keys))

    def update(self, digest: bytes) -> None:
        self._hash.update(digest)

    def hex(self) -> str:
        return self._hash.hexdigest()[:16]


def _key(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in table.key)


async def _any_row(backend: Backend, table: Table) -> bool:
    return await backend.fetchone(f"SELECT 1 AS x FROM {table.name} LIMIT 1") is not None


async def _count(backend: Backend, table: str) -> int:
    row = await backend.fetchone(f"SELECT count(*) AS n FROM {table}")
    return int(row["n"]) if row else 0


async def _pages(
    backend: Backend,
    table: Table,
    columns: Sequence[str],
    start: tuple[Any, ...] | None,
    *,
    plain: bool = False,
) -> Any:
    """The rows of ``table`` in key order, CHUNK at a time (keyset paging: each page
    starts after the last key of the one before), as dicts or, ``plain``, as tuples of
    ``columns``. The next page is read while the caller handles this one (the source's
    reads overlap the target's writes)."""
    key = ", ".join(table.key)
    at = [list(columns).index(column) for column in table.key] if plain else []
    fetch = backend.fetch_rows if plain else backend.fetchall

    def page(after: tuple[Any, ...] | None, inclusive: bool) -> Any:
        where, params = "", []
        if after is not None:
            op = ">=" if inclusive else ">"
            where = f"WHERE ({key}) {op} ({', '.join('?' for _ in table.key)})"
            params = list(after)
        sql = f"SELECT {', '.join(columns)} FROM {table.name} {where} ORDER BY {key} LIMIT {CHUNK}"
        read = fetch(sql, params)
        return asyncio.ensure_future(read) if backend.suspends else read

    pending = page(start, True)
    try:
        while True:
            rows = await pending
            pending = None
            if not rows:
                return
            if len(rows) == CHUNK:
                last = rows[-1]
                pending = page(tuple(last[i] for i in at) if plain else _key(table, last), False)
            yield rows
            if pending is None:
                return
    finally:
        if isinstance(pending, asyncio.Future):
            # Left to finish, not cancelled (a PostgreSQL read cancelled drops the
            # connection); its rows or its failure are no one's.
            with contextlib.suppress(Exception):
                await pending
        elif pending is not None:
            pending.close()


async def _range_end(
    backend: Backend, table: Table, after: tuple[Any, ...] | None
) -> tuple[Any, ...] | None:
    """The VERIFY_CHUNK-th key after ``after`` (from the first with None), or the last key
    when fewer follow; None when none does."""
    key = ", ".join(table.key)
    where, params = "", []
    if after is not None:
        where, params = f"WHERE ({key}) > ({', '.join('?' for _ in table.key)})", list(after)
    select = f"SELECT {key} FROM {table.name} {where}"
    row = await backend.fetchone(
        f"{select} ORDER BY {key} LIMIT 1 OFFSET {VERIFY_CHUNK - 1}", params
    )
    if row is None:
        descending = ", ".join(f"{column} DESC" for column in table.key)
        row = await backend.fetchone(f"{select} ORDER BY {descending} LIMIT 1", params)
    return None if row is None else _key(table, row)


async def _key_pages(
    backend: Backend, table: Table, after: tuple[Any, ...] | None, last: tuple[Any, ...]
) -> Any:
    """The keys of ``table`` after ``after`` up to ``last``, CHUNK at a time."""
    key = ", ".join(table.key)
    while True:
        where, params = key_range_where(table.key, after, last)
        rows = await backend.fetchall(
            f"SELECT {key} FROM {table.name} WHERE {where} ORDER BY {key} LIMIT {CHUNK}", params
        )
        if not rows:
            return
        keys = [_key(table, row) for row in rows]
        yield keys
        if len(keys) < CHUNK:
            return
        after = keys[-1]


async def _fetch_keys(
    backend: Backend,
    table: Table,
    keys: Sequence[tuple[Any, ...]],
    columns: Sequence[str],
    *,
    where: str | None = None,
    raw: bool = False,
) -> list[dict[str, Any]]:
    """The rows of ``table`` with these keys (``columns`` of them, or with ``raw`` these
    expressions of ``t``; optionally only the rows matching ``where``)."""
    if not keys:
        return []
    select = ", ".join(columns if raw else [f"t.{column}" for column in columns])
    return await backend.fetch_by_keys(table.name, table.key, keys, select, where or "")


async def _sums(
    backend: Backend, table: Table, keys: Sequence[tuple[Any, ...]], numeric: list[str]
) -> dict[str, float]:
    """The sums of the ``numeric`` columns over the rows with these keys (in SQL)."""
    if not numeric:
        return {}
    sums = [f"sum(t.{column}) AS {column}" for column in numeric]
    (row,) = await _fetch_keys(backend, table, keys, sums, raw=True)
    return {column: float(row[column] or 0) for column in numeric}


def _values(columns: list[str], rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[row[column] for column in columns] for row in rows]
