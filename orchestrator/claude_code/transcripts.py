"""Import Claude Code session transcripts (``~/.claude/projects/**/*.jsonl``) into the database.

A session transcript ``projects/<project>/<sessionId>.jsonl`` becomes one agent run of the
orchestrator agent ``claude-code:<project>``; a subagent transcript
``<sessionId>/subagents/agent-*.jsonl`` becomes a run whose ``parent_agent_id`` is the
session's run. Each API response becomes one prompt (model, usage, cost from
genai-prices at the response's own time, timestamps of the transcript lines); tool calls
and their results become ``tool_use`` / ``tool_result`` agent logs. Rows are built by
:mod:`orchestrator.core.rows` and written through one :class:`~orchestrator.store.backend.Backend`
connection, SQLite or PostgreSQL (an SQLite file is written from this thread, as fast as
sqlite3 itself: no event loop, no driver thread).

What counts as usage follows ccusage (17.2.1) exactly, so the token totals match it:
any line whose ``message.usage`` has numeric ``input_tokens`` and ``output_tokens`` and
whose ``timestamp`` is ISO UTC counts, whatever its ``type``; one API response is written
as several lines repeating ``message.id`` and ``requestId``, and each such pair is counted
once across all files (a unique index on ``prompt_responses(message_id, request_id)``), keeping
the FIRST line's usage. The first line can carry a partial ``output_tokens``; the last
line's count is kept beside it in ``prompt_responses.tokens_output_final``. Lines without the pair
are counted every time, as ccusage does. ``<synthetic>`` lines cost nothing.

A session also recorded live (``orchestrator record``, ``import stream-json``) is counted
once: its transcript is imported into that run (the run whose ``session_id`` is the
transcript's), a response already stored from the stream (same ``message.id``, no request
id) is not added again, and a tool call already logged is not logged again.

Imports are incremental: ``claude_code_files`` keeps each file's size and the byte offset
just past its last complete line, so re-importing adds nothing (without reading a line)
and a grown file is read from where the last import stopped. Files are read line by line
(memory does not grow with a file's size); each file is imported whole or not at all (a
savepoint), so a file that fails is rolled back and reported while the others are imported.

A prompt's text is the last text the person wrote before the response (in this file).
Text Claude Code writes in the user's name is not: a skill's expanded instructions and
notices (``isMeta``), and the summary that replaces a conversation compacted when its
context ran out (``isCompactSummary``), after which the agent goes on with the task the
person gave; such text is a response's prompt only while the file holds nothing the
person wrote (a continued session's new file).

Today's transcripts (Claude Code 2.1.337) hold more than responses. The last
``cost-state`` line of a file (Claude Code's cost of the whole session so far: per model
tokens and ``costUSD``, durations, lines changed, ``hasUnknownModelCost``) is stored on the
run as a stream's ``result`` line is (``claude_code_runs``, ``agent_model_usage``, the
computed cost beside the reported one), unless the run holds a later one (a longer
``totalDuration``); no reconciling prompt is added, so token totals stay ccusage's. The
``environment`` attachment and ``worktree-state`` lines give the run's working directory,
git branch and worktree; an ``api-request`` line gives the effort, thinking and
``max_tokens`` of the response whose ``requestRef`` names it. The other types 2.1.337
writes (SKIPPED_TYPES) hold nothing stored and are counted as skipped.

Bad lines are counted as malformed, never fatal. A line is skipped whole when it is not a
JSON object, holds ``NaN`` / ``Infinity`` or a lone surrogate (``\\ud800``), has a
``timestamp`` that is no real time (``2026-02-30T00:00:00.000Z``) or is longer than
LINE_LIMIT; its usage alone is skipped when it is of a shape ccusage does not count or a
token count is not a whole number from 0 to ``common.MAX_TOKENS``. Unknown line types are
counted (and listed by name in the summary) and read like the others; a ``cost-state``
of another shape than Claude Code's own is malformed (Claude Code ignores it too).
(ccusage counts a few of these differently: an impossible date rolls over into the next
month, ``1e300`` tokens add up.)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..core.errors import InvalidInput, format_exception
from ..core.ids import format_timestamp, parse_timestamp, utc_now
from ..store.backend import Backend, run_blocking
from .common import (
    MODEL_USAGE_KEYS,
    LineCounts,
    PromptText,
    Response,
    clip,
    is_token_count,
    parse_line,
    storable,
    text_of,
    tool_log_rows,
)
from .hook import TOOL_LOG_KINDS
from .hook import TOOL_LOG_TYPES as _TOOL_LOG_TYPES  # the importers' and the hook's (one call)

#: Line types the importer reads something from (every line is also read for usage and
#: tool calls, whatever its type, as ccusage reads it).
READ_TYPES = frozenset(
    {
        "user",
        "assistant",
        "progress",
        "system",
        "result",
        "api-request-blob",  # the blocks sent: their tool calls are logged once
        "cost-state",  # Claude Code's own cost of the session
        "attachment",  # the environment snapshot: working directory, git repo, worktree
        "worktree-state",  # a worktree entered during the session
        "api-request",  # each request's effort, thinking and max_tokens
    }
)
#: Line types Claude Code writes (up to 2.1.337, from its transcript writer's own list)
#: that hold nothing this importer stores: counted as skipped, not as unknown.
SKIPPED_TYPES = frozenset(
    {
        "agent-color",
        "agent-name",
        "agent-setting",
        "ai-title",
        "api-request-resumed",
        "api-request-route",
        "api-request-shape",
        "artifact-autoreact-ledger",
        "artifact-comment-monitor",
        "atis-latch",
        "attribution-snapshot",
        "bridge-session",
        "content-replacement",
        "continued-in",
        "custom-title",
        "data-flow-incomplete",
        "data-flow-records",
        "denial-counts",
        "derived-from",
        "dev-mods",
        "ended-by-model",
        "file-history-delta",
        "file-history-snapshot",
        "fork-context-ref",
        "frame-link",
        "history-suppression",
        "host-row",
        "hybrid-organization",
        "isolation-latch",
        "last-prompt",
        "memory-mode",
        "mode",
        "observer-ref",
        "permission-mode",
        "pr-link",
        "queue-operation",
        "relocated",
        "repl-mode",
        "resume-head-vouch",
        "session-owner",
        "summary",
        "tag",
        "tools-used",
    }
)
#: Line types Claude Code writes that the importer knows (others are counted as unknown).
KNOWN_TYPES = READ_TYPES | SKIPPED_TYPES
#: Distinct unknown type names an import summary lists (their lines are all counted).
UNKNOWN_NAMES_LISTED = 20

#: A line longer than this (bytes) is skipped as malformed without being held in memory.
#: Claude Code's longest lines are tool results (an image, a file): a few MB.
LINE_LIMIT = 16 * 2**20
#: Responses gathered before they are written, and log rows before they are: what bounds
#: memory on a long transcript. (A response whose lines lie further apart than this is
#: still counted once: the unique key finds it.)
RESPONSES_HELD = 256
LOGS_HELD = 1000
#: Files are imported in one transaction (a savepoint each: a file that fails is rolled
#: back alone), committed once it has been open this long: ADWs writing to the same
#: database wait at most about this long (plus one file's import) for the write lock.
COMMIT_EVERY_S = 1.0

# ccusage's schema for a usage line (valibot): fields that, when present, must have this shape.
_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$")
_ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+")


def _one_hour_exceeds(usage: dict[str, Any]) -> bool:
    """Whether ``usage`` says more tokens were cached for 1 hour than were cached at all."""
    creation = usage.get("cache_creation")
    one_hour = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, dict) else None
    if not is_token_count(one_hour) or not one_hour:
        return False
    return bool(one_hour > (usage.get("cache_creation_input_tokens") or 0))


_TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_SUMMED = (
    "lines",
    "tool_events",
    "malformed",
    "unknown_types",
    "skipped",
    "runs_created",
    "prompts_added",
    "duplicates_skipped",
    "bytes_read",
)


@dataclass
class ImportSummary(LineCounts):
    """What one import did; ``str()`` gives the CLI's one-paragraph report. ``lines`` counts
    complete lines; ``malformed`` also counts usage of a shape ccusage does not count."""

    files: int = 0  # transcript files looked at
    files_unchanged: int = 0  # of which nothing new since the last import
    runs_created: int = 0
    prompts_added: int = 0
    duplicates_skipped: int = 0  # lines of a response already counted (message.id+requestId)
    bytes_read: int = 0
    skipped: int = 0  # lines of a known type holding nothing to store (SKIPPED_TYPES)
    #: The unknown line types met and how many lines each (at most UNKNOWN_NAMES_LISTED).
    unknown_type_names: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # files that could not be imported

    def __str__(self) -> str:
        text = (
            f"{self.files} files ({self.files_unchanged} unchanged), {self.lines} lines: "
            f"{self.prompts_added} prompts added, {self.duplicates_skipped} duplicates skipped, "
            f"{self.tool_events} tool events, {self.runs_created} runs created, "
            f"{self.malformed} malformed, {self.unknown_types} unknown types"
        )
        if self.unknown_type_names:
            text += " (" + ", ".join(
                f"{name}: {count}" for name, count in sorted(self.unknown_type_names.items())
            )
            text += ", ...)" if len(self.unknown_type_names) >= UNKNOWN_NAMES_LISTED else ")"
        text += f", {self.skipped} lines of known types with nothing to store"
        for error in self.errors:
            text += f"\nerror: {error}"
        return text

    def add(self, other: ImportSummary) -> None:
        """Add the counts of ``other`` (one file's import) to these."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, count in other.unknown_type_names.items():
            self.count_unknown(name, count)

    def count_unknown(self, name: str, lines: int = 1) -> None:
        """Note ``lines`` lines of the unknown type ``name`` (listed up to a limit)."""
        if name in self.unknown_type_names:
            self.unknown_type_names[name] += lines
        elif len(self.unknown_type_names) < UNKNOWN_NAMES_LISTED:
            self.unknown_type_names[name] = lines


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
    files: set[str] = set()
    for root in roots:
        root = root.expanduser()
        if root.is_file():
            files.add(str(root.resolve()))
        elif root.is_dir():
            base = root / "projects" if (root / "projects").is_dir() else root
            files.update(_jsonl_under(base.resolve()))
        else:
            raise FileNotFoundError(f"{root}: no such file or directory")
    subagent = "subagents"
    return [
        Path(p)
        for p in sorted(files, key=lambda p: (os.path.basename(os.path.dirname(p)) == subagent, p))
    ]


def _jsonl_under(base: Path) -> Iterator[str]:
    """The real paths of the ``.jsonl`` files under ``base`` (resolved), as ``rglob`` finds
    them (symlinked folders are not followed), resolving only the symlinks: resolving
    every path would be most of the time an unchanged import of thousands of files takes."""
    for folder, _, names in os.walk(base):
        for name in names:
            if name.endswith(".jsonl"):
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    path = os.path.realpath(path)
                    if not os.path.isfile(path):
                        continue
                yield path


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
    for key, check in _LINE_FIELDS:
        if key in line and not check(line[key]):
            return None
    for key, check in _MESSAGE_FIELDS:
        if key in message and not check(message[key]):
            return None
    return usage


def _content_ok(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and ("text" not in item or isinstance(item["text"], str))
        for item in value
    )


def _is_version(value: Any) -> bool:
    return isinstance(value, str) and bool(_VERSION.match(value))


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


# usage_of's checks of the optional fields of a line and of its message.
_LINE_FIELDS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("cwd", _is_str),
    ("sessionId", _nonempty),
    ("version", _is_version),
    ("costUSD", _is_number),
    ("requestId", _nonempty),
    ("isApiErrorMessage", _is_bool),
)
_MESSAGE_FIELDS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("model", _nonempty),
    ("id", _nonempty),
    ("content", _content_ok),
)


def _timestamp(value: Any) -> str | None:
    """A line's timestamp in the project's format, or None when it is no real time."""
    if not isinstance(value, str):
        return None
    try:
        if _ISO_MS.match(value):
            datetime.fromisoformat(value[:-1])  # the regex lets 2026-02-30 and 25:00 through
            return value
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        return None


@dataclass
class _Response(Response):
    """A transcript's response: its ``requestId``, the largest output count of its lines and
    what its request asked for (:func:`_request_fields`)."""

    request_id: str | None = None
    output_final: int = 0
    request: tuple[Any, ...] = (None, None, None, None)


#: api-request lines held until their responses come (a response follows its request).
REQUESTS_HELD = 64
#: The largest figure (USD, ms, lines) a ``cost-state`` may hold: Claude Code's own bound.
MAX_FIGURE = 1e15


def _type_name(kind: Any) -> str:
    """An unknown line type as the import summary lists it."""
    if isinstance(kind, str) and storable(kind):
        return clip(kind, 60)
    return "(no type)" if kind is None else clip(repr(kind), 60)


def _figure(value: Any, limit: float = MAX_FIGURE) -> float | int | None:
    """A cost-state figure: a finite number from 0 to ``limit``, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if 0 <= value <= limit else None  # NaN fails both comparisons


def _whole(value: Any) -> int | None:
    """A whole-number figure (token count, lines, max_tokens) as an int, else None."""
    return int(value) if is_token_count(value) else None


def _request_fields(line: dict[str, Any]) -> tuple[Any, ...]:
    """What an ``api-request`` line says its request asked for: (effort, thinking type,
    thinking budget, max_tokens), each None when absent or of another shape."""
    params = line.get("params")
    if not isinstance(params, dict):
        return (None, None, None, None)
    output_config = params.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    thinking = params.get("thinking")
    kind = budget = None
    if isinstance(thinking, dict):
        kind, budget = thinking.get("type"), _whole(thinking.get("budget_tokens"))
    return (
        effort if isinstance(effort, str) and storable(effort) else None,
        kind if isinstance(kind, str) and storable(kind) else None,
        budget,
        _whole(params.get("max_tokens")),
    )


@dataclass
class _CostState:
    """A ``cost-state`` line, checked as Claude Code checks it when it reads one back."""

    cost_usd: float | int
    total_duration_ms: float | int
    api_duration_ms: float | int | None
    tool_duration_ms: float | int | None
    lines_added: int | None
    lines_removed: int | None
    has_unknown_model_cost: int | None
    #: Per model: the token columns (MODEL_USAGE_KEYS), its 1-hour cache writes, the
    #: reported cost and the web searches.
    models: dict[str, tuple[dict[str, int], int, Any, Any]]


def _cost_state(line: dict[str, Any]) -> _CostState | None:
    """The figures of a ``cost-state`` line, or None when it is not of the shape Claude Code
    writes (then Claude Code ignores it too): a total cost, a total duration and a
    ``modelUsage`` object of per-model token counts and costs; other figures, when
    present, must be numbers from 0 up."""
    cost = _figure(line.get("totalCostUSD"), 1e9)
    duration = _figure(line.get("totalDuration"))
    usage = line.get("modelUsage")
    if cost is None or duration is None or not isinstance(usage, dict):
        return None
    optional = {}
    for key in ("totalAPIDuration", "totalToolDuration", "totalLinesAdded", "totalLinesRemoved"):
        value = line.get(key)
        optional[key] = _figure(value)
        if value is not None and optional[key] is None:
            return None
    unknown = line.get("hasUnknownModelCost")
    if unknown is not None and not isinstance(unknown, bool):
        return None
    models: dict[str, tuple[dict[str, int], int, Any, Any]] = {}
    for model, figures in usage.items():
        if not model or not storable(model) or not isinstance(figures, dict):
            return None
        if not all(is_token_count(figures.get(key)) for key in MODEL_USAGE_KEYS.values()):
            return None
        one_hour = figures.get("cacheCreationEphemeral1hInputTokens", 0)
        model_cost = _figure(figures.get("costUSD"), 1e9)
        if not is_token_count(one_hour) or model_cost is None:
            return None
        tokens = {column: int(figures[key]) for column, key in MODEL_USAGE_KEYS.items()}
        searches = _whole(figures.get("webSearchRequests"))
        models[model] = (tokens, int(one_hour), model_cost, searches)
    added, removed = optional["totalLinesAdded"], optional["totalLinesRemoved"]
    return _CostState(
        cost_usd=cost,
        total_duration_ms=duration,
        api_duration_ms=optional["totalAPIDuration"],
        tool_duration_ms=optional["totalToolDuration"],
        lines_added=None if added is None else int(added),
        lines_removed=None if removed is None else int(removed),
        has_unknown_model_cost=None if unknown is None else int(unknown),
        models=models,
    )


def _environment(line: dict[str, Any]) -> dict[str, Any] | None:
    """The run's environment an ``attachment`` (its ``environment`` snapshot) or a
    ``worktree-state`` line (a worktree entered) gives: cwd, git_branch, is_git_repo,
    is_worktree (None: not said)."""
    if line.get("type") == "worktree-state":
        session = line.get("worktreeSession")
        if not isinstance(session, dict):
            return None  # null: the worktree was left; the next snapshot says where to
        path, branch = session.get("worktreePath"), session.get("worktreeBranch")
        if not (isinstance(path, str) and storable(path)):
            return None
        return {
            "cwd": path,
            "git_branch": branch if isinstance(branch, str) and storable(branch) else None,
            "is_git_repo": 1,
            "is_worktree": 1,
        }
    attachment = line.get("attachment")
    if not isinstance(attachment, dict) or attachment.get("type") != "environment":
        return None
    snapshot = attachment.get("snapshot")
    if not isinstance(snapshot, dict):
        return None
    cwd = snapshot.get("workingDirectory")
    is_git_repo = snapshot.get("isGitRepo")
    is_worktree = snapshot.get("isWorktree")
    # The branch: the snapshot's own when it names one, else the line's (Claude Code
    # writes gitBranch "HEAD" outside a repository too: kept only in one).
    branch = snapshot.get("vcsBranch")
    if not isinstance(branch, str):
        branch = line.get("gitBranch")
    in_repo = is_git_repo if isinstance(is_git_repo, bool) else None
    return {
        "cwd": cwd if isinstance(cwd, str) and storable(cwd) else None,
        "git_branch": branch
        if in_repo and isinstance(branch, str) and branch and storable(branch)
        else None,
        "is_git_repo": None if in_repo is None else int(in_repo),
        "is_worktree": int(is_worktree) if isinstance(is_worktree, bool) else None,
    }


def _rows() -> Any:
    """:mod:`orchestrator.core.rows`, imported when a file has something new (it and price
    data take longer to import than an unchanged import takes)."""
    from ..core import rows

    return rows


class _Importer:
    """Imports files one by one over one connection, each in a savepoint of its own."""

    def __init__(
        self,
        db: Backend,
        summary: ImportSummary,
        progress: Callable[[int], None] | None,
        redact_secrets: bool,
    ) -> None:
        self.db = db
        self.summary = summary
        self.progress = progress
        self.redact_secrets = redact_secrets
        self.began = 0.0  # when the open transaction began (time.monotonic)
        self.deferred: dict[str, tuple[str, int]] = {}  # search index and summaries
        self.state: dict[str, tuple[int, int]] = {}

    async def read_state(self) -> None:
        """Every file's state in one query: an unchanged file costs a stat() and no more."""
        self.state = {
            row["path"]: (row["size"], row["byte_offset"])
            for row in await self.db.fetchall(
                "SELECT path, size, byte_offset FROM claude_code_files"
            )
        }

    async def import_file(self, path: Path) -> None:
        """Import what is new in ``path``; any failure is rolled back and reported in
        ``summary.errors`` (the database's own failures are raised)."""
        summary = self.summary
        summary.files += 1
        try:
            size = path.stat().st_size
        except OSError as exc:
            summary.errors.append(f"{path}: {exc}")
            return
        state = self.state.get(str(path))
        start = 0
        if state is not None:
            if state == (size, size):
                summary.files_unchanged += 1
                if self.progress:
                    self.progress(size)
                return
            # A file smaller than what was read was rewritten: read it again from the start
            # (the unique key keeps responses from being counted twice).
            start = state[1] if size >= state[1] else 0
        counts = ImportSummary()
        db = self.db
        try:
            with path.open("rb") as handle:
                handle.seek(start)
                if not db.in_transaction:
                    await db.begin()
                    self.began = time.monotonic()
                    # Indexed for search, and prompts added to the summaries, in one
                    # statement each at commit: ~4x less time than trigger calls per
                    # row (inserting is most of an import). The import never updates
                    # or deletes a prompt, as deferring the summaries requires.
                    self.deferred = await db.defer_search_index(summaries=True)
                await db.execute("SAVEPOINT claude_code_file")
                try:
                    reading = _FileImport(self, counts)
                    await reading.start(path)
                    end, read_to = await reading.run(handle, start)
                    await db.execute(
                        "UPDATE claude_code_files SET size = ?, byte_offset = ?, "
                        "lines = lines + ?, imported_at = ? WHERE path = ?",
                        (read_to, end, counts.lines, utc_now(), str(path)),
                    )
                    await db.execute("RELEASE claude_code_file")
                except BaseException:
                    if db.in_transaction:
                        await db.execute("ROLLBACK TO claude_code_file")
                        await db.execute("RELEASE claude_code_file")
                    raise
        except Exception as exc:
            if isinstance(exc, db.database_error) and not db.is_row_error(exc):
                raise  # the database itself (locked, full, gone): the next file would fail too
            summary.errors.append(f"{path}: {format_exception(exc)}")
        else:
            counts.bytes_read = read_to - start
            summary.add(counts)
            self.state[str(path)] = (read_to, end)
        if db.in_transaction and time.monotonic() - self.began > COMMIT_EVERY_S:
            await self.commit()
        if self.progress:
            self.progress(size)

    async def commit(self) -> None:
        """Commit the files imported so far (each one whole: a failed one was rolled back),
        their rows indexed for full-text search."""
        if self.db.in_transaction:
            await self.db.catch_up_search_index(self.deferred)
            await self.db.commit()

    async def run_for_file(self, path: Path, counts: ImportSummary) -> tuple[str, bool]:
        """The run of a transcript file, created (with its state row) on first sight, and
        whether the run existed before (then it may have logged some tool calls already)."""
        db = self.db
        row = await db.fetchone(
            "SELECT agent_id FROM claude_code_files WHERE path = ?", (str(path),)
        )
        if row is not None:
            return str(row["agent_id"]), True
        subagent = _is_subagent(path)
        kind = "subagent" if subagent else "session"
        live = None if subagent else await self._live_run(path.stem)
        if live is not None:
            await db.execute(
                "INSERT INTO claude_code_files (path, agent_id, kind) VALUES (?, ?, ?)",
                (str(path), live, kind),
            )
            return live, True
        rows = _rows()
        parent = (
            (await self.run_for_file(_parent_session_file(path), counts))[0] if subagent else None
        )
        if parent is not None:
            hooked = await self._hooked_subagent(parent, path.stem)
            if hooked is not None:
                await db.execute(
                    "INSERT INTO claude_code_files (path, agent_id, kind) VALUES (?, ?, ?)",
                    (str(path), hooked, kind),
                )
                return hooked, True
        project = _project_of(path)
        name = f"claude-code:{project}"
        orchestrator = rows.orchestrator_agent_tuple(
            name,
            f"Claude Code sessions of project {project}",
            redact_secrets=self.redact_secrets,
        )
        await db.execute(_sql()["orchestrator"], orchestrator)
        found = await db.fetchone("SELECT id FROM orchestrator_agents WHERE name = ?", (name,))
        assert found is not None
        orchestrator_id = found["id"]
        # Completed: a transcript is what a session left behind. The line timestamps set
        # created_at / started_at / completed_at once the lines are read.
        agent = rows.agent_tuple(
            orchestrator_id,
            path.parent.parent.name if subagent else path.stem,
            name=path.stem,
            status="completed",
            parent_agent_id=parent,
        )
        await db.execute(_sql()["agent"], agent)
        agent_id = agent[rows.AGENT_COLUMNS.index("id")]
        await db.execute(
            "INSERT INTO claude_code_files (path, agent_id, kind) VALUES (?, ?, ?)",
            (str(path), agent_id, kind),
        )
        counts.runs_created += 1
        return str(agent_id), False

    async def _hooked_subagent(self, parent: str, name: str) -> str | None:
        """The subagent run ``name`` (``agent-<id>``) of run ``parent`` that hooks recorded
        (``orchestrator hook``) and no transcript was imported into, if any."""
        row = await self.db.fetchone(
            "SELECT id FROM agents WHERE parent_agent_id = ? AND name = ? AND NOT EXISTS "
            "(SELECT 1 FROM claude_code_files f WHERE f.agent_id = agents.id) LIMIT 1",
            (parent, name),
        )
        return None if row is None else str(row["id"])

    async def _live_run(self, session_id: str) -> str | None:
        """The run recorded from a stream (``orchestrator record``, ``import stream-json``)
        or by hooks (``orchestrator hook``) of session ``session_id``, if any: one that no
        transcript was imported into."""
        row = await self.db.fetchone(
            "SELECT id FROM agents WHERE session_id = ? AND parent_agent_id IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM claude_code_files f WHERE f.agent_id = agents.id) "
            "ORDER BY created_at LIMIT 1",
            (session_id,),
        )
        return None if row is None else str(row["id"])


def _sql() -> dict[str, str]:
    """The INSERTs of the rows rows.py builds, from its own column lists."""
    global _SQL
    if not _SQL:
        from ..store.backend import insert_sql

        rows = _rows()
        _SQL = {
            "orchestrator": insert_sql(
                "orchestrator_agents", rows.ORCHESTRATOR_AGENT_COLUMNS, ignore_conflicts=True
            ),
            "agent": insert_sql("agents", rows.AGENT_COLUMNS),
        }
    return _SQL


_SQL: dict[str, str] = {}

#: The columns of a prompt_responses row the importer writes.
_RESPONSE_COLUMNS = (
    "prompt_id",
    "message_id",
    "request_id",
    "tokens_output_final",
    "effort",
    "thinking",
    "thinking_budget_tokens",
    "max_tokens",
)


class _FileImport:
    """The new lines of one file, read one by one: responses and logs are written in
    batches as they come, so memory holds at most a batch whatever the file's size."""

    def __init__(self, importer: _Importer, counts: ImportSummary) -> None:
        self.importer = importer
        self.db = importer.db
        self.redact_secrets = importer.redact_secrets
        self.counts = counts
        self.agent_id = ""
        self.responses: dict[Any, _Response] = {}
        self.logs: list[tuple[Any, ...]] = []
        self.tool_names: dict[str, str] = {}
        # Each tool call and result is logged once per run: Claude Code repeats the blocks
        # it sent in ``api-request-blob`` lines, and a run may hold these tool calls
        # already (recorded live from a stream or by hooks, or this file read again from
        # its start): what it has logged is not logged twice.
        self.logged: set[tuple[str, str]] = set()
        self.prompt = PromptText()
        self.requests: dict[str, tuple[Any, ...]] = {}  # api-request id -> _request_fields
        self.cost_state: _CostState | None = None  # the file's last cost-state
        self.environment: dict[str, Any] | None = None  # the file's last environment
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.session_id: str | None = None

    async def start(self, path: Path) -> None:
        """Find or create the run of ``path``, and what it has logged already."""
        self.agent_id, existed = await self.importer.run_for_file(path, self.counts)
        if existed:
            tool_id = self.db.json_text("metadata", "tool_use_id")
            self.logged = {
                (TOOL_LOG_KINDS[row["log_type"]], row["tool_id"])
                for row in await self.db.fetchall(
                    f"SELECT log_type, {tool_id} AS tool_id FROM agent_logs "
                    f"WHERE agent_id = ? AND log_type IN ({_TOOL_LOG_TYPES})",
                    (self.agent_id,),
                )
                if isinstance(row["tool_id"], str)
            }

    async def run(self, handle: IO[bytes], start: int) -> tuple[int, int]:
        """Import every complete line from ``start``; return the offset just past the last
        complete line and the offset reading stopped at."""
        end = start
        position = start
        for raw, position, complete in _lines(handle, start):
            if complete:
                end = position
            if raw is None:  # a line past LINE_LIMIT: skipped, never held
                self.counts.lines += 1
                self.counts.malformed += 1
            elif raw.strip():
                await self.line(raw)
        await self.write_responses()
        await self.write_logs()
        await self.update_run()
        await self.write_run_state()
        return end, position

    async def line(self, raw: bytes) -> None:
        counts = self.counts
        counts.lines += 1
        line = parse_line(raw)
        if line is None:
            counts.malformed += 1
            return
        created = None
        if "timestamp" in line:
            created = _timestamp(line["timestamp"])
            if created is None:
                counts.malformed += 1
                return
        kind = line.get("type")
        message = line.get("message")
        content = logs = None
        if isinstance(message, dict):
            content = message.get("content")
            try:
                logs = tool_log_rows(
                    self.agent_id,
                    content,
                    self.tool_names,
                    created_at=created,
                    redact_secrets=self.redact_secrets,
                    logged=self.logged,
                )
            except InvalidInput:
                counts.malformed += 1
                return
        if kind not in KNOWN_TYPES:
            counts.unknown_types += 1
            counts.count_unknown(_type_name(kind))
        elif kind in SKIPPED_TYPES:
            counts.skipped += 1
        elif kind in _STATE_TYPES:
            self.read_state(kind, line)
        if created is not None:
            if self.first_ts is None or created < self.first_ts:
                self.first_ts = created
            if self.last_ts is None or created > self.last_ts:
                self.last_ts = created
        if self.session_id is None and _nonempty(line.get("sessionId")):
            self.session_id = line["sessionId"]
        if not isinstance(message, dict):
            return  # most lines (progress, snapshots): no usage, text or tool call
        usage = usage_of(line)
        if usage is None and isinstance(message.get("usage"), dict):
            counts.malformed += 1  # usage of a shape ccusage does not count either
        if usage is not None and not all(is_token_count(usage.get(k, 0)) for k in _TOKEN_KEYS):
            counts.malformed += 1  # negative, fractional or absurd token counts
            usage = None
        if usage is not None and _one_hour_exceeds(usage):
            counts.malformed += 1  # more 1-hour cache writes than cache writes in all
            usage = None
        if usage is not None:
            assert created is not None
            await self.gather(message, line, usage, created, content)
        elif kind == "user" and not (isinstance(content, list) and _only_tool_results(content)):
            text = text_of(content)  # (tool results alone answer no prompt: not read)
            self.prompt.read(line, text)
        if logs:
            self.logs.extend(logs)
            if len(self.logs) >= LOGS_HELD:
                await self.write_logs()

    def read_state(self, kind: str, line: dict[str, Any]) -> None:
        """Read a cost-state, environment or api-request line (kept until the file ends or
        its response comes); one of a shape Claude Code does not write is malformed."""
        if kind == "cost-state":
            state = _cost_state(line)
            if state is None:
                self.counts.malformed += 1
            else:
                self.cost_state = state  # the latest wins: each one sums the whole session
        elif kind == "api-request":
            request_ref = line.get("id")
            if isinstance(request_ref, str):
                if len(self.requests) >= REQUESTS_HELD:
                    del self.requests[next(iter(self.requests))]
                self.requests[request_ref] = _request_fields(line)
        else:
            environment = _environment(line)
            if environment is not None:
                self.environment = environment

    async def gather(
        self,
        message: dict[str, Any],
        line: dict[str, Any],
        usage: dict[str, Any],
        created: str,
        content: Any,
    ) -> None:
        request_id = line.get("requestId")
        message_id = message.get("id")
        key: Any = (message_id, request_id)
        if message_id is None or request_id is None:
            key = object()  # ccusage counts lines without both ids every time
        response = self.responses.get(key)
        if response is None:
            if len(self.responses) >= RESPONSES_HELD:
                await self.write_responses()
            # ccusage keeps the first line's usage: so does the prompt.
            response = self.responses[key] = _Response(
                message_id=message_id,
                model=message.get("model"),
                prompt=self.prompt.text,
                created_at=created,
                usage=usage,
                request_id=request_id,
            )
            request_ref = line.get("requestRef")  # the id of the api-request line it answers
            if isinstance(request_ref, str) and request_ref in self.requests:
                response.request = self.requests[request_ref]
        else:
            self.counts.duplicates_skipped += 1
        output = int(usage["output_tokens"])
        response.output_final = max(response.output_final, output)
        response.add_text(content)

    async def write_responses(self) -> None:
        rows = _rows()
        at_id, at_output = (rows.PROMPT_COLUMNS.index(c) for c in ("id", "tokens_output"))
        prompts, keys = [], []
        db = self.db
        stored = await self.stored(self.responses.values())
        for response in self.responses.values():
            if response.message_id is not None and response.request_id is not None:
                known = stored.get((response.message_id, response.request_id))
                if known is not None:
                    # Already stored (an earlier import, another file, a stream): count
                    # nothing twice, keep the larger final output count.
                    self.counts.duplicates_skipped += 1
                    await db.execute(
                        "UPDATE prompt_responses SET tokens_output_final = "
                        f"{db.greatest('coalesce(tokens_output_final, 0)', '?')}, "
                        "effort = coalesce(effort, ?), thinking = coalesce(thinking, ?), "
                        "thinking_budget_tokens = coalesce(thinking_budget_tokens, ?), "
                        "max_tokens = coalesce(max_tokens, ?) WHERE prompt_id = ?",
                        (response.output_final, *response.request, known),
                    )
                    continue
            try:
                prompt = rows.prompt_tuple(
                    response.fields(self.agent_id, completed_at=response.created_at),
                    redact_secrets=self.redact_secrets,
                )
            except InvalidInput:
                self.counts.malformed += 1
                continue
            prompts.append(prompt)
            if response.message_id is not None:
                final = max(response.output_final, prompt[at_output])
                keys.append(
                    (
                        prompt[at_id],
                        response.message_id,
                        response.request_id,
                        final,
                        *response.request,
                    )
                )
        self.responses.clear()
        if prompts:
            await db.insert_many("prompts", rows.PROMPT_COLUMNS, prompts)
        if keys:
            await db.insert_many("prompt_responses", _RESPONSE_COLUMNS, keys)
        self.counts.prompts_added += len(prompts)

    async def stored(self, responses: Iterable[_Response]) -> dict[tuple[str, str], str]:
        """The prompts already stored for ``responses``, by ``(message.id, requestId)``: the
        row with both ids, else a row with the ``message.id`` alone and no request id (a
        response recorded from a stream, whose lines carry none), which then takes the
        request id. One query per 500 responses (the message_id index)."""
        keys = [
            (r.message_id, r.request_id)
            for r in responses
            if r.message_id is not None and r.request_id is not None
        ]
        candidates: dict[str, list[list[Any]]] = {}
        message_ids = list({message_id for message_id, _ in keys})
        db = self.db
        for at in range(0, len(message_ids), 500):
            part = message_ids[at : at + 500]
            for stored in await db.fetchall(
                "SELECT prompt_id, message_id, request_id FROM prompt_responses "
                f"WHERE message_id IN ({', '.join('?' * len(part))}) "
                f"ORDER BY request_id IS NULL, {db.insertion_order()}",
                part,
            ):
                candidates.setdefault(stored["message_id"], []).append(
                    [str(stored["prompt_id"]), stored["request_id"]]
                )
        found: dict[tuple[str, str], str] = {}
        for message_id, request_id in keys:
            rows = candidates.get(message_id, [])
            row = next((r for r in rows if r[1] == request_id), None)
            row = row or next((r for r in rows if r[1] is None), None)
            if row is None:
                continue
            if row[1] is None:  # claimed: a later response with another request id is new
                await db.execute(
                    "UPDATE prompt_responses SET request_id = ? WHERE prompt_id = ?",
                    (request_id, row[0]),
                )
                row[1] = request_id
            found[(message_id, request_id)] = row[0]
        await self.collected([key for key in keys if key not in found], found)
        return found

    async def collected(
        self, keys: list[tuple[str, str]], found: dict[tuple[str, str], str]
    ) -> None:
        """Add to ``found`` the responses ``orchestrator collect`` stored (its request ids in
        ``otel_requests``), and give those prompts their message id."""
        request_ids = list({request_id for _, request_id in keys})
        collected: dict[str, str] = {}
        for at in range(0, len(request_ids), 500):
            part = request_ids[at : at + 500]
            collected.update(
                (row["request_id"], row["prompt_id"])
                for row in await self.db.fetchall(
                    "SELECT request_id, prompt_id FROM otel_requests "
                    f"WHERE request_id IN ({', '.join('?' * len(part))})",
                    part,
                )
            )
        for message_id, request_id in keys:
            prompt_id = collected.get(request_id)
            if prompt_id is None:
                continue
            await self.db.execute(
                "INSERT INTO prompt_responses (prompt_id, message_id, request_id) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (prompt_id, message_id, request_id),
            )
            found[(message_id, request_id)] = str(prompt_id)

    async def write_logs(self) -> None:
        if self.logs:
            await self.db.insert_many("agent_logs", _rows().AGENT_LOG_COLUMNS, self.logs)
            self.counts.tool_events += len(self.logs)
            self.logs = []

    async def update_run(self) -> None:
        if self.first_ts is None or self.last_ts is None:
            return
        db = self.db
        # A run still being recorded live keeps its end open: its recorder ends it.
        await db.execute(
            "UPDATE agents SET "
            "created_at = CASE WHEN started_at IS NULL THEN ? ELSE created_at END, "
            f"started_at = {db.least('coalesce(started_at, ?)', '?')}, "
            "completed_at = CASE WHEN status = 'running' THEN completed_at "
            f"ELSE {db.greatest('coalesce(completed_at, ?)', '?')} END, "
            "session_id = coalesce(?, session_id) WHERE id = ?",
            (
                self.first_ts,
                self.first_ts,
                self.first_ts,
                self.last_ts,
                self.last_ts,
                self.session_id,
                self.agent_id,
            ),
        )
        await db.execute(
            "UPDATE agents SET duration_ms = "
            f"{db.milliseconds_between('started_at', 'completed_at')} "
            "WHERE id = ? AND completed_at IS NOT NULL",
            (self.agent_id,),
        )

    async def write_run_state(self) -> None:
        """Store the file's last environment and cost-state on its run (claude_code_runs,
        agent_model_usage). A cost-state replaces the run's figures unless the run holds
        a later one already (a longer ``totalDuration``: each sums the session so far,
        resumed invocations included), so importing again, or an older file after a
        newer one, changes nothing."""
        if self.cost_state is None and self.environment is None:
            return
        db, agent_id = self.db, self.agent_id
        await db.execute(
            "INSERT INTO claude_code_runs (agent_id) VALUES (?) ON CONFLICT (agent_id) DO NOTHING",
            (agent_id,),
        )
        if self.environment is not None:
            env = self.environment
            await db.execute(
                "UPDATE claude_code_runs SET cwd = coalesce(?, cwd), "
                "git_branch = CASE WHEN ? THEN ? ELSE git_branch END, "
                "is_git_repo = coalesce(?, is_git_repo), is_worktree = coalesce(?, is_worktree) "
                "WHERE agent_id = ?",
                (
                    env["cwd"],
                    env["is_git_repo"] is not None,
                    env["git_branch"],
                    env["is_git_repo"],
                    env["is_worktree"],
                    agent_id,
                ),
            )
        state = self.cost_state
        if state is None:
            return
        row = await db.fetchone(
            "SELECT total_duration_ms FROM claude_code_runs WHERE agent_id = ?", (agent_id,)
        )
        stored = None if row is None else row["total_duration_ms"]
        if stored is not None and stored > state.total_duration_ms:
            return
        await db.execute(
            "UPDATE claude_code_runs SET reported_cost_usd = ?, duration_api_ms = ?, "
            "total_duration_ms = ?, tool_duration_ms = ?, lines_added = ?, lines_removed = ?, "
            "has_unknown_model_cost = ? WHERE agent_id = ?",
            (
                state.cost_usd,
                state.api_duration_ms,
                state.total_duration_ms,
                state.tool_duration_ms,
                state.lines_added,
                state.lines_removed,
                state.has_unknown_model_cost,
                agent_id,
            ),
        )
        await db.execute("DELETE FROM agent_model_usage WHERE agent_id = ?", (agent_id,))
        computed = await self.computed_costs(state)
        await db.executemany(
            "INSERT INTO agent_model_usage (agent_id, model, tokens_input, tokens_output, "
            "tokens_cache_read, tokens_cache_write, cost_usd, cost_computed_usd, "
            "web_search_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (agent_id, model, *tokens.values(), cost, computed[model], searches)
                for model, (tokens, _, cost, searches) in state.models.items()
            ],
        )

    async def computed_costs(self, state: _CostState) -> dict[str, float | None]:
        """Per model of ``state``: its tokens priced by genai-prices, as the stream importer
        prices a result's ``modelUsage``: the run's responses of that model, each priced
        alone, plus the tokens no response of the run shows (subagents' and background
        calls', or counted before a partial output count) priced at the base tier. None
        when a price is unknown."""
        from ..core.pricing import compute_cost

        # (Sums of whole numbers as ints: PostgreSQL's sum of a bigint is a numeric.)
        covered = {
            row["model"]: (
                *(int(row[f"t{i}"] or 0) for i in range(5)),
                row["cost"],
                int(row["unpriced"]),
            )
            for row in await self.db.fetchall(
                "SELECT model, sum(tokens_input) AS t0, sum(tokens_output) AS t1, "
                "sum(tokens_cache_read) AS t2, sum(tokens_cache_write) AS t3, "
                "sum(tokens_cache_write_1h) AS t4, sum(cost_computed_usd) AS cost, "
                "count(*) - count(cost_computed_usd) AS unpriced FROM prompts "
                "WHERE agent_id = ? GROUP BY model",
                (self.agent_id,),
            )
        }
        when = None if self.last_ts is None else parse_timestamp(self.last_ts)
        costs: dict[str, float | None] = {}
        for model, (tokens, one_hour, _, _) in state.models.items():
            seen = covered.get(model)
            if seen is not None and seen[6]:
                costs[model] = None  # a response of the model has no price
                continue
            seen_tokens = seen[:5] if seen is not None else (0, 0, 0, 0, 0)
            rest = {
                column: max(0, count - seen_count)
                for (column, count), seen_count in zip(tokens.items(), seen_tokens, strict=False)
            }
            rest_1h = min(max(0, one_hour - seen_tokens[4]), rest["tokens_cache_write"])
            cost: float | None = (seen[5] or 0.0) if seen is not None else 0.0
            if seen is None or any(rest.values()):
                extra = compute_cost(
                    model, **rest, tokens_cache_write_1h=rest_1h, when=when, base_tier=True
                )
                cost = None if extra is None else (cost or 0.0) + extra
            costs[model] = cost
        return costs


#: Line types read by :meth:`_FileImport.read_state`.
_STATE_TYPES = frozenset({"cost-state", "attachment", "worktree-state", "api-request"})


def _lines(handle: IO[bytes], start: int) -> Iterator[tuple[bytes | None, int, bool]]:
    """``(line, offset after it, complete)`` for each line from ``start``: ``line`` is None
    for a line longer than LINE_LIMIT (read past, never held whole). A last line without
    its newline is given only when it is a whole JSON object, as incomplete; otherwise it
    is being written and is left for the next import."""
    position = start
    while True:
        raw = handle.readline(LINE_LIMIT)
        if not raw:
            return
        position += len(raw)
        if raw.endswith(b"\n"):
            yield raw, position, True
        elif len(raw) == LINE_LIMIT:  # too long: skip to its end
            while True:
                rest = handle.readline(LINE_LIMIT)
                position += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            if not rest:  # the file ends inside it: still being written
                return
            yield None, position, True
        else:  # the end of the file, without a newline
            if parse_line(raw) is not None:
                yield raw, position, True
            return


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
    cannot be read or imported is rolled back and reported in ``summary.errors`` and the
    others are imported. Errors of the database itself (locked, disk full) are raised.
    """
    from ..store.targets import backend_for, default_target

    files = transcript_files(paths)
    db = backend_for(db_path if db_path is not None else default_target(), in_thread=True)
    summary = ImportSummary()

    async def run() -> None:
        await db.open()
        try:
            importer = _Importer(db, summary, progress, redact_secrets)
            await importer.read_state()
            try:
                for path in files:
                    await importer.import_file(path)
            finally:
                await importer.commit()
        finally:
            await db.close()

    run_blocking(db, run())
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
    from ..reports.canned import run_report

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
