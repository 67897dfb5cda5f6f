"""``orchestrator hook``: Claude Code's hook events recorded as they happen.

Claude Code runs the command of a ``command`` hook with the event as JSON on stdin
(``hook_event_name``, ``session_id``, ``transcript_path``, ``cwd``, ``tool_name``,
``tool_input``, ``tool_use_id``, ``tool_response``, ``duration_ms``, ``prompt``, ``agent_id``
...). Each event becomes an agent log whose ``log_type`` is the event's name, in the run
of the session: the run an ``import claude-code`` of its transcript makes (workflow
``claude-code:<project>``, ``session_id`` and name the session's id) or finds (a run of that
session recorded before, by ``record`` / ``import stream-json`` / an import: the same run,
never a second one). A subagent's events (``agent_id``) go to the importer's subagent run
(named ``agent-<agent_id>``, its parent the session's run). UserPromptSubmit keeps the
prompt's text, PreToolUse / PostToolUse / PostToolUseFailure the tool, its input and its
response, clipped and redacted as the importers' tool logs are; the run is ``running`` from
a prompt on, ``completed`` at Stop / SessionEnd and ``failed`` at StopFailure. Hooks carry
no tokens: a prompt's tokens and cost come from the transcript or the stream, imported into
the same run (which then logs no tool call a hook logged: joined on ``tool_use_id``).

A hook runs on Claude Code's path (PreToolUse before every tool), so this module imports
only what the write needs (no click, pydantic, genai-prices, sqlglot) and never gets in
the way: it prints nothing on stdout, exits 0 whatever happens (bad JSON, a locked or
missing database, a PostgreSQL server away) and waits at most :data:`BUSY_TIMEOUT_S` for a
database lock. What it cannot write is appended to a spool file (one JSON line per event,
fsynced) and written, in order, by the next call that can; every event carries its log
row's id from the start, so an event written twice (the spool emptied after its rows were
committed, by a process killed in between) is stored once.

Run by Claude Code as ``python -m orchestrator.claude_code.hook --db DB`` (what ``orchestrator
hooks install`` writes: no console-script start-up) or ``orchestrator hook``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from ..core.ids import new_id, utc_now
from .text import LOG_LIMIT, TEXT_LIMIT, TOOL_INPUT_LIMIT, clip, text_of

#: Seconds a hook waits for the database (an SQLite lock, a PostgreSQL connection) before
#: it spools the event instead: Claude Code waits for the hook.
BUSY_TIMEOUT_S = 0.5
PG_CONNECT_TIMEOUT_S = 2.0

#: The events ``orchestrator hooks install`` registers, stored with their name as log type.
EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
#: Hook events that log a tool call / a tool result, as the importers' log types.
TOOL_CALL_EVENTS = {"PreToolUse": "tool_use"}
TOOL_RESULT_EVENTS = {"PostToolUse": "tool_result", "PostToolUseFailure": "tool_result"}
#: What a tool log's type (an importer's or a hook's) stands for: a call or a result.
TOOL_LOG_KINDS = {
    "tool_use": "tool_use",
    "tool_result": "tool_result",
    **TOOL_CALL_EVENTS,
    **TOOL_RESULT_EVENTS,
}
#: Those log types as an SQL list, as the partial index on a tool log's tool_use_id
#: (migration m015) states them: a query repeating it word for word uses the index.
TOOL_LOG_TYPES = ", ".join(f"'{kind}'" for kind in TOOL_LOG_KINDS)
#: The metadata keys of an event kept in its log (clipped, redacted) besides the tool's.
_KEPT = (
    "source",
    "reason",
    "error",
    "error_details",
    "prompt_id",
    "permission_mode",
    "agent_id",
    "agent_type",
    "trigger",
    "notification_type",
    "message",
    "title",
    "stop_hook_active",
    "custom_instructions",
)


def project_of(event: dict[str, Any]) -> str:
    """The project an import of the session's transcript names: the transcript's folder
    under ``projects``, else the ``cwd`` as Claude Code names that folder."""
    path = event.get("transcript_path")
    if isinstance(path, str) and path:
        folder = os.path.basename(os.path.dirname(path))
        if folder:
            return folder
    cwd = event.get("cwd")
    if isinstance(cwd, str) and cwd:
        return "".join(c if c.isalnum() else "-" for c in cwd)
    return "unknown"


def _redact() -> Callable[[Any], Any]:
    from ..core.redact import redact

    return redact


def _json(value: Any, limit: int) -> str:
    return clip(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), limit)


def log_of(event: dict[str, Any]) -> tuple[str, str, dict[str, Any], float | None]:
    """An event's log type, message, metadata and duration, clipped and redacted."""
    redact = _redact()
    name = event.get("hook_event_name")
    log_type = name if name in EVENTS else "event"
    name = name if isinstance(name, str) else "unknown"
    metadata: dict[str, Any] = {"hook_event_name": name}
    for key in _KEPT:
        value = event.get(key)
        if value is not None:
            metadata[key] = redact(
                _json(value, TOOL_INPUT_LIMIT)
                if not isinstance(value, (bool, int, float))
                else value
            )
    given = event.get("duration_ms")
    duration = float(given) if isinstance(given, (int, float)) and given >= 0 else None
    tool = event.get("tool_name")
    if isinstance(tool, str):
        tool = redact(tool)
        metadata["name"] = tool
        if isinstance(event.get("tool_use_id"), str):
            metadata["tool_use_id"] = redact(event["tool_use_id"])
        arguments = redact(_json(event.get("tool_input"), TOOL_INPUT_LIMIT))
        metadata["input"] = arguments
        if name in TOOL_RESULT_EVENTS:
            failed = name == "PostToolUseFailure"
            response = event.get("error") if failed else event.get("tool_response")
            shown = _response_text(response)
            metadata["is_error"] = failed
            if duration is not None:
                metadata["duration_ms"] = duration
            message = f"{tool}: {redact(clip(shown, LOG_LIMIT))}"
        else:
            message = f"{tool}: {arguments}"
    elif name == "UserPromptSubmit":
        message = redact(clip(str(event.get("prompt") or ""), TEXT_LIMIT))
    else:
        detail = event.get("reason") or event.get("source") or event.get("error") or ""
        message = f"{name}{': ' if detail else ''}{redact(clip(str(detail), LOG_LIMIT))}"
    if log_type == "UserPromptSubmit":
        return log_type, message, metadata, duration
    return log_type, clip(message, LOG_LIMIT), metadata, duration


def _response_text(response: Any) -> str:
    """A tool response's readable text: its output fields, else its JSON."""
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        parts = [
            response[key]
            for key in ("stdout", "stderr", "content", "output", "result", "error")
            if isinstance(response.get(key), str) and response[key]
        ]
        if parts:
            return "\n".join(parts)
        if isinstance(response.get("content"), list):
            return text_of(response["content"])
    if isinstance(response, list):
        return text_of(response)
    return json.dumps(response, ensure_ascii=False)


# -- the stores -----------------------------------------------------------------------


class Unavailable(Exception):
    """The database cannot be written now (locked, away): the events are spooled."""


class _SQLite:
    json_tool_id = "json_extract(metadata, '$.tool_use_id')"

    def __init__(self, path: str) -> None:
        import sqlite3

        self.errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            user_version, schema_version = conn.execute(
                "SELECT * FROM pragma_user_version, pragma_schema_version"
            ).fetchone()
            if user_version != schema_version or schema_version == 0:
                # A new file, or a schema not checked since it changed: the full open
                # (created, migrated, checked) once, then this quick one.
                conn.close()
                from ..store import sqlite as backend

                conn = backend.connect(path)
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            else:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = FULL")
        except Exception as exc:  # locked, unreadable, a schema to migrate first...
            raise Unavailable(str(exc)) from None
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self, session_id: str | None) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else tuple(row)


class _Postgres:
    json_tool_id = "(metadata::jsonb ->> 'tool_use_id')"

    def __init__(self, url: str) -> None:
        import asyncio

        import asyncpg

        from ..store import postgres

        self.errors = (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
        )
        self.loop = asyncio.new_event_loop()
        self.to_dollar = postgres.to_dollar
        try:
            self.conn = self.loop.run_until_complete(
                asyncio.wait_for(postgres.connect(url), PG_CONNECT_TIMEOUT_S * 5)
            )
        except Exception as exc:  # away, refusing connections, a migration failing...
            self.loop.close()
            raise Unavailable(str(exc)) from None

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.conn.close())
        finally:
            self.loop.close()

    @contextmanager
    def transaction(self, session_id: str | None) -> Iterator[None]:
        transaction = self.conn.transaction()
        self.loop.run_until_complete(transaction.start())
        try:
            if session_id is not None:  # one run per session, whoever comes first
                self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (session_id,))
            yield
        except BaseException:
            self.loop.run_until_complete(transaction.rollback())
            raise
        self.loop.run_until_complete(transaction.commit())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.loop.run_until_complete(self.conn.execute(self.to_dollar(sql), *params))

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.loop.run_until_complete(self.conn.fetchrow(self.to_dollar(sql), *params))
        return None if row is None else tuple(row)


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def _open(target: str) -> _SQLite | _Postgres:
    return _Postgres(target) if is_url(target) else _SQLite(target)


# -- writing events ---------------------------------------------------------------------


def _ms_between(start: Any, end: str) -> float | None:
    if not isinstance(start, str):
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((b - a).total_seconds() * 1000.0, 0.0)


class _Writer:
    def __init__(self, store: _SQLite | _Postgres) -> None:
        self.store = store

    def session_run(self, event: dict[str, Any], session_id: str, at: str) -> str:
        """The session's top-level run, created as an import of its transcript would."""
        store = self.store
        row = store.fetchone(
            "SELECT id FROM agents WHERE session_id = ? AND parent_agent_id IS NULL "
            "ORDER BY created_at, id LIMIT 1",
            (session_id,),
        )
        if row is not None:
            return str(row[0])
        project = project_of(event)
        name = f"claude-code:{project}"
        store.execute(
            "INSERT INTO orchestrator_agents (id, name, description) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (new_id(), name, f"Claude Code sessions of project {project}"),
        )
        found = store.fetchone("SELECT id FROM orchestrator_agents WHERE name = ?", (name,))
        assert found is not None
        run_id = new_id()
        store.execute(
            "INSERT INTO agents (id, orchestrator_agent_id, session_id, status, created_at, "
            "started_at, name) VALUES (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, found[0], session_id, at, at, session_id),
        )
        return run_id

    def subagent_run(self, parent: str, session_id: str, agent_id: str, at: str) -> str:
        """The importer's run of the subagent's transcript ``agent-<agent_id>.jsonl``."""
        name = f"agent-{agent_id}"
        row = self.store.fetchone(
            "SELECT id FROM agents WHERE parent_agent_id = ? AND name = ? LIMIT 1", (parent, name)
        )
        if row is not None:
            return str(row[0])
        found = self.store.fetchone(
            "SELECT orchestrator_agent_id FROM agents WHERE id = ?", (parent,)
        )
        assert found is not None
        run_id = new_id()
        self.store.execute(
            "INSERT INTO agents (id, orchestrator_agent_id, session_id, status, created_at, "
            "started_at, name, parent_agent_id) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
            (run_id, found[0], session_id, at, at, name, parent),
        )
        return run_id

    def logged_already(self, run_id: str, kind: str, tool_use_id: str) -> bool:
        """Whether an import of the run's transcript (or stream), or ``orchestrator
        collect``, logged this tool call or result already: only asked once one did."""
        store = self.store
        if (
            store.fetchone("SELECT 1 FROM claude_code_files WHERE agent_id = ? LIMIT 1", (run_id,))
            is None
            and store.fetchone(
                "SELECT 1 FROM claude_code_runs WHERE agent_id = ? LIMIT 1", (run_id,)
            )
            is None
            and store.fetchone(  # a run `orchestrator collect` received telemetry of
                "SELECT 1 FROM agent_attributes WHERE agent_id = ? LIMIT 1", (run_id,)
            )
            is None
        ):
            return False
        types = [t for t, k in TOOL_LOG_KINDS.items() if k == kind]
        row = store.fetchone(
            f"SELECT 1 FROM agent_logs WHERE agent_id = ? AND {store.json_tool_id} = ? "
            f"AND log_type IN ({', '.join('?' * len(types))}) LIMIT 1",
            (run_id, tool_use_id, *types),
        )
        return row is not None

    def write(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        log_id, at = record.get("id"), record.get("at")
        if not isinstance(event, dict) or not isinstance(log_id, str) or not isinstance(at, str):
            return
        session_id = event.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            return
        store = self.store
        if store.fetchone("SELECT 1 FROM agent_logs WHERE id = ?", (log_id,)) is not None:
            return  # written before (the spool kept it after its commit)
        name = event.get("hook_event_name")
        run_id = session_run = self.session_run(event, session_id, at)
        agent_id = event.get("agent_id")
        if isinstance(agent_id, str) and agent_id:
            run_id = self.subagent_run(session_run, session_id, agent_id, at)
        log_type, message, metadata, duration = log_of(event)
        kind = TOOL_LOG_KINDS.get(log_type)
        tool_use_id = event.get("tool_use_id")
        if kind and isinstance(tool_use_id, str) and self.logged_already(run_id, kind, tool_use_id):
            return
        store.execute(
            "INSERT INTO agent_logs (id, agent_id, log_type, message, metadata, created_at, "
            "duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                log_id,
                run_id,
                log_type,
                message,
                json.dumps(metadata, ensure_ascii=False),
                at,
                duration,
            ),
        )
        if name == "UserPromptSubmit" or (name == "SubagentStart" and run_id != session_run):
            store.execute(
                "UPDATE agents SET status = 'running', completed_at = NULL, duration_ms = NULL, "
                "error = NULL WHERE id = ? AND status <> 'running'",
                (run_id,),
            )
        elif name in ("Stop", "SessionEnd", "StopFailure", "SubagentStop"):
            target = run_id if name == "SubagentStop" else session_run
            failed = name == "StopFailure"
            row = store.fetchone("SELECT started_at, status FROM agents WHERE id = ?", (target,))
            if row is None or (name == "SessionEnd" and row[1] == "failed"):
                return
            error = None
            if failed:
                error = clip(
                    str(event.get("error") or "Claude Code stopped on an error"), LOG_LIMIT
                )
            store.execute(
                "UPDATE agents SET status = ?, completed_at = ?, duration_ms = ?, error = ? "
                "WHERE id = ?",
                (
                    "failed" if failed else "completed",
                    at,
                    _ms_between(row[0], at),
                    _redact()(error),
                    target,
                ),
            )


def write_records(target: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``records`` in one transaction; return those refused as bad (each then alone).
    Raises Unavailable when the database cannot be written now."""
    store = _open(target)
    try:
        writer = _Writer(store)
        session = next(
            (r["event"].get("session_id") for r in records if isinstance(r.get("event"), dict)),
            None,
        )
        try:
            with store.transaction(session if isinstance(session, str) else None):
                for record in records:
                    writer.write(record)
            return []
        except store.errors as exc:
            raise Unavailable(str(exc)) from None
        except Exception:
            if len(records) == 1:
                return records
        refused = []
        for record in records:  # one bad event must not hold back the others
            try:
                with store.transaction(None):
                    writer.write(record)
            except store.errors as exc:
                raise Unavailable(str(exc)) from None
            except Exception:
                refused.append(record)
        return refused
    finally:
        with suppress(Exception):
            store.close()


# -- the spool ----------------------------------------------------------------------------


def spool_dir() -> str:
    """``$ORCHESTRATOR_HOOK_SPOOL``, else ``$XDG_CACHE_HOME/orchestrator/spool`` (default
    ``~/.cache/orchestrator/spool``)."""
    explicit = os.environ.get("ORCHESTRATOR_HOOK_SPOOL")
    if explicit:
        return explicit
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "orchestrator", "spool")


def spool_path(target: str) -> str:
    """The spool file of the database ``target`` (one per database)."""
    import zlib

    readable = "".join(c if c.isalnum() else "_" for c in os.path.basename(target))[-40:]
    return os.path.join(spool_dir(), f"{readable}-{zlib.crc32(target.encode()):08x}.jsonl")


def _read_spool(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    records = []
    for line in data.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash while it was appended
        if isinstance(value, dict):
            records.append(value)
    return records


def _append(path: str, records: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def record_event(target: str, record: dict[str, Any] | None) -> str:
    """Write the spooled events of ``target`` and ``record`` (None: the spool alone);
    return what happened: ``written``, ``spooled`` or ``refused``."""
    import fcntl

    spool = spool_path(target)
    try:
        lock = os.open(spool + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(spool), mode=0o700, exist_ok=True)
        lock = os.open(spool + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pending = _read_spool(spool) if os.path.exists(spool) else []
        records = pending + ([record] if record is not None else [])
        if not records:
            return "written"
        try:
            refused = write_records(target, records)
        except Unavailable:
            if record is not None:
                _append(spool, [record])
            return "spooled"
        if pending:
            os.truncate(spool, 0)
        if refused:
            _append(spool + ".refused", refused)
            return "refused"
        return "written"
    finally:
        os.close(lock)


def make_record(event: dict[str, Any]) -> dict[str, Any]:
    """What is stored or spooled for an event: its log row's id, when it came, and the
    event (a tool's response clipped first: it can be a whole file)."""
    kept = dict(event)
    for key in ("tool_response", "tool_input"):
        value = kept.get(key)
        if value is not None and not isinstance(value, (bool, int, float)):
            text = json.dumps(value, ensure_ascii=False)
            if len(text) > 4 * TOOL_INPUT_LIMIT:
                kept[key] = _response_text(value)[: 4 * TOOL_INPUT_LIMIT]
    return {"id": new_id(), "at": utc_now(), "event": kept}


def default_target() -> str:
    return os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH") or "orchestrator.db"


def run(stdin: bytes, target: str) -> str:
    """Record one hook call's ``stdin``; what happened (``written``, ``spooled``,
    ``refused``, ``ignored``: not a JSON object). Raises nothing but what the spool's own
    disk raises."""
    try:
        event = json.loads(stdin) if stdin.strip() else None
    except ValueError:
        event = None
    if not isinstance(event, dict):
        record_event(target, None)  # still write what was spooled
        return "ignored"
    return record_event(target, make_record(event))


def main(argv: Sequence[str] | None = None) -> int:
    """The hook command: ``[--db DB]``; reads the event on stdin; always returns 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    target = default_target()
    if "--db" in args:
        at = args.index("--db")
        if at + 1 < len(args):
            target = args[at + 1]
    try:
        data = sys.stdin.buffer.read()
        outcome = run(data, target)
        if outcome == "refused":
            sys.stderr.write(
                f"orchestrator hook: a refused event is kept in {spool_path(target)}.refused\n"
            )
    except BaseException as exc:  # never in Claude Code's way
        with suppress(Exception):
            sys.stderr.write(f"orchestrator hook: {type(exc).__name__}: {exc}\n")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
