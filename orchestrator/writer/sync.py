"""A blocking facade over :class:`DatabaseManager` for ADWs that are not async.

The async writer runs on an event loop in a daemon thread of its own. Log
calls validate on the caller's thread and only enqueue (no thread hop, no
wait); everything else blocks until the database has answered::

    with SyncDatabaseManager("orchestrator.db") as db:
        with db.agent_run("plan_build", session_id=adw_id) as run:
            with run.step("plan"):
                run.prompt("/plan", response=text, model=model, usage=usage)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from ..core.models import LogLevel, LogType, Prompt
from .db import DatabaseManager
from .runs import AgentRun, AgentRunContext, Step, finish_run

T = TypeVar("T")


class SyncDatabaseManager:
    """Every ``DatabaseManager`` coroutine method, as a blocking call."""

    def __init__(self, db_path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        self.db = DatabaseManager(db_path, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="orchestrator-writer-loop", daemon=True
        )
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.db, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._run(attribute(*args, **kwargs))

        blocking.__name__ = name
        blocking.__doc__ = attribute.__doc__
        return blocking

    def connect(self) -> None:
        self._run(self.db.connect())

    def close(self) -> None:
        """Flush and close, then stop the writer's thread."""
        try:
            if self._loop.is_running():
                self._run(self.db.close())
        finally:
            if self._loop.is_running():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)

    def __enter__(self) -> SyncDatabaseManager:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_agent_event(
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
        """Queue an agent log without waiting; see :meth:`DatabaseManager.log_agent_event`."""
        row = self.db.agent_log_row(
            agent_id, log_type, message, metadata, step, duration_ms, created_at
        )
        if not self.db.knows_agent(row[1]):  # one round trip the first time only
            self._run(self.db.require_agent(row[1], "agent_logs.agent_id"))
        return self.db.enqueue_agent_log(row)

    def log_system_event(
        self,
        log_level: LogLevel | str,
        message: str,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        created_at: str | datetime | None = None,
    ) -> str:
        """Queue a system log without waiting; see :meth:`DatabaseManager.log_system_event`."""
        return self.db.enqueue_system_log(
            self.db.system_log_row(log_level, message, source, metadata, created_at)
        )

    def agent_run(
        self,
        orchestrator: str,
        *,
        session_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        parent_agent_id: str | None = None,
    ) -> SyncAgentRunContext:
        """``with db.agent_run("plan_build", session_id=...) as run:``"""
        return SyncAgentRunContext(
            self,
            self.db.agent_run(
                orchestrator,
                session_id=session_id,
                name=name,
                description=description,
                parent_agent_id=parent_agent_id,
            ),
        )


class SyncAgentRun:
    """The blocking twin of :class:`orchestrator.writer.runs.AgentRun`."""

    def __init__(self, owner: SyncDatabaseManager, run: AgentRun) -> None:
        self._owner = owner
        self._run = run
        self.id = run.id
        self.orchestrator_agent_id = run.orchestrator_agent_id
        self.session_id = run.session_id

    def log(
        self,
        log_type: LogType | str,
        message: str,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        return self._run.log(log_type, message, metadata, **options)

    def step(self, name: str, **metadata: Any) -> Step:
        return self._run.step(name, **metadata)

    def prompt(self, content: str, response: str | None = None, **options: Any) -> Prompt:
        return self._owner._run(self._run.prompt(content, response, **options))


class SyncAgentRunContext:
    def __init__(self, owner: SyncDatabaseManager, context: AgentRunContext) -> None:
        self.owner = owner
        self.context = context
        self.run: SyncAgentRun | None = None

    def __enter__(self) -> SyncAgentRun:
        self.run = SyncAgentRun(self.owner, self.owner._run(self.context.__aenter__()))
        return self.run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.run is not None
        self.owner._run(finish_run(self.owner.db, self.run.id, exc))
