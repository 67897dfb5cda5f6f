"""What the tables' columns hold, checked without pydantic: enums, column orders, plain values.

The pydantic models (:mod:`orchestrator.core.models`) are the shapes rows are validated
against, but importing pydantic and building them costs a process about 0.15 s: more
than an import of Claude Code transcripts spends on everything else but reading JSON.
So the enums the text columns take, and the checks of a stored value that need no
pydantic, live here; :mod:`orchestrator.core.rows` checks a row's values with
:func:`plain_row` and only asks the models about a value that is not plain (``"12"``
for a count, a ``uuid.UUID`` for an id...), so that a row is accepted, refused and
stored exactly as the model would, and an importer of well-formed data never imports
pydantic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any


class OrchestratorStatus(str, Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


class AgentStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PromptStatus(str, Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class CostSource(str, Enum):
    REPORTED = "reported"  # the caller gave it (Claude Code's total_cost_usd)
    COMPUTED = "computed"  # from model, usage and genai-prices
    UNPRICED = "unpriced"  # model without a known price: cost_usd is NULL


class LogType(str, Enum):
    STEP_START = "step_start"
    STEP_END = "step_end"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"
    PROMPT = "prompt"
    RESPONSE = "response"
    EVENT = "event"
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogLevel(str, Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


#: The largest integer SQLite (and PostgreSQL's bigint) stores.
MAX_INTEGER = 2**63 - 1

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_canonical_uuid(value: Any) -> bool:
    """Whether ``value`` is a UUID's canonical text (36 characters, lowercase): what
    ``str(uuid.UUID(value))`` gives back unchanged, without parsing it."""
    return type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None


def storable_text(value: str) -> str:
    """Text that UTF-8 can encode: a lone surrogate (``"\\udcff"``) cannot be stored."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"holds a character UTF-8 cannot encode ({exc.object[exc.start]!r} at "
                f"position {exc.start}, a lone surrogate)"
            ) from None
    return value


def anthropic_counts(usage: Mapping[str, Any]) -> dict[str, Any]:
    """The token fields (``tokens_input``...) an Anthropic / Claude Code ``usage`` object
    gives, as read (not yet validated), the 1-hour cache writes from its
    ``cache_creation.ephemeral_1h_input_tokens`` when present."""
    creation = usage.get("cache_creation")
    one_hour = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, dict) else 0
    return {
        "tokens_input": usage.get("input_tokens") or 0,
        "tokens_output": usage.get("output_tokens") or 0,
        "tokens_cache_read": usage.get("cache_read_input_tokens") or 0,
        "tokens_cache_write": usage.get("cache_creation_input_tokens") or 0,
        "tokens_cache_write_1h": one_hour or 0,
    }


# -- plain values, as the models would store them --------------------------------------
#
# Each check returns the value a model stores for a plain input, or NOT_PLAIN for any
# other input: that one is left to the model (which may accept it, converted, or refuse
# it). A check never accepts what the model refuses, nor stores anything else than it.

NOT_PLAIN: Any = object()
Check = Callable[[Any], Any]


def _id(value: Any) -> Any:
    return value if is_canonical_uuid(value) else NOT_PLAIN


def _text(value: Any) -> Any:
    if type(value) is not str:
        return NOT_PLAIN
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return NOT_PLAIN
    return value


def _optional(check: Check) -> Check:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


def _name(value: Any) -> Any:
    return _text(value) if type(value) is str and 1 <= len(value) <= 200 else NOT_PLAIN


def _str(value: Any) -> Any:
    return value if type(value) is str else NOT_PLAIN


def _count(value: Any) -> Any:
    return value if type(value) is int and 0 <= value <= MAX_INTEGER else NOT_PLAIN


def _finite(value: Any) -> Any:
    return value if type(value) is float and math.isfinite(value) else NOT_PLAIN


def _non_negative(value: Any) -> Any:
    return value if type(value) is float and math.isfinite(value) and value >= 0 else NOT_PLAIN


def _enum(enum: type[Enum]) -> Check:
    values = frozenset(member.value for member in enum)

    def check(value: Any) -> Any:
        if type(value) is str and value in values:
            return value
        return value.value if type(value) is enum else NOT_PLAIN

    return check


_ID, _ID_OR_NONE = _id, _optional(_id)
_TEXT, _TEXT_OR_NONE, _STR_OR_NONE = _text, _optional(_text), _optional(_str)
_COUNT = _count
_FLOAT_OR_NONE, _NON_NEGATIVE_OR_NONE = _optional(_finite), _optional(_non_negative)

#: Per table, every column of the model in its order: (check, value when not given).
PLAIN: dict[str, dict[str, tuple[Check, Any]]] = {
    "orchestrator_agents": {
        "id": (_ID, NOT_PLAIN),
        "name": (_name, NOT_PLAIN),
        "description": (_TEXT_OR_NONE, None),
        "status": (_enum(OrchestratorStatus), OrchestratorStatus.ACTIVE.value),
        "created_at": (_STR_OR_NONE, None),
        "updated_at": (_STR_OR_NONE, None),
    },
    "agents": {
        "id": (_ID, NOT_PLAIN),
        "orchestrator_agent_id": (_ID, NOT_PLAIN),
        "session_id": (_TEXT_OR_NONE, None),
        "status": (_enum(AgentStatus), AgentStatus.PENDING.value),
        "created_at": (_STR_OR_NONE, None),
        "started_at": (_STR_OR_NONE, None),
        "completed_at": (_STR_OR_NONE, None),
        "name": (_TEXT_OR_NONE, None),
        "error": (_TEXT_OR_NONE, None),
        "parent_agent_id": (_ID_OR_NONE, None),
        "duration_ms": (_NON_NEGATIVE_OR_NONE, None),
        "prompt_count": (_COUNT, 0),
        "total_tokens_input": (_COUNT, 0),
        "total_tokens_output": (_COUNT, 0),
        "total_tokens_cache_read": (_COUNT, 0),
        "total_tokens_cache_write": (_COUNT, 0),
        "total_cost_usd": (_finite, 0.0),
        "unpriced_prompt_count": (_COUNT, 0),
    },
    "usage": {
        "tokens_input": (_COUNT, 0),
        "tokens_output": (_COUNT, 0),
        "tokens_cache_read": (_COUNT, 0),
        "tokens_cache_write": (_COUNT, 0),
        "tokens_cache_write_1h": (_COUNT, 0),
    },
    "prompts": {
        "id": (_ID, NOT_PLAIN),
        "agent_id": (_ID, NOT_PLAIN),
        "content": (_TEXT, NOT_PLAIN),
        "response": (_TEXT_OR_NONE, None),
        "status": (_enum(PromptStatus), PromptStatus.PENDING.value),
        "tokens_input": (_COUNT, 0),
        "tokens_output": (_COUNT, 0),
        "tokens_cache_read": (_COUNT, 0),
        "tokens_cache_write": (_COUNT, 0),
        "tokens_cache_write_1h": (_COUNT, 0),
        "cost_usd": (_NON_NEGATIVE_OR_NONE, None),
        "cost_source": (_optional(_enum(CostSource)), None),
        "cost_computed_usd": (_NON_NEGATIVE_OR_NONE, None),
        "priced_with": (_TEXT_OR_NONE, None),
        "cache_savings_usd": (_FLOAT_OR_NONE, None),
        "model": (_TEXT_OR_NONE, None),
        "duration_ms": (_NON_NEGATIVE_OR_NONE, None),
        "error": (_TEXT_OR_NONE, None),
        "created_at": (_STR_OR_NONE, None),
        "completed_at": (_STR_OR_NONE, None),
    },
}


#: The models' checks of several values together: Usage's tokens_cache_write_1h is a
#: part of tokens_cache_write.
_TOGETHER: dict[str, Callable[[tuple[Any, ...]], bool]] = {"usage": lambda row: row[4] <= row[3]}


def plain_row(table: str, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``values`` as the model of ``table`` would store them, in its column order, when
    every one is plain; None when any is not (or is not a column): ask the model."""
    columns = PLAIN[table]
    if not values.keys() <= columns.keys():
        return None
    row = []
    for column, (check, default) in columns.items():
        value = check(values[column]) if column in values else default
        if value is NOT_PLAIN:
            return None
        row.append(value)
    together = _TOGETHER.get(table)
    if together is not None and not together(tuple(row)):
        return None
    return tuple(row)
