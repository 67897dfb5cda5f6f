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
When the session's transcript is imported into the run while it is recorded (a cron
``orchestrator import claude-code``), a response or tool call the import stored already
is not stored again, nor is one an earlier import stored in a run of its own (the same
``session_id``). (The recorder looks for what an import logged when it meets a
response stored already, else once a second, and writes what it queued within a second:
a tool call within a second of an import can still be logged twice.)

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
``subtype`` marks the run failed.

A bad line never stops a recording: a line that is not a JSON object, holds ``NaN`` /
``Infinity`` or a lone surrogate, or any value the row builders refuse
(:class:`~orchestrator.core.errors.InvalidInput`: a model that is no string, a tool-use id
that is no JSON value) is counted as malformed and skipped. A run never stays
``running`` once its stream has ended: :meth:`StreamRecorder.finish` ends it ``failed``
with the reason when anything went wrong, and :func:`record_command` returns the
command's exit code whatever happened to the recording.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from ..core.errors import InvalidInput, OrchestratorError, format_exception
from ..core.ids import format_timestamp, parse_timestamp, utc_now
from ..core.models import MAX_INTEGER, AgentStatus, LogType, Prompt, Usage
from ..core.pricing import compute_cost
from ..core.rows import RECONCILIATION
from ..writer.db import DatabaseManager
from .common import (
    LineCounts,
    PromptText,
    Response,
    clip,
    model_usage_of,
    parse_line,
    storable,
    text_of,
    tool_log_rows,
    usage_tokens,
)
from .hook import EVENTS, TOOL_LOG_KINDS
from .hook import TOOL_LOG_TYPES as _TOOL_LOG_TYPES

#: The log types only hooks write.
_HOOK_TYPES = ", ".join(f"'{event}'" for event in EVENTS)

#: How often a recording looks for tool calls an import logged into its run (seconds).
LOGGED_CHECK_S = 1.0

#: The message types of a stream: the run starts at the first of them (other JSON is no
#: Claude Code run).
STREAM_TYPES = ("system", "assistant", "user", "result")


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
    error: str | None = None  # why the run failed, when it did
    duplicates_skipped: int = 0  # responses stored already (same message.id), not again
    already_imported: bool = False  # record_stream: this run was recorded before; nothing added
    exit_code: int | None = None  # the recorded command's (record_command)
    dated_by: str | None = None  # record_stream: where the run's start time came from
    #: Per model: USD of modelUsage tokens no response line showed, priced at the base
    #: tier (their requests' sizes are unknown), hence approximate.
    approximate_usd: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.already_imported:
            return f"run {self.agent_id} ({self.status}): already imported, nothing added"
        cost = "?" if self.reported_cost_usd is None else f"${self.reported_cost_usd:.4f}"
        text = (
            f"run {self.agent_id} ({self.status}): {self.lines} lines, {self.prompts} prompts "
            f"(+{self.reconciling_prompts} reconciling), {self.tool_events} tool events, "
            f"reported cost {cost}, {self.malformed} malformed, "
            f"{self.unknown_types} unknown types"
        )
        if self.duplicates_skipped:
            text += f", {self.duplicates_skipped} responses stored already"
        if self.approximate_usd:
            text += ", approximate (base-tier) computed cost of tokens seen only in " + (
                "modelUsage: "
                + ", ".join(f"{m} ${usd:.4f}" for m, usd in sorted(self.approximate_usd.items()))
            )
        if self.dated_by:
            text += f", dated by {self.dated_by}"
        return text if self.error is None else f"{text}\nerror: {self.error}"


def _scalar(value: Any) -> Any:
    """A value SQLite can store as it is (a finite number, text UTF-8 can encode), else None."""
    if type(value) is int:
        return value if -MAX_INTEGER <= value <= MAX_INTEGER else None
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is str:
        return value if storable(value) else None
    return None


def _storable_message(body: dict[str, Any]) -> bool:
    """Whether a message's model and text can be stored (checked per line, so that a bad
    line is refused alone rather than the response it would have joined)."""
    model = body.get("model")
    if model is not None and not (isinstance(model, str) and storable(model)):
        return False
    return storable(text_of(body.get("content")))


def _cost(value: Any) -> float | None:
    """A reported cost in USD: a finite number >= 0, else None."""
    value = _scalar(value)
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


class NoStreamJson(OrchestratorError, ValueError):
    """A file (or a command's output) held no stream-json message: nothing was recorded."""

    def __init__(self, summary: StreamSummary) -> None:
        self.summary = summary
        super().__init__(
            f"no stream-json message in {summary.lines} lines: not the output of "
            "`claude -p ... --output-format stream-json --verbose`; nothing recorded"
        )


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
        started_at: datetime | None = None,
    ) -> None:
        """``started_at`` dates a run recorded after the fact (stream lines carry no
        time): the run starts then, its responses are dated (and priced) then and it ends
        ``duration_ms`` later. Default: wall-clock time as the lines arrive."""
        self.db = db
        self.started_at = (
            None if started_at is None else parse_timestamp(format_timestamp(started_at))
        )
        self.orchestrator = orchestrator
        self.name = name
        self.parent_agent_id = parent_agent_id
        self.summary = StreamSummary(session_id=session_id)
        self._prompt = PromptText(prompt or "")
        self._pending: Response | None = None  # the response being gathered
        self._seen: set[str] = set()  # message ids already recorded
        self._covered: dict[str, dict[str, int]] = {}  # per model: tokens in per-response rows
        self._computed: dict[str, float | None] = {}  # per model: their computed cost, summed
        self._tools: dict[str, str] = {}
        # The run's tool calls logged already, once a transcript was imported into it.
        self._logged: set[tuple[str, str]] | None = None
        self._check_logged_at = 0.0  # time.monotonic() of the next _refresh_logged
        self._result: dict[str, Any] | None = None
        self._finished = False
        self._hooked = False  # the run is one hooks recorded (they log tool calls too)
        self._request_id: str | None = None  # the API request id of the pending response

    @property
    def agent_id(self) -> str | None:
        return self.summary.agent_id

    async def _ensure_run(self, message: dict[str, Any]) -> str:
        if self.summary.agent_id is None:
            session = message.get("session_id")
            if self.summary.session_id is None and isinstance(session, str):
                self.summary.session_id = session
            adopted = await self._hooked_run()
            if adopted is not None:
                self.summary.agent_id = adopted
                self._hooked = True
                await self.db.execute(
                    "UPDATE agents SET status = ? WHERE id = ?",
                    (AgentStatus.RUNNING.value, adopted),
                )
                return adopted
            orchestrator_id = await self.db.ensure_orchestrator_agent(self.orchestrator)
            self.summary.agent_id = await self.db.create_agent(
                orchestrator_id,
                self.summary.session_id,
                name=self.name,
                status=AgentStatus.RUNNING,
                parent_agent_id=self.parent_agent_id,
                started_at=self.started_at,
                created_at=self.started_at,
            )
        return self.summary.agent_id

    async def _hooked_run(self) -> str | None:
        """The run of this session that hooks (``orchestrator hook``) or ``orchestrator
        collect`` (its resource attributes) recorded, the
        session's transcript imported into it or not, and no stream yet: this stream's
        run (one session, one run)."""
        if self.summary.session_id is None or self.parent_agent_id is not None:
            return None
        row = await self.db.fetchone(
            "SELECT a.id FROM agents a WHERE a.session_id = ? AND a.parent_agent_id IS NULL "
            "AND (EXISTS (SELECT 1 FROM agent_logs l WHERE l.agent_id = a.id "
            f"AND l.log_type IN ({_HOOK_TYPES})) "
            "OR EXISTS (SELECT 1 FROM agent_attributes t WHERE t.agent_id = a.id)) "
            f"AND NOT EXISTS (SELECT 1 FROM claude_code_runs r WHERE {_RESULT_STORED}) "
            "ORDER BY a.created_at LIMIT 1",
            (self.summary.session_id,),
        )
        return None if row is None else str(row["id"])

    async def feed_line(self, line: str | bytes) -> None:
        """Record one line of the stream; a blank or malformed line is skipped and counted."""
        if not line.strip():
            return
        self.summary.lines += 1
        message = parse_line(line)
        if message is None:
            self.summary.malformed += 1
            return
        await self.feed(message)

    async def feed(self, message: dict[str, Any]) -> None:
        """Record one decoded stream message (a dict); one whose values cannot be stored
        is skipped and counted as malformed."""
        if self._finished:
            raise RuntimeError("StreamRecorder.finish() was already called")
        if not isinstance(message, dict):
            self.summary.malformed += 1
            return
        self.summary.messages += 1
        try:
            await self._feed(message)
        except InvalidInput:
            self.summary.malformed += 1

    async def _feed(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if self.summary.agent_id is None and kind not in STREAM_TYPES:
            self.summary.unknown_types += 1  # JSON, but no Claude Code message: no run yet
            return
        agent_id = await self._ensure_run(message)
        if kind == "assistant":
            body = message.get("message")
            if not isinstance(body, dict) or not _storable_message(body):
                self.summary.malformed += 1
                return
            message_id = body.get("id")
            if self._pending is not None and self._pending.message_id != message_id:
                await self._flush_response()
            if isinstance(message_id, str) and message_id in self._seen:
                return  # a late repeat of a response already written
            await self._log_tools(agent_id, body.get("content"))  # first: it may refuse it
            if self._pending is None:
                when = utc_now() if self.started_at is None else format_timestamp(self.started_at)
                self._pending = Response(
                    message_id=message_id,
                    model=None,
                    prompt=self._prompt.text,
                    created_at=when,
                )
            pending = self._pending
            pending.model = body.get("model") or pending.model
            if isinstance(message.get("request_id"), str):
                self._request_id = message["request_id"]
            if isinstance(body.get("usage"), dict):
                pending.usage = body["usage"]  # the last line's usage is the final one
            pending.add_text(body.get("content"))
            return
        await self._flush_response()
        if kind == "user":
            body = message.get("message")
            if isinstance(body, dict) and not _storable_message(body):
                self.summary.malformed += 1
                return
            content = body.get("content") if isinstance(body, dict) else None
            await self._log_tools(agent_id, content)
            text = text_of(content)
            self._prompt.read(message, text)
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

    async def _log_tools(self, agent_id: str, content: Any) -> None:
        if isinstance(content, list) and time.monotonic() >= self._check_logged_at:
            await self._refresh_logged(agent_id)
        logs = tool_log_rows(
            agent_id,
            content,
            self._tools,
            redact_secrets=self.db.redact_secrets,
            logged=self._logged,
        )
        for row in logs:
            self.db.enqueue_agent_log(row)
        self.summary.tool_events += len(logs)

    async def _refresh_logged(self, agent_id: str) -> None:
        """Read the ``(log_type, tool_use_id)`` pairs already logged for this session when
        its transcript was imported: into this run (an import, a cron job say, during the
        recording logs the tool calls from the transcript, often before the stream brings
        them) or, before the recording, into a run of its own (with the same
        ``session_id``). Those are not logged again. Asked at most once a second (one
        indexed query while no transcript was imported, one pass over those runs' logs
        once one was), and at once when a response turns out to be stored already."""
        self._check_logged_at = time.monotonic() + LOGGED_CHECK_S
        runs = await self.db.fetchall(
            "SELECT DISTINCT f.agent_id FROM claude_code_files f "
            "JOIN agents a ON a.id = f.agent_id WHERE a.id = ? OR a.session_id = ?",
            (agent_id, self.summary.session_id),
        )
        if not runs and not self._hooked:
            return
        ids = {agent_id, *(str(row["agent_id"]) for row in runs)}
        tool_id = self.db.backend.json_text("metadata", "tool_use_id")
        rows = await self.db.fetchall(
            f"SELECT log_type, {tool_id} AS tool_id FROM agent_logs "
            f"WHERE agent_id IN ({', '.join('?' * len(ids))}) "
            f"AND log_type IN ({_TOOL_LOG_TYPES})",
            tuple(ids),
        )
        logged = self._logged if self._logged is not None else set()
        logged.update((TOOL_LOG_KINDS[row["log_type"]], row["tool_id"]) for row in rows)
        self._logged = logged

    async def _flush_response(self) -> None:
        pending, self._pending = self._pending, None
        request_id, self._request_id = self._request_id, None
        if pending is None or self.summary.agent_id is None:
            return
        if isinstance(pending.message_id, str):
            self._seen.add(pending.message_id)
            stored = await self.db.fetchone(
                "SELECT p.tokens_input, p.tokens_output, p.tokens_cache_read, "
                "p.tokens_cache_write, p.tokens_cache_write_1h "
                "FROM prompt_responses r JOIN prompts p ON p.id = r.prompt_id "
                "WHERE r.message_id = ? LIMIT 1",
                (pending.message_id,),
            )
            if stored is None and request_id is not None:
                # Received by `orchestrator collect` (Claude Code's telemetry): the same call.
                stored = await self.db.fetchone(
                    "SELECT p.id, p.tokens_input, p.tokens_output, p.tokens_cache_read, "
                    "p.tokens_cache_write, p.tokens_cache_write_1h "
                    "FROM otel_requests o JOIN prompts p ON p.id = o.prompt_id "
                    "WHERE o.request_id = ?",
                    (request_id,),
                )
                if stored is not None:
                    await self.db.execute(
                        "INSERT INTO prompt_responses (prompt_id, message_id, request_id) "
                        "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (stored["id"], pending.message_id, request_id),
                    )
            if stored is not None:
                # Stored already (its transcript was imported, or this stream was): count
                # it once, and as covered, so that no reconciling prompt holds it again:
                # with the larger of the counts stored and streamed (Claude Code's stream
                # lines can carry the first output token where its transcript holds the
                # final count, or the other way round).
                self.summary.duplicates_skipped += 1
                if self._logged is None:  # its tool calls were logged too: look now
                    self._check_logged_at = 0.0
                streamed = usage_tokens(pending.usage or {})
                tokens = Usage(
                    **{c: max(stored[c] or 0, getattr(streamed, c)) for c in Usage.model_fields}
                )
                computed = compute_cost(
                    pending.model,
                    **tokens.model_dump(),
                    when=parse_timestamp(pending.created_at),
                )
                self._cover(pending.model, tokens, computed)
                return
        try:
            [prompt] = await self.db.record_prompts([pending.fields(self.summary.agent_id)])
        except InvalidInput:
            self.summary.malformed += 1  # a response fed as a dict, with a value no row holds
            return
        if isinstance(pending.message_id, str):
            await self.db.execute(
                "INSERT INTO prompt_responses (prompt_id, message_id, request_id, "
                "tokens_output_final) VALUES (?, ?, ?, ?)",
                (prompt.id, pending.message_id, request_id, prompt.tokens_output),
            )
        self._cover(pending.model, prompt, prompt.cost_computed_usd)
        self.summary.prompts += 1

    def _cover(self, model: str | None, tokens: Usage | Prompt, computed: float | None) -> None:
        covered = self._covered.setdefault(str(model), dict.fromkeys(Usage.model_fields, 0))
        for column in covered:
            covered[column] += getattr(tokens, column)
        total = self._computed.get(str(model), 0.0)
        self._computed[str(model)] = None if total is None or computed is None else total + computed

    async def finish(self, exit_code: int | None = None, error: str | None = None) -> StreamSummary:
        """Write what is pending, the result's reported usage and cost, and end the run.

        The run is ``failed`` when the result says ``is_error`` or is not a success, when
        ``exit_code`` is non-zero, when the stream ended without a result line, when
        ``error`` is given, or when writing what is pending fails (the reason is kept in
        ``error``). Only a failure to write the run's status itself is raised.
        """
        if self._finished:
            return self.summary
        self._finished = True
        result = self._result
        try:
            await self._flush_response()
            if self.summary.agent_id is not None and result is not None:
                await self._record_result(self.summary.agent_id, result)
        except Exception as exc:
            error = error or f"recording failed: {format_exception(exc)}"
        agent_id = self.summary.agent_id
        if agent_id is None:
            await self.db.flush()
            return self.summary
        if (
            error is None
            and result is not None
            and (result.get("is_error") or result.get("subtype") not in (None, "success"))
        ):
            detail = result.get("result") or result.get("errors") or ""
            error = clip(
                f"claude code result {_scalar(result.get('subtype'))}: "
                f"{text_of(detail) or _scalar(detail)}",
                1000,
            )
        if error is None and exit_code:
            error = f"command exited with code {exit_code}"
        if error is None and result is None:
            error = "the stream ended without a result line"
        try:
            await self.db.flush()
        except Exception as exc:
            error = error or f"recording failed: {format_exception(exc)}"
        status = AgentStatus.FAILED if error else AgentStatus.COMPLETED
        ended = None
        if self.started_at is not None:
            duration = _scalar((result or {}).get("duration_ms"))
            ended = self.started_at + timedelta(
                milliseconds=duration if isinstance(duration, (int, float)) and duration > 0 else 0
            )
        await self.db.update_agent_status(agent_id, status, error=error, at=ended)
        self.summary.status = status.value
        self.summary.error = error
        return self.summary

    async def _record_result(self, agent_id: str, result: dict[str, Any]) -> None:
        reported = _cost(result.get("total_cost_usd"))
        self.summary.reported_cost_usd = reported
        await self.db.execute(
            # An upsert: what a transcript import stored on the run (its environment, the
            # cost-state's figures) stays.
            "INSERT INTO claude_code_runs (agent_id, reported_cost_usd, "
            "result_subtype, is_error, num_turns, duration_ms, duration_api_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
            "reported_cost_usd = excluded.reported_cost_usd, "
            "result_subtype = excluded.result_subtype, is_error = excluded.is_error, "
            "num_turns = excluded.num_turns, duration_ms = excluded.duration_ms, "
            "duration_api_ms = excluded.duration_api_ms",
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
                if not isinstance(figures, dict) or not _scalar(model):
                    self.summary.malformed += 1
                    continue
                figures_of[model] = (
                    model_usage_of(figures),
                    _cost(figures.get("costUSD")),
                    _scalar(figures.get("webSearchRequests")),
                )
        else:
            # Older Claude Code: only the main model's usage; treat it as such.
            usage = result.get("usage")
            main = next(iter(self._covered), None)
            if isinstance(usage, dict) and main is not None:
                figures_of[main] = (usage_tokens(usage), reported, None)
        for model, (usage, model_cost, web_searches) in figures_of.items():
            tokens = usage.model_dump(exclude={"tokens_cache_write_1h"})  # modelUsage has no split
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
            # Long-context tiers apply per request: the run's cost is the sum of its
            # responses' costs (each priced alone), plus the tokens only modelUsage shows,
            # whose requests' sizes are unknown: priced at the base tier, approximately.
            computed = self._computed.get(model, 0.0)
            if computed is not None and (any(rest.values()) or model not in self._computed):
                approximate = compute_cost(model, **rest, when=self.started_at, base_tier=True)
                if approximate and any(rest.values()):
                    self.summary.approximate_usd[model] = approximate
                computed = None if approximate is None else computed + approximate
            await self.db.execute(
                "INSERT INTO agent_model_usage (agent_id, model, tokens_input, "
                "tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, "
                "cost_computed_usd, web_search_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (agent_id, model) DO UPDATE SET tokens_input = "
                "excluded.tokens_input, tokens_output = excluded.tokens_output, "
                "tokens_cache_read = excluded.tokens_cache_read, tokens_cache_write = "
                "excluded.tokens_cache_write, cost_usd = excluded.cost_usd, cost_computed_usd "
                "= excluded.cost_computed_usd, web_search_requests = "
                "excluded.web_search_requests, created_at = excluded.created_at",
                (agent_id, model, *tokens.values(), model_cost, computed, web_searches),
            )
            self.summary.model_usage[model] = {**tokens, "cost_usd": model_cost}
            if any(rest.values()):
                await self.db.record_prompts(
                    [
                        {
                            "agent_id": agent_id,
                            "content": f"{RECONCILIATION} {model} tokens in the result's "
                            "modelUsage not seen in per-response usage (subagents, "
                            "background calls)",
                            "model": model,
                            "usage": Usage(**rest),
                            "created_at": self.started_at,
                            "base_tier": True,  # a sum of requests: their tiers are unknown
                        }
                    ]
                )
                self.summary.reconciling_prompts += 1


async def record_stream(
    db: DatabaseManager,
    stream: IO[str] | IO[bytes],
    *,
    started_at: datetime | None = None,
    **options: Any,
) -> StreamSummary:
    """Record every line of an open text or binary file; return the summary.

    Stream lines carry no time, so the run is dated at ``started_at`` when given, else at
    the file's modification time minus the result's ``duration_ms`` (the file was last
    written when the run ended), else (a pipe) at import time; ``summary.dated_by`` says
    which. Idempotent: a seekable file whose run is stored already (the same session id
    and result line, or without a result line the same first response) adds nothing; the
    summary says ``already_imported``. If reading the file fails, the run is ended
    ``failed`` with the reason and the error is raised. Raises NoStreamJson (nothing
    stored) when the file holds no stream-json message.
    """
    scanned = _scan(stream)
    known = None if scanned is None else await _recorded_run(db, *scanned)
    if known is not None:
        return known
    dated_by = "the given start time"
    if started_at is None:
        started_at, dated_by = _file_start(stream, None if scanned is None else scanned[2])
    recorder = StreamRecorder(db, started_at=started_at, **options)
    recorder.summary.dated_by = dated_by
    try:
        for line in stream:
            await recorder.feed_line(line)
    except BaseException as exc:
        await recorder.finish(error=f"import interrupted: {format_exception(exc)}")
        raise
    summary = await recorder.finish()
    if summary.agent_id is None:
        raise NoStreamJson(summary)
    return summary


def _file_start(
    stream: IO[str] | IO[bytes], result: dict[str, Any] | None
) -> tuple[datetime | None, str]:
    """When the run in a file started, as its modification time minus the result's
    ``duration_ms``, and how that was found; ``None`` (import time) for a pipe."""
    try:
        mtime = os.fstat(stream.fileno()).st_mtime
    except (OSError, ValueError, AttributeError):
        return None, "import time (no file time)"
    if not getattr(stream, "seekable", lambda: False)():
        return None, "import time (no file time)"
    ended = datetime.fromtimestamp(mtime, tz=timezone.utc)
    duration = _scalar((result or {}).get("duration_ms"))
    if isinstance(duration, (int, float)) and duration >= 0:
        return ended - timedelta(milliseconds=duration), "file time minus duration_ms"
    return ended, "file time (no duration_ms)"


def _scan(stream: IO[str] | IO[bytes]) -> tuple[Any, Any, dict[str, Any] | None] | None:
    """A seekable stream's session id, first response id and result line (read through,
    then rewound), or None for a stream that cannot be read twice."""
    try:
        if not getattr(stream, "seekable", lambda: False)():
            return None
        start = stream.tell()
    except (OSError, ValueError):
        return None
    session_id: Any = None
    first_id: Any = None
    result: dict[str, Any] | None = None
    try:
        for line in stream:
            if session_id is not None and first_id is not None:
                # The session and first response are known: only a result line matters.
                if isinstance(line, bytes):
                    if b'"result"' not in line:
                        continue
                elif '"result"' not in line:
                    continue
            message = parse_line(line)
            if message is None:
                continue
            kind, body = message.get("type"), message.get("message")
            session_id = session_id or message.get("session_id")
            if kind == "assistant" and first_id is None and isinstance(body, dict):
                first_id = body.get("id")
            elif kind == "result":
                result = message
    finally:
        stream.seek(start)
    return session_id, first_id, result


#: A run whose stream's ``result`` line was stored (a transcript's ``cost-state`` also
#: makes a ``claude_code_runs`` row, with neither of these).
_RESULT_STORED = "r.agent_id = a.id AND (r.result_subtype IS NOT NULL OR r.num_turns IS NOT NULL)"


async def _recorded_run(
    db: DatabaseManager, session_id: Any, first_id: Any, result: dict[str, Any] | None
) -> StreamSummary | None:
    """The summary of the run (session, first response, result line) was recorded as
    before, or None (a new run)."""
    if not isinstance(session_id, str):
        return None
    if result is not None:
        same = " AND ".join(
            db.backend.same(f"r.{column}")
            for column in (
                "result_subtype",
                "num_turns",
                "duration_ms",
                "duration_api_ms",
                "reported_cost_usd",
            )
        )
        found = await db.fetchone(
            "SELECT a.id, a.status FROM agents a JOIN claude_code_runs r ON r.agent_id = a.id "
            f"WHERE a.session_id = ? AND {same} LIMIT 1",
            (
                session_id,
                _scalar(result.get("subtype")),
                _scalar(result.get("num_turns")),
                _scalar(result.get("duration_ms")),
                _scalar(result.get("duration_api_ms")),
                _cost(result.get("total_cost_usd")),
            ),
        )
    elif isinstance(first_id, str):
        found = await db.fetchone(
            "SELECT a.id, a.status FROM prompt_responses pr "
            "JOIN prompts p ON p.id = pr.prompt_id JOIN agents a ON a.id = p.agent_id "
            "WHERE pr.message_id = ? AND a.session_id = ? AND NOT EXISTS "
            f"(SELECT 1 FROM claude_code_runs r WHERE {_RESULT_STORED}) LIMIT 1",
            (first_id, session_id),
        )
    else:
        found = None
    if found is None:
        return None
    return StreamSummary(
        agent_id=found["id"], session_id=session_id, status=found["status"], already_imported=True
    )


#: Seconds an interrupted recording waits for the command to exit before stopping it.
STOP_GRACE_S = 5.0


async def record_command(
    db: DatabaseManager,
    argv: Sequence[str],
    *,
    output: IO[bytes] | None = None,
    recorder: StreamRecorder | None = None,
    **options: Any,
) -> tuple[int, StreamSummary]:
    """Run ``argv``, copy its stdout to ``output`` byte for byte as it arrives, record it.

    Returns the command's exit code (``128 + N`` when signal N ended it) and the summary;
    stderr is left to the terminal. Whatever happens to the recording (a database error,
    a closed ``output``), the command runs to its end with its output read, and the run
    is ended ``failed`` with the reason. Cancelled (Ctrl-C), the command is given
    STOP_GRACE_S seconds to exit, then terminated; the run ends ``failed`` and the
    cancellation is raised, with the exit code in ``recorder.summary.exit_code``.
    Raises FileNotFoundError when the command does not exist (nothing is recorded).
    ``recorder`` (default: one made with ``options``) records into ``db``.
    """
    if not argv:
        raise ValueError("no command given to record")
    out: IO[bytes] | None = output if output is not None else sys.stdout.buffer
    recorder = recorder if recorder is not None else StreamRecorder(db, **options)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout is not None
    buffer = b""
    failure: str | None = None  # why recording stopped; the command's output still flows
    try:
        while True:
            chunk = await proc.stdout.read(1 << 16)
            if not chunk:
                break
            if out is not None:
                try:
                    out.write(chunk)
                    out.flush()
                except (OSError, ValueError):  # a closed pipe: keep reading, stop copying
                    out = None
            if failure is not None:
                continue
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            try:
                for line in lines:
                    await recorder.feed_line(line)
            except Exception as exc:
                failure, buffer = f"recording failed: {format_exception(exc)}", b""
        if buffer and failure is None:
            try:
                await recorder.feed_line(buffer)
            except Exception as exc:
                failure = f"recording failed: {format_exception(exc)}"
        code = await proc.wait()
    except BaseException as exc:
        if proc.returncode is None:
            await _stop(proc)
        recorder.summary.exit_code = _exit_code(proc.returncode)
        await recorder.finish(error=f"recording interrupted: {type(exc).__name__}")
        raise
    code = _exit_code(code)
    recorder.summary.exit_code = code
    try:
        summary = await recorder.finish(exit_code=code, error=failure)
    except Exception as exc:  # the run's status cannot be written: say so, keep the code
        recorder.summary.error = f"recording failed: {format_exception(exc)}"
        summary = recorder.summary
    return code, summary


def _exit_code(returncode: int | None) -> int:
    """A process's exit status as a shell reports it: 128 + N when signal N ended it."""
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Let ``proc`` exit on its own (a Ctrl-C reaches it too), else terminate, else kill."""
    for stop in (None, signal.SIGTERM, signal.SIGKILL):
        if stop is not None:
            try:
                proc.send_signal(stop)
            except ProcessLookupError:
                return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE_S)
            return
        except asyncio.TimeoutError:
            continue


__all__ = ["StreamRecorder", "StreamSummary", "record_command", "record_stream"]
