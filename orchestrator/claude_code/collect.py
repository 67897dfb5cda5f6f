"""``orchestrator collect``: Claude Code's own OpenTelemetry export, received into the store.

Claude Code exports events and metrics over OTLP/HTTP (``CLAUDE_CODE_ENABLE_TELEMETRY=1``).
This module is the receiver: ``POST /v1/logs``, ``/v1/metrics`` and ``/v1/traces``
(JSON or protobuf, gzip or not; :mod:`orchestrator.claude_code.otlp` reads them) and ``POST /hooks``
(the JSON of a Claude Code ``http`` hook, stored by :mod:`orchestrator.claude_code.hook`).

What is stored, built by :mod:`orchestrator.core.rows` as every writer's rows are:

- a session (``session.id``) is a run of the workflow named by the resource attribute
  ``adw.workflow`` (else ``claude-code``), its name the session id; the run another
  writer made for the session (hooks, an import of its transcript, a stream) is the same
  run. Every resource attribute and the session's own (``user.id``, ``terminal.type``...)
  is kept in ``agent_attributes`` (one row per run and key: filterable).
- each ``claude_code.api_request`` is a prompt: its tokens (cache reads, writes and their
  1-hour part), model, duration, with Claude Code's ``cost_usd`` stored as the reported
  cost and the price-based cost beside it (``cost_computed_usd``); its text is the
  ``claude_code.user_prompt`` of the same ``prompt.id`` (with ``OTEL_LOG_USER_PROMPTS=1``),
  its response the ``assistant_response`` of the same ``request_id``. ``otel_requests``
  keeps the request id: a call a transcript or stream stored already (the same request
  id) is not stored again, and an import meeting a collected call skips it.
- ``tool_result`` (a ``tool_result`` log, once per ``tool_use_id`` in the run),
  ``api_error`` (an ``error`` log), ``tool_decision`` and Claude Code's other events
  (``event`` logs), each log's id derived from the session and the event's sequence
  number, so that a batch sent twice (an exporter's retry) is stored once.
- metric data points as daily sums per name and attributes (``otel_metrics_daily``).

Acknowledged means stored: a request is read whole and every row built (and so checked)
before anything is written; its rows are written in a savepoint of a transaction that
batches concurrent requests, and the answer waits for the commit. A malformed request
gets a 400 naming the problem and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..core.errors import InvalidInput
from ..core.ids import utc_now
from . import otlp
from .text import LOG_LIMIT, TEXT_LIMIT, TOOL_INPUT_LIMIT, clip

#: The workflow of a session whose resource names none (``adw.workflow``).
DEFAULT_WORKFLOW = "claude-code"
WORKFLOW_ATTRIBUTE = "adw.workflow"
#: A run id standing in for the session's run until the writer knows it.
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
#: Attributes Claude Code puts on every event that describe the session, not the event.
SESSION_ATTRIBUTES = frozenset(
    {
        "session.id",
        "app.version",
        "organization.id",
        "user.account_uuid",
        "user.id",
        "user.email",
        "terminal.type",
        "anthropic.provider",
        "anthropic.custom_base_url",
    }
)
_NOT_METADATA = SESSION_ATTRIBUTES | {"event.name", "event.timestamp"}
#: The event attributes kept as the session's (with the resource's).
_SESSION_SET = frozenset(SESSION_ATTRIBUTES | {WORKFLOW_ATTRIBUTE})
_LOG_NAMESPACE = uuid.UUID("6f1b3a52-2a4e-4d8c-9a37-1f0c6d0e7c11")
_LOG_NAMESPACE_BYTES = _LOG_NAMESPACE.bytes


# -- rows, built before anything is written ------------------------------------------------


@dataclass
class CollectedPrompt:
    request_id: str | None
    otel_prompt_id: str | None
    row: tuple[Any, ...]  # rows.prompt_tuple, agent_id the PLACEHOLDER
    reported_cost_usd: float | None
    ttft_ms: float | None
    query_source: str | None


@dataclass
class SessionRows:
    """What one request holds for one session."""

    session_id: str
    workflow: str
    first_at: str
    last_at: str
    attributes: dict[str, str] = field(default_factory=dict)
    prompts: list[CollectedPrompt] = field(default_factory=list)
    user_prompts: list[tuple[str, str | None, str]] = field(default_factory=list)
    responses: dict[str, str] = field(default_factory=dict)  # request id -> response text
    logs: list[tuple[Any, ...]] = field(default_factory=list)  # rows.agent_log_row
    tool_results: dict[str, str] = field(default_factory=dict)  # log id -> tool_use_id


@dataclass
class Batch:
    """Every row of one request, checked; the writer only finds runs and skips repeats."""

    sessions: dict[str, SessionRows] = field(default_factory=dict)
    metrics: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(
            len(s.prompts) + len(s.user_prompts) + len(s.logs) + len(s.responses)
            for s in self.sessions.values()
        ) + len(self.metrics)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _number(attrs: dict[str, Any], key: str, where: str) -> float | None:
    """A numeric attribute (Claude Code sends some as text: ``"708"``); absent: None."""
    value = attrs.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise otlp.BadRequest(f"{where}.{key}: must be a number, got {value!r:.60}") from None
    else:
        raise otlp.BadRequest(f"{where}.{key}: must be a number, got {value!r:.60}")
    if not (number >= 0 and number < float("inf")):
        raise otlp.BadRequest(f"{where}.{key}: must be a finite number >= 0, got {value!r:.60}")
    return number


def _count(attrs: dict[str, Any], key: str, where: str) -> int | None:
    value = attrs.get(key)
    if type(value) is int and 0 <= value < 2**53:  # as Claude Code sends a count: itself
        return value
    number = _number(attrs, key, where)
    if number is None:
        return None
    if not number.is_integer():
        raise otlp.BadRequest(f"{where}.{key}: must be a whole number, got {number!r}")
    return int(number)


def _string(attrs: dict[str, Any], key: str, where: str) -> str | None:
    value = attrs.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise otlp.BadRequest(f"{where}.{key}: must be a string, got {value!r:.60}")
    return value


def _log_id(event: otlp.Event) -> str | None:
    """The id of an event's log: the same for the same event (an exporter's retry is
    stored once), from the SHA-1 of ``_LOG_NAMESPACE`` and ``"session\0sequence\0name"``.
    With the event's own time: a UUID version 8 (RFC 9562's custom layout) of that time's
    milliseconds in the first 48 bits, as version 7's, and 74 bits of the hash, so new logs
    go to the end of the primary key's index as the project's other ids do (a random id
    rewrote a page of that index per log at every commit: 13% of a transaction's writing).
    Without a time of its own (a retry would be stamped anew): ``uuid5``. Both without
    building a UUID object (its checks cost more than the hash)."""
    sequence = event.attributes.get("event.sequence")
    if sequence is None:
        return None
    name = f"{event.session_id}\0{sequence}\0{event.name}".encode()
    digest = hashlib.sha1(_LOG_NAMESPACE_BYTES + name).digest()
    ms = event.ms
    if ms is not None and 0 <= ms < 1 << 48:
        # unix_ts_ms (48 bits), version 8, 12 bits, variant 0b10, 62 bits
        bits = int.from_bytes(digest[:10], "big")  # 80 bits, 74 of them kept
        value = (
            (ms << 80) | (0x8000 | (bits >> 68)) << 64 | _VARIANT | (bits & 0x3FFF_FFFF_FFFF_FFFF)
        )
        text = f"{value:032x}"
    else:
        uuid5 = bytearray(digest[:16])
        uuid5[6] = (uuid5[6] & 0x0F) | 0x50  # version 5
        uuid5[8] = (uuid5[8] & 0x3F) | 0x80  # RFC 4122 variant
        text = uuid5.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: RFC 9562's variant bits (0b10) in place.
_VARIANT = 0x8000_0000_0000_0000


def build(parsed: otlp.Parsed, *, redact_secrets: bool = True) -> Batch:
    """The rows of a parsed request (nothing written). Raises otlp.BadRequest naming the
    event and field when a value cannot be stored."""
    from ..core.redact import redact_text
    from ..core.rows import agent_log_row, json_text, prompt_tuple

    def shown(text: str) -> str:
        return redact_text(text) if redact_secrets else text

    batch = Batch()
    # A session's attributes as received (each event's resource, then its own attributes
    # of the session or the resource), made text and redacted once at the end.
    received: dict[str, dict[str, Any]] = {}
    for index, event in enumerate(parsed.events):
        where = f"event {index} (claude_code.{event.name})"
        attrs = event.attributes
        resource = event.resource
        session = batch.sessions.get(event.session_id)
        if session is None:
            workflow = attrs.get(WORKFLOW_ATTRIBUTE, resource.get(WORKFLOW_ATTRIBUTE))
            session = batch.sessions[event.session_id] = SessionRows(
                event.session_id,
                workflow if isinstance(workflow, str) and workflow else DEFAULT_WORKFLOW,
                event.at,
                event.at,
            )
        elif event.at < session.first_at:
            session.first_at = event.at
        elif event.at > session.last_at:
            session.last_at = event.at
        raw = received.get(event.session_id)
        if raw is None:
            raw = received[event.session_id] = {}
        raw.update(resource)
        for key in attrs.keys() & _SESSION_SET:  # the event's own
            raw[key] = attrs[key]
        for key in attrs.keys() & resource.keys():  # or the resource's again
            raw[key] = attrs[key]
        try:
            if event.name == "api_request":
                prompt = _prompt(event, where, prompt_tuple, redact_secrets)
                session.prompts.append(prompt)
            elif event.name == "user_prompt":
                prompt_id = _string(attrs, "prompt.id", where)
                text = _string(attrs, "prompt", where)
                if prompt_id is not None:
                    kept = None if text is None else shown(clip(text, TEXT_LIMIT))
                    session.user_prompts.append((prompt_id, kept, event.at))
            elif event.name == "assistant_response" and isinstance(attrs.get("request_id"), str):
                text = _string(attrs, "response", where)
                if text is not None:
                    session.responses[attrs["request_id"]] = shown(clip(text, TEXT_LIMIT))
            else:
                metadata = {
                    k: v for k, v in attrs.items() if k not in _NOT_METADATA and k not in resource
                }
                row, tool_use_id = _log(event, where, metadata, agent_log_row, redact_secrets)
                session.logs.append(row)
                if tool_use_id is not None:
                    session.tool_results[row[0]] = tool_use_id
        except InvalidInput as exc:
            raise otlp.BadRequest(f"{where}: {exc}") from None
    memo: dict[str, str] = {}
    for session_id, values in received.items():
        attributes = batch.sessions[session_id].attributes
        for key, value in values.items():
            text = value if isinstance(value, str) else _text(value)
            found = memo.get(text)
            if found is None:
                found = memo[text] = shown(text)
            attributes[key] = found
    # A response and its prompt's text in the same request go into the prompt row.
    from ..core.rows import PROMPT_COLUMNS

    at_content = PROMPT_COLUMNS.index("content")
    at_response = PROMPT_COLUMNS.index("response")
    for session in batch.sessions.values():
        texts = {p: t for p, t, _ in session.user_prompts if t is not None}
        for prompt in session.prompts:
            cells = list(prompt.row)
            if prompt.request_id in session.responses:
                cells[at_response] = session.responses.pop(prompt.request_id)
            if not cells[at_content] and prompt.otel_prompt_id in texts:
                cells[at_content] = texts[prompt.otel_prompt_id]
            prompt.row = tuple(cells)
    for point in parsed.points:
        attrs = dict(sorted(point.attributes.items()))
        try:
            text = json_text(attrs, "otel_metrics_daily.attributes", redact_secrets)
        except InvalidInput as exc:
            raise otlp.BadRequest(f"metric {point.name}: {exc}") from None
        batch.metrics.append(
            (point.day, point.name, text, point.unit, point.value, point.cumulative)
        )
    return batch


def _prompt(
    event: otlp.Event, where: str, prompt_tuple: Callable[..., tuple[Any, ...]], redact: bool
) -> CollectedPrompt:
    attrs = event.attributes
    cache_write = _count(attrs, "cache_creation_tokens", where)
    five = _count(attrs, "cache_creation_5m_tokens", where)
    hour = _count(attrs, "cache_creation_1h_tokens", where) or 0
    if cache_write is None:
        cache_write = (five or 0) + hour
    if hour > cache_write:
        raise otlp.BadRequest(
            f"{where}.cache_creation_1h_tokens: {hour} exceeds cache_creation_tokens {cache_write}"
        )
    reported = _number(attrs, "cost_usd", where)
    row = prompt_tuple(
        {
            "agent_id": PLACEHOLDER,
            "content": "",
            "response": None,
            "model": _string(attrs, "model", where),
            "tokens_input": _count(attrs, "input_tokens", where) or 0,
            "tokens_output": _count(attrs, "output_tokens", where) or 0,
            "tokens_cache_read": _count(attrs, "cache_read_tokens", where) or 0,
            "tokens_cache_write": cache_write,
            "tokens_cache_write_1h": hour,
            "cost_usd": reported,
            "duration_ms": _number(attrs, "duration_ms", where),
            "created_at": event.at,
            "completed_at": event.at,
        },
        redact_secrets=redact,
    )
    return CollectedPrompt(
        _string(attrs, "request_id", where),
        _string(attrs, "prompt.id", where),
        row,
        reported,
        _number(attrs, "ttft_ms", where),
        _string(attrs, "query_source", where),
    )


def _log(
    event: otlp.Event,
    where: str,
    metadata: dict[str, Any],
    agent_log_row: Callable[..., tuple[Any, ...]],
    redact: bool,
) -> tuple[tuple[Any, ...], str | None]:
    attrs = event.attributes
    metadata = {"event": f"claude_code.{event.name}", **metadata}
    tool = _string(attrs, "tool_name", where)
    tool_use_id = _string(attrs, "tool_use_id", where)
    duration = None
    if event.name == "tool_result":
        success = attrs.get("success")
        failed = not (success is True or success == "true")
        error = attrs.get("error")
        duration = _number(attrs, "duration_ms", where)
        shown_input = attrs.get("tool_input", attrs.get("tool_parameters"))
        metadata = {
            **metadata,
            "tool_use_id": tool_use_id,
            "name": tool or "tool",
            "is_error": failed,
            "input": clip(_text(shown_input), TOOL_INPUT_LIMIT) if shown_input else None,
        }
        outcome = (
            clip(_text(error), LOG_LIMIT)
            if failed and error
            else ("failed" if failed else "succeeded")
        )
        message = f"{tool or 'tool'}: {outcome}"
        log_type = "tool_result"
    elif event.name == "api_error":
        error = clip(_text(attrs.get("error")), LOG_LIMIT)
        message = f"API error {attrs.get('status_code', '')}: {error}"
        duration = _number(attrs, "duration_ms", where)
        log_type = "error"
        tool_use_id = None
    elif event.name == "tool_decision":
        message = f"tool_decision {tool}: {attrs.get('decision')} ({attrs.get('source')})"
        log_type = "event"
        tool_use_id = None
    else:
        message = f"claude_code.{event.name}"
        log_type = "event"
        tool_use_id = None
    for key, value in list(metadata.items()):
        if isinstance(value, str):
            metadata[key] = clip(value, TOOL_INPUT_LIMIT)
    row = agent_log_row(
        PLACEHOLDER,
        log_type,
        clip(message, LOG_LIMIT),
        metadata,
        duration_ms=duration,
        created_at=event.at,
        redact_secrets=redact,
    )
    log_id = _log_id(event)
    if log_id is not None:
        row = (log_id, *row[1:])
    return row, tool_use_id if log_type == "tool_result" else None


# -- the writer -------------------------------------------------------------------------


#: The lock collect's writers hold while they write (``--workers``: one writer each), so
#: that a call one of them looks up is not being stored by another.
WRITER_LOCK = "orchestrator collect"
#: How long a transaction about to begin waits for a request of each connected client (s).
GROUP_WAIT_S = 0.05
#: How long a writer waits for its turn (:class:`Collector`'s ``turns``) before it goes to
#: the store's own lock anyway (s): a turn is never needed for what is stored.
TURN_WAIT_S = 10.0
#: How long a ``--workers`` process serving more connections than another leaves a new
#: one to it (s).
ACCEPT_DEFER_S = 0.05


class Collector:
    """Writes batches into a store (an SQLite file or a PostgreSQL URL) over one
    connection, in an event loop of its own: concurrent requests share a transaction,
    each in a savepoint, and each is answered after the commit."""

    def __init__(
        self,
        target: str,
        *,
        redact_secrets: bool = True,
        group: int = 64,
        wait: float = GROUP_WAIT_S,
        turns: Any = None,
    ) -> None:
        """``turns``: a lock shared by the writers of one ``collect --workers`` (a
        ``multiprocessing`` lock made before they start), held around each transaction:
        the next writer's turn comes the moment one commits, where SQLite's busy handler
        tries again after sleeping (1, 2, 5... up to 100 ms). The store's own lock is
        still taken inside it."""
        self.target = target
        self.turns = turns
        self.redact_secrets = redact_secrets
        self.group = group
        self.wait = wait
        #: Clients connected (:meth:`connected`): a group waits for a request of each.
        self._connections = 0
        self._connections_lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._queue: asyncio.Queue[tuple[Batch, asyncio.Future[None]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.backend: Any = None
        #: Transactions committed (or tried) and the time they took: the writer's flush.
        self.flushes = 0
        self.flush_seconds = 0.0

    def start(self) -> None:
        """Open the store (migrating it) and start writing; raises what opening raises."""
        from ..store.targets import backend_for

        self._thread.start()

        async def opened() -> None:
            # An SQLite file's driver in this loop's thread: the loop does nothing else,
            # and a statement then costs no hop to aiosqlite's thread and back.
            self.backend = backend_for(self.target, in_thread=True)
            await self.backend.open()
            self._queue = asyncio.Queue()
            self._task = asyncio.ensure_future(self._run())

        asyncio.run_coroutine_threadsafe(opened(), self.loop).result()

    def stop(self) -> None:
        async def closed() -> None:
            if self._task is not None:
                self._task.cancel()
            if self.backend is not None:
                await self.backend.close()

        try:
            asyncio.run_coroutine_threadsafe(closed(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)

    def store(self, batch: Batch, timeout: float = 60) -> None:
        """Write ``batch``; return once committed (raises what the write raised)."""

        async def submitted() -> None:
            assert self._queue is not None
            done: asyncio.Future[None] = self.loop.create_future()
            await self._queue.put((batch, done))
            await done

        asyncio.run_coroutine_threadsafe(submitted(), self.loop).result(timeout)

    @contextlib.contextmanager
    def connected(self) -> Iterator[None]:
        """Around a client's connection. A transaction about to begin waits (up to
        ``wait`` seconds) until each connected client has a request in it: a client
        whose answer came with the last commit sends its next request meanwhile, and one
        commit then answers them all (a commit costs more than its rows: the search
        index's segment, the pages written again, the fsync)."""
        with self._connections_lock:
            self._connections += 1
        try:
            yield
        finally:
            with self._connections_lock:
                self._connections -= 1

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        while True:
            work = [await queue.get()]
            deadline = loop.time() + self.wait
            while len(work) < self.group:
                while len(work) < self.group and not queue.empty():
                    work.append(queue.get_nowait())
                if len(work) >= self._connections or loop.time() >= deadline:
                    break
                await asyncio.sleep(0.0005)
            await self._write(work)

    async def _write(self, work: list[tuple[Batch, asyncio.Future[None]]]) -> None:
        """The waiting requests written in one transaction, in this writer's turn."""
        turn = self.turns is not None and self.turns.acquire(timeout=TURN_WAIT_S)
        try:
            await self._transaction(work)
        finally:
            if turn:
                self.turns.release()

    async def _transaction(self, work: list[tuple[Batch, asyncio.Future[None]]]) -> None:
        """One transaction for every waiting request, committed once. The requests are
        written together (a few statements for all of them); if that fails, each is
        written again in a savepoint of its own, so one request's failure stores nothing
        of it and fails only it."""
        import time

        backend = self.backend
        failed: dict[int, BaseException] = {}
        started = time.perf_counter()
        try:
            await backend.begin()
            await backend.lock(WRITER_LOCK)
            try:
                await self._write_batches([batch for batch, _ in work])
            except Exception as exc:
                await backend.rollback()
                if len(work) == 1:
                    failed[0] = exc
                else:
                    await backend.begin()
                    await backend.lock(WRITER_LOCK)
                    for at, (batch, _) in enumerate(work):
                        await backend.execute(f"SAVEPOINT collect_{at}")
                        try:
                            await self._write_batches([batch])
                        except Exception as alone:
                            await backend.execute(f"ROLLBACK TO SAVEPOINT collect_{at}")
                            failed[at] = alone
                        await backend.execute(f"RELEASE SAVEPOINT collect_{at}")
            if backend.in_transaction:
                await backend.commit()
        except Exception as exc:
            await backend.rollback()
            for _, done in work:
                if not done.done():
                    done.set_exception(exc)
            return
        finally:
            self.flushes += 1
            self.flush_seconds += time.perf_counter() - started
        for at, (_, done) in enumerate(work):
            if done.done():
                continue
            if at in failed:
                done.set_exception(failed[at])
            else:
                done.set_result(None)

    async def _workflow(self, name: str) -> str:
        from ..core.rows import ORCHESTRATOR_AGENT_COLUMNS, orchestrator_agent_tuple

        backend = self.backend
        found = await backend.fetchone("SELECT id FROM orchestrator_agents WHERE name = ?", (name,))
        if found is None:
            row = orchestrator_agent_tuple(
                name,
                "Claude Code sessions received by orchestrator collect",
                redact_secrets=self.redact_secrets,
            )
            await backend.execute(
                f"INSERT INTO orchestrator_agents ({', '.join(ORCHESTRATOR_AGENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(row))}) ON CONFLICT (name) DO NOTHING",
                row,
            )
            found = await backend.fetchone(
                "SELECT id FROM orchestrator_agents WHERE name = ?", (name,)
            )
        assert found is not None
        return str(found["id"])

    async def _lookup(self, sql: str, keys: list[Any], width: int = 1) -> list[dict[str, Any]]:
        """``sql`` (its ``{keys}`` an ``IN`` list, or with ``width`` > 1 a ``VALUES`` list
        of tuples) for every key, a few hundred at a time; lists padded to a power of two
        (repeating a key) so that PostgreSQL prepares few statements."""
        found: list[dict[str, Any]] = []
        for at in range(0, len(keys), _CHUNK):
            chunk = keys[at : at + _CHUNK]
            size = 1 << (len(chunk) - 1).bit_length()
            chunk = chunk + [chunk[-1]] * (size - len(chunk))
            if width == 1:
                places, params = ", ".join("?" * size), chunk
            else:
                one = "(" + ", ".join("?" * width) + ")"
                places = ", ".join([one] * size)
                params = [value for key in chunk for value in key]
            found.extend(await self.backend.fetchall(sql.format(keys=places), params))
        return found

    async def _write_batches(self, batches: list[Batch]) -> None:
        """Write ``batches`` as if one after the other (a run made by one is the next
        one's, a call stored by one is a repeat in the next), in a few statements."""
        from ..core.rows import (
            AGENT_COLUMNS,
            AGENT_LOG_COLUMNS,
            PROMPT_COLUMNS,
            agent_tuple,
            duration_between,
        )

        backend = self.backend
        # -- runs: the session's (another writer's or collect's), else a new one
        seen: dict[str, list[tuple[int, SessionRows]]] = {}
        for at, batch in enumerate(batches):
            for session in batch.sessions.values():
                seen.setdefault(session.session_id, []).append((at, session))
        runs: dict[str, str] = {}
        made: set[str] = set()  # the runs made here: none of their tool results is logged
        if seen:
            existing: dict[str, dict[str, Any]] = {}
            for found in await self._lookup(
                "SELECT id, session_id, status, started_at, completed_at FROM agents "
                "WHERE parent_agent_id IS NULL AND session_id IN ({keys}) "
                "ORDER BY created_at, id",
                list(seen),
            ):
                existing.setdefault(found["session_id"], found)
            runs.update((key, str(found["id"])) for key, found in existing.items())
            new_runs: list[tuple[Any, ...]] = []
            ended = []
            workflows: dict[str, str] = {}
            for session_id, parts in seen.items():
                last_at = max(session.last_at for _, session in parts)
                run = existing.get(session_id)
                if run is None:
                    first = parts[0][1]
                    if first.workflow not in workflows:
                        workflows[first.workflow] = await self._workflow(first.workflow)
                    row = agent_tuple(
                        workflows[first.workflow],
                        session_id,
                        name=session_id,
                        status="completed",
                        started_at=first.first_at,
                        created_at=first.first_at,
                        completed_at=last_at,
                        redact_secrets=self.redact_secrets,
                    )
                    new_runs.append(row)
                    runs[session_id] = str(row[0])
                    made.add(str(row[0]))
                elif run["status"] == "completed" and (run["completed_at"] or "") < last_at:
                    # a run collect made ends with the last event seen
                    ended.append((last_at, duration_between(run["started_at"], last_at), run["id"]))
            if new_runs:
                await backend.insert_many("agents", AGENT_COLUMNS, new_runs)
            if ended:
                await backend.executemany(
                    "UPDATE agents SET completed_at = ?, duration_ms = ? WHERE id = ?", ended
                )
            attributes: dict[tuple[str, str], str] = {}
            for session_id, parts in seen.items():
                for _, session in parts:
                    for key, value in session.attributes.items():
                        attributes[(runs[session_id], key)] = value
            if attributes:  # one row a key: DO UPDATE never meets a key twice
                await backend.insert_many(
                    "agent_attributes",
                    ("agent_id", "key", "value"),
                    [(run, key, value) for (run, key), value in attributes.items()],
                    on_conflict="ON CONFLICT (agent_id, key) DO UPDATE SET value = excluded.value",
                )
        sessions = [
            (at, session) for at, batch in enumerate(batches) for session in batch.sessions.values()
        ]
        # -- user prompts; their text goes into the prompts already stored without it
        user_prompts = []
        texts: dict[str, str] = {}
        for _, session in sessions:
            for prompt_id, text, at_time in session.user_prompts:
                user_prompts.append((prompt_id, runs[session.session_id], text, at_time))
                if text:
                    texts.setdefault(prompt_id, text)
        if user_prompts:
            await backend.insert_many(
                "otel_user_prompts",
                ("otel_prompt_id", "agent_id", "text", "created_at"),
                user_prompts,
                on_conflict="ON CONFLICT (otel_prompt_id) DO NOTHING",
            )
        if texts:
            waiting = await self._lookup(
                "SELECT DISTINCT otel_prompt_id FROM otel_requests "
                "WHERE otel_prompt_id IN ({keys})",
                list(texts),
            )
            if waiting:
                await backend.executemany(
                    "UPDATE prompts SET content = ? WHERE content = '' AND id IN "
                    "(SELECT prompt_id FROM otel_requests WHERE otel_prompt_id = ?)",
                    [(texts[r["otel_prompt_id"]], r["otel_prompt_id"]) for r in waiting],
                )
        # -- prompts: a call received before is skipped, one a transcript or stream
        # stored keeps its row (with Claude Code's cost beside the computed one)
        await self._write_prompts(sessions, runs, texts, PROMPT_COLUMNS)
        responses = [
            (text, request_id)
            for _, session in sessions
            for request_id, text in session.responses.items()
        ]
        if responses:  # responses of prompts stored before
            await backend.executemany(
                "UPDATE prompts SET response = ? WHERE (response IS NULL OR response = '') "
                "AND id IN (SELECT prompt_id FROM otel_requests WHERE request_id = ?)",
                responses,
            )
        # -- logs: a tool result logged by a transcript's import, a stream or a hook (or an
        # earlier request) is not logged again: found by its tool_use_id (the index
        # idx_agent_logs_tool_use), however long before it was logged.
        wanted: set[str] = set()
        for _, session in sessions:
            if runs[session.session_id] not in made:
                wanted.update(session.tool_results.values())
        logged: set[tuple[str, str]] = set()
        if wanted:
            for found in await self._lookup(_logged_sql(backend), sorted(wanted)):
                logged.add((str(found["agent_id"]), str(found["tool_use_id"])))
        logs = []
        first_logged: dict[tuple[str, str], int] = {}
        for at, session in sessions:
            run_id = runs[session.session_id]
            for row in session.logs:
                tool_use_id = session.tool_results.get(row[0])
                if tool_use_id is not None:
                    pair = (run_id, tool_use_id)
                    if pair in logged or first_logged.setdefault(pair, at) != at:
                        continue
                logs.append((row[0], run_id, *row[2:]))
        if logs:
            await backend.insert_many(
                "agent_logs", AGENT_LOG_COLUMNS, logs, on_conflict="ON CONFLICT (id) DO NOTHING"
            )
        # -- metrics: daily sums (a cumulative sum or gauge keeps the last value)
        now = utc_now()
        points = [point for batch in batches for point in batch.metrics]
        while points:
            cumulative = points[0][5]
            same = 1
            while same < len(points) and points[same][5] == cumulative:
                same += 1
            update = "excluded.value" if cumulative else "otel_metrics_daily.value + excluded.value"
            await backend.executemany(
                "INSERT INTO otel_metrics_daily (day, name, attributes, unit, value, points, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (day, name, attributes) "
                f"DO UPDATE SET value = {update}, points = otel_metrics_daily.points + 1, "
                "unit = excluded.unit, updated_at = excluded.updated_at",
                [
                    (day, name, attrs, unit, value, now)
                    for day, name, attrs, unit, value, _ in points[:same]
                ],
            )
            points = points[same:]

    async def _write_prompts(
        self,
        sessions: list[tuple[int, SessionRows]],
        runs: dict[str, str],
        texts: dict[str, str],
        columns: tuple[str, ...],
    ) -> None:
        backend = self.backend
        at_id = columns.index("id")
        at_agent = columns.index("agent_id")
        at_content = columns.index("content")
        request_ids = [
            prompt.request_id
            for _, session in sessions
            for prompt in session.prompts
            if prompt.request_id is not None
        ]
        received: set[str] = set()
        known: dict[str, str] = {}
        if request_ids:
            received = {
                str(found["request_id"])
                for found in await self._lookup(
                    "SELECT request_id FROM otel_requests WHERE request_id IN ({keys})",
                    request_ids,
                )
            }
            for found in await self._lookup(
                "SELECT request_id, prompt_id FROM prompt_responses WHERE request_id IN ({keys})",
                [key for key in request_ids if key not in received],
            ):
                known.setdefault(str(found["request_id"]), str(found["prompt_id"]))
        missing = {
            prompt.otel_prompt_id
            for _, session in sessions
            for prompt in session.prompts
            if not prompt.row[at_content]
            and prompt.otel_prompt_id is not None
            and prompt.otel_prompt_id not in texts
        }
        stored_texts: dict[str, str] = {}
        if missing:
            for found in await self._lookup(
                "SELECT otel_prompt_id, text FROM otel_user_prompts "
                "WHERE otel_prompt_id IN ({keys})",
                sorted(missing),
            ):
                if found["text"]:
                    stored_texts[str(found["otel_prompt_id"])] = str(found["text"])
        rows = []
        costs = []
        remembered = []
        for _, session in sessions:
            run_id = runs[session.session_id]
            for prompt in session.prompts:
                request_id = prompt.request_id
                if request_id is not None:
                    if request_id in received:
                        continue  # received before (an exporter's retry)
                    received.add(request_id)
                    if request_id in known:  # a transcript or stream stored the call
                        if prompt.reported_cost_usd is not None:
                            costs.append((prompt.reported_cost_usd, known[request_id]))
                        remembered.append(_remembered(prompt, known[request_id]))
                        continue
                row = list(prompt.row)
                row[at_agent] = run_id
                if not row[at_content] and prompt.otel_prompt_id is not None:
                    row[at_content] = stored_texts.get(
                        prompt.otel_prompt_id, texts.get(prompt.otel_prompt_id, "")
                    )
                rows.append(row)
                if request_id is not None:
                    remembered.append(_remembered(prompt, str(row[at_id])))
        if costs:
            await backend.executemany(
                "UPDATE prompts SET cost_usd = ?, cost_source = 'reported' WHERE id = ?", costs
            )
        if rows:
            await backend.insert_many("prompts", columns, rows)
        if remembered:
            await backend.insert_many(
                "otel_requests",
                _REQUEST_COLUMNS,
                remembered,
                on_conflict="ON CONFLICT (request_id) DO NOTHING",
            )


#: What otel_requests keeps of a call (:func:`_remembered`).
_REQUEST_COLUMNS = (
    "request_id",
    "prompt_id",
    "otel_prompt_id",
    "reported_cost_usd",
    "ttft_ms",
    "query_source",
)

#: Keys looked up in one statement.
_CHUNK = 512


def _logged_sql(backend: Any) -> str:
    """The tool results (of any writer) logged with one of the ``{keys}`` as their
    tool_use_id: the predicate of the partial index idx_agent_logs_tool_use word for
    word, so that SQLite uses it."""
    from .hook import TOOL_LOG_TYPES

    tool_use_id = backend.json_text("metadata", "tool_use_id")
    return (
        f"SELECT agent_id, {tool_use_id} AS tool_use_id FROM agent_logs "
        f"WHERE {tool_use_id} IN ({{keys}}) AND log_type IN ({TOOL_LOG_TYPES}) "
        "AND log_type IN ('tool_result', 'PostToolUse', 'PostToolUseFailure')"
    )


def _remembered(prompt: CollectedPrompt, prompt_id: str) -> tuple[Any, ...]:
    return (
        prompt.request_id,
        prompt_id,
        prompt.otel_prompt_id,
        prompt.reported_cost_usd,
        prompt.ttft_ms,
        prompt.query_source,
    )


# -- the HTTP server ----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CollectServer(ThreadingHTTPServer):
    daemon_threads = True
    # A shallow listen queue refuses connections of a burst of clients.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        collector: Collector,
        *,
        token: str | None = None,
        max_body: int = otlp.MAX_BODY,
        log: Callable[[str], None] | None = None,
        listener: socket.socket | None = None,
        spread: Any = None,
        worker: int = 0,
    ) -> None:
        """``listener``: a listening socket to accept from (shared by ``--workers``
        processes) instead of one bound to ``address``. ``spread``: the connections each
        of those processes serves (a ``multiprocessing`` array of ints made before they
        start), this one's at ``worker``: one serving more than another leaves a new
        connection to it (for up to :data:`ACCEPT_DEFER_S`)."""
        self.collector = collector
        self.token = token
        self.max_body = max_body
        self.log = log or (lambda line: None)
        self.spread = spread
        self.worker = worker
        self._spread_lock = threading.Lock()
        super().__init__(address, _Handler, bind_and_activate=listener is None)
        if listener is not None:
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()[:2]
            self.server_name, self.server_port = str(address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        """The next connection. Every worker is woken by it; one that serves more than
        another waits (a millisecond at a time) for that one to take it, and takes it
        itself if it is still there: clients spread evenly over the workers (the first
        to accept would take it otherwise, by chance: 5 and 3, 6 and 2 of 8 clients)."""
        spread = self.spread
        if spread is not None:
            import select
            import time

            waited = 0.0
            while spread[self.worker] > min(spread) and waited < ACCEPT_DEFER_S:
                time.sleep(0.001)
                waited += 0.001
                if not select.select([self.socket], [], [], 0)[0]:
                    break  # taken by another worker: accept() says so
        return self.socket.accept()

    def _count(self, change: int) -> None:
        if self.spread is not None:
            with self._spread_lock:
                self.spread[self.worker] += change

    def process_request(self, request: Any, client_address: Any) -> None:
        self._count(+1)  # before the next accept
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._count(-1)


class _Handler(BaseHTTPRequestHandler):
    server: CollectServer
    protocol_version = "HTTP/1.1"
    server_version = "orchestrator-collect"
    # An answer leaves in one write (the status line, headers and body buffered until the
    # request is done: http.server flushes then), with TCP_NODELAY: written in two, its
    # second part would wait for the client's delayed ACK of the first (Nagle), about
    # 40 ms on Linux, in which a client sends nothing and the server idles.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: errors are logged
        pass

    def handle_expect_100(self) -> bool:
        ready = super().handle_expect_100()
        self.wfile.flush()  # the client waits for the 100 Continue to send the body
        return ready

    def handle(self) -> None:
        with self.server.collector.connected():
            super().handle()

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self.server.log(f"{self.command} {self.path}: {status} {message}")
        code = {400: 3, 401: 16, 404: 5, 413: 3, 503: 14}.get(status, 13)
        self._reply(status, json.dumps({"code": code, "message": message}).encode())

    def do_GET(self) -> None:
        self._read_body_or_none()
        self._error(404, f"{self.path}: POST /v1/logs, /v1/metrics, /v1/traces or /hooks")

    def _read_body_or_none(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            self._error(400, "chunked bodies are not supported: send a Content-Length")
            return None
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else 0
        except ValueError:
            self.close_connection = True
            self._error(400, f"Content-Length {length_text!r:.40} is not a number")
            return None
        if length < 0 or length > self.server.max_body:
            self.close_connection = True
            left = length if 0 < length <= 4 * self.server.max_body else 0
            while left > 0:  # read (not kept): the client then gets the answer
                left -= len(self.rfile.read(min(left, 1 << 16)) or b"\0" * left)
            self._error(
                413 if length > 0 else 400,
                f"body: {length} bytes, more than the limit of {self.server.max_body}",
            )
            return None
        return self.rfile.read(length)

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def do_POST(self) -> None:
        body = self._read_body_or_none()
        if body is None:
            return
        if not self._authorized():
            self._error(401, "a bearer token is required (Authorization: Bearer ...)")
            return
        path = self.path.split("?")[0].rstrip("/")
        if path == "/hooks":
            self._hook(body)
            return
        kind = path.removeprefix("/v1/")
        if path == kind or kind not in otlp.KINDS:
            self._error(404, f"{self.path}: POST /v1/logs, /v1/metrics, /v1/traces or /hooks")
            return
        collector = self.server.collector
        try:
            parsed, protobuf = otlp.parse(
                kind,
                body,
                self.headers.get("Content-Type"),
                self.headers.get("Content-Encoding"),
                self.server.max_body,
            )
            batch = build(parsed, redact_secrets=collector.redact_secrets)
        except otlp.BadRequest as exc:
            self._error(400, str(exc))
            return
        if batch.sessions or batch.metrics:
            try:
                self.server.collector.store(batch)
            except InvalidInput as exc:
                self._error(400, str(exc))
                return
            except Exception as exc:  # the store refused: nothing of it kept, try again
                self._error(503, f"not stored: {type(exc).__name__}: {exc}")
                return
        self._reply(
            200,
            otlp.response_body(kind, protobuf, parsed),
            "application/x-protobuf" if protobuf else "application/json",
        )

    def _hook(self, body: bytes) -> None:
        from . import hook

        try:
            event = json.loads(otlp.decompress(body, self.headers.get("Content-Encoding")))
        except otlp.BadRequest as exc:
            self._error(400, str(exc))
            return
        except ValueError as exc:
            self._error(400, f"body: not JSON ({exc})")
            return
        if not isinstance(event, dict) or not isinstance(event.get("session_id"), str):
            self._error(400, "body: a Claude Code hook event (a JSON object with a session_id)")
            return
        outcome = hook.record_event(self.server.collector.target, hook.make_record(event))
        if outcome == "refused":
            self._error(400, "the hook event could not be stored (kept in the refused spool)")
            return
        # written, or spooled (on disk, written by the next event): acknowledged
        self._reply(200, b"{}")


def serve(
    target: str,
    host: str = "127.0.0.1",
    port: int = 4318,
    *,
    token: str | None = None,
    redact_secrets: bool = True,
    max_body: int = otlp.MAX_BODY,
    workers: int = 1,
    ready: Callable[[CollectServer | None], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Receive OTLP/HTTP and hooks on ``host:port`` into ``target`` until interrupted.
    Another interface than the loopback one needs a ``token`` (clients send
    ``Authorization: Bearer TOKEN``). ``workers`` > 1: as many processes (forked) accept
    from the one port, each reading requests and writing them with a writer of its own
    (one process's Python runs on one core; the writers take turns, :data:`WRITER_LOCK`);
    ``ready`` is then given None."""
    if not is_loopback(host) and not token:
        raise InvalidInput(
            "--host",
            f"{host} is not a loopback address: give a --token (or $ORCHESTRATOR_COLLECT_TOKEN)",
        )
    if workers < 1 or (workers > 1 and not hasattr(os, "fork")):
        raise InvalidInput("--workers", f"must be 1 here, or more where processes fork: {workers}")
    if workers > 1:
        _serve_forked(target, host, port, workers, token, redact_secrets, max_body, ready, log)
        return
    collector = Collector(target, redact_secrets=redact_secrets)
    collector.start()
    try:
        server = CollectServer((host, port), collector, token=token, max_body=max_body, log=log)
    except BaseException:
        collector.stop()
        raise
    try:
        settle_receiver()
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        collector.stop()


def settle_receiver() -> None:
    """A receiving process's garbage collection, once it is set up: what lives by then is
    frozen out of the collector's reach, and a collection starts every 10,000 new objects,
    not 700. A request's parse tree (thousands of dicts, freed by reference counting) had
    the collector walk every live object again and again: a third of reading a body."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _serve_forked(
    target: str,
    host: str,
    port: int,
    workers: int,
    token: str | None,
    redact_secrets: bool,
    max_body: int,
    ready: Callable[[CollectServer | None], None] | None,
    log: Callable[[str], None] | None,
) -> None:
    """``workers`` forked processes serving one listening socket until interrupted (or
    SIGTERM, passed on to them); one ending stops the others."""
    import multiprocessing
    import signal

    from ..store.targets import backend_for

    async def migrated() -> None:  # once, before the workers open the store together
        backend = backend_for(target, in_thread=True)
        await backend.open()
        await backend.close()

    asyncio.run(migrated())
    listener = socket.create_server((host, port), backlog=CollectServer.request_queue_size)
    listener.setblocking(False)  # a worker that lost the race to accept a connection moves on
    turns = multiprocessing.get_context("fork").Lock()  # the writers' (Collector's turns)
    spread = multiprocessing.get_context("fork").Array("i", workers, lock=False)
    children: list[int] = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    parent = os.getpid()
    try:
        for worker in range(workers):
            pid = os.fork()
            if pid == 0:  # the worker
                code = 0
                try:
                    _end_with(parent)
                    _serve_on(
                        listener,
                        target,
                        host,
                        token,
                        redact_secrets,
                        max_body,
                        log,
                        turns,
                        (spread, worker),
                    )
                except KeyboardInterrupt:
                    pass
                except BaseException as exc:  # said, then the worker ends
                    (log or (lambda line: None))(f"worker {os.getpid()}: {exc!r}")
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        if ready is not None:
            ready(None)
        pid, status = os.wait()  # until one ends (or an interrupt)
        children.remove(pid)
        raise OSError(f"worker {pid} ended (exit status {os.waitstatus_to_exitcode(status)})")
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        listener.close()
        signal.signal(signal.SIGTERM, previous)


def _end_with(parent: int) -> None:
    """A worker gets SIGTERM when its parent ends, however (Linux; elsewhere a parent
    killed outright leaves its workers serving)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that
        raise KeyboardInterrupt


def _serve_on(
    listener: socket.socket,
    target: str,
    host: str,
    token: str | None,
    redact_secrets: bool,
    max_body: int,
    log: Callable[[str], None] | None,
    turns: Any = None,
    spread: tuple[Any, int] = (None, 0),
) -> None:
    """A worker: a writer of its own (taking ``turns`` with the others') and a server
    accepting from ``listener`` (its connections counted in ``spread``: the array, its
    place in it)."""
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    collector = Collector(target, redact_secrets=redact_secrets, turns=turns)
    collector.start()
    try:
        server = CollectServer(
            (host, 0),
            collector,
            token=token,
            max_body=max_body,
            log=log,
            listener=listener,
            spread=spread[0],
            worker=spread[1],
        )
        try:
            settle_receiver()
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
    finally:
        collector.stop()


def default_token() -> str | None:
    return os.environ.get("ORCHESTRATOR_COLLECT_TOKEN") or None
