"""The writer: ``DatabaseManager``, the async API that ADWs import.

Two kinds of write, with different promises:

* **Direct writes** (orchestrator agents, agent runs, prompts, status
  changes) are committed before the awaited call returns: when
  ``create_agent`` returns an id, the row is on disk.
* **Log writes** (``log_agent_event``, ``log_system_event`` and the logging
  handler) are validated and redacted on the caller's loop, then only
  enqueued; the batched :class:`~orchestrator.writer.log_writer.LogWriter` writes them
  at least every ``flush_interval`` seconds. A row is acknowledged once
  :meth:`DatabaseManager.flush` (or ``close()``) has returned.

Bad input raises :class:`~orchestrator.core.errors.InvalidInput` at the call and
writes nothing. Rows are built by :mod:`orchestrator.core.rows`; the database is
reached through a :class:`~orchestrator.store.backend.Backend` (SQLite, or PostgreSQL for a
``postgresql://`` URL).
This module is the table methods: create / get / list / update per table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..core import rows
from ..core.errors import DatabaseTimeout, InvalidInput
from ..core.ids import new_id, utc_now
from ..core.models import (
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
from ..core.rows import PromptFields, canonical_id, validate
from ..store.backend import Backend, Params, insert_sql
from ..store.targets import backend_for, default_target, is_url
from . import budgets
from .log_writer import LogWriter, WriterStats
from .runs import AgentRunContext

logger = logging.getLogger("orchestrator")

BUDGETS_REFRESH_S = 5.0  # how stale the writer's copy of the budgets may be

#: Seconds an awaited call waits for the database before DatabaseTimeout, when not given
#: as ``DatabaseManager(timeout=...)`` (else the store's own default, ``Backend.timeout``).
TIMEOUT_ENV = "ORCHESTRATOR_TIMEOUT"


def _timeout(value: float | None) -> float | None:
    """``value``, else ``$ORCHESTRATOR_TIMEOUT``, else None (the store's default)."""
    field = "timeout"
    if value is None:
        text = os.environ.get(TIMEOUT_ENV)
        if not text:
            return None
        try:
            value, field = float(text), TIMEOUT_ENV
        except ValueError:
            raise InvalidInput(TIMEOUT_ENV, f"must be a number of seconds, got {text!r}") from None
    if not value > 0:  # NaN too
        raise InvalidInput(field, f"must be more than 0 seconds, got {value!r}")
    return float(value)


if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @contextlib.asynccontextmanager
    async def _deadline(seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            yield
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            handle.cancel()


def _select(table: str, columns: Sequence[str]) -> str:
    # Named columns, not *: a PostgreSQL table also has its full-text ``search`` column.
    return f"SELECT {', '.join(columns)} FROM {table}"


_SELECT_ORCHESTRATOR_AGENTS = _select("orchestrator_agents", rows.ORCHESTRATOR_AGENT_COLUMNS)
_SELECT_AGENTS = _select("agents", rows.AGENT_COLUMNS)
_SELECT_PROMPTS = _select("prompts", rows.PROMPT_COLUMNS)
_SELECT_AGENT_LOGS = _select("agent_logs", rows.AGENT_LOG_COLUMNS)
_SELECT_SYSTEM_LOGS = _select("system_logs", rows.SYSTEM_LOG_COLUMNS)


class DatabaseManager:
    """Async writer and reader of ``orchestrator.db``; usable as ``async with``.

    ``db_path`` (a file, or a ``postgresql://`` URL) defaults to ``$ORCHESTRATOR_DB``
    (or the seed's ``$DATABASE_PATH``), else ``./orchestrator.db``. The schema is
    created or upgraded on :meth:`connect`. ``redact_secrets=False`` stores text as given.

    ``timeout`` (default ``$ORCHESTRATOR_TIMEOUT``, else 30 s on PostgreSQL and none on
    SQLite, whose waits for other writers end with its busy timeout) bounds each awaited
    call's wait for the database (a server stopped or unreachable): past it the call raises
    :class:`~orchestrator.core.errors.DatabaseTimeout`. Log calls never wait for the database.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        redact_secrets: bool = True,
        flush_interval: float = 1.0,
        batch_size: int = 5000,
        timeout: float | None = None,
    ) -> None:
        if flush_interval <= 0 or flush_interval > 1.0:
            raise InvalidInput("flush_interval", "must be > 0 and at most 1 second")
        target = db_path if db_path is not None else default_target()
        self.db_path: str | Path = os.fspath(target) if is_url(target) else Path(target)
        self.redact_secrets = redact_secrets
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.timeout = _timeout(timeout)
        self.stats = WriterStats()
        self._backend: Backend | None = None
        self._writer: LogWriter | None = None
        self._lock: asyncio.Lock | None = None
        self._known_agents: set[str] = set()
        self._known_orchestrators: set[str] = set()
        self._budgets: list[budgets.Budget] | None = None
        self._budgets_read = 0.0
        self._runs_of: dict[str, tuple[str, str | None]] = {}  # run -> workflow, session
        self._bulk_writes: int | None = None  # rows written since the last commit, in bulk()
        self._bulk_commit_every = 10_000

    # -- lifecycle --------------------------------------------------------------

    async def connect(self) -> None:
        """Open the database, creating or upgrading its schema first."""
        if self._backend is not None:
            return
        backend = backend_for(self.db_path)
        if self.timeout is None:
            self.timeout = backend.timeout
        await backend.open()
        self._backend = backend
        self._lock = asyncio.Lock()
        self._writer = LogWriter(
            backend,
            self._lock,
            flush_interval=self.flush_interval,
            batch_size=self.batch_size,
            joined_transaction=self._bulk_progress,
        )
        self._writer.stats = self.stats
        self._writer.start()

    async def close(self) -> None:
        """Write every pending log row, then close. Raises WriteError if rows remain unwritten."""
        if self._backend is None:
            return
        try:
            assert self._writer is not None
            async with self._bounded():
                await self._writer.stop()
        finally:
            backend, self._backend = self._backend, None
            await backend.close()

    async def __aenter__(self) -> DatabaseManager:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("DatabaseManager is not connected: call `await db.connect()` first")
        return self._backend

    @property
    def connection(self) -> Any:
        """The driver's connection (SQLite: an ``aiosqlite.Connection``; PostgreSQL: an
        ``asyncpg.Connection``), for what the manager has no method for; hold no
        transaction open across awaits of the manager."""
        return self.backend.connection

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """Raise DatabaseTimeout when the block waits for the database longer than
        ``timeout`` (the wait for the connection included)."""
        try:
            async with _deadline(self.timeout):
                yield
        except TimeoutError as exc:
            if self.timeout is None:
                raise  # not ours
            location = self._backend.location if self._backend else self.db_path
            pending = self.pending
            raise DatabaseTimeout(
                f"{location} did not answer within {self.timeout:g} s (DatabaseManager "
                f"timeout, ${TIMEOUT_ENV}); {pending} log rows wait, kept and retried while the "
                "manager is open, and a write cut off may or may not have been committed",
                pending,
            ) from exc

    # -- the batched log writer --------------------------------------------------

    @property
    def pending(self) -> int:
        """Log rows enqueued and not yet committed."""
        return 0 if self._writer is None else self._writer.pending

    @property
    def _log_writer(self) -> LogWriter:
        if self._writer is None:
            raise RuntimeError("DatabaseManager is not connected: call `await db.connect()` first")
        return self._writer

    async def flush(self) -> None:
        """Commit every log row enqueued so far. Raises WriteError if the disk refuses,
        DatabaseTimeout (rows kept) past ``timeout``."""
        writer = self._log_writer
        async with self._bounded():
            await writer.flush()

    # -- direct writes --------------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement of the caller's (tables this class has no method for);
        committed on return, or with the enclosing :meth:`bulk`. Returns the rows changed."""
        assert self._lock is not None
        backend = self.backend
        async with self._bounded(), self._lock:
            await backend.check()
            changed = await backend.execute(sql, params)
            await self._bulk_progress(1)
            return changed

    async def _bulk_progress(self, rows: int) -> None:
        """Inside :meth:`bulk` (lock held): commit once ``commit_every`` rows are written,
        so a large load never grows one transaction (and SQLite's WAL) without bound."""
        if self._bulk_writes is None:
            return
        self._bulk_writes += rows
        if self._bulk_writes >= self._bulk_commit_every:
            await self.backend.commit()
            await self.backend.begin()
            self._bulk_writes = 0

    async def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Run one write statement for many rows, in one transaction (or the enclosing
        :meth:`bulk`'s). A refused row raises InvalidInput and none is written."""
        assert self._lock is not None
        backend = self.backend
        async with self._bounded(), self._lock:
            await backend.check()
            own = not backend.in_transaction
            if own:
                await backend.begin()
            try:
                await backend.executemany(sql, params)
                if own:
                    await backend.commit()
                else:
                    await self._bulk_progress(len(params))
            except BaseException as exc:
                if own:
                    await backend.rollback()
                if isinstance(exc, backend.integrity_error):
                    raise InvalidInput(sql.split("(")[0].split()[-1], str(exc)) from None
                raise

    @contextlib.asynccontextmanager
    async def bulk(
        self, commit_every: int = 10_000, *, defer_search_index: bool = False
    ) -> AsyncIterator[DatabaseManager]:
        """``async with db.bulk():`` groups many writes into few transactions.

        For imports and demo data: direct writes inside the block are committed
        every ``commit_every`` statements and at its end instead of one by one,
        so a crash loses at most the uncommitted part. On an exception the
        uncommitted part is rolled back and the exception propagates.
        ``defer_search_index=True`` indexes the new rows for full-text search in
        one pass at the end (much faster for large loads; searches miss them until then).
        """
        assert self._lock is not None
        backend = self.backend
        if self._bulk_writes is not None:
            yield self  # already in bulk mode
            return
        deferred: dict[str, tuple[str, int]] = {}
        async with self._lock:
            await backend.begin()
            if defer_search_index:
                deferred = await backend.defer_search_index()
            self._bulk_writes, self._bulk_commit_every = 0, commit_every
        try:
            yield self
            await self.flush()
            async with self._lock:
                await backend.catch_up_search_index(deferred)
                await backend.commit()
        except BaseException:
            async with self._lock:
                await backend.rollback()
                if deferred:  # part may be committed: index it and restore the triggers
                    await backend.begin()
                    await backend.catch_up_search_index(deferred)
                    await backend.commit()
            raise
        finally:
            self._bulk_writes = None

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        """One row of a query of the caller's, as a dict (``None`` when there is none)."""
        backend = self.backend
        async with self._bounded():
            return await backend.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Every row of a query of the caller's, as dicts."""
        backend = self.backend
        async with self._bounded():
            return await backend.fetchall(sql, params)

    async def _require(self, table: str, row_id: str, field: str) -> None:
        if await self.fetchone(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)) is None:
            raise InvalidInput(field, f"no row in {table} with id {row_id!r}")

    async def require_agent(self, agent_id: str, field: str = "agent_id") -> None:
        """Raise InvalidInput unless the agent run exists (remembered once seen)."""
        if agent_id not in self._known_agents:
            await self._require("agents", agent_id, field)
            self._known_agents.add(agent_id)

    async def require_agents(self, agent_ids: set[str], field: str = "agent_id") -> None:
        """:meth:`require_agent` for many, in a query per 500 unknown ids."""
        unknown = sorted(agent_ids - self._known_agents)
        for start in range(0, len(unknown), 500):
            part = unknown[start : start + 500]
            found = await self.fetchall(
                f"SELECT id FROM agents WHERE id IN ({', '.join('?' * len(part))})", part
            )
            self._known_agents.update(row["id"] for row in found)
            missing = set(part) - self._known_agents
            if missing:
                raise InvalidInput(field, f"no row in agents with id {min(missing)!r}")

    def knows_agent(self, agent_id: str) -> bool:
        """Whether this manager has seen the agent run exist (no database round trip)."""
        return agent_id in self._known_agents

    async def _insert_model(self, table: str, row: BaseModel) -> None:
        values = row.model_dump(exclude_none=True)
        if "metadata" in values:
            values["metadata"] = json.dumps(values["metadata"], ensure_ascii=False)
        columns = list(values)
        try:
            await self.execute(insert_sql(table, columns), [values[c] for c in columns])
        except self.backend.integrity_error as exc:
            if "UNIQUE" in str(exc).upper() and table == "orchestrator_agents":
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
        row = rows.orchestrator_agent_row(
            name, description, status, redact_secrets=self.redact_secrets
        )
        await self._insert_model("orchestrator_agents", row)
        return str(row.id)

    async def ensure_orchestrator_agent(self, name: str, description: str | None = None) -> str:
        """The id of the orchestrator agent called ``name``, created if missing."""
        row = rows.orchestrator_agent_row(name, description, redact_secrets=self.redact_secrets)
        values = row.model_dump()
        await self.execute(
            insert_sql("orchestrator_agents", list(values), ignore_conflicts=True),  # name taken
            list(values.values()),
        )
        found = await self.fetchone(
            "SELECT id FROM orchestrator_agents WHERE name = ?", (row.name,)
        )
        assert found is not None
        return str(found["id"])

    async def get_orchestrator_agent(self, orchestrator_agent_id: str) -> OrchestratorAgent | None:
        row_id = canonical_id(orchestrator_agent_id, "orchestrator_agents.id")
        row = await self.fetchone(f"{_SELECT_ORCHESTRATOR_AGENTS} WHERE id = ?", (row_id,))
        return None if row is None else OrchestratorAgent.model_validate(dict(row))

    async def get_orchestrator_agent_by_name(self, name: str) -> OrchestratorAgent | None:
        row = await self.fetchone(
            f"{_SELECT_ORCHESTRATOR_AGENTS} WHERE name = ?",
            (rows.redacted(name, self.redact_secrets),),  # as stored
        )
        return None if row is None else OrchestratorAgent.model_validate(dict(row))

    async def list_orchestrator_agents(
        self, status: OrchestratorStatus | str | None = None
    ) -> list[OrchestratorAgent]:
        """Orchestrator agents by name, optionally only those with ``status``."""
        if status is None:
            found = await self.fetchall(f"{_SELECT_ORCHESTRATOR_AGENTS} ORDER BY name")
        else:
            value = validate(
                OrchestratorAgent, "orchestrator_agents", id=new_id(), name="x", status=status
            ).status
            found = await self.fetchall(
                f"{_SELECT_ORCHESTRATOR_AGENTS} WHERE status = ? ORDER BY name", (value,)
            )
        return [OrchestratorAgent.model_validate(dict(row)) for row in found]

    async def update_orchestrator_agent_status(
        self, orchestrator_agent_id: str, status: OrchestratorStatus | str
    ) -> None:
        row_id = canonical_id(orchestrator_agent_id, "orchestrator_agents.id")
        value = validate(
            OrchestratorAgent, "orchestrator_agents", id=row_id, name="x", status=status
        ).status
        changed = await self.execute(
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
        row = rows.agent_row(
            orchestrator_agent_id,
            session_id,
            name=name,
            status=status,
            parent_agent_id=parent_agent_id,
            started_at=started_at,
            created_at=created_at,
            redact_secrets=self.redact_secrets,
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
        row_id = canonical_id(agent_id, "agents.id")
        row = await self.fetchone(f"{_SELECT_AGENTS} WHERE id = ?", (row_id,))
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
        where: list[str] = []
        params: list[Any] = []
        if orchestrator_agent_id is not None:
            where.append("orchestrator_agent_id = ?")
            params.append(canonical_id(orchestrator_agent_id, "agents.orchestrator_agent_id"))
        if session_id is not None:
            where.append("session_id = ?")
            params.append(rows.redacted(session_id, self.redact_secrets))  # as stored
        if status is not None:
            where.append("status = ?")
            params.append(AgentStatus(status).value)
        sql = _SELECT_AGENTS
        if where:
            sql += " WHERE " + " AND ".join(where)
        found = await self.fetchall(sql + " ORDER BY created_at DESC LIMIT ?", (*params, limit))
        return [Agent.model_validate(dict(row)) for row in found]

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
        row_id = canonical_id(agent_id, "agents.id")
        try:
            value = AgentStatus(status).value
        except ValueError:
            raise InvalidInput(
                "agents.status",
                f"must be one of {sorted(s.value for s in AgentStatus)}, got {status!r}",
            ) from None
        error = rows.redacted(rows.text(error, "agents.error", required=False), self.redact_secrets)
        now = utc_now() if at is None else rows.timestamp(at, "agents.completed_at")
        if value == AgentStatus.RUNNING.value:
            sql = "UPDATE agents SET status = ?, started_at = coalesce(started_at, ?) WHERE id = ?"
            params: tuple[Any, ...] = (value, now, row_id)
        elif value in rows.TERMINAL_STATUSES:
            row = await self.fetchone("SELECT started_at FROM agents WHERE id = ?", (row_id,))
            duration = rows.duration_between(row["started_at"] if row else None, now)
            sql = (
                "UPDATE agents SET status = ?, completed_at = ?, error = coalesce(?, error), "
                "duration_ms = ? WHERE id = ?"
            )
            params = (value, now, error, duration, row_id)
        else:
            sql = "UPDATE agents SET status = ? WHERE id = ?"
            params = (value, row_id)
        if not await self.execute(sql, params):
            raise InvalidInput("agents.id", f"no agent run {row_id!r}")

    # -- prompts ----------------------------------------------------------------------

    async def create_prompt(self, agent_id: str, content: str, *, model: str | None = None) -> str:
        """Record a prompt about to be sent (status ``pending``); return its id.

        Complete it with :meth:`complete_prompt` or :meth:`fail_prompt`.
        """
        row = rows.pending_prompt_row(agent_id, content, model, redact_secrets=self.redact_secrets)
        await self.require_agent(row.agent_id, "prompts.agent_id")
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
        tokens_cache_write_1h: int | None = None,
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
            {
                "status": PromptStatus.COMPLETED,
                "response": response,
                "usage": usage,
                "tokens_input": tokens_input,
                "tokens_output": tokens_output,
                "tokens_cache_read": tokens_cache_read,
                "tokens_cache_write": tokens_cache_write,
                "tokens_cache_write_1h": tokens_cache_write_1h,
                "cost_usd": cost_usd,
                "model": model,
                "duration_ms": duration_ms,
            },
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
        for key in tokens.keys() - rows.TOKEN_FIELDS:
            raise InvalidInput(f"prompts.{key}", "is not a prompt field")
        outcome = {
            "status": PromptStatus.FAILED,
            "error": rows.text(error, "prompts.error"),
            "usage": usage,
            "cost_usd": cost_usd,
            "model": model,
            "duration_ms": duration_ms,
            **tokens,
        }
        return await self._finish_prompt(prompt_id, outcome)

    async def _finish_prompt(self, prompt_id: str, outcome: dict[str, Any]) -> Prompt:
        """Price and store the outcome of a pending prompt (its :class:`PromptFields` but
        the prompt's identity, content and times, which come from the stored row)."""
        row_id = canonical_id(prompt_id, "prompts.id")
        current = await self.get_prompt(row_id)
        if current is None:
            raise InvalidInput("prompts.id", f"no prompt {row_id!r}")
        fields: PromptFields = {
            **outcome,  # type: ignore[typeddict-item]
            "prompt_id": row_id,
            "agent_id": current.agent_id,
            "content": current.content,  # stored already redacted
            "model": outcome.get("model") or current.model,
            "created_at": current.created_at,
            "completed_at": utc_now(),
        }
        prompt = rows.prompt_row(fields, redact_secrets=self.redact_secrets)
        values = prompt.model_dump(exclude={"id", "agent_id", "content", "created_at"})
        columns = list(values)
        await self.execute(
            f"UPDATE prompts SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            [values[c] for c in columns] + [row_id],
        )
        await self._check_budgets([prompt])
        return prompt

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
        tokens_cache_write_1h: int | None = None,
        cost_usd: float | None = None,
        duration_ms: float | None = None,
        status: PromptStatus | str = PromptStatus.COMPLETED,
        error: str | None = None,
        created_at: str | datetime | None = None,
        completed_at: str | datetime | None = None,
        prompt_id: str | None = None,
    ) -> Prompt:
        """Record a finished model call in one write; return the stored prompt.

        Priced at ``created_at`` (default: now). Raises InvalidInput (nothing
        written) for a bad value or an unknown agent.
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
            tokens_cache_write_1h=tokens_cache_write_1h,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            status=status,
            error=error,
            created_at=created_at,
            completed_at=completed_at,
            prompt_id=prompt_id,
        )
        await self.require_agent(prompt.agent_id, "prompts.agent_id")
        await self._insert_model("prompts", prompt)
        await self._check_budgets([prompt])
        return prompt

    async def record_prompts(self, prompts: Sequence[PromptFields]) -> list[Prompt]:
        """Record many finished model calls in one statement (imports, demo data).

        Each item holds :meth:`record_prompt`'s arguments (a :class:`PromptFields`).
        All are validated and priced first: one bad prompt raises InvalidInput and
        none is written.
        """
        built = [rows.prompt_row(item, redact_secrets=self.redact_secrets) for item in prompts]
        if not built:
            return built
        await self.require_agents({row.agent_id for row in built}, "prompts.agent_id")
        await self.executemany(
            insert_sql("prompts", rows.PROMPT_COLUMNS),
            [rows.prompt_values(row) for row in built],
        )
        await self._check_budgets(built)
        return built

    def prompt_row(
        self, agent_id: str, content: str, response: str | None = None, **fields: Any
    ) -> Prompt:
        """Validate, redact and price one finished model call (nothing is written);
        see :func:`orchestrator.core.rows.prompt_row`."""
        return rows.prompt_row(
            {"agent_id": agent_id, "content": content, "response": response, **fields},  # type: ignore[typeddict-item]
            redact_secrets=self.redact_secrets,
        )

    async def get_prompt(self, prompt_id: str) -> Prompt | None:
        row_id = canonical_id(prompt_id, "prompts.id")
        row = await self.fetchone(f"{_SELECT_PROMPTS} WHERE id = ?", (row_id,))
        return None if row is None else Prompt.model_validate(dict(row))

    async def list_prompts(self, agent_id: str, limit: int = 1000) -> list[Prompt]:
        """The prompts of one run, oldest first."""
        row_id = canonical_id(agent_id, "prompts.agent_id")
        found = await self.fetchall(
            f"{_SELECT_PROMPTS} WHERE agent_id = ? ORDER BY created_at, id LIMIT ?",
            (row_id, limit),
        )
        return [Prompt.model_validate(dict(row)) for row in found]

    # -- budgets -----------------------------------------------------------------------

    async def _scalar(self, sql: str, params: tuple[Any, ...]) -> float:
        row = await self.fetchone(sql, params)
        return float(next(iter(row.values()))) if row else 0.0

    async def _budget_list(self) -> list[budgets.Budget]:
        """The budgets, read again at most every few seconds (none: nothing to check)."""
        now = time.monotonic()
        if self._budgets is None or now - self._budgets_read > BUDGETS_REFRESH_S:
            found = await self.fetchall(budgets.BUDGETS_SQL)
            self._budgets = [budgets.Budget(*row.values()) for row in found]
            self._budgets_read = now
        return self._budgets

    async def budget_remaining(self, name: str, scope: str = "workflow") -> float | None:
        """USD that ``name`` (a workflow, model or session) may still spend now: the tighter
        of its daily and monthly budgets (negative once over); ``None`` without a budget.
        An ADW can stop itself: ``if (await db.budget_remaining("plan_build") or 1) <= 0``."""
        self._budgets = None  # read the budgets now: the caller asks about them
        for budget in await self._budget_list():
            if (budget.scope, budget.name) == (scope, name):
                return (await self._budget_status(budget)).remaining_usd
        return None

    async def _budget_status(self, budget: budgets.Budget) -> budgets.BudgetStatus:
        today, month = [await self._scalar(*query) for query in budgets.spend_queries(budget)]
        return budgets.status(budget, today, month)

    async def _check_budgets(self, prompts: Sequence[Prompt]) -> None:
        """After prompts are stored: the first time a budget's window is crossed, say so in
        system_logs (once across every writer: budget_alerts). Never fails the write."""
        try:
            found = await self._budget_list()
            if not found:
                return
            touched: set[tuple[str, str]] = set()
            for prompt in prompts:
                workflow, session = await self._run_of(prompt.agent_id)
                touched |= {("workflow", workflow), ("model", prompt.model or "unknown")}
                if session is not None:
                    touched.add(("session", session))
            for budget in found:
                if (budget.scope, budget.name) in touched:
                    await self._alert_once(await self._budget_status(budget))
        except Exception:  # the workflow's write succeeded: a budget check never breaks it
            logger.warning("orchestrator: could not check budgets", exc_info=True)

    async def _run_of(self, agent_id: str) -> tuple[str, str | None]:
        if agent_id not in self._runs_of:
            row = await self.fetchone(
                "SELECT o.name AS workflow, a.session_id AS session_id FROM agents a "
                "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id WHERE a.id = ?",
                (agent_id,),
            )
            self._runs_of[agent_id] = (row["workflow"], row["session_id"]) if row else ("", None)
        return self._runs_of[agent_id]

    async def _alert_once(self, state: budgets.BudgetStatus) -> None:
        budget = state.budget
        for period in state.over:
            daily = len(period) == 10
            limit = budget.daily_usd if daily else budget.monthly_usd
            spent = state.spent_today if daily else state.spent_month
            assert limit is not None
            if await self.execute(
                budgets.ALERT_SQL,
                (budget.scope, budget.name, period, spent, limit, utc_now()),
            ):
                self.enqueue_system_log(
                    self.system_log_row(
                        "WARNING",
                        f"{budget.scope} {budget.name} is over its "
                        f"{'daily' if daily else 'monthly'} budget for {period}: "
                        f"${spent:.2f} of ${limit:.2f}",
                        "orchestrator.budgets",
                        {
                            "scope": budget.scope,
                            "name": budget.name,
                            "period": period,
                            "spent_usd": spent,
                            "budget_usd": limit,
                        },
                    )
                )

    # -- logs ---------------------------------------------------------------------------

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
        return rows.agent_log_row(
            agent_id,
            log_type,
            message,
            metadata,
            step,
            duration_ms,
            created_at,
            redact_secrets=self.redact_secrets,
        )

    def enqueue_agent_log(self, row: tuple[Any, ...]) -> str:
        """Queue a row from :meth:`agent_log_row` whose agent is known to exist."""
        writer = self._log_writer
        writer.enqueue(writer.agent_logs, row)
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
        await self.require_agent(row[1], "agent_logs.agent_id")
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
        return rows.system_log_row(
            log_level, message, source, metadata, created_at, redact_secrets=self.redact_secrets
        )

    def enqueue_system_log(self, row: tuple[Any, ...]) -> str:
        """Queue a row from :meth:`system_log_row`."""
        writer = self._log_writer
        writer.enqueue(writer.system_logs, row)
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
        await self.flush()
        row_id = canonical_id(agent_id, "agent_logs.agent_id")
        sql, params = f"{_SELECT_AGENT_LOGS} WHERE agent_id = ?", [row_id]
        if log_type is not None:
            sql += " AND log_type = ?"
            params.append(getattr(log_type, "value", log_type))
        found = await self.fetchall(sql + " ORDER BY created_at, id LIMIT ?", (*params, limit))
        return [AgentLog.model_validate(dict(row)) for row in found]

    async def get_system_logs(
        self,
        log_level: LogLevel | str | None = None,
        source: str | None = None,
        limit: int = 1000,
    ) -> list[SystemLog]:
        """System logs, newest first (what this manager has queued is written first)."""
        await self.flush()
        where, params = [], []
        if log_level is not None:
            where.append("log_level = ?")
            params.append(str(getattr(log_level, "value", log_level)).upper())
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = _SELECT_SYSTEM_LOGS + (" WHERE " + " AND ".join(where) if where else "")
        found = await self.fetchall(
            sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit)
        )
        return [SystemLog.model_validate(dict(row)) for row in found]

    async def get_agent_log(self, log_id: str) -> AgentLog | None:
        """One agent log row by id (what this manager has queued is written first)."""
        await self.flush()
        row_id = canonical_id(log_id, "agent_logs.id")
        row = await self.fetchone(f"{_SELECT_AGENT_LOGS} WHERE id = ?", (row_id,))
        return None if row is None else AgentLog.model_validate(dict(row))

    async def get_system_log(self, log_id: str) -> SystemLog | None:
        """One system log row by id (what this manager has queued is written first)."""
        await self.flush()
        row_id = canonical_id(log_id, "system_logs.id")
        row = await self.fetchone(f"{_SELECT_SYSTEM_LOGS} WHERE id = ?", (row_id,))
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
    ) -> AgentRunContext:
        """``async with db.agent_run("plan_build", session_id=...) as run:`` records one run.

        The orchestrator agent is created on first use. The run is ``running``
        inside the block, ``completed`` after it, ``failed`` (exception logged,
        then re-raised) or ``cancelled`` if it is interrupted.
        """
        return AgentRunContext(
            self,
            orchestrator,
            session_id=session_id,
            name=name,
            description=description,
            parent_agent_id=parent_agent_id,
        )


__all__ = ["DatabaseManager", "WriterStats"]
