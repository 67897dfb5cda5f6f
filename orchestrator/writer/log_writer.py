"""The batched log writer: queues of ready rows, written in few transactions.

Log calls (agent and system logs) are validated and redacted on the caller's
loop (:mod:`orchestrator.core.rows`) and only appended to a queue here; appending
is safe from any thread. A background task writes the queues in batches, one
write transaction each, at least every ``flush_interval`` seconds, as soon
as a batch fills, on :meth:`LogWriter.flush` and on :meth:`LogWriter.stop`.

A row that cannot be written inside a batch (its agent was deleted meanwhile,
a value the driver cannot bind: any error but the database's own) is dropped
alone (the batch is halved until the bad rows stand alone), counted in
:class:`WriterStats` and reported in ``system_logs``; the rest of the batch is
stored. When the database itself fails (disk full, a
lock held past the busy timeout), the rows stay queued, in order, and are
retried; :class:`~orchestrator.core.errors.WriteError` tells the caller of
``flush``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import WriteError
from ..core.ids import utc_now
from ..core.rows import AGENT_LOG_COLUMNS, SYSTEM_LOG_COLUMNS, system_log_row
from ..store.backend import Backend, insert_sql

logger = logging.getLogger("orchestrator")

AGENT_LOG_INSERT = insert_sql("agent_logs", AGENT_LOG_COLUMNS)
SYSTEM_LOG_INSERT = insert_sql("system_logs", SYSTEM_LOG_COLUMNS)

Row = tuple[Any, ...]


@dataclass
class WriterStats:
    """Counters of the batched writer, for monitoring and tests."""

    written: int = 0  # log rows committed
    dropped: int = 0  # log rows rejected by the database inside a batch
    batches: int = 0  # transactions committed by the batch writer
    failures: int = 0  # batch attempts that failed and were retried later


class LogWriter:
    """Queues of log rows and the task that writes them through ``backend``.

    ``lock`` is the lock every user of the backend's connection holds.
    """

    def __init__(
        self,
        backend: Backend,
        lock: asyncio.Lock,
        *,
        flush_interval: float,
        batch_size: int,
        joined_transaction: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.backend = backend
        #: Called (lock held) with the rows written by a batch that joined an open
        #: transaction (a bulk load's), which decides when to commit.
        self.joined_transaction = joined_transaction
        self.lock = lock
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.stats = WriterStats()
        self.agent_logs: deque[Row] = deque()
        self.system_logs: deque[Row] = deque()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failing_since: str | None = None
        self._in_flight = 0  # rows taken from the queues by the batch being written

    @property
    def pending(self) -> int:
        """Rows enqueued and not yet committed (the batch being written included)."""
        return len(self.agent_logs) + len(self.system_logs) + self._in_flight

    def start(self) -> None:
        """Start the background task on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="orchestrator-log-writer")

    async def stop(self) -> None:
        """Stop the task, then write every pending row (raises WriteError if that fails)."""
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            await task  # lets a batch in flight finish
        await self.flush()

    def enqueue(self, queue: deque[Row], row: Row) -> None:
        queue.append(row)  # deque.append is atomic: callers may be on other threads
        if len(queue) >= self.batch_size and self._loop is not None:
            if threading.get_ident() == self._loop_thread:
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._loop is not None
        while not self._closing:
            # A timer instead of asyncio.wait_for: cancelling wait_for can hang on 3.11.
            timer = self._loop.call_later(self.flush_interval, self._wake.set)
            await self._wake.wait()
            timer.cancel()
            self._wake.clear()
            if self._closing:
                return  # stop() writes what is left
            try:
                await self.flush()
                await self._look()
            except WriteError:
                pass  # reported in flush(); rows stay queued for the next round
            except self.backend.database_error as exc:  # the store was swapped out
                if self._failing_since is None:
                    self._failing_since = utc_now()
                    logger.warning("orchestrator: %s", exc)
            except Exception:  # never let the writer task die
                logger.exception("orchestrator: unexpected error in the log writer")

    async def flush(self) -> None:
        """Write every queued row. Raises WriteError (rows kept) if the database fails."""
        async with self.lock:
            while self.agent_logs or self.system_logs:
                agent_rows = _take(self.agent_logs, self.batch_size)
                system_rows = _take(self.system_logs, self.batch_size)
                self._in_flight = len(agent_rows) + len(system_rows)
                try:
                    await self._write_batch(agent_rows, system_rows)
                    self._in_flight = 0
                except BaseException as exc:
                    # Keep the rows, in order, for the next attempt.
                    self.agent_logs.extendleft(reversed(agent_rows))
                    self.system_logs.extendleft(reversed(system_rows))
                    self._in_flight = 0
                    if not isinstance(exc, self.backend.database_error):
                        raise
                    self.stats.failures += 1
                    if self._failing_since is None:
                        self._failing_since = utc_now()
                        logger.warning(
                            "orchestrator: could not write %d log rows to %s: %s "
                            "(kept in memory, retrying)",
                            self.pending,
                            self.backend.location,
                            exc,
                        )
                    raise WriteError(
                        f"could not write log rows to {self.backend.location}: {exc}",
                        self.pending,
                    ) from exc
                if self._failing_since is not None:
                    logger.warning(
                        "orchestrator: log writes to %s work again (failing since %s)",
                        self.backend.location,
                        self._failing_since,
                    )
                    self._failing_since = None

    async def _look(self) -> None:
        """With nothing to write, make sure the store is still the one opened: an SQLite
        file deleted or replaced is let go of within ``flush_interval``, not at the next
        write (its write-ahead log must not linger beside the new file)."""
        async with self.lock:
            if not self.pending and not self.backend.in_transaction:
                await self.backend.check()

    async def _write_batch(self, agent_rows: list[Row], system_rows: list[Row]) -> None:
        backend = self.backend
        dropped: list[str] = []
        await backend.check()
        own = not backend.in_transaction  # inside bulk() the batch joins its transaction
        if own:
            await backend.begin()
        try:
            if agent_rows:
                dropped += await self._insert_rows("agent_logs", AGENT_LOG_COLUMNS, agent_rows)
            if system_rows:
                dropped += await self._insert_rows("system_logs", SYSTEM_LOG_COLUMNS, system_rows)
            if own:
                await backend.commit()
            elif self.joined_transaction is not None:
                await self.joined_transaction(len(agent_rows) + len(system_rows))
        except BaseException:
            if own:
                await backend.rollback()
            raise
        self.stats.batches += 1
        self.stats.written += len(agent_rows) + len(system_rows) - len(dropped)
        if dropped:
            self.stats.dropped += len(dropped)
            logger.error(
                "orchestrator: dropped %d log rows the database refused: %s",
                len(dropped),
                "; ".join(dropped[:5]),
            )
            self.enqueue(
                self.system_logs,
                system_log_row(
                    "ERROR",
                    f"dropped {len(dropped)} log rows the database refused",
                    "orchestrator.writer",
                    {"reasons": dropped[:20]},
                    redact_secrets=False,
                ),
            )

    async def _insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Row]
    ) -> list[str]:
        """Insert rows; a row the database refuses is dropped alone. Returns why, per drop."""
        backend = self.backend
        # Each chunk runs in a savepoint (insert_many leaves the rows before a
        # failing statement inserted); a refused chunk is halved until the bad rows
        # stand alone. The common case is one chunk, one insert_many (SQLite: an
        # INSERT per 100 rows; PostgreSQL: COPY).
        dropped: list[str] = []
        chunks = [rows]
        while chunks:
            chunk = chunks.pop()
            await backend.execute("SAVEPOINT batch_chunk")
            try:
                await backend.insert_many(table, columns, chunk)
                await backend.execute("RELEASE batch_chunk")
            except Exception as exc:
                if not backend.is_row_error(exc):
                    raise  # the database failed, not the rows: keep them all for a retry
                await backend.execute("ROLLBACK TO batch_chunk")
                await backend.execute("RELEASE batch_chunk")
                if len(chunk) == 1:
                    reason = f"{table} {chunk[0][0]!s:.40}: {type(exc).__name__}: {exc}"
                    # The reason is stored too: keep only what UTF-8 can encode.
                    dropped.append(reason.encode("utf-8", "backslashreplace").decode("utf-8"))
                else:
                    middle = len(chunk) // 2
                    chunks += [chunk[middle:], chunk[:middle]]
        return dropped


def _take(queue: deque[Row], limit: int) -> list[Row]:
    """Pop up to ``limit`` rows from the left; safe while other threads append."""
    count = min(len(queue), limit)
    popleft = queue.popleft
    return [popleft() for _ in range(count)]
