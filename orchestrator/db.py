"""The writer: ``DatabaseManager``, the async API that ADWs import.

Two kinds of write, with different promises:

* **Direct writes** (orchestrator agents, agent runs, prompts, status
  changes) are committed before the awaited call returns: when
  ``create_agent`` returns an id, the row is on disk.
* **Log writes** (``log_agent_event``, ``log_system_event`` and the logging
  handler) are validated and redacted on the caller's loop, then only
  enqueued; a background task writes them in batches, one ``BEGIN IMMEDIATE``
  transaction each, at least every ``flush_interval`` seconds, when a batch
  fills, on :meth:`DatabaseManager.flush` and on :meth:`DatabaseManager.close`.
  A row is acknowledged once ``flush()`` (or ``close()``) has returned.

Bad input raises :class:`~orchestrator.errors.InvalidInput` at the call and
writes nothing. A row that fails inside a batch (say, its agent was deleted
meanwhile) is dropped alone, counted and reported; the rest of the batch is
stored. When the disk is full or the file is locked for longer than the busy
timeout, rows stay in memory and are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import traceback
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from pydantic import BaseModel, ValidationError

from . import sqlite as sqlite_backend
from .errors import InvalidInput, WriteError
from .ids import format_timestamp, new_id, parse_timestamp, utc_now
from .models import (
    Agent,
    AgentLog,
    AgentStatus,
    LogLevel,
    LogType,
    OrchestratorAgent,
    OrchestratorStatus,
    Prompt,
    PromptStatus,
    SystemLog,
    Usage,
)
from .pricing import resolve_cost
from .redact import redact, redact_text

logger = logging.getLogger("orchestrator")

M = TypeVar("M", bound=BaseModel)

AGENT_LOG_COLUMNS = (
    "id",
    "agent_id",
    "log_type",
    "message",
    "metadata",
    "created_at",
    "step",
    "duration_ms",
)
SYSTEM_LOG_COLUMNS = ("id", "log_level", "message", "source", "metadata", "created_at")


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


AGENT_LOG_INSERT = _insert_sql("agent_logs", AGENT_LOG_COLUMNS)
SYSTEM_LOG_INSERT = _insert_sql("system_logs", SYSTEM_LOG_COLUMNS)

_LOG_TYPES = frozenset(item.value for item in LogType)
_LOG_LEVELS = frozenset(item.value for item in LogLevel)
_TERMINAL = frozenset(
    {AgentStatus.COMPLETED.value, AgentStatus.FAILED.value, AgentStatus.CANCELLED.value}
)
_HEX = frozenset("0123456789abcdef")


@dataclass
class WriterStats:
    """Counters of the batched writer, for monitoring and tests."""

    written: int = 0  # log rows committed
    dropped: int = 0  # log rows rejected by the database inside a batch
    batches: int = 0  # transactions committed by the batch writer
    failures: int = 0  # batch attempts that failed and were retried later


def _canonical_id(value: Any, field: str) -> str:
    """Validate a UUID given as text or ``uuid.UUID``; return its canonical text."""
    text = str(value) if value is not None and not isinstance(value, (bool, int, float)) else None
    if (
        text is not None
        and len(text) == 36
        and text[8] == text[13] == text[18] == text[23] == "-"
        and set(text.replace("-", "")) <= _HEX
    ):
        return text  # the fast path: already canonical
    try:
        from uuid import UUID

        if text is None:
            raise ValueError
        return str(UUID(text))
    except ValueError:
        raise InvalidInput(field, f"must be a UUID, got {value!r:.80}") from None


_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)  # made once: cheaper per call


def _json_text(value: Any, field: str, redacting: bool) -> str | None:
    """Serialise metadata (a JSON object) for storage, redacted when asked."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"must be JSON-serialisable: {exc}") from None
    if redacting:
        redacted = redact_text(text)
        if redacted is not text and redacted != text:
            try:
                json.loads(redacted)
            except ValueError:  # a pattern cut through JSON syntax: redact structurally
                redacted = _JSON.encode(redact(value))
            text = redacted
    return text


def _text(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return value


def _timestamp(value: Any, field: str) -> str:
    """A datetime or ISO 8601 text, normalised to the project's timestamp format."""
    try:
        if isinstance(value, datetime):
            return format_timestamp(value)
        if isinstance(value, str):
            return format_timestamp(parse_timestamp(value))
    except ValueError:
        pass
    raise InvalidInput(field, f"must be an ISO 8601 timestamp, got {value!r:.80}")


def _duration(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInput(field, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def _validate(model_class: type[M], table: str, /, **values: Any) -> M:
    try:
        return model_class(**values)
    except ValidationError as exc:
        raise InvalidInput.from_validation(table, exc) from None


def _usage(usage: Usage | dict[str, Any] | None, **tokens: Any) -> Usage:
    """Usage from a ``Usage``, an Anthropic usage dict, or token keyword arguments."""
    try:
        if isinstance(usage, Usage):
            return usage
        if isinstance(usage, dict):
            return Usage.from_anthropic(usage)
        if usage is not None:
            raise InvalidInput("prompts.usage", f"must be a Usage or a dict, not {type(usage)}")
        return Usage(**{key: value for key, value in tokens.items() if value is not None})
    except ValidationError as exc:
        raise InvalidInput.from_validation("prompts", exc) from None


class DatabaseManager:
    """Async writer and reader of ``orchestrator.db``; usable as ``async with``.

    ``db_path`` defaults to ``$ORCHESTRATOR_DB`` (or the seed's
    ``$DATABASE_PATH``), else ``./orchestrator.db``. The schema is created or
    upgraded on :meth:`connect`. ``redact_secrets=False`` stores text as given.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        redact_secrets: bool = True,
        flush_interval: float = 1.0,
        batch_size: int = 5000,
    ) -> None:
        if flush_interval <= 0 or flush_interval > 1.0:
            raise InvalidInput("flush_interval", "must be > 0 and at most 1 second")
        self.db_path = Path(db_path) if db_path is not None else sqlite_backend.default_db_path()
        self.redact_secrets = redact_secrets
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.stats = WriterStats()
        self._conn: aiosqlite.Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._agent_logs: deque[tuple[Any, ...]] = deque()
        self._system_logs: deque[tuple[Any, ...]] = deque()
        self._known_agents: set[str] = set()
        self._known_orchestrators: set[str] = set()
        self._failing_since: str | None = None
        self._closing = False
        self._bulk_writes: int | None = None  # writes since the last commit, in bulk()
        self._bulk_commit_every = 10_000

    # -- lifecycle --------------------------------------------------------------

    async def connect(self) -> None:
        """Open the database, creating or upgrading its schema first."""
        if self._conn is not None:
            return
        # Migrate synchronously, on a connection of its own, before the writer starts.
        await asyncio.to_thread(lambda: sqlite_backend.connect(self.db_path).close())
        conn = await aiosqlite.connect(
            os.fspath(self.db_path), timeout=sqlite_backend.BUSY_TIMEOUT_S, isolation_level=None
        )
        try:
            for pragma in sqlite_backend.CONNECTION_PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            await conn.close()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._flusher = asyncio.create_task(self._flush_loop(), name="orchestrator-log-writer")

    async def close(self) -> None:
        """Write every pending log row, then close. Raises WriteError if rows remain unwritten."""
        if self._conn is None:
            return
        flusher, self._flusher = self._flusher, None
        if flusher is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            await flusher  # lets a batch in flight finish
        try:
            await self._write_pending()
        finally:
            conn, self._conn = self._conn, None
            await conn.close()

    async def __aenter__(self) -> DatabaseManager:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("DatabaseManager is not connected: call `await db.connect()` first")
        return self._conn

    # -- the batched log writer --------------------------------------------------

    @property
    def pending(self) -> int:
        """Log rows enqueued and not yet committed."""
        return len(self._agent_logs) + len(self._system_logs)

    def _enqueue(self, queue: deque[tuple[Any, ...]], row: tuple[Any, ...]) -> None:
        queue.append(row)  # deque.append is atomic: callers may be on other threads
        if len(queue) >= self.batch_size and self._wake is not None:
            if threading.get_ident() == self._loop_thread:
                self._wake.set()
            elif self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    async def flush(self) -> None:
        """Commit every log row enqueued so far. Raises WriteError if the disk refuses."""
        self.connection  # noqa: B018 - raises when not connected
        await self._write_pending()

    async def _flush_loop(self) -> None:
        assert self._wake is not None and self._loop is not None
        while not self._closing:
            # A timer instead of asyncio.wait_for: cancelling wait_for can hang on 3.11.
            timer = self._loop.call_later(self.flush_interval, self._wake.set)
            await self._wake.wait()
            timer.cancel()
            self._wake.clear()
            if self._closing:
                return  # close() writes what is left
            try:
                await self._write_pending()
            except WriteError:
                pass  # reported in _write_pending; rows stay queued for the next round
            except Exception:  # never let the writer task die
                logger.exception("orchestrator: unexpected error in the log writer")

    async def _write_pending(self) -> None:
        assert self._lock is not None
        async with self._lock:
            while self._agent_logs or self._system_logs:
                agent_rows = _take(self._agent_logs, self.batch_size)
                system_rows = _take(self._system_logs, self.batch_size)
                try:
                    await self._write_batch(agent_rows, system_rows)
                except BaseException as exc:
                    # Keep the rows, in order, for the next attempt.
                    self._agent_logs.extendleft(reversed(agent_rows))
                    self._system_logs.extendleft(reversed(system_rows))
                    if not isinstance(exc, sqlite3.Error):
                        raise
                    self.stats.failures += 1
                    if self._failing_since is None:
                        self._failing_since = utc_now()
                        logger.warning(
                            "orchestrator: could not write %d log rows to %s: %s "
                            "(kept in memory, retrying)",
                            self.pending,
                            self.db_path,
                            exc,
                        )
                    raise WriteError(
                        f"could not write log rows to {self.db_path}: {exc}", self.pending
                    ) from exc
                if self._failing_since is not None:
                    logger.warning(
                        "orchestrator: log writes to %s work again (failing since %s)",
                        self.db_path,
                        self._failing_since,
                    )
                    self._failing_since = None

    async def _write_batch(
        self, agent_rows: list[tuple[Any, ...]], system_rows: list[tuple[Any, ...]]
    ) -> None:
        conn = self.connection
        dropped: list[str] = []
        own = not conn.in_transaction  # inside bulk() the batch joins its transaction
        if own:
            await conn.execute(sqlite_backend.BEGIN_WRITE)
        try:
            if agent_rows:
                dropped += await self._insert_rows(AGENT_LOG_INSERT, agent_rows, "agent_logs")
            if system_rows:
                dropped += await self._insert_rows(SYSTEM_LOG_INSERT, system_rows, "system_logs")
            if own:
                await conn.execute("COMMIT")
        except BaseException:
            if own and conn.in_transaction:
                await conn.execute("ROLLBACK")
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
            self._enqueue(
                self._system_logs,
                (
                    new_id(),
                    "ERROR",
                    f"dropped {len(dropped)} log rows the database refused",
                    "orchestrator.writer",
                    json.dumps({"reasons": dropped[:20]}),
                    utc_now(),
                ),
            )

    async def _insert_rows(self, sql: str, rows: list[tuple[Any, ...]], table: str) -> list[str]:
        """Insert rows; a row the database refuses is dropped alone. Returns why, per drop."""
        conn = self.connection
        # Each chunk runs in a savepoint (executemany leaves the rows before a
        # failing one inserted); a refused chunk is halved until the bad rows
        # stand alone. The common case is one chunk, one executemany.
        dropped: list[str] = []
        chunks = [rows]
        while chunks:
            chunk = chunks.pop()
            await conn.execute("SAVEPOINT batch_chunk")
            try:
                await conn.executemany(sql, chunk)
                await conn.execute("RELEASE batch_chunk")
            except sqlite3.IntegrityError as exc:
                await conn.execute("ROLLBACK TO batch_chunk")
                await conn.execute("RELEASE batch_chunk")
                if len(chunk) == 1:
                    dropped.append(f"{table} {chunk[0][0]}: {exc}")
                else:
                    middle = len(chunk) // 2
                    chunks += [chunk[middle:], chunk[:middle]]
        return dropped

    # -- direct writes --------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement of the caller's (tables this class has no method for);
        committed on return, or with the enclosing :meth:`bulk`. Returns the rows changed."""
        return await self._execute(sql, params)

    async def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement (its own transaction); return the rows it changed."""
        assert self._lock is not None
        async with self._lock:
            cursor = await self.connection.execute(sql, params)
            if self._bulk_writes is not None:
                self._bulk_writes += 1
                if self._bulk_writes >= self._bulk_commit_every:
                    await self.connection.execute("COMMIT")
                    await self.connection.execute(sqlite_backend.BEGIN_WRITE)
                    self._bulk_writes = 0
            return cursor.rowcount

    @contextlib.asynccontextmanager
    async def bulk(self, commit_every: int = 10_000) -> AsyncIterator[DatabaseManager]:
        """``async with db.bulk():`` groups many writes into few transactions.

        For imports and demo data: direct writes inside the block are committed
        every ``commit_every`` statements and at its end instead of one by one,
        so a crash loses at most the uncommitted part. On an exception the
        uncommitted part is rolled back and the exception propagates.
        """
        assert self._lock is not None
        if self._bulk_writes is not None:
            yield self  # already in bulk mode
            return
        async with self._lock:
            await self.connection.execute(sqlite_backend.BEGIN_WRITE)
            self._bulk_writes, self._bulk_commit_every = 0, commit_every
        try:
            yield self
            await self._write_pending()
            async with self._lock:
                await self.connection.execute("COMMIT")
        except BaseException:
            async with self._lock:
                if self.connection.in_transaction:
                    await self.connection.execute("ROLLBACK")
            raise
        finally:
            self._bulk_writes = None

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self.connection.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self.connection.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _require(self, table: str, row_id: str, field: str) -> None:
        if await self._fetchone(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)) is None:
            raise InvalidInput(field, f"no row in {table} with id {row_id!r}")

    async def _insert_model(self, table: str, row: BaseModel) -> None:
        values = row.model_dump(exclude_none=True)
        if "metadata" in values:
            values["metadata"] = json.dumps(values["metadata"], ensure_ascii=False)
        columns = list(values)
        try:
            await self._execute(_insert_sql(table, columns), [values[c] for c in columns])
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) and table == "orchestrator_agents":
                raise InvalidInput(
                    f"{table}.name", f"{values.get('name')!r} already exists"
                ) from None
            raise InvalidInput(table, str(exc)) from None

    # -- orchestrator agents ----------------------------------------------------------

    async def create_orchestrator_agent(
        self,
        name: str,
        description: str | None = None,
        status: OrchestratorStatus | str = OrchestratorStatus.ACTIVE,
    ) -> str:
        """Create an orchestrator agent (a workflow type); return its id.

        Raises InvalidInput if the name is taken or a value is invalid.
        """
        now = utc_now()
        row = _validate(
            OrchestratorAgent,
            "orchestrator_agents",
            id=new_id(),
            name=name,
            description=self._redacted(description),
            status=status,
            created_at=now,
            updated_at=now,
        )
        await self._insert_model("orchestrator_agents", row)
        return str(row.id)

    async def ensure_orchestrator_agent(self, name: str, description: str | None = None) -> str:
        """The id of the orchestrator agent called ``name``, created if missing."""
        _validate(
            OrchestratorAgent,
            "orchestrator_agents",
            id=new_id(),
            name=name,
            description=description,
        )
        now = utc_now()
        await self._execute(
            "INSERT INTO orchestrator_agents (id, name, description, status, created_at, "
            "updated_at) VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT(name) DO NOTHING",
            (new_id(), name, description, now, now),
        )
        row = await self._fetchone("SELECT id FROM orchestrator_agents WHERE name = ?", (name,))
        assert row is not None
        return str(row["id"])

    async def get_orchestrator_agent(self, orchestrator_agent_id: str) -> OrchestratorAgent | None:
        row_id = _canonical_id(orchestrator_agent_id, "orchestrator_agents.id")
        row = await self._fetchone("SELECT * FROM orchestrator_agents WHERE id = ?", (row_id,))
        return None if row is None else OrchestratorAgent.model_validate(dict(row))

    async def get_orchestrator_agent_by_name(self, name: str) -> OrchestratorAgent | None:
        row = await self._fetchone("SELECT * FROM orchestrator_agents WHERE name = ?", (name,))
        return None if row is None else OrchestratorAgent.model_validate(dict(row))

    async def list_orchestrator_agents(
        self, status: OrchestratorStatus | str | None = None
    ) -> list[OrchestratorAgent]:
        """Orchestrator agents by name, optionally only those with ``status``."""
        if status is None:
            rows = await self._fetchall("SELECT * FROM orchestrator_agents ORDER BY name")
        else:
            value = _validate(
                OrchestratorAgent, "orchestrator_agents", id=new_id(), name="x", status=status
            ).status
            rows = await self._fetchall(
                "SELECT * FROM orchestrator_agents WHERE status = ? ORDER BY name", (value,)
            )
        return [OrchestratorAgent.model_validate(dict(row)) for row in rows]

    async def update_orchestrator_agent_status(
        self, orchestrator_agent_id: str, status: OrchestratorStatus | str
    ) -> None:
        row_id = _canonical_id(orchestrator_agent_id, "orchestrator_agents.id")
        value = _validate(
            OrchestratorAgent, "orchestrator_agents", id=row_id, name="x", status=status
        ).status
        changed = await self._execute(
            "UPDATE orchestrator_agents SET status = ?, updated_at = ? WHERE id = ?",
            (value, utc_now(), row_id),
        )
        if not changed:
            raise InvalidInput("orchestrator_agents.id", f"no orchestrator agent {row_id!r}")

    # -- agent runs -------------------------------------------------------------------

    async def create_agent(
        self,
        orchestrator_agent_id: str,
        session_id: str | None = None,
        *,
        name: str | None = None,
        status: AgentStatus | str = AgentStatus.PENDING,
        parent_agent_id: str | None = None,
        started_at: str | datetime | None = None,
        created_at: str | datetime | None = None,
    ) -> str:
        """Create an agent run of an orchestrator agent; return its id.

        A run created ``running`` gets ``started_at`` now unless given.
        """
        now = utc_now()
        row = _validate(
            Agent,
            "agents",
            id=new_id(),
            orchestrator_agent_id=orchestrator_agent_id,
            session_id=session_id,
            name=name,
            status=status,
            parent_agent_id=parent_agent_id,
            created_at=now if created_at is None else _timestamp(created_at, "agents.created_at"),
            started_at=(
                _timestamp(started_at, "agents.started_at")
                if started_at is not None
                else (now if status in (AgentStatus.RUNNING, "running") else None)
            ),
        )
        if row.orchestrator_agent_id not in self._known_orchestrators:
            await self._require(
                "orchestrator_agents", row.orchestrator_agent_id, "agents.orchestrator_agent_id"
            )
            self._known_orchestrators.add(row.orchestrator_agent_id)
        if row.parent_agent_id is not None:
            await self._require("agents", str(row.parent_agent_id), "agents.parent_agent_id")
        await self._insert_model("agents", row)
        self._known_agents.add(str(row.id))
        return str(row.id)

    async def get_agent(self, agent_id: str) -> Agent | None:
        row_id = _canonical_id(agent_id, "agents.id")
        row = await self._fetchone("SELECT * FROM agents WHERE id = ?", (row_id,))
        return None if row is None else Agent.model_validate(dict(row))

    async def list_agents(
        self,
        orchestrator_agent_id: str | None = None,
        *,
        session_id: str | None = None,
        status: AgentStatus | str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        """Agent runs, newest first, filtered by orchestrator agent, session or status."""
        where, params = [], []
        if orchestrator_agent_id is not None:
            where.append("orchestrator_agent_id = ?")
            params.append(_canonical_id(orchestrator_agent_id, "agents.orchestrator_agent_id"))
        if session_id is not None:
            where.append("session_id = ?")
            params.append(session_id)
        if status is not None:
            where.append("status = ?")
            params.append(AgentStatus(status).value)
        sql = "SELECT * FROM agents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._fetchall(sql + " ORDER BY created_at DESC LIMIT ?", (*params, limit))
        return [Agent.model_validate(dict(row)) for row in rows]

    async def update_agent_status(
        self,
        agent_id: str,
        status: AgentStatus | str,
        error: str | None = None,
        *,
        at: str | datetime | None = None,
    ) -> None:
        """Move a run to ``status``; ``running`` stamps ``started_at``, an end state
        stamps ``completed_at`` and ``duration_ms``."""
        row_id = _canonical_id(agent_id, "agents.id")
        try:
            value = AgentStatus(status).value
        except ValueError:
            raise InvalidInput(
                "agents.status",
                f"must be one of {sorted(s.value for s in AgentStatus)}, got {status!r}",
            ) from None
        error = _text(error, "agents.error", required=False)
        if error is not None and self.redact_secrets:
            error = redact_text(error)
        now = utc_now() if at is None else _timestamp(at, "agents.completed_at")
        if value == AgentStatus.RUNNING.value:
            sql = "UPDATE agents SET status = ?, started_at = coalesce(started_at, ?) WHERE id = ?"
            params: tuple[Any, ...] = (value, now, row_id)
        elif value in _TERMINAL:
            row = await self._fetchone("SELECT started_at FROM agents WHERE id = ?", (row_id,))
            duration = None
            if row is not None and row["started_at"]:
                elapsed = parse_timestamp(now) - parse_timestamp(row["started_at"])
                duration = max(0.0, elapsed.total_seconds() * 1000)
            sql = (
                "UPDATE agents SET status = ?, completed_at = ?, error = coalesce(?, error), "
                "duration_ms = ? WHERE id = ?"
            )
            params = (value, now, error, duration, row_id)
        else:
            sql = "UPDATE agents SET status = ? WHERE id = ?"
            params = (value, row_id)
        if not await self._execute(sql, params):
            raise InvalidInput("agents.id", f"no agent run {row_id!r}")

    # -- prompts ----------------------------------------------------------------------

    async def create_prompt(self, agent_id: str, content: str, *, model: str | None = None) -> str:
        """Record a prompt about to be sent (status ``pending``); return its id.

        Complete it with :meth:`complete_prompt` or :meth:`fail_prompt`.
        """
        row = _validate(
            Prompt,
            "prompts",
            id=new_id(),
            agent_id=agent_id,
            content=self._redacted(content),
            model=model,
            created_at=utc_now(),
        )
        await self._require("agents", str(row.agent_id), "prompts.agent_id")
        await self._insert_model("prompts", row)
        return str(row.id)

    async def complete_prompt(
        self,
        prompt_id: str,
        response: str | None = None,
        *,
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        tokens_cache_read: int | None = None,
        tokens_cache_write: int | None = None,
        usage: Usage | dict[str, Any] | None = None,
        cost_usd: float | None = None,
        model: str | None = None,
        duration_ms: float | None = None,
    ) -> Prompt:
        """Store a prompt's response, usage and cost; return the stored prompt.

        ``cost_usd`` is stored as reported when given; otherwise the cost is
        computed from ``model`` and usage, or flagged unpriced.
        """
        return await self._finish_prompt(
            prompt_id,
            PromptStatus.COMPLETED,
            response=response,
            error=None,
            usage=_usage(
                usage,
                tokens_input=tokens_input,
                tokens_output=tokens_output,
                tokens_cache_read=tokens_cache_read,
                tokens_cache_write=tokens_cache_write,
            ),
            cost_usd=cost_usd,
            model=model,
            duration_ms=duration_ms,
        )

    async def fail_prompt(
        self,
        prompt_id: str,
        error: str,
        *,
        usage: Usage | dict[str, Any] | None = None,
        cost_usd: float | None = None,
        model: str | None = None,
        duration_ms: float | None = None,
        **tokens: int,
    ) -> Prompt:
        """Mark a prompt failed with ``error``; usage a failed call still billed is kept."""
        return await self._finish_prompt(
            prompt_id,
            PromptStatus.FAILED,
            response=None,
            error=_text(error, "prompts.error"),
            usage=_usage(usage, **tokens),
            cost_usd=cost_usd,
            model=model,
            duration_ms=duration_ms,
        )

    async def _finish_prompt(
        self,
        prompt_id: str,
        status: PromptStatus,
        *,
        response: str | None,
        error: str | None,
        usage: Usage,
        cost_usd: float | None,
        model: str | None,
        duration_ms: float | None,
    ) -> Prompt:
        row_id = _canonical_id(prompt_id, "prompts.id")
        current = await self.get_prompt(row_id)
        if current is None:
            raise InvalidInput("prompts.id", f"no prompt {row_id!r}")
        model = model if model is not None else current.model
        prompt = self._priced_prompt(
            id=row_id,
            agent_id=current.agent_id,
            content=current.content,
            response=response,
            status=status,
            model=model,
            usage=usage,
            cost_usd=cost_usd,
            error=error,
            duration_ms=duration_ms,
            created_at=current.created_at,
            completed_at=utc_now(),
        )
        values = prompt.model_dump(exclude={"id", "agent_id", "content", "created_at"})
        columns = list(values)
        await self._execute(
            f"UPDATE prompts SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            [values[c] for c in columns] + [row_id],
        )
        return prompt

    def _priced_prompt(
        self,
        *,
        usage: Usage,
        cost_usd: float | None,
        model: str | None,
        response: str | None,
        error: str | None,
        **values: Any,
    ) -> Prompt:
        if cost_usd is not None:
            cost_usd = _duration(cost_usd, "prompts.cost_usd")
        cost = resolve_cost(model, reported_usd=cost_usd, **usage.model_dump())
        return _validate(
            Prompt,
            "prompts",
            model=model,
            response=self._redacted(response),
            error=self._redacted(error),
            **usage.model_dump(),
            cost_usd=cost.cost_usd,
            cost_source=cost.source,
            cost_computed_usd=cost.computed_usd,
            priced_with=cost.priced_with,
            cache_savings_usd=cost.cache_savings_usd,
            **values,
        )

    async def record_prompt(
        self,
        agent_id: str,
        content: str,
        response: str | None = None,
        *,
        model: str | None = None,
        usage: Usage | dict[str, Any] | None = None,
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        tokens_cache_read: int | None = None,
        tokens_cache_write: int | None = None,
        cost_usd: float | None = None,
        duration_ms: float | None = None,
        status: PromptStatus | str = PromptStatus.COMPLETED,
        error: str | None = None,
        created_at: str | None = None,
        completed_at: str | None = None,
        prompt_id: str | None = None,
    ) -> Prompt:
        """Record a finished model call in one write; return the stored prompt.

        Raises InvalidInput (nothing written) for a bad value or an unknown agent.
        """
        prompt = self.prompt_row(
            agent_id,
            content,
            response,
            model=model,
            usage=usage,
            tokens_input=tokens_input,
            tokens_output=tokens_output,
            tokens_cache_read=tokens_cache_read,
            tokens_cache_write=tokens_cache_write,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            status=status,
            error=error,
            created_at=created_at,
            completed_at=completed_at,
            prompt_id=prompt_id,
        )
        await self._require_agents({prompt.agent_id}, "prompts.agent_id")
        await self._insert_model("prompts", prompt)
        return prompt

    async def record_prompts(self, prompts: Sequence[dict[str, Any]]) -> list[Prompt]:
        """Record many finished model calls in one statement (imports, demo data).

        Each dict holds :meth:`record_prompt`'s arguments. All are validated
        and priced first: one bad prompt raises InvalidInput and none is written.
        """
        rows = [self.prompt_row(**item) for item in prompts]
        if not rows:
            return rows
        await self._require_agents({row.agent_id for row in rows}, "prompts.agent_id")
        columns = list(Prompt.model_fields)
        assert self._lock is not None
        async with self._lock:
            own = not self.connection.in_transaction
            if own:
                await self.connection.execute(sqlite_backend.BEGIN_WRITE)
            try:
                await self.connection.executemany(
                    _insert_sql("prompts", columns),
                    [[getattr(row, column) for column in columns] for row in rows],
                )
                if own:
                    await self.connection.execute("COMMIT")
            except BaseException as exc:
                if own and self.connection.in_transaction:
                    await self.connection.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise InvalidInput("prompts", str(exc)) from None
                raise
        return rows

    async def _require_agents(self, agent_ids: set[str], field: str) -> None:
        for agent_id in agent_ids - self._known_agents:
            await self._require("agents", agent_id, field)
            self._known_agents.add(agent_id)

    def prompt_row(
        self,
        agent_id: str,
        content: str,
        response: str | None = None,
        *,
        model: str | None = None,
        usage: Usage | dict[str, Any] | None = None,
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        tokens_cache_read: int | None = None,
        tokens_cache_write: int | None = None,
        cost_usd: float | None = None,
        duration_ms: float | None = None,
        status: PromptStatus | str = PromptStatus.COMPLETED,
        error: str | None = None,
        created_at: str | datetime | None = None,
        completed_at: str | datetime | None = None,
        prompt_id: str | None = None,
    ) -> Prompt:
        """Validate, redact and price one finished model call (nothing is written)."""
        now = utc_now()
        prompt = self._priced_prompt(
            id=prompt_id or new_id(),
            agent_id=agent_id,
            content=self._redacted(content),
            response=response,
            status=status,
            model=model,
            usage=_usage(
                usage,
                tokens_input=tokens_input,
                tokens_output=tokens_output,
                tokens_cache_read=tokens_cache_read,
                tokens_cache_write=tokens_cache_write,
            ),
            cost_usd=cost_usd,
            error=error,
            duration_ms=duration_ms,
            created_at=now if created_at is None else _timestamp(created_at, "prompts.created_at"),
            completed_at=(
                _timestamp(completed_at, "prompts.completed_at")
                if completed_at is not None
                else (now if status != PromptStatus.PENDING else None)
            ),
        )
        return prompt

    async def get_prompt(self, prompt_id: str) -> Prompt | None:
        row_id = _canonical_id(prompt_id, "prompts.id")
        row = await self._fetchone("SELECT * FROM prompts WHERE id = ?", (row_id,))
        return None if row is None else Prompt.model_validate(dict(row))

    async def list_prompts(self, agent_id: str, limit: int = 1000) -> list[Prompt]:
        """The prompts of one run, oldest first."""
        row_id = _canonical_id(agent_id, "prompts.agent_id")
        rows = await self._fetchall(
            "SELECT * FROM prompts WHERE agent_id = ? ORDER BY created_at, id LIMIT ?",
            (row_id, limit),
        )
        return [Prompt.model_validate(dict(row)) for row in rows]

    # -- logs ---------------------------------------------------------------------------

    def _redacted(self, value: str | None) -> str | None:
        return redact_text(value) if self.redact_secrets and isinstance(value, str) else value

    def agent_log_row(
        self,
        agent_id: Any,
        log_type: Any,
        message: Any,
        metadata: Any = None,
        step: Any = None,
        duration_ms: Any = None,
        created_at: Any = None,
    ) -> tuple[Any, ...]:
        """Validate and redact one agent log event into a row; raise InvalidInput if bad."""
        if agent_id not in self._known_agents:
            agent_id = _canonical_id(agent_id, "agent_logs.agent_id")
        log_type = getattr(log_type, "value", log_type)
        if log_type not in _LOG_TYPES:
            raise InvalidInput(
                "agent_logs.log_type", f"must be one of {sorted(_LOG_TYPES)}, got {log_type!r:.80}"
            )
        if not isinstance(message, str):
            raise InvalidInput(
                "agent_logs.message", f"must be a string, not {type(message).__name__}"
            )
        if self.redact_secrets:
            message = redact_text(message)
        if step is not None and not isinstance(step, str):
            raise InvalidInput("agent_logs.step", f"must be a string, not {type(step).__name__}")
        return (
            new_id(),
            agent_id,
            log_type,
            message,
            _json_text(metadata, "agent_logs.metadata", self.redact_secrets),
            utc_now() if created_at is None else _timestamp(created_at, "agent_logs.created_at"),
            step,
            _duration(duration_ms, "agent_logs.duration_ms"),
        )

    def enqueue_agent_log(self, row: tuple[Any, ...]) -> str:
        """Queue a row from :meth:`agent_log_row` whose agent is known to exist."""
        self._enqueue(self._agent_logs, row)
        return str(row[0])

    async def log_agent_event(
        self,
        agent_id: str,
        log_type: LogType | str,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        step: str | None = None,
        duration_ms: float | None = None,
        created_at: str | datetime | None = None,
    ) -> str:
        """Queue an agent step/event log; return its id. Written within ``flush_interval``.

        ``created_at`` defaults to now (pass it when importing past events).
        Raises InvalidInput (nothing queued) for a bad value or an unknown agent.
        """
        row = self.agent_log_row(
            agent_id, log_type, message, metadata, step, duration_ms, created_at
        )
        if row[1] not in self._known_agents:
            await self._require("agents", row[1], "agent_logs.agent_id")
            self._known_agents.add(row[1])
        return self.enqueue_agent_log(row)

    def system_log_row(
        self,
        log_level: Any,
        message: Any,
        source: Any = None,
        metadata: Any = None,
        created_at: Any = None,
    ) -> tuple[Any, ...]:
        """Validate and redact one system log event into a row; raise InvalidInput if bad."""
        level = getattr(log_level, "value", log_level)
        level = level.upper() if isinstance(level, str) else level
        if level not in _LOG_LEVELS:
            raise InvalidInput(
                "system_logs.log_level",
                f"must be one of {sorted(_LOG_LEVELS)}, got {log_level!r:.80}",
            )
        if not isinstance(message, str):
            raise InvalidInput(
                "system_logs.message", f"must be a string, not {type(message).__name__}"
            )
        if source is not None and not isinstance(source, str):
            raise InvalidInput(
                "system_logs.source", f"must be a string, not {type(source).__name__}"
            )
        if self.redact_secrets:
            message = redact_text(message)
        return (
            new_id(),
            level,
            message,
            source,
            _json_text(metadata, "system_logs.metadata", self.redact_secrets),
            utc_now() if created_at is None else _timestamp(created_at, "system_logs.created_at"),
        )

    def enqueue_system_log(self, row: tuple[Any, ...]) -> str:
        self._enqueue(self._system_logs, row)
        return str(row[0])

    async def log_system_event(
        self,
        log_level: LogLevel | str,
        message: str,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        created_at: str | datetime | None = None,
    ) -> str:
        """Queue a system log; return its id. Raises InvalidInput for a bad value."""
        return self.enqueue_system_log(
            self.system_log_row(log_level, message, source, metadata, created_at)
        )

    create_system_log = log_system_event

    async def get_agent_logs(
        self, agent_id: str, log_type: LogType | str | None = None, limit: int = 1000
    ) -> list[AgentLog]:
        """One run's logs, oldest first (what this manager has queued is written first)."""
        await self._write_pending()
        row_id = _canonical_id(agent_id, "agent_logs.agent_id")
        sql, params = "SELECT * FROM agent_logs WHERE agent_id = ?", [row_id]
        if log_type is not None:
            sql += " AND log_type = ?"
            params.append(getattr(log_type, "value", log_type))
        rows = await self._fetchall(sql + " ORDER BY created_at, id LIMIT ?", (*params, limit))
        return [AgentLog.model_validate(dict(row)) for row in rows]

    async def get_system_logs(
        self,
        log_level: LogLevel | str | None = None,
        source: str | None = None,
        limit: int = 1000,
    ) -> list[SystemLog]:
        """System logs, newest first (what this manager has queued is written first)."""
        await self._write_pending()
        where, params = [], []
        if log_level is not None:
            where.append("log_level = ?")
            params.append(str(getattr(log_level, "value", log_level)).upper())
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = "SELECT * FROM system_logs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = await self._fetchall(
            sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit)
        )
        return [SystemLog.model_validate(dict(row)) for row in rows]

    async def get_agent_log(self, log_id: str) -> AgentLog | None:
        """One agent log row by id (what this manager has queued is written first)."""
        await self._write_pending()
        row_id = _canonical_id(log_id, "agent_logs.id")
        row = await self._fetchone("SELECT * FROM agent_logs WHERE id = ?", (row_id,))
        return None if row is None else AgentLog.model_validate(dict(row))

    async def get_system_log(self, log_id: str) -> SystemLog | None:
        """One system log row by id (what this manager has queued is written first)."""
        await self._write_pending()
        row_id = _canonical_id(log_id, "system_logs.id")
        row = await self._fetchone("SELECT * FROM system_logs WHERE id = ?", (row_id,))
        return None if row is None else SystemLog.model_validate(dict(row))

    async def update_prompt(
        self,
        prompt_id: str,
        response: str | None = None,
        *,
        status: PromptStatus | str = PromptStatus.COMPLETED,
        error: str | None = None,
        **usage_and_cost: Any,
    ) -> Prompt:
        """Finish a pending prompt: :meth:`complete_prompt`, or :meth:`fail_prompt` when
        ``status`` is ``failed``."""
        if status in (PromptStatus.FAILED, "failed"):
            return await self.fail_prompt(prompt_id, error or "failed", **usage_and_cost)
        if status not in (PromptStatus.COMPLETED, "completed"):
            raise InvalidInput("prompts.status", f"must be completed or failed, got {status!r}")
        return await self.complete_prompt(prompt_id, response, **usage_and_cost)

    # The seed's naming, for every table: create_* / get_* / list_*.
    create_agent_log = log_agent_event
    list_agent_logs = get_agent_logs
    list_system_logs = get_system_logs

    # -- the run API ----------------------------------------------------------------------

    def agent_run(
        self,
        orchestrator: str,
        *,
        session_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        parent_agent_id: str | None = None,
    ) -> Any:
        """``async with db.agent_run("plan_build", session_id=...) as run:`` records one run.

        The orchestrator agent is created on first use. The run is ``running``
        inside the block, ``completed`` after it, ``failed`` (exception logged,
        then re-raised) or ``cancelled`` if it is interrupted.
        """
        from .runs import AgentRunContext

        return AgentRunContext(
            self,
            orchestrator,
            session_id=session_id,
            name=name,
            description=description,
            parent_agent_id=parent_agent_id,
        )


def _take(queue: deque[tuple[Any, ...]], limit: int) -> list[tuple[Any, ...]]:
    """Pop up to ``limit`` rows from the left; safe while other threads append."""
    count = min(len(queue), limit)
    popleft = queue.popleft
    return [popleft() for _ in range(count)]


def format_exception(exc: BaseException) -> str:
    """``Type: message`` for an agent's ``error`` column."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def exception_metadata(exc: BaseException) -> dict[str, Any]:
    return {
        "exception": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


__all__ = ["DatabaseManager", "WriterStats"]
