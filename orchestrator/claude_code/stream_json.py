"""Record a Claude Code ``--output-format stream-json --verbose`` stream as an agent run.

An ADW feeds the lines as they arrive::

    recorder = StreamRecorder(db, orchestrator="plan_build")
    async for line in proc.stdout:
        await recorder.feed_line(line)
    summary = await recorder.finish(exit_code=await proc.wait())

The run is created at the first message (``session_id`` from the stream). Each API
response becomes one prompt: its lines (one per content block) repeat ``message.id``
and are gathered into one row when the next message starts; its usage is that of its
last line and its cost is computed from prices (the stream reports no per-response
cost). ``tool_use`` blocks and ``tool_result`` blocks become agent logs as they arrive.

The ``result`` line holds what Claude Code itself reports: ``total_cost_usd`` and, in
``modelUsage``, the tokens and cost of every model the run used, subagents and
background calls (e.g. a Haiku model) included, while the per-response lines may miss
some of them. Design: the reported figures are stored verbatim, once, in
``agent_model_usage`` (one row per run and model) and ``claude_code_runs``
(``reported_cost_usd``, with the result's subtype, turns and durations), so
per-model tokens and the reported total are exactly recoverable. So that reports
reading ``prompts`` lose no tokens either, one reconciling prompt per model holds the
tokens of ``modelUsage`` not covered by that model's per-response rows (cost from
prices, like every stream prompt; ``content`` says it is a reconciliation). Reported and
computed cost are therefore both kept and comparable per run and per model. A result
with ``is_error: true`` (Claude Code exits 0 on quota errors) or a non-success
``subtype`` marks the run failed. Malformed lines are skipped and counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..db import DatabaseManager
from ..ids import utc_now
from ..models import AgentStatus, LogType, Usage
from ..pricing import compute_cost
from .common import (
    LineCounts,
    Response,
    clip,
    model_usage_of,
    text_of,
    tool_log_rows,
    usage_tokens,
)


@dataclass
class StreamSummary(LineCounts):
    """What a recorder saw; ``agent_id`` is the run it wrote (None if no message came)."""

    agent_id: str | None = None
    session_id: str | None = None
    messages: int = 0
    prompts: int = 0
    reconciling_prompts: int = 0
    status: str | None = None
    reported_cost_usd: float | None = None
    model_usage: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __str__(self) -> str:
        cost = "?" if self.reported_cost_usd is None else f"${self.reported_cost_usd:.4f}"
        return (
            f"run {self.agent_id} ({self.status}): {self.lines} lines, {self.prompts} prompts "
            f"(+{self.reconciling_prompts} reconciling), {self.tool_events} tool events, "
            f"reported cost {cost}, {self.malformed} malformed, "
            f"{self.unknown_types} unknown types"
        )


def _scalar(value: Any) -> Any:
    """A value SQLite can store as it is, else None."""
    return value if isinstance(value, (str, int, float)) else None


class StreamRecorder:
    """Records one Claude Code stream-json run into ``db`` (a connected DatabaseManager)."""

    def __init__(
        self,
        db: DatabaseManager,
        orchestrator: str = "claude-code",
        *,
        name: str | None = None,
        session_id: str | None = None,
        parent_agent_id: str | None = None,
        prompt: str | None = None,
    ) -> None:
        self.db = db
        self.orchestrator = orchestrator
        self.name = name
        self.parent_agent_id = parent_agent_id
        self.summary = StreamSummary(session_id=session_id)
        self._last_user = prompt or ""
        self._pending: Response | None = None  # the response being gathered
        self._seen: set[str] = set()  # message ids already recorded
        self._covered: dict[str, dict[str, int]] = {}  # per model: tokens in per-response rows
        self._tools: dict[str, str] = {}
        self._result: dict[str, Any] | None = None
        self._finished = False

    @property
    def agent_id(self) -> str | None:
        return self.summary.agent_id

    async def _ensure_run(self, message: dict[str, Any]) -> str:
        if self.summary.agent_id is None:
            session = message.get("session_id")
            if self.summary.session_id is None and isinstance(session, str):
                self.summary.session_id = session
            orchestrator_id = await self.db.ensure_orchestrator_agent(self.orchestrator)
            self.summary.agent_id = await self.db.create_agent(
                orchestrator_id,
                self.summary.session_id,
                name=self.name,
                status=AgentStatus.RUNNING,
                parent_agent_id=self.parent_agent_id,
            )
        return self.summary.agent_id

    async def feed_line(self, line: str | bytes) -> None:
        """Record one line of the stream; a blank or malformed line is skipped and counted."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        if not line.strip():
            return
        self.summary.lines += 1
        try:
            message = json.loads(line)
        except ValueError:
            self.summary.malformed += 1
            return
        if not isinstance(message, dict):
            self.summary.malformed += 1
            return
        await self.feed(message)

    async def feed(self, message: dict[str, Any]) -> None:
        """Record one decoded stream message (a dict)."""
        if self._finished:
            raise RuntimeError("StreamRecorder.finish() was already called")
        if not isinstance(message, dict):
            self.summary.malformed += 1
            return
        self.summary.messages += 1
        kind = message.get("type")
        agent_id = await self._ensure_run(message)
        if kind == "assistant":
            body = message.get("message")
            if not isinstance(body, dict):
                self.summary.malformed += 1
                return
            message_id = body.get("id")
            if self._pending is not None and self._pending.message_id != message_id:
                await self._flush_response()
            if isinstance(message_id, str) and message_id in self._seen:
                return  # a late repeat of a response already written
            if self._pending is None:
                self._pending = Response(
                    message_id=message_id, model=None, prompt=self._last_user, created_at=utc_now()
                )
            pending = self._pending
            pending.model = body.get("model") or pending.model
            if isinstance(body.get("usage"), dict):
                pending.usage = body["usage"]  # the last line's usage is the final one
            pending.add_text(body.get("content"))
            self._log_tools(agent_id, body.get("content"))
            return
        await self._flush_response()
        if kind == "user":
            body = message.get("message")
            content = body.get("content") if isinstance(body, dict) else None
            text = text_of(content)
            if text:
                self._last_user = text
            self._log_tools(agent_id, content)
        elif kind == "result":
            self._result = message
        elif kind == "system":
            if message.get("subtype") == "init":
                metadata = {k: message.get(k) for k in ("model", "cwd", "tools", "session_id")}
                self._log(agent_id, LogType.EVENT, "claude code session started", metadata)
        else:
            self.summary.unknown_types += 1

    def _log(
        self, agent_id: str, log_type: LogType, text: str, metadata: dict[str, Any] | None
    ) -> None:
        self.db.enqueue_agent_log(self.db.agent_log_row(agent_id, log_type, text, metadata))

    def _log_tools(self, agent_id: str, content: Any) -> None:
        logs = tool_log_rows(agent_id, content, self._tools, redact_secrets=self.db.redact_secrets)
        for row in logs:
            self.db.enqueue_agent_log(row)
        self.summary.tool_events += len(logs)

    async def _flush_response(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or self.summary.agent_id is None:
            return
        if isinstance(pending.message_id, str):
            self._seen.add(pending.message_id)
        [prompt] = await self.db.record_prompts([pending.fields(self.summary.agent_id)])
        if isinstance(pending.message_id, str):
            await self.db.execute(
                "INSERT INTO prompt_responses (prompt_id, message_id, tokens_output_final) "
                "VALUES (?, ?, ?)",
                (prompt.id, pending.message_id, prompt.tokens_output),
            )
        covered = self._covered.setdefault(str(pending.model), dict.fromkeys(Usage.model_fields, 0))
        for column in covered:
            covered[column] += getattr(prompt, column)
        self.summary.prompts += 1

    async def finish(self, exit_code: int | None = None, error: str | None = None) -> StreamSummary:
        """Write what is pending, the result's reported usage and cost, and end the run.

        The run is ``failed`` when the result says ``is_error`` or is not a success, when
        ``exit_code`` is non-zero, or when the stream ended without a result line.
        """
        if self._finished:
            return self.summary
        self._finished = True
        await self._flush_response()
        agent_id = self.summary.agent_id
        if agent_id is None:
            await self.db.flush()
            return self.summary
        result = self._result
        if result is not None:
            await self._record_result(agent_id, result)
        if (
            error is None
            and result is not None
            and (result.get("is_error") or result.get("subtype") not in (None, "success"))
        ):
            detail = result.get("result") or result.get("errors") or ""
            error = clip(
                f"claude code result {result.get('subtype')}: {text_of(detail) or detail}", 1000
            )
        if error is None and exit_code:
            error = f"command exited with code {exit_code}"
        if error is None and result is None:
            error = "the stream ended without a result line"
        status = AgentStatus.FAILED if error else AgentStatus.COMPLETED
        await self.db.flush()
        await self.db.update_agent_status(agent_id, status, error=error)
        self.summary.status = status.value
        return self.summary

    async def _record_result(self, agent_id: str, result: dict[str, Any]) -> None:
        cost = result.get("total_cost_usd")
        reported = float(cost) if isinstance(cost, (int, float)) and cost >= 0 else None
        self.summary.reported_cost_usd = reported
        await self.db.execute(
            "INSERT OR REPLACE INTO claude_code_runs (agent_id, reported_cost_usd, "
            "result_subtype, is_error, num_turns, duration_ms, duration_api_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                agent_id,
                reported,
                _scalar(result.get("subtype")),
                None if result.get("is_error") is None else int(bool(result.get("is_error"))),
                _scalar(result.get("num_turns")),
                _scalar(result.get("duration_ms")),
                _scalar(result.get("duration_api_ms")),
            ),
        )
        # Per model: its tokens, its reported cost, its web searches.
        figures_of: dict[str, tuple[Usage, Any, Any]] = {}
        model_usage = result.get("modelUsage")
        if isinstance(model_usage, dict) and model_usage:
            for model, figures in model_usage.items():
                if not isinstance(figures, dict):
                    self.summary.malformed += 1
                    continue
                figures_of[model] = (
                    model_usage_of(figures),
                    figures.get("costUSD"),
                    figures.get("webSearchRequests"),
                )
        else:
            # Older Claude Code: only the main model's usage; treat it as such.
            usage = result.get("usage")
            main = next(iter(self._covered), None)
            if isinstance(usage, dict) and main is not None:
                figures_of[main] = (usage_tokens(usage), reported, None)
        for model, (usage, model_cost, web_searches) in figures_of.items():
            tokens = usage.model_dump(exclude={"tokens_cache_write_1h"})  # modelUsage has no split
            model_cost = float(model_cost) if isinstance(model_cost, (int, float)) else None
            computed = compute_cost(model, **tokens)
            await self.db.execute(
                "INSERT OR REPLACE INTO agent_model_usage (agent_id, model, tokens_input, "
                "tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, "
                "cost_computed_usd, web_search_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (agent_id, model, *tokens.values(), model_cost, computed, web_searches),
            )
            self.summary.model_usage[model] = {**tokens, "cost_usd": model_cost}
            covered = self._covered.get(model, {})
            rest: dict[str, Any] = {
                column: tokens[column] - covered.get(column, 0) for column in tokens
            }
            if any(value < 0 for value in rest.values()):
                self._log(
                    agent_id,
                    LogType.WARNING,
                    f"per-response usage of {model} exceeds the result's modelUsage",
                    {"model": model, "model_usage": tokens, "per_response": covered},
                )
            rest = {column: max(0, value) for column, value in rest.items()}
            if any(rest.values()):
                await self.db.record_prompts(
                    [
                        {
                            "agent_id": agent_id,
                            "content": f"[reconciliation] {model} tokens in the result's "
                            "modelUsage not seen in per-response usage (subagents, "
                            "background calls)",
                            "model": model,
                            "usage": Usage(**rest),
                        }
                    ]
                )
                self.summary.reconciling_prompts += 1


async def record_stream(
    db: DatabaseManager, stream: IO[str] | IO[bytes], **options: Any
) -> StreamSummary:
    """Record every line of an open text or binary file; return the summary."""
    recorder = StreamRecorder(db, **options)
    for line in stream:
        await recorder.feed_line(line)
    return await recorder.finish()


async def record_command(
    db: DatabaseManager,
    argv: Sequence[str],
    *,
    output: IO[bytes] | None = None,
    **options: Any,
) -> tuple[int, StreamSummary]:
    """Run ``argv``, copy its stdout to ``output`` byte for byte as it arrives, record it.

    Returns the command's exit code and the summary. stderr is left to the terminal.
    Raises FileNotFoundError when the command does not exist.
    """
    if not argv:
        raise ValueError("no command given to record")
    out = output if output is not None else sys.stdout.buffer
    recorder = StreamRecorder(db, **options)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout is not None
    buffer = b""
    try:
        while True:
            chunk = await proc.stdout.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                await recorder.feed_line(line)
        if buffer:
            await recorder.feed_line(buffer)
        code = await proc.wait()
    except BaseException as exc:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await recorder.finish(error=f"recording interrupted: {type(exc).__name__}")
        raise
    summary = await recorder.finish(exit_code=code)
    return code, summary


__all__ = ["StreamRecorder", "StreamSummary", "record_command", "record_stream"]
