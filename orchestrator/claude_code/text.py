"""The limits and clipping of text both Claude Code importers and the hook share, in a
module of its own: the hook (:mod:`~orchestrator.claude_code.hook`) runs on Claude Code's
path and imports this, not :mod:`~orchestrator.claude_code.common` and its dependencies."""

from __future__ import annotations

from typing import Any

TEXT_LIMIT = 4000  # characters of prompt / response text kept per prompt
LOG_LIMIT = 500  # characters of a tool call or result kept in the log message
TOOL_INPUT_LIMIT = 2000  # characters of a tool call's arguments kept in its log metadata
QUOTE_LIMIT = 200  # characters of a tool result quoted in a message's text


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_of(content: Any) -> str:
    """Readable text of a message's content (a string or a list of blocks): its text,
    ``[tool_use <name>]`` for a call and the start of a tool result."""
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
            parts.append(f"[tool_result {clip(text_of(block.get('content')), QUOTE_LIMIT)}]")
    return "\n".join(parts)


__all__ = ["LOG_LIMIT", "QUOTE_LIMIT", "TEXT_LIMIT", "TOOL_INPUT_LIMIT", "clip", "text_of"]
