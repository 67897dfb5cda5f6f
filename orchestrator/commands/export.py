"""``orchestrator export otlp``: finished runs sent as OpenTelemetry GenAI traces.

Each top-level run is one trace, sent over OTLP/HTTP (protobuf) with the official
OpenTelemetry SDK's exporter, to Arize Phoenix, Langfuse, Jaeger, Tempo or a collector:

- ``invoke_agent {workflow}``: the run (``gen_ai.operation.name`` ``invoke_agent``,
  ``gen_ai.agent.name`` the workflow, ``gen_ai.conversation.id`` the session); a failed
  run's span has status ERROR and an ``exception`` event. A subagent run is a child
  ``invoke_agent`` span of its parent's, in the same trace.
- ``chat {model}``: one per prompt, with ``gen_ai.provider.name`` ``anthropic``, the
  model, ``gen_ai.usage.input_tokens`` counted as the GenAI conventions say for Anthropic
  (input + cache read + cache creation), output, cache read and cache creation tokens,
  and the stored cost.
- ``execute_tool {name}``: one per tool call, its start (``tool_use``, ``PreToolUse``)
  and end (``tool_result``, ``PostToolUse[Failure]``) logs joined on ``tool_use_id``.
- one span per step (``step_start`` .. ``step_end``), parent of the prompts and tool
  calls made during it.

Each span also carries the OpenInference attributes Arize Phoenix reads
(``openinference.span.kind``, ``llm.model_name``, ``llm.token_count.*``, ``session.id``,
``input.value``/``output.value``) and Langfuse's where they differ
(``langfuse.observation.type``, ``usage_details``, ``cost_details``), so that tokens and
cost show in both without configuration.

Ids are stable: a run's trace id is its UUID, span ids are hashes of the row ids, so a
run sent twice is one trace. ``otlp_exports`` records each run an endpoint acknowledged
(after the acknowledgement): a restart sends nothing twice (at most, after a crash
between the two, one batch again: the same ids). Reads through the backend seam, so
the store may be an SQLite file or a PostgreSQL URL. The SDK is imported on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from hashlib import blake2b
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..core.errors import OrchestratorError
from ..core.ids import parse_timestamp, utc_now
from ..store.targets import backend_for, redact_url

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from ..store.backend import Backend

#: Top-level runs read, turned into spans and sent at a time.
BATCH = 100
#: The run states after which a run changes no more (what is exported).
FINISHED = ("completed", "failed", "cancelled")
TOOL_STARTS = ("tool_use", "PreToolUse")
TOOL_ENDS = ("tool_result", "PostToolUse", "PostToolUseFailure")
LOG_TYPES = ("step_start", "step_end", *TOOL_STARTS, *TOOL_ENDS)
PROVIDER = "anthropic"
SERVICE_NAME = "adw-orchestrator"
TRACES_PATH = "/v1/traces"


class ExportError(OrchestratorError):
    """The endpoint refused the spans or could not be reached; nothing of the batch was
    recorded as sent."""


@dataclass
class ExportResult:
    endpoint: str
    runs: int = 0
    spans: int = 0


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of ``endpoint``: a base URL gets ``/v1/traces`` (as
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` does); one ending in it is kept. Raises ValueError for
    anything but an http(s) URL with a host."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--endpoint {endpoint!r}: not an http:// or https:// URL")
    url = endpoint.strip().rstrip("/")
    return url if parts.path.rstrip("/").endswith(TRACES_PATH) else url + TRACES_PATH


def parse_headers(text: str | None) -> dict[str, str]:
    """``K=V,K2=V2`` (as ``OTEL_EXPORTER_OTLP_HEADERS``: values may be %-encoded) as a dict.
    Raises ValueError naming the pair without ``=`` or with no name."""
    headers: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"--headers: {pair.strip()!r} is not NAME=VALUE")
        headers[unquote(name.strip())] = unquote(value.strip())
    return headers


# -- ids and times -------------------------------------------------------------------------


def trace_id_of(run_id: str) -> int:
    """A top-level run's trace id: its UUID (so the trace id is the run id's hex), else a
    hash of the id."""
    try:
        value = uuid.UUID(run_id).int
    except ValueError:
        value = 0
    return value or int.from_bytes(blake2b(run_id.encode(), digest_size=16).digest(), "big") or 1


def span_id_of(kind: str, key: str) -> int:
    return int.from_bytes(blake2b(f"{kind}:{key}".encode(), digest_size=8).digest(), "big") or 1


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ns(value: str | None) -> int | None:
    """A stored timestamp as nanoseconds since the epoch."""
    if not value:
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _ms(value: Any) -> int:
    return int(float(value) * 1_000_000) if value else 0


# -- spans ---------------------------------------------------------------------------------


@dataclass
class _Context:
    """What every span of an export shares."""

    resource: Resource
    scope: InstrumentationScope


def _shared() -> _Context:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from ..core.pricing import _installed_version

    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are read (a Phoenix project:
    # OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=NAME); the service defaults to ours.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    return _Context(
        resource, InstrumentationScope(SERVICE_NAME, _installed_version("adw-orchestrator"))
    )


class _Trace:
    """The spans of one top-level run and its subagents, built from its rows."""

    def __init__(self, shared: _Context, root_id: str) -> None:
        from opentelemetry import trace as api
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import Status, StatusCode

        self._api, self._span, self._event = api, ReadableSpan, Event
        self._status, self._code = Status, StatusCode
        self.shared = shared
        self.trace_id = trace_id_of(root_id)
        self.spans: list[ReadableSpan] = []

    def context(self, span_id: int) -> Any:
        return self._api.SpanContext(
            self.trace_id, span_id, is_remote=False, trace_flags=self._api.TraceFlags(1)
        )

    def add(
        self,
        name: str,
        span_id: int,
        parent: int | None,
        start: int,
        end: int,
        attributes: dict[str, Any],
        *,
        client: bool = False,
        error: str | None = None,
        ok: bool = False,
        at: int | None = None,
    ) -> None:
        events: tuple[Any, ...] = ()
        if error is not None:
            kind = error.split(":", 1)[0].strip() if ":" in error else "error"
            attributes.setdefault("error.type", kind[:200] or "error")
            status = self._status(self._code.ERROR, error)
            events = (
                self._event(
                    "exception",
                    {"exception.type": attributes["error.type"], "exception.message": error},
                    at if at is not None else end,
                ),
            )
        else:
            status = self._status(self._code.OK if ok else self._code.UNSET)
        self.spans.append(
            self._span(
                name,
                context=self.context(span_id),
                parent=self.context(parent) if parent is not None else None,
                resource=self.shared.resource,
                attributes={k: v for k, v in attributes.items() if v is not None},
                events=events,
                kind=self._api.SpanKind.CLIENT if client else self._api.SpanKind.INTERNAL,
                status=status,
                start_time=start,
                end_time=max(end, start),
                instrumentation_scope=self.shared.scope,
            )
        )


def _json(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tool_name(log: dict[str, Any], metadata: dict[str, Any]) -> str:
    name = metadata.get("name") or metadata.get("tool") or metadata.get("tool_name")
    if isinstance(name, str) and name:
        return name
    head = str(log["message"]).split(":", 1)[0].split(" ", 1)[0]
    return head or "tool"


@dataclass
class _Step:
    span_id: int
    name: str
    start: int
    end: int | None = None
    error: str | None = None
    log: dict[str, Any] | None = None


def build_traces(
    runs: Sequence[dict[str, Any]],
    prompts: Sequence[dict[str, Any]],
    logs: Sequence[dict[str, Any]],
    workflows: dict[str, str],
    shared: _Context | None = None,
) -> dict[str, list[ReadableSpan]]:
    """The spans of each top-level run among ``runs`` (rows of ``agents``; subagent runs
    included, their parents before them), from the rows of its prompts and logs (in time
    order), keyed by the top-level run's id."""
    shared = shared or _shared()
    by_id = {run["id"]: run for run in runs}
    root_of: dict[str, str] = {}
    for run in runs:
        parent = run.get("parent_agent_id")
        if isinstance(parent, str) and parent in by_id:
            root_of[run["id"]] = root_of.get(parent, parent)
        else:
            root_of[run["id"]] = run["id"]
    traces: dict[str, _Trace] = {}
    for run in runs:
        root = root_of[run["id"]]
        if root not in traces:
            traces[root] = _Trace(shared, root)
    prompts_of: dict[str, list[dict[str, Any]]] = {}
    for prompt in prompts:
        prompts_of.setdefault(prompt["agent_id"], []).append(prompt)
    logs_of: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        logs_of.setdefault(log["agent_id"], []).append(log)
    for run in runs:
        _run_spans(
            traces[root_of[run["id"]]],
            run,
            by_id,
            workflows,
            prompts_of.get(run["id"], []),
            logs_of.get(run["id"], []),
        )
    return {root: trace.spans for root, trace in traces.items()}


def _run_spans(
    trace: _Trace,
    run: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    workflows: dict[str, str],
    prompts: list[dict[str, Any]],
    logs: list[dict[str, Any]],
) -> None:
    run_id = run["id"]
    run_span = span_id_of("run", run_id)
    parent_id = run.get("parent_agent_id")
    parent = span_id_of("run", parent_id) if parent_id in by_id else None
    session = run.get("session_id")
    workflow = workflows.get(run["orchestrator_agent_id"], "agent")
    starts = [t for t in (_ns(run.get("started_at")), _ns(run["created_at"])) if t is not None]
    run_start = min(starts) if starts else 0
    ends = [run_start]

    # Steps: step_start .. step_end of the same name (a step_end alone: its duration back).
    steps: list[_Step] = []
    open_steps: dict[str, list[_Step]] = {}
    tools: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    # A call and its result joined on tool_use_id, whichever was stored first (a hook's
    # two events can share a timestamp); without one, in order, per tool name.
    started: set[str] = set()
    results: dict[str, dict[str, Any]] = {}
    for log in logs:
        if log["log_type"] in TOOL_STARTS or log["log_type"] in TOOL_ENDS:
            log["_metadata"] = metadata = _json(log.get("metadata"))
            call_id = metadata.get("tool_use_id")
            if isinstance(call_id, str) and call_id:
                if log["log_type"] in TOOL_STARTS:
                    started.add(call_id)
                else:
                    results.setdefault(call_id, log)
    unnamed_starts: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        kind, at = log["log_type"], _ns(log["created_at"]) or run_start
        ends.append(at)
        if kind == "step_start":
            step = _Step(span_id_of("step", log["id"]), log.get("step") or "step", at, log=log)
            steps.append(step)
            open_steps.setdefault(step.name, []).append(step)
        elif kind == "step_end":
            name = log.get("step") or "step"
            pending = open_steps.get(name)
            if pending:
                step = pending.pop()
            else:
                step = _Step(span_id_of("step", log["id"]), name, at - _ms(log.get("duration_ms")))
                steps.append(step)
            step.end = at
            metadata = _json(log.get("metadata"))
            if metadata.get("status") == "failed":
                step.error = str(metadata.get("error") or log["message"])
        elif kind in TOOL_STARTS or kind in TOOL_ENDS:
            metadata = log["_metadata"]
            call_id = metadata.get("tool_use_id")
            keyed = isinstance(call_id, str) and bool(call_id)
            name = _tool_name(log, metadata)
            if kind in TOOL_STARTS:
                if keyed:
                    tools.append((log, results.pop(call_id, None)))
                else:
                    unnamed_starts.setdefault(name, []).append(log)
                    tools.append((log, None))
            elif keyed:
                if call_id not in started:  # a result whose call was not logged
                    tools.append((None, log))
            elif unnamed_starts.get(name):
                call = unnamed_starts[name].pop(0)
                index = next(i for i, pair in enumerate(tools) if pair[0] is call)
                tools[index] = (call, log)
            else:
                tools.append((None, log))

    def step_at(moment: int, name: str | None = None) -> int:
        """The innermost step open at ``moment`` (the one named ``name`` when given)."""
        chosen = None
        for step in steps:
            if name is not None and step.name != name:
                continue
            if step.start <= moment and (step.end is None or moment <= step.end):
                chosen = step
        return chosen.span_id if chosen is not None else run_span

    # Prompts
    for prompt in prompts:
        start = _ns(prompt["created_at"]) or run_start
        end = _ns(prompt.get("completed_at"))
        if end is None or end < start:
            end = start + _ms(prompt.get("duration_ms"))
        ends.append(end)
        model = prompt.get("model")
        uncached = int(prompt["tokens_input"] or 0)
        read = int(prompt["tokens_cache_read"] or 0)
        written = int(prompt["tokens_cache_write"] or 0)
        output = int(prompt["tokens_output"] or 0)
        whole = uncached + read + written
        cost = prompt.get("cost_usd")
        usage = {
            "input": uncached,
            "input_cached_tokens": read,
            "input_cache_creation": written,
            "output": output,
        }
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.conversation.id": session,
            "gen_ai.usage.input_tokens": whole,
            "gen_ai.usage.output_tokens": output,
            "gen_ai.usage.cache_read.input_tokens": read,
            "gen_ai.usage.cache_creation.input_tokens": written,
            "openinference.span.kind": "LLM",
            "llm.provider": PROVIDER,
            "llm.system": PROVIDER,
            "llm.model_name": model,
            "llm.token_count.prompt": whole,
            "llm.token_count.completion": output,
            "llm.token_count.total": whole + output,
            "llm.token_count.prompt_details.cache_read": read,
            "llm.token_count.prompt_details.cache_write": written,
            "llm.cost.total": cost,
            "session.id": session,
            "input.value": prompt.get("content"),
            "input.mime_type": "text/plain",
            "output.value": prompt.get("response"),
            "output.mime_type": "text/plain",
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": model,
            "langfuse.observation.usage_details": json.dumps(usage),
            "langfuse.observation.cost_details": None
            if cost is None
            else json.dumps({"total": cost}),
            "adw.prompt.id": prompt["id"],
            "adw.cost_source": prompt.get("cost_source"),
            "adw.tokens.cache_write_1h": int(prompt.get("tokens_cache_write_1h") or 0),
        }
        failed = prompt.get("status") == "failed"
        trace.add(
            f"chat {model}" if model else "chat",
            span_id_of("prompt", prompt["id"]),
            step_at(start),
            start,
            end,
            attributes,
            client=True,
            error=str(prompt.get("error") or "failed") if failed else None,
            ok=prompt.get("status") == "completed",
        )

    # Tool calls
    for begun, ended in tools:
        first = begun or ended
        assert first is not None
        metadata = {**(begun or {}).get("_metadata", {}), **(ended or {}).get("_metadata", {})}
        name = _tool_name(first, metadata)
        end = _ns(ended["created_at"]) if ended is not None else None
        took = (ended or {}).get("duration_ms") or metadata.get("duration_ms")
        if begun is not None:
            start = _ns(begun["created_at"]) or run_start
        else:
            start = (end or run_start) - _ms(took if isinstance(took, (int, float)) else 0)
        end = end if end is not None else start
        failed = bool(metadata.get("is_error"))
        arguments = metadata.get("input")
        result = ended["message"] if ended is not None else None
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": metadata.get("tool_use_id"),
            "gen_ai.conversation.id": session,
            "openinference.span.kind": "TOOL",
            "tool.name": name,
            "session.id": session,
            "input.value": arguments if isinstance(arguments, str) else None,
            "output.value": result,
            "langfuse.observation.type": "tool",
        }
        trace.add(
            f"execute_tool {name}",
            span_id_of("tool", first["id"]),
            step_at(start, first.get("step")) if first.get("step") else step_at(start),
            start,
            end,
            attributes,
            error=(result or "tool failed") if failed else None,
            ok=ended is not None and not failed,
        )

    # Steps
    for step in steps:
        end = step.end if step.end is not None else max(ends)
        trace.add(
            step.name,
            step.span_id,
            run_span,
            step.start,
            end,
            {
                "openinference.span.kind": "CHAIN",
                "adw.step": step.name,
                "session.id": session,
                "langfuse.observation.type": "chain",
            },
            error=step.error,
            ok=step.end is not None and step.error is None,
        )

    # The run itself
    run_end = _ns(run.get("completed_at"))
    if run_end is None or run_end < run_start:
        run_end = max(ends)
    status = run.get("status")
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": workflow,
        "gen_ai.agent.id": run_id,
        "gen_ai.conversation.id": session,
        "openinference.span.kind": "AGENT",
        "agent.name": workflow,
        "session.id": session,
        "input.value": run.get("name"),
        "langfuse.observation.type": "agent",
        "langfuse.trace.name": workflow if parent is None else None,
        "adw.run.id": run_id,
        "adw.run.name": run.get("name"),
        "adw.run.status": status,
        "adw.run.prompt_count": run.get("prompt_count"),
        "adw.run.total_cost_usd": run.get("total_cost_usd"),
    }
    trace.add(
        f"invoke_agent {workflow}",
        run_span,
        parent,
        run_start,
        run_end,
        attributes,
        error=str(run.get("error") or "failed") if status == "failed" else None,
        ok=status == "completed",
    )


# -- reading the store, sending, recording ---------------------------------------------------


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


async def _pending_roots(
    backend: Backend, endpoint: str, since: str | None, limit: int
) -> list[str]:
    where = [
        f"a.status IN ({_marks(len(FINISHED))})",
        "a.parent_agent_id IS NULL",
        "NOT EXISTS (SELECT 1 FROM otlp_exports e WHERE e.endpoint = ? AND e.agent_id = a.id)",
    ]
    params: list[Any] = [*FINISHED, endpoint]
    if since is not None:
        where.append("a.created_at >= ?")
        params.append(since)
    rows = await backend.fetchall(
        f"SELECT a.id FROM agents a WHERE {' AND '.join(where)} "
        f"ORDER BY a.created_at, a.id LIMIT {int(limit)}",
        params,
    )
    return [row["id"] for row in rows]


_RUN_COLUMNS = (
    "id, orchestrator_agent_id, session_id, status, created_at, started_at, completed_at, "
    "name, error, parent_agent_id, prompt_count, total_cost_usd"
)
_PROMPT_COLUMNS = (
    "id, agent_id, content, response, status, tokens_input, tokens_output, "
    "tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd, cost_source, "
    "created_at, completed_at, model, duration_ms, error"
)


async def _rows_of(
    backend: Backend, roots: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The runs (roots, then their subagents, level by level), prompts and logs of
    ``roots``."""
    runs = await backend.fetchall(
        f"SELECT {_RUN_COLUMNS} FROM agents WHERE id IN ({_marks(len(roots))})", roots
    )
    level = [run["id"] for run in runs]
    seen = set(level)
    while level:
        children = await backend.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM agents WHERE parent_agent_id IN ({_marks(len(level))}) "
            "ORDER BY created_at, id",
            level,
        )
        children = [child for child in children if child["id"] not in seen]
        seen.update(child["id"] for child in children)
        runs.extend(children)
        level = [child["id"] for child in children]
    ids = [run["id"] for run in runs]
    prompts: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        prompts += await backend.fetchall(
            f"SELECT {_PROMPT_COLUMNS} FROM prompts WHERE agent_id IN ({_marks(len(chunk))}) "
            "ORDER BY created_at, id",
            chunk,
        )
        logs += await backend.fetchall(
            "SELECT id, agent_id, log_type, message, metadata, created_at, step, duration_ms "
            f"FROM agent_logs WHERE agent_id IN ({_marks(len(chunk))}) "
            f"AND log_type IN ({_marks(len(LOG_TYPES))}) ORDER BY created_at, id",
            [*chunk, *LOG_TYPES],
        )
    return runs, prompts, logs


class _Captured(logging.Handler):
    """The exporter's own log lines during one export (its reason for a failure)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _exporter_logs() -> Iterator[_Captured]:
    """Keep the SDK's export warnings off stderr (they become one ExportError line)."""
    logger = logging.getLogger("opentelemetry.exporter")
    handler = _Captured()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _reason(messages: list[str], url: str, timeout: float) -> str:
    """Why an export failed, from the SDK's log lines: a refused or unreachable endpoint
    (retried until ``timeout``) said as the connection error, else the SDK's last line."""
    transient = [m for m in messages if m.startswith("Transient error ")]
    if transient:
        cause = transient[-1][len("Transient error ") :].split(" encountered while")[0]
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", cause)
        return f"{errno.group(0) if errno else cause} (retried for {timeout:g} s)"
    last = messages[-1] if messages else "export failed"
    if "timeout, max retries" in last:  # gave up before a retry: the SDK says no cause
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), timeout=2).close()
        except OSError as exc:
            return f"{exc} (after {timeout:g} s)"
    return last


def make_exporter(endpoint: str, headers: dict[str, str], timeout: float) -> SpanExporter:
    """The OpenTelemetry SDK's OTLP/HTTP protobuf span exporter for ``endpoint``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)


class Exporter:
    """Sends a store's finished runs to one OTLP endpoint, each run once."""

    def __init__(
        self,
        target: str | os.PathLike[str],
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        since: str | None = None,
        timeout: float = 10.0,
        batch: int = BATCH,
        span_exporter: SpanExporter | None = None,
        progress: Callable[[ExportResult], None] | None = None,
    ) -> None:
        self.url = traces_url(endpoint)
        if since is not None:
            try:
                parse_timestamp(since)
            except ValueError:
                raise ValueError(f"--since {since!r}: not a day (YYYY-MM-DD)") from None
        self.target, self.since, self.batch = target, since, batch
        self.key = redact_url(self.url)  # what otlp_exports records (no password)
        self.headers, self.timeout = headers or {}, timeout
        self.span_exporter = span_exporter
        self.progress = progress
        self.result = ExportResult(self.key)

    async def _open(self) -> Backend:
        backend = backend_for(self.target)
        if await backend.identity() is None:
            raise ExportError(f"no database at {backend.location}")
        await backend.open()
        return backend

    async def _send_pending(
        self, backend: Backend, exporter: SpanExporter, shared: _Context
    ) -> int:
        """Send every finished run not yet sent; return how many were."""
        sent = 0
        workflows = {
            row["id"]: row["name"]
            for row in await backend.fetchall("SELECT id, name FROM orchestrator_agents")
        }
        while roots := await _pending_roots(backend, self.key, self.since, self.batch):
            runs, prompts, logs = await _rows_of(backend, roots)
            traces = build_traces(runs, prompts, logs, workflows, shared)
            spans = [span for root in roots for span in traces.get(root, [])]
            with _exporter_logs() as captured:
                outcome = await asyncio.to_thread(exporter.export, spans)
            if outcome.name != "SUCCESS":
                raise ExportError(
                    f"{self.key}: {_reason(captured.messages, self.url, self.timeout)}"
                )
            now = utc_now()
            async with backend.transaction():
                await backend.executemany(
                    "INSERT INTO otlp_exports (endpoint, agent_id, trace_id, spans, exported_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        (
                            self.key,
                            root,
                            f"{trace_id_of(root):032x}",
                            len(traces.get(root, [])),
                            now,
                        )
                        for root in roots
                    ],
                )
            sent += len(roots)
            self.result.runs += len(roots)
            self.result.spans += len(spans)
            if self.progress is not None:
                self.progress(self.result)
        return sent

    async def run(
        self, *, follow: bool = False, poll: float = 2.0, stop: threading.Event | None = None
    ) -> ExportResult:
        """Send what is pending; with ``follow``, keep sending runs as they finish (every
        ``poll`` seconds) until ``stop`` is set."""
        shared = _shared()
        exporter = self.span_exporter or make_exporter(self.url, self.headers, self.timeout)
        backend = await self._open()
        try:
            while True:
                await self._send_pending(backend, exporter, shared)
                if not follow or (stop is not None and stop.is_set()):
                    break
                deadline = time.monotonic() + poll
                while time.monotonic() < deadline:
                    if stop is not None and stop.is_set():
                        break
                    await asyncio.sleep(min(0.2, poll))
        finally:
            await backend.close()
            if self.span_exporter is None:
                exporter.shutdown()
        return self.result


def export_otlp(
    target: str | os.PathLike[str],
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    since: str | None = None,
    follow: bool = False,
    poll: float = 2.0,
    timeout: float = 10.0,
    stop: threading.Event | None = None,
    progress: Callable[[ExportResult], None] | None = None,
    span_exporter: SpanExporter | None = None,
) -> ExportResult:
    """Send the finished runs of the store ``target`` (an SQLite path or a PostgreSQL URL)
    created on or after ``since`` (a day) that ``endpoint`` has not acknowledged yet, one
    trace per top-level run; with ``follow``, keep sending runs as they finish until
    ``stop`` is set (or KeyboardInterrupt).

    Raises ValueError for a bad endpoint or day, ExportError when the endpoint refuses a
    batch or cannot be reached (the batches acknowledged before it stay recorded).
    """
    exporter = Exporter(
        target,
        endpoint,
        headers=headers,
        since=since,
        timeout=timeout,
        span_exporter=span_exporter,
        progress=progress,
    )
    return asyncio.run(exporter.run(follow=follow, poll=poll, stop=stop))


__all__ = ["ExportError", "ExportResult", "Exporter", "build_traces", "export_otlp"]
