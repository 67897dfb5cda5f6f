"""Import Claude Code session transcripts (``~/.claude/projects/**/*.jsonl``) into the database.

A session transcript ``projects/<project>/<sessionId>.jsonl`` becomes one agent run of the
orchestrator agent ``claude-code:<project>``; a subagent transcript
``<sessionId>/subagents/agent-*.jsonl`` becomes a run whose ``parent_agent_id`` is the
session's run. Each API response becomes one prompt (model, usage, cost from
genai-prices, timestamps of the transcript lines); tool calls and their results become
``tool_use`` / ``tool_result`` agent logs.

What counts as usage follows ccusage (17.2.1) exactly, so the token totals match it:
any line whose ``message.usage`` has numeric ``input_tokens`` and ``output_tokens`` and
whose ``timestamp`` is ISO UTC counts, whatever its ``type``; one API response is written
as several lines repeating ``message.id`` and ``requestId``, and each such pair is counted
once across all files (a unique index on ``prompt_responses(message_id, request_id)``), keeping
the FIRST line's usage. The first line can carry a partial ``output_tokens``; the last
line's count is kept beside it in ``prompt_responses.tokens_output_final``. Lines without the pair
are counted every time, as ccusage does. ``<synthetic>`` lines cost nothing.

Imports are incremental: ``claude_code_files`` keeps each file's size and the byte offset
just past its last complete line, so re-importing adds nothing and a grown file is read
from where the last import stopped. Each file is imported in one transaction. Malformed
lines and unknown line types are skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import sqlite as sqlite_backend
from .ids import format_timestamp, new_id, parse_timestamp, utc_now
from .pricing import resolve_cost
from .redact import redact_text

#: Line types Claude Code writes that the importer knows (others are counted as unknown).
KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "progress",
        "file-history-snapshot",
        "system",
        "queue-operation",
        "summary",
        "custom-title",
        "result",
    }
)

# ccusage's schema for a usage line (valibot): fields that, when present, must have this shape.
_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$")
_ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+")

TEXT_LIMIT = 4000  # characters of prompt / response text kept per prompt
LOG_LIMIT = 500  # characters of a tool call or result kept in the log message


@dataclass
class ImportSummary:
    """What one import did; ``str()`` gives the CLI's one-paragraph report."""

    files: int = 0  # transcript files looked at
    files_unchanged: int = 0  # of which nothing new since the last import
    runs_created: int = 0
    lines: int = 0  # complete lines read
    prompts_added: int = 0
    duplicates_skipped: int = 0  # lines of a response already counted (message.id+requestId)
    tool_events: int = 0  # tool_use and tool_result logs added
    malformed: int = 0  # lines that are not a JSON object, or usage of the wrong shape
    unknown_types: int = 0  # lines of a type the importer does not know
    bytes_read: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = (
            f"{self.files} files ({self.files_unchanged} unchanged), {self.lines} lines: "
            f"{self.prompts_added} prompts added, {self.duplicates_skipped} duplicates skipped, "
            f"{self.tool_events} tool events, {self.runs_created} runs created, "
            f"{self.malformed} malformed, {self.unknown_types} unknown types"
        )
        for error in self.errors:
            text += f"\nerror: {error}"
        return text


def claude_config_dirs() -> list[Path]:
    """The ``projects`` folders to import by default, as ccusage finds them.

    ``$CLAUDE_CONFIG_DIR`` (a comma-separated list) when set, else ``~/.config/claude``
    and ``~/.claude``; only those holding a ``projects`` folder. Raises FileNotFoundError
    when there is none.
    """
    env = os.environ.get("CLAUDE_CONFIG_DIR", "").strip()
    candidates = (
        [Path(part.strip()) for part in env.split(",") if part.strip()]
        if env
        else [Path.home() / ".config" / "claude", Path.home() / ".claude"]
    )
    found: list[Path] = []
    for base in candidates:
        projects = base.expanduser().resolve() / "projects"
        if projects.is_dir() and projects not in found:
            found.append(projects)
    if not found:
        where = ", ".join(str(base / "projects") for base in candidates)
        raise FileNotFoundError(f"no Claude Code transcripts found (looked in {where})")
    return found


def transcript_files(paths: Iterable[str | os.PathLike[str]] | None = None) -> list[Path]:
    """The ``.jsonl`` files under ``paths`` (default :func:`claude_config_dirs`).

    Sessions come before subagents, so a parent's run exists when its subagents are read.
    A directory holding a ``projects`` folder means that folder. Raises FileNotFoundError
    for a path that does not exist.
    """
    roots = [Path(p) for p in paths] if paths else claude_config_dirs()
    files: set[Path] = set()
    for root in roots:
        root = root.expanduser()
        if root.is_file():
            files.add(root.resolve())
        elif root.is_dir():
            base = root / "projects" if (root / "projects").is_dir() else root
            files.update(p.resolve() for p in base.rglob("*.jsonl") if p.is_file())
        else:
            raise FileNotFoundError(f"{root}: no such file or directory")
    return sorted(files, key=lambda p: (_is_subagent(p), str(p)))


def _is_subagent(path: Path) -> bool:
    return path.parent.name == "subagents"


def _project_of(path: Path) -> str:
    parts = path.parts
    if "projects" in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index("projects")
        if index + 2 <= len(parts) - 1:
            return parts[index + 1]
    session_dir = path.parent.parent.parent if _is_subagent(path) else path.parent
    return session_dir.name or "unknown"


def _parent_session_file(path: Path) -> Path:
    """``<project>/<sessionId>/subagents/agent-x.jsonl`` -> ``<project>/<sessionId>.jsonl``."""
    session_dir = path.parent.parent
    return session_dir.parent / f"{session_dir.name}.jsonl"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def usage_of(line: dict[str, Any]) -> dict[str, Any] | None:
    """The ``message.usage`` of a line that ccusage counts, or None.

    Mirrors ccusage's ``usageDataSchema``: optional fields, when present, must have their
    type (a JSON ``null`` is not absent).
    """
    message = line.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    timestamp = line.get("timestamp")
    if not isinstance(timestamp, str) or not _ISO_UTC.match(timestamp):
        return None
    if not (_is_number(usage.get("input_tokens")) and _is_number(usage.get("output_tokens"))):
        return None
    for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        if key in usage and not _is_number(usage[key]):
            return None
    checks: tuple[tuple[Any, str, Callable[[Any], bool]], ...] = (
        (line, "cwd", lambda v: isinstance(v, str)),
        (line, "sessionId", _nonempty),
        (line, "version", lambda v: isinstance(v, str) and bool(_VERSION.match(v))),
        (line, "costUSD", _is_number),
        (line, "requestId", _nonempty),
        (line, "isApiErrorMessage", lambda v: isinstance(v, bool)),
        (message, "model", _nonempty),
        (message, "id", _nonempty),
        (message, "content", _content_ok),
    )
    for holder, key, check in checks:
        if key in holder and not check(holder[key]):
            return None
    return usage


def _content_ok(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and ("text" not in item or isinstance(item["text"], str))
        for item in value
    )


def _timestamp(value: str) -> str:
    return value if _ISO_MS.match(value) else format_timestamp(parse_timestamp(value))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_of(content: Any) -> str:
    """Readable text of a message's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind == "tool_use":
            parts.append(f"[tool_use {block.get('name')}]")
        elif kind == "tool_result":
            parts.append(f"[tool_result {_clip(_text_of(block.get('content')), 200)}]")
    return "\n".join(parts)


def _tint(value: Any) -> int:
    return int(value) if _is_number(value) and value > 0 else 0


@dataclass
class _Response:
    """One API response, gathered from the lines that repeat its ids."""

    model: str | None
    usage: dict[str, Any]
    created_at: str
    content: str
    message_id: str | None
    request_id: str | None
    texts: list[str] = field(default_factory=list)
    output_final: int = 0


class _Importer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        summary: ImportSummary,
        progress: Callable[[int], None] | None,
        redact_secrets: bool,
    ) -> None:
        self.conn = conn
        self.summary = summary
        self.progress = progress
        self.redact_secrets = redact_secrets
        self.prompt_columns = {row[1] for row in conn.execute("PRAGMA table_info(prompts)")}

    def _redacted(self, text: str) -> str:
        return redact_text(text) if self.redact_secrets else text

    def _run_for_file(self, path: Path) -> str:
        """The run of a transcript file, created (with its state row) on first sight."""
        row = self.conn.execute(
            "SELECT agent_id FROM claude_code_files WHERE path = ?", (str(path),)
        ).fetchone()
        if row is not None:
            return str(row[0])
        subagent = _is_subagent(path)
        parent = self._run_for_file(_parent_session_file(path)) if subagent else None
        project = _project_of(path)
        name = f"claude-code:{project}"
        now = utc_now()
        self.conn.execute(
            "INSERT INTO orchestrator_agents (id, name, description, status, created_at, "
            "updated_at) VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT(name) DO NOTHING",
            (new_id(), name, f"Claude Code sessions of project {project}", now, now),
        )
        orchestrator_id = self.conn.execute(
            "SELECT id FROM orchestrator_agents WHERE name = ?", (name,)
        ).fetchone()[0]
        agent_id = new_id()
        session_id = path.parent.parent.name if subagent else path.stem
        self.conn.execute(
            "INSERT INTO agents (id, orchestrator_agent_id, session_id, status, created_at, "
            "name, parent_agent_id) VALUES (?, ?, ?, 'completed', ?, ?, ?)",
            (agent_id, orchestrator_id, session_id, now, path.stem, parent),
        )
        self.conn.execute(
            "INSERT INTO claude_code_files (path, agent_id, kind) VALUES (?, ?, ?)",
            (str(path), agent_id, "subagent" if subagent else "session"),
        )
        self.summary.runs_created += 1
        return agent_id

    def import_file(self, path: Path) -> None:
        summary = self.summary
        summary.files += 1
        try:
            size = path.stat().st_size
        except OSError as exc:
            summary.errors.append(f"{path}: {exc}")
            return
        state = self.conn.execute(
            "SELECT size, byte_offset FROM claude_code_files WHERE path = ?", (str(path),)
        ).fetchone()
        start = 0
        if state is not None:
            if state[0] == size and state[1] == size:
                summary.files_unchanged += 1
                if self.progress:
                    self.progress(size)
                return
            # A file smaller than what was read was rewritten: read it again from the start
            # (the unique key keeps responses from being counted twice).
            start = state[1] if size >= state[1] else 0
        try:
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read(size - start)
        except OSError as exc:
            summary.errors.append(f"{path}: {exc}")
            return
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the data ends with a newline
        end = start + len(data) - len(tail)
        if tail.strip():
            try:  # a last line without newline counts once it is a whole JSON object
                if isinstance(json.loads(tail), dict):
                    lines.append(tail)
                    end = start + len(data)
            except ValueError:
                pass  # a line still being written: read it next time
        self.conn.execute(sqlite_backend.BEGIN_WRITE)
        try:
            agent_id = self._run_for_file(path)
            self._import_lines(agent_id, lines)
            self.conn.execute(
                "UPDATE claude_code_files SET size = ?, byte_offset = ?, lines = lines + ?, "
                "imported_at = ? WHERE path = ?",
                (size, end, len(lines), utc_now(), str(path)),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        summary.bytes_read += len(data)
        if self.progress:
            self.progress(size)

    def _import_lines(self, agent_id: str, lines: list[bytes]) -> None:
        summary = self.summary
        responses: dict[Any, _Response] = {}
        logs: list[tuple[Any, ...]] = []
        tool_names: dict[str, str] = {}
        last_user = ""
        first_ts: str | None = None
        last_ts: str | None = None
        session_id: str | None = None
        for raw in lines:
            if not raw.strip():
                continue
            summary.lines += 1
            try:
                line = json.loads(raw)
            except ValueError:
                summary.malformed += 1
                continue
            if not isinstance(line, dict):
                summary.malformed += 1
                continue
            kind = line.get("type")
            if kind not in KNOWN_TYPES:
                summary.unknown_types += 1
            stamp = line.get("timestamp")
            created = None
            if isinstance(stamp, str):
                try:
                    created = _timestamp(stamp)
                except ValueError:
                    created = None
            if created is not None:
                first_ts = created if first_ts is None or created < first_ts else first_ts
                last_ts = created if last_ts is None or created > last_ts else last_ts
            if session_id is None and _nonempty(line.get("sessionId")):
                session_id = line["sessionId"]
            message = line.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            when = created or utc_now()
            usage = usage_of(line)
            if (
                usage is None
                and isinstance(message, dict)
                and isinstance(message.get("usage"), dict)
            ):
                summary.malformed += 1  # usage of a shape ccusage does not count either
            if usage is not None:
                assert isinstance(message, dict) and created is not None
                if not all(
                    _tint(usage.get(k)) == usage.get(k, 0)
                    for k in (
                        "input_tokens",
                        "output_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                    )
                ):
                    summary.malformed += 1  # negative or fractional token counts
                    usage = None
            if usage is not None:
                assert isinstance(message, dict) and created is not None
                message_id, request_id = message.get("id"), line.get("requestId")
                key: Any = (message_id, request_id)
                if message_id is None or request_id is None:
                    key = object()  # ccusage counts lines without both ids every time
                response = responses.get(key)
                if response is None:
                    response = responses[key] = _Response(
                        model=message.get("model"),
                        usage=usage,
                        created_at=created,
                        content=last_user,
                        message_id=message_id,
                        request_id=request_id,
                    )
                else:
                    summary.duplicates_skipped += 1
                response.output_final = max(response.output_final, _tint(usage["output_tokens"]))
                text = _text_of(content)
                if text:
                    response.texts.append(text)
            elif kind == "user" and isinstance(message, dict):
                text = _text_of(content)
                if text and not (isinstance(content, list) and _only_tool_results(content)):
                    last_user = text
            if isinstance(content, list):
                logs.extend(self._tool_logs(agent_id, content, when, tool_names))
        self._write_prompts(agent_id, responses.values())
        if logs:
            self.conn.executemany(
                "INSERT INTO agent_logs (id, agent_id, log_type, message, metadata, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                logs,
            )
            summary.tool_events += len(logs)
        if first_ts is not None and last_ts is not None:
            self.conn.execute(
                "UPDATE agents SET "
                "created_at = CASE WHEN started_at IS NULL THEN ? "
                "ELSE created_at END, "
                "started_at = min(coalesce(started_at, ?), ?), "
                "completed_at = max(coalesce(completed_at, ?), ?), "
                "session_id = coalesce(?, session_id) WHERE id = ?",
                (first_ts, first_ts, first_ts, last_ts, last_ts, session_id, agent_id),
            )
            self.conn.execute(
                "UPDATE agents SET duration_ms = (julianday(completed_at) - julianday(started_at))"
                " * 86400000.0 WHERE id = ?",
                (agent_id,),
            )

    def _tool_logs(
        self, agent_id: str, content: list[Any], when: str, tool_names: dict[str, str]
    ) -> Iterator[tuple[Any, ...]]:
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                name = str(block.get("name"))
                tool_id = block.get("id")
                if isinstance(tool_id, str):
                    tool_names[tool_id] = name
                arguments = json.dumps(block.get("input"), ensure_ascii=False)
                metadata = {"tool_use_id": tool_id, "name": name, "input": _clip(arguments, 2000)}
                message = _clip(f"{name}: {arguments}", LOG_LIMIT)
            elif kind == "tool_result":
                tool_id = block.get("tool_use_id")
                name = tool_names.get(tool_id, "tool") if isinstance(tool_id, str) else "tool"
                metadata = {
                    "tool_use_id": tool_id,
                    "name": name,
                    "is_error": bool(block.get("is_error")),
                }
                message = _clip(f"{name}: {_text_of(block.get('content'))}", LOG_LIMIT)
            else:
                continue
            yield (
                new_id(),
                agent_id,
                kind,
                self._redacted(message),
                self._redacted(json.dumps(metadata, ensure_ascii=False)),
                when,
            )

    def _write_prompts(self, agent_id: str, responses: Iterable[_Response]) -> None:
        savings = "cache_savings_usd" in self.prompt_columns
        columns = [
            "id",
            "agent_id",
            "content",
            "response",
            "status",
            "model",
            "tokens_input",
            "tokens_output",
            "tokens_cache_read",
            "tokens_cache_write",
            "cost_usd",
            "cost_source",
            "cost_computed_usd",
            "priced_with",
            "created_at",
            "completed_at",
        ] + (["cache_savings_usd"] if savings else [])
        insert = (
            f"INSERT INTO prompts ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        )
        for response in responses:
            keyed = response.message_id is not None and response.request_id is not None
            if keyed:
                known = self.conn.execute(
                    "SELECT prompt_id FROM prompt_responses "
                    "WHERE message_id = ? AND request_id = ?",
                    (response.message_id, response.request_id),
                ).fetchone()
                if known is not None:
                    # Already stored (an earlier import or another file): count nothing twice,
                    # keep the larger final output count.
                    self.summary.duplicates_skipped += 1
                    self.conn.execute(
                        "UPDATE prompt_responses SET tokens_output_final = "
                        "max(coalesce(tokens_output_final, 0), ?) WHERE prompt_id = ?",
                        (response.output_final, known[0]),
                    )
                    continue
            usage = response.usage
            tokens: dict[str, Any] = {
                "tokens_input": _tint(usage.get("input_tokens")),
                "tokens_output": _tint(usage.get("output_tokens")),
                "tokens_cache_read": _tint(usage.get("cache_read_input_tokens")),
                "tokens_cache_write": _tint(usage.get("cache_creation_input_tokens")),
            }
            day = datetime.fromisoformat(response.created_at[:10])
            cost = resolve_cost(response.model, reported_usd=None, when=day, **tokens)
            prompt_id = new_id()
            values = [
                prompt_id,
                agent_id,
                self._redacted(_clip(response.content, TEXT_LIMIT)),
                self._redacted(_clip("\n".join(response.texts), TEXT_LIMIT)),
                "completed",
                response.model,
                *tokens.values(),
                cost.cost_usd,
                getattr(cost.source, "value", cost.source),
                cost.computed_usd,
                cost.priced_with,
                response.created_at,
                response.created_at,
            ]
            if savings:
                values.append(getattr(cost, "cache_savings_usd", None))
            self.conn.execute(insert, values)
            self.summary.prompts_added += 1
            if response.message_id is not None:
                self.conn.execute(
                    "INSERT INTO prompt_responses (prompt_id, message_id, request_id, "
                    "tokens_output_final) VALUES (?, ?, ?, ?)",
                    (
                        prompt_id,
                        response.message_id,
                        response.request_id,
                        max(response.output_final, tokens["tokens_output"]),
                    ),
                )


def _only_tool_results(content: list[Any]) -> bool:
    return all(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def import_transcripts(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    *,
    db_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    redact_secrets: bool = True,
) -> ImportSummary:
    """Import Claude Code transcripts under ``paths`` into ``db_path``; return a summary.

    ``paths`` are files or folders (default: :func:`claude_config_dirs`); ``db_path``
    defaults to the project's default database. ``progress`` is called with the size of
    each file once it is done. Raises FileNotFoundError for a missing path; a file that
    cannot be read is reported in ``summary.errors`` and the others are imported.
    """
    files = transcript_files(paths)
    conn = sqlite_backend.connect(
        db_path if db_path is not None else sqlite_backend.default_db_path()
    )
    summary = ImportSummary()
    try:
        importer = _Importer(conn, summary, progress, redact_secrets)
        for path in files:
            importer.import_file(path)
    finally:
        conn.close()
    return summary


def daily_tokens(
    db_path: str | os.PathLike[str] | None = None,
    *,
    orchestrator: str = "",
    start: str = "",
    end: str = "",
) -> list[dict[str, Any]]:
    """The ``daily_tokens`` canned report (the figures of ``ccusage daily -z UTC``) as a
    list of dicts, newest day first."""
    from .reports import run_report

    params = {"orchestrator": orchestrator, "start": start, "end": end}
    return run_report("daily_tokens", db_path, params).as_dicts()


__all__ = [
    "ImportSummary",
    "claude_config_dirs",
    "daily_tokens",
    "import_transcripts",
    "transcript_files",
    "usage_of",
]
