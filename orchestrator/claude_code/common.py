"""What both Claude Code importers read the same way: lines, message text, token counts, tool logs.

A session transcript and a stream-json run hold the same Anthropic Messages content
blocks and ``usage`` objects, so both importers decide what a storable line is, clip
text to the same limits, read a message's text, count tokens, gather an API response's
lines into one prompt and turn ``tool_use`` / ``tool_result`` blocks into agent logs
here, and a run is stored the same way whichever way it arrived. Rows are built by
:mod:`orchestrator.core.rows`, imported on first use: this module is imported by the CLI,
whose start-up must stay cheap.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..core.columns import anthropic_counts
from .text import LOG_LIMIT, TEXT_LIMIT, TOOL_INPUT_LIMIT, clip, text_of

if TYPE_CHECKING:
    from ..core.models import Usage
    from ..core.rows import PromptFields

#: The largest token count one API response can plausibly report: context windows hold
#: a few million tokens at most. A larger count is garbage (``1e300``, ``2**64``), and
#: refusing it keeps every SUM() of tokens far from SQLite's 64-bit integer overflow.
MAX_TOKENS = 10**9


@dataclass
class LineCounts:
    """The counts of lines read that both importers' summaries report."""

    lines: int = 0  # non-blank lines read
    tool_events: int = 0  # tool_use and tool_result logs added
    malformed: int = 0  # lines that are not a JSON object, or not of the expected shape
    unknown_types: int = 0  # lines of a type the importer does not know

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# JSON as JavaScript reads it (and ccusage with it): NaN and Infinity are no numbers.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_line(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object a line holds, or None when it holds no storable one.

    None for text that is not JSON (or not UTF-8), for a value other than an object,
    for ``NaN`` / ``Infinity``, and for text UTF-8 cannot encode (a lone surrogate such
    as ``"\\ud800"``, which no database column can hold).

    Read by orjson (a quarter of the stdlib parser's time: parsing is most of an
    import's). What orjson refuses is read again by the stdlib parser, which decides:
    orjson refuses lone surrogates, numbers past a double's range (``1e400``) and a few
    forms the stdlib reads, and accepts nothing it refuses. An integer past 64 bits
    becomes the nearest float, as JavaScript (Claude Code, ccusage) reads it.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_refused(raw)
    return value if isinstance(value, dict) else None


def _parse_refused(raw: bytes | str) -> dict[str, Any] | None:
    """:func:`parse_line` by the stdlib parser, for a line orjson refused."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(value, dict):
        return None
    # Only a \uDxxx escape can make a surrogate; surrogate pairs (escaped emoji) are fine.
    if "\\ud" in text or "\\uD" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return None
    return value


class PromptText:
    """The prompt of the responses that follow, from the user lines read so far: the last
    text the person wrote. Text Claude Code writes in the user's name (marked on its
    line: a skill's expanded instructions or a notice, ``isMeta``; the summary of a
    compacted conversation, ``isCompactSummary``; Claude Code shows neither as a prompt)
    is the prompt only while the person has written nothing."""

    __slots__ = ("injected", "written")

    def __init__(self, written: str = "") -> None:
        self.written = written
        self.injected = ""

    def read(self, line: dict[str, Any], text: str) -> None:
        """Take a user line's ``text`` (empty: nothing to take)."""
        if not text:
            return
        if line.get("isMeta") is True or line.get("isCompactSummary") is True:
            self.injected = text
        else:
            self.written = text

    @property
    def text(self) -> str:
        return self.written or self.injected


def storable(text: str) -> bool:
    """Whether UTF-8 can encode ``text`` (no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_token_count(value: Any) -> bool:
    """Whether ``value`` is a token count as stored: a whole number from 0 to MAX_TOKENS."""
    if type(value) is int:
        return 0 <= value <= MAX_TOKENS
    return type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKENS


def token_count(value: Any) -> int:
    """A token count as an int: anything but a finite number from 0 to MAX_TOKENS counts 0
    (a negative or garbled count must not abort an import; the transcript importer flags it)."""
    if type(value) is int:
        return value if 0 < value <= MAX_TOKENS else 0
    if type(value) is float and math.isfinite(value) and 0 < value <= MAX_TOKENS:
        return int(value)
    return 0


def usage_tokens(usage: dict[str, Any]) -> Usage:
    """The token counts of an Anthropic / Claude Code ``usage`` object (the 1-hour cache
    writes from its ``cache_creation`` breakdown)."""
    from ..core.models import Usage

    return Usage.from_anthropic(_whole_counts(usage))


def usage_fields(usage: dict[str, Any]) -> dict[str, int]:
    """:func:`usage_tokens` as a prompt's token fields (``tokens_input``...), read without
    pydantic. Raises pydantic's ValidationError as usage_tokens does when the 1-hour cache
    writes exceed the cache writes (which fails a transcript file's import)."""
    fields: dict[str, int] = anthropic_counts(_whole_counts(usage))
    if fields["tokens_cache_write_1h"] > fields["tokens_cache_write"]:
        usage_tokens(usage)  # the Usage model refuses it
    return fields


def _whole_counts(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` with every token count a whole number (:func:`token_count`)."""
    counts: dict[str, Any] = {key: token_count(value) for key, value in usage.items()}
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):
        counts["cache_creation"] = {
            "ephemeral_1h_input_tokens": token_count(creation.get("ephemeral_1h_input_tokens"))
        }
    return counts


#: Where a result line's ``modelUsage`` entry keeps each token count.
MODEL_USAGE_KEYS = {
    "tokens_input": "inputTokens",
    "tokens_output": "outputTokens",
    "tokens_cache_read": "cacheReadInputTokens",
    "tokens_cache_write": "cacheCreationInputTokens",
}


def model_usage_of(figures: dict[str, Any]) -> Usage:
    """The token counts of one model's entry in a result line's ``modelUsage``."""
    from ..core.models import Usage

    return Usage(
        **{column: token_count(figures.get(key)) for column, key in MODEL_USAGE_KEYS.items()}
    )


@dataclass
class Response:
    """One API response, gathered from the lines (one per content block) repeating its id."""

    message_id: str | None
    model: str | None
    prompt: str  # the user text it answers
    created_at: str
    usage: dict[str, Any] | None = None  # the Anthropic usage object that counts
    texts: list[str] = field(default_factory=list)
    text_length: int = 0  # characters in texts: past TEXT_LIMIT, more would be clipped away

    def add_text(self, content: Any) -> None:
        if self.text_length > TEXT_LIMIT:
            return
        text = text_of(content)
        if text:
            self.texts.append(text)
            self.text_length += len(text) + 1

    def fields(self, agent_id: str, completed_at: str | None = None) -> PromptFields:
        """The prompt row's fields (texts clipped); ``completed_at`` None means now."""
        return {
            "agent_id": agent_id,
            "content": clip(self.prompt, TEXT_LIMIT),
            "response": clip("\n".join(self.texts), TEXT_LIMIT),
            "model": self.model,
            **usage_fields(self.usage or {}),  # type: ignore[typeddict-item]
            "created_at": self.created_at,
            "completed_at": completed_at,
        }


@functools.cache
def _log_builders() -> tuple[Callable[..., tuple[Any, ...]], Callable[[Any], Any]]:
    """:func:`orchestrator.core.rows.agent_log_row` and :func:`orchestrator.core.redact.redact`,
    imported on first use (an import statement run per message costs ~2 us)."""
    from ..core.redact import redact
    from ..core.rows import agent_log_row

    return agent_log_row, redact


def tool_log_rows(
    agent_id: str,
    content: Any,
    tool_names: dict[str, str],
    *,
    created_at: str | None = None,
    redact_secrets: bool = True,
    logged: set[tuple[str, str]] | None = None,
) -> list[tuple[Any, ...]]:
    """Agent log rows (:func:`orchestrator.core.rows.agent_log_row`) of the ``tool_use`` and
    ``tool_result`` blocks of a message's content, at ``created_at`` (default: now).

    ``tool_names`` maps tool-use ids to tool names: a call adds its name, so that its
    result, in a later message, can be logged under it. ``logged``, when given, holds the
    ``(log_type, tool_use_id)`` pairs the run already has: those are not logged again.
    Raises InvalidInput (and returns nothing) when a block cannot be stored.
    """
    if not isinstance(content, list):
        return []
    agent_log_row, redact = _log_builders()

    # Each piece is redacted once, before it is clipped and joined, and the row stored as
    # built: the arguments once (not again inside the message and the metadata's JSON,
    # where quotes are escaped and a secret's pair can no longer be seen), a secret cut by
    # a clip whole.
    def shown(value: Any) -> Any:
        return redact(value) if redact_secrets else value

    logs = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_use":
            name = str(block.get("name"))
            tool_id = block.get("id")
            if isinstance(tool_id, str):
                tool_names[tool_id] = name
            arguments = shown(
                clip(json.dumps(block.get("input"), ensure_ascii=False), TOOL_INPUT_LIMIT)
            )
            metadata: dict[str, Any] = {
                "tool_use_id": shown(tool_id),
                "name": shown(name),
                "input": arguments,
            }
            message = f"{metadata['name']}: {arguments}"
        elif kind == "tool_result":
            tool_id = block.get("tool_use_id")
            name = tool_names.get(tool_id, "tool") if isinstance(tool_id, str) else "tool"
            metadata = {
                "tool_use_id": shown(tool_id),
                "name": shown(name),
                "is_error": bool(block.get("is_error")),
            }
            # Clipped before joining (the same text): a result can be a whole file.
            message = f"{metadata['name']}: {shown(clip(text_of(block.get('content')), LOG_LIMIT))}"
        else:
            continue
        if logged is not None and isinstance(tool_id, str):
            if (kind, tool_id) in logged:
                continue
            logged.add((kind, tool_id))
        logs.append(
            agent_log_row(
                agent_id,
                kind,
                clip(message, LOG_LIMIT),
                metadata,
                created_at=created_at,
                redact_secrets=False,  # redacted above
            )
        )
    return logs
