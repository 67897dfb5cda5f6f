"""The run API: one line in an ADW per thing worth recording.

::

    async with db.agent_run("plan_build", session_id=adw_id, name="plan") as run:
        with run.step("plan"):
            prompt = await run.prompt("/plan issue 42", response=text, model=model,
                                      usage=usage, cost_usd=reported)
            run.log("tool_use", "Bash: pytest", {"exit_code": 0})

``run.step`` works with ``with`` and ``async with`` and writes ``step_start``
and ``step_end`` (with ``duration_ms``, and the error if the block raised).
``run.log`` only enqueues: it never waits for the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

from ..core.errors import exception_metadata, format_exception
from ..core.models import AgentStatus, LogType, Prompt, Usage


class RunStore(Protocol):
    """What the run API uses of its writer (:class:`~orchestrator.writer.db.DatabaseManager`);
    typed structurally so this module does not import the writer."""

    @property
    def agent_log_row(self) -> Callable[..., tuple[Any, ...]]: ...
    @property
    def enqueue_agent_log(self) -> Callable[[tuple[Any, ...]], str]: ...
    @property
    def ensure_orchestrator_agent(self) -> Callable[..., Awaitable[str]]: ...
    @property
    def create_agent(self) -> Callable[..., Awaitable[str]]: ...
    @property
    def update_agent_status(self) -> Callable[..., Awaitable[None]]: ...
    @property
    def record_prompt(self) -> Callable[..., Awaitable[Prompt]]: ...
    @property
    def create_prompt(self) -> Callable[..., Awaitable[str]]: ...
    @property
    def complete_prompt(self) -> Callable[..., Awaitable[Prompt]]: ...
    @property
    def fail_prompt(self) -> Callable[..., Awaitable[Prompt]]: ...


class AgentRun:
    """A running agent run; made by :meth:`DatabaseManager.agent_run`."""

    def __init__(
        self,
        db: RunStore,
        agent_id: str,
        orchestrator_agent_id: str,
        session_id: str | None,
        name: str | None,
    ) -> None:
        self.db = db
        self.id = agent_id
        self.orchestrator_agent_id = orchestrator_agent_id
        self.session_id = session_id
        self.name = name
        self._steps: list[str] = []

    @property
    def current_step(self) -> str | None:
        return self._steps[-1] if self._steps else None

    def log(
        self,
        log_type: LogType | str,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        step: str | None = None,
        duration_ms: float | None = None,
        created_at: str | None = None,
    ) -> str:
        """Queue an agent log for this run (tagged with the current step); return its id."""
        row = self.db.agent_log_row(
            self.id,
            log_type,
            message,
            metadata,
            step if step is not None else self.current_step,
            duration_ms,
            created_at,
        )
        return self.db.enqueue_agent_log(row)

    def step(self, name: str, **metadata: Any) -> Step:
        """Context manager timing one step: ``with run.step("build"):``."""
        return Step(self, name, metadata)

    async def prompt(
        self,
        content: str,
        response: str | None = None,
        *,
        model: str | None = None,
        usage: Usage | dict[str, Any] | None = None,
        cost_usd: float | None = None,
        duration_ms: float | None = None,
        error: str | None = None,
        **tokens: Any,
    ) -> Prompt:
        """Record one finished model call of this run, with its usage and cost.

        Pass ``error`` to record a failed call. ``usage`` may be an Anthropic /
        Claude Code usage dict; or pass ``tokens_input=...`` and friends.
        """
        return await self.db.record_prompt(
            self.id,
            content,
            response,
            model=model,
            usage=usage,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            error=error,
            status="failed" if error is not None else "completed",
            **tokens,
        )

    def start_prompt(self, content: str, *, model: str | None = None) -> PromptCall:
        """``async with run.start_prompt(text, model=m) as call: ... call.complete(...)``

        Records the prompt as pending first, so a crash mid-call leaves a trace;
        the call's duration is measured for you.
        """
        return PromptCall(self, content, model)


class Step:
    """``with`` / ``async with`` block that logs ``step_start`` and ``step_end``."""

    def __init__(self, run: AgentRun, name: str, metadata: dict[str, Any]) -> None:
        self.run = run
        self.name = name
        self.metadata = metadata
        self._started = 0.0

    def __enter__(self) -> Step:
        self.run.log(
            LogType.STEP_START, f"step {self.name} started", self.metadata or None, step=self.name
        )
        self.run._steps.append(self.name)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration_ms = (time.perf_counter() - self._started) * 1000
        self.run._steps.pop()
        metadata = dict(self.metadata)
        if exc is None:
            metadata["status"] = "completed"
            message = f"step {self.name} completed in {duration_ms:.0f} ms"
        else:
            metadata["status"] = "failed"
            metadata["error"] = format_exception(exc)
            message = f"step {self.name} failed after {duration_ms:.0f} ms: {metadata['error']}"
        self.run.log(LogType.STEP_END, message, metadata, step=self.name, duration_ms=duration_ms)

    async def __aenter__(self) -> Step:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class PromptCall:
    """A prompt in flight: pending row first, then completed or failed."""

    def __init__(self, run: AgentRun, content: str, model: str | None) -> None:
        self.run = run
        self.content = content
        self.model = model
        self.id: str | None = None
        self.result: Prompt | None = None
        self._started = 0.0

    async def __aenter__(self) -> PromptCall:
        self.id = await self.run.db.create_prompt(self.run.id, self.content, model=self.model)
        self._started = time.perf_counter()
        return self

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000

    async def complete(
        self,
        response: str | None = None,
        *,
        usage: Any = None,
        cost_usd: float | None = None,
        model: str | None = None,
        **tokens: int,
    ) -> Prompt:
        assert self.id is not None, "use `async with run.start_prompt(...) as call`"
        self.result = await self.run.db.complete_prompt(
            self.id,
            response,
            usage=usage,
            cost_usd=cost_usd,
            model=model,
            duration_ms=self._elapsed_ms(),
            **tokens,
        )
        return self.result

    async def fail(self, error: str, **kwargs: Any) -> Prompt:
        assert self.id is not None, "use `async with run.start_prompt(...) as call`"
        self.result = await self.run.db.fail_prompt(
            self.id, error, duration_ms=self._elapsed_ms(), **kwargs
        )
        return self.result

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.result is not None:
            return
        if exc is not None:
            await self.fail(format_exception(exc))
        else:
            await self.fail("prompt block ended without complete() or fail()")


class AgentRunContext:
    """The ``async with`` behind :meth:`DatabaseManager.agent_run`."""

    def __init__(
        self,
        db: RunStore,
        orchestrator: str,
        *,
        session_id: str | None,
        name: str | None,
        description: str | None,
        parent_agent_id: str | None,
    ) -> None:
        self.db = db
        self.orchestrator = orchestrator
        self.session_id = session_id
        self.name = name
        self.description = description
        self.parent_agent_id = parent_agent_id
        self.run: AgentRun | None = None

    async def __aenter__(self) -> AgentRun:
        orchestrator_id = await self.db.ensure_orchestrator_agent(
            self.orchestrator, self.description
        )
        agent_id = await self.db.create_agent(
            orchestrator_id,
            self.session_id,
            name=self.name,
            status=AgentStatus.RUNNING,
            parent_agent_id=self.parent_agent_id,
        )
        self.run = AgentRun(self.db, agent_id, orchestrator_id, self.session_id, self.name)
        return self.run

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.run is not None
        await finish_run(self.db, self.run.id, exc)


async def finish_run(db: RunStore, agent_id: str, exc: BaseException | None) -> None:
    """Mark a run completed, or failed / cancelled with the exception logged."""
    if exc is None:
        await db.update_agent_status(agent_id, AgentStatus.COMPLETED)
        return
    cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
    error = format_exception(exc)
    db.enqueue_agent_log(
        db.agent_log_row(agent_id, LogType.ERROR, f"run ended: {error}", exception_metadata(exc))
    )
    await db.update_agent_status(
        agent_id, AgentStatus.CANCELLED if cancelled else AgentStatus.FAILED, error=error
    )
