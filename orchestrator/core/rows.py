"""Every row the project stores is built and validated here, by pure functions.

The writer (:class:`~orchestrator.writer.db.DatabaseManager`), the sync facade and
the Claude Code importers all call these, so a prompt is validated, redacted
and priced the same way whoever records it. Nothing here touches a database:
each function takes values and returns a row (a pydantic model, or a tuple in
column order for the hot log paths) or raises
:class:`~orchestrator.core.errors.InvalidInput` naming the field.

The importers build their rows as tuples (:func:`prompt_tuple`, :func:`agent_tuple`,
:func:`orchestrator_agent_tuple`), whose plain values are checked without pydantic
(:mod:`orchestrator.core.columns`) and any other value by the model, so that a row is
accepted, refused and stored exactly as the model row would be: an import of
well-formed transcripts never imports pydantic.

A prompt is priced at its own time (``created_at``): an imported prompt of
last month gets last month's rates, a live one today's.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .columns import (
    PLAIN,
    AgentStatus,
    LogLevel,
    LogType,
    OrchestratorStatus,
    PromptStatus,
    anthropic_counts,
    is_canonical_uuid,
    plain_row,
    storable_text,
)
from .errors import InvalidInput
from .ids import format_timestamp, new_id, parse_timestamp, utc_now
from .pricing import resolve_cost
from .redact import redact, redact_text

if sys.version_info >= (3, 11):
    from typing import NotRequired, Required, TypedDict
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired, Required, TypedDict

if TYPE_CHECKING:  # imported where a model is built: pydantic costs a process ~0.15 s
    from pydantic import BaseModel

    from .models import Agent, OrchestratorAgent, Prompt, Usage

M = TypeVar("M", bound="BaseModel")

#: Column order of the tuples :func:`agent_log_row` and :func:`system_log_row` return.
AGENT_LOG_COLUMNS = (
    "id",
    "agent_id",
    "log_type",
    "message",
    "metadata",
    "created_at",
    "step",
    "duration_ms",
)
SYSTEM_LOG_COLUMNS = ("id", "log_level", "message", "source", "metadata", "created_at")
#: Column order of prompt rows as written (every column of the table, the model's order).
PROMPT_COLUMNS = tuple(PLAIN["prompts"])
#: Column order of agent-run and orchestrator-agent rows as written (every column).
AGENT_COLUMNS = tuple(PLAIN["agents"])
ORCHESTRATOR_AGENT_COLUMNS = tuple(PLAIN["orchestrator_agents"])

LOG_TYPES = frozenset(item.value for item in LogType)
LOG_LEVELS = frozenset(item.value for item in LogLevel)
TERMINAL_STATUSES = frozenset(
    {AgentStatus.COMPLETED.value, AgentStatus.FAILED.value, AgentStatus.CANCELLED.value}
)
TOKEN_COLUMNS = tuple(PLAIN["usage"])
TOKEN_FIELDS = frozenset(TOKEN_COLUMNS)
#: How a prompt whose tokens are known only as a sum of requests begins (priced with
#: ``base_tier``): the Claude Code importer writes it, ``reprice`` reads it.
RECONCILIATION = "[reconciliation]"


class PromptFields(TypedDict, total=False):
    """One finished (or failed) model call, as :meth:`DatabaseManager.record_prompt`,
    :func:`prompt_row` and the importers take it. Token counts follow Anthropic's
    convention: ``tokens_input`` excludes cache reads and writes."""

    agent_id: Required[str]
    content: Required[str]
    response: NotRequired[str | None]
    model: NotRequired[str | None]
    #: An Anthropic / Claude Code ``usage`` dict or a :class:`Usage`; or the four counts below.
    usage: NotRequired[Usage | dict[str, Any] | None]
    tokens_input: NotRequired[int | None]
    tokens_output: NotRequired[int | None]
    tokens_cache_read: NotRequired[int | None]
    tokens_cache_write: NotRequired[int | None]
    #: The part of ``tokens_cache_write`` cached for 1 hour (priced at 2x input, not 1.25x).
    tokens_cache_write_1h: NotRequired[int | None]
    #: As reported by the provider (Claude Code's ``total_cost_usd``); else computed.
    cost_usd: NotRequired[float | None]
    duration_ms: NotRequired[float | None]
    status: NotRequired[PromptStatus | str]
    error: NotRequired[str | None]
    created_at: NotRequired[str | datetime | None]
    completed_at: NotRequired[str | datetime | None]
    prompt_id: NotRequired[str | None]
    #: Price at the lowest long-context tier: for tokens known only as the sum of several
    #: requests (Claude Code's ``modelUsage``), whose own tiers are unknown (approximate).
    base_tier: NotRequired[bool]


_PROMPT_FIELDS = frozenset(PromptFields.__annotations__)


# -- field validators ----------------------------------------------------------------


def canonical_id(value: Any, field: str) -> str:
    """Validate a UUID given as text or ``uuid.UUID``; return its canonical text."""
    text = str(value) if value is not None and not isinstance(value, (bool, int, float)) else None
    if is_canonical_uuid(text):
        return text  # type: ignore[return-value]  # the fast path: already canonical
    try:
        from uuid import UUID

        if text is None:
            raise ValueError
        return str(UUID(text))
    except ValueError:
        raise InvalidInput(field, f"must be a UUID, got {value!r:.80}") from None


_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)  # made once: cheaper per call


def json_text(value: Any, field: str, redacting: bool) -> str | None:
    """Serialise metadata (a JSON object) for storage, redacted when asked.

    The encoded text is redacted at once when no string in it needed an escape. One that
    did is redacted value by value before it is encoded (:func:`redact`): in the text a
    string's quotes and newlines are escaped, and a secret's pair held in a string (a
    tool's arguments as JSON, ``{"password": "..."}``) could no longer be seen.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = storable_text(_JSON.encode(value))
        if not redacting:
            return text
        if "\\" in text:
            cleared = redact(value)
            # nothing redacted (the usual case): the same values, the text already made
            return text if cleared == value else _JSON.encode(cleared)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"must be JSON-serialisable: {exc}") from None
    except RecursionError:
        raise InvalidInput(field, "is nested too deeply to store as JSON") from None
    redacted = redact_text(text)
    if redacted is not text and redacted != text:
        try:
            json.loads(redacted)
        except ValueError:  # a pattern cut through JSON syntax: redact value by value
            redacted = _JSON.encode(redact(value))
    return redacted


def text(value: Any, field: str, *, required: bool = True) -> str | None:
    """A string (or ``None`` when not required)."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    try:
        return storable_text(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


#: The project's timestamp format (``ids.utc_now``), which :func:`timestamp` keeps as is.
_STORED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def timestamp(value: Any, field: str) -> str:
    """A datetime or ISO 8601 text, normalised to the project's timestamp format."""
    try:
        if isinstance(value, datetime):
            return format_timestamp(value)
        if isinstance(value, str):
            if _STORED_TIME.fullmatch(value):  # the importers' and writers' own: keep it,
                datetime.fromisoformat(value[:-1])  # a real time (not 2026-02-30 or 25:00)
                return value
            return format_timestamp(parse_timestamp(value))
    except ValueError:
        pass
    raise InvalidInput(field, f"must be an ISO 8601 timestamp, got {value!r:.80}")


def non_negative(value: Any, field: str) -> float | None:
    """A finite number >= 0 (durations, costs), or ``None``."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInput(field, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def validate(model_class: type[M], table: str, /, **values: Any) -> M:
    """``model_class(**values)``, with pydantic's error turned into InvalidInput."""
    from pydantic import ValidationError

    try:
        return model_class(**values)
    except ValidationError as exc:
        raise InvalidInput.from_validation(table, exc) from None


def checked(table: str, /, **values: Any) -> tuple[Any, ...]:
    """What :func:`validate` with the model of ``table`` stores, as a tuple in its column
    order (``PLAIN[table]``): checked without pydantic when every value is plain, else
    by the model. Raises InvalidInput as validate does."""
    row = plain_row(table, values)
    if row is None:
        model = validate(_model(table), table, **values)
        row = tuple(getattr(model, column) for column in PLAIN[table])
    return row


def _model(table: str) -> type[BaseModel]:
    from . import models

    models_of: dict[str, type[BaseModel]] = {
        "orchestrator_agents": models.OrchestratorAgent,
        "agents": models.Agent,
        "prompts": models.Prompt,
    }
    return models_of[table]


def usage_of(usage: Usage | dict[str, Any] | None, **tokens: Any) -> Usage:
    """Usage from a ``Usage``, an Anthropic usage dict, or token keyword arguments."""
    from pydantic import ValidationError

    from .models import Usage

    try:
        if isinstance(usage, Usage):
            return usage
        if isinstance(usage, dict):
            return Usage.from_anthropic(usage)
        if usage is not None:
            raise InvalidInput("prompts.usage", f"must be a Usage or a dict, not {type(usage)}")
        return Usage(**{key: value for key, value in tokens.items() if value is not None})
    except ValidationError as exc:
        raise InvalidInput.from_validation("prompts", exc) from None


def usage_counts(usage: Usage | dict[str, Any] | None, **tokens: Any) -> dict[str, Any]:
    """``usage_of(usage, **tokens).model_dump()``: the token columns' values, read
    without pydantic when they are plain counts."""
    if usage is None or isinstance(usage, dict):
        given = (
            {key: value for key, value in tokens.items() if value is not None}
            if usage is None
            else anthropic_counts(usage)
        )
        row = plain_row("usage", given)
        if row is not None:
            return dict(zip(TOKEN_COLUMNS, row, strict=True))
    return usage_of(usage, **tokens).model_dump()


def redacted(value: str | None, on: bool) -> str | None:
    return redact_text(value) if on and isinstance(value, str) else value


def status_of(status: Any, enum: type[AgentStatus] | type[PromptStatus], field: str) -> str:
    try:
        return enum(getattr(status, "value", status)).value
    except ValueError:
        raise InvalidInput(
            field, f"must be one of {sorted(s.value for s in enum)}, got {status!r:.80}"
        ) from None


# -- rows ------------------------------------------------------------------------------


def orchestrator_agent_row(
    name: Any,
    description: Any = None,
    status: Any = OrchestratorStatus.ACTIVE,
    *,
    redact_secrets: bool = True,
    at: str | None = None,
) -> OrchestratorAgent:
    """A new orchestrator agent (workflow type)."""
    from .models import OrchestratorAgent

    values = _orchestrator_agent(name, description, status, redact_secrets, at)
    return validate(OrchestratorAgent, "orchestrator_agents", **values)


def orchestrator_agent_tuple(
    name: Any,
    description: Any = None,
    status: Any = OrchestratorStatus.ACTIVE,
    *,
    redact_secrets: bool = True,
    at: str | None = None,
) -> tuple[Any, ...]:
    """:func:`orchestrator_agent_row` as a tuple in :data:`ORCHESTRATOR_AGENT_COLUMNS` order."""
    values = _orchestrator_agent(name, description, status, redact_secrets, at)
    return checked("orchestrator_agents", **values)


def _orchestrator_agent(
    name: Any, description: Any, status: Any, redact_secrets: bool, at: str | None
) -> dict[str, Any]:
    now = at or utc_now()
    return dict(
        id=new_id(),
        name=redacted(name, redact_secrets),
        description=redacted(description, redact_secrets),
        status=status,
        created_at=now,
        updated_at=now,
    )


def agent_row(
    orchestrator_agent_id: Any,
    session_id: Any = None,
    *,
    name: Any = None,
    status: Any = AgentStatus.PENDING,
    parent_agent_id: Any = None,
    started_at: Any = None,
    created_at: Any = None,
    completed_at: Any = None,
    error: Any = None,
    redact_secrets: bool = True,
) -> Agent:
    """An agent run. A run created ``running`` gets ``started_at`` now unless given; one
    recorded after it ended (imports) may carry ``completed_at`` (its duration follows)."""
    from .models import Agent

    return validate(
        Agent,
        "agents",
        **_agent(
            orchestrator_agent_id,
            session_id,
            name,
            status,
            parent_agent_id,
            started_at,
            created_at,
            completed_at,
            error,
            redact_secrets,
        ),
    )


def agent_tuple(
    orchestrator_agent_id: Any,
    session_id: Any = None,
    *,
    name: Any = None,
    status: Any = AgentStatus.PENDING,
    parent_agent_id: Any = None,
    started_at: Any = None,
    created_at: Any = None,
    completed_at: Any = None,
    error: Any = None,
    redact_secrets: bool = True,
) -> tuple[Any, ...]:
    """:func:`agent_row` as a tuple in :data:`AGENT_COLUMNS` order."""
    return checked(
        "agents",
        **_agent(
            orchestrator_agent_id,
            session_id,
            name,
            status,
            parent_agent_id,
            started_at,
            created_at,
            completed_at,
            error,
            redact_secrets,
        ),
    )


def _agent(
    orchestrator_agent_id: Any,
    session_id: Any,
    name: Any,
    status: Any,
    parent_agent_id: Any,
    started_at: Any,
    created_at: Any,
    completed_at: Any,
    error: Any,
    redact_secrets: bool,
) -> dict[str, Any]:
    now = utc_now()
    started = (
        timestamp(started_at, "agents.started_at")
        if started_at is not None
        else (now if status in (AgentStatus.RUNNING, "running") else None)
    )
    completed = None if completed_at is None else timestamp(completed_at, "agents.completed_at")
    return dict(
        id=new_id(),
        orchestrator_agent_id=orchestrator_agent_id,
        session_id=redacted(session_id, redact_secrets),
        name=redacted(name, redact_secrets),
        status=status,
        parent_agent_id=parent_agent_id,
        created_at=now if created_at is None else timestamp(created_at, "agents.created_at"),
        started_at=started,
        completed_at=completed,
        duration_ms=duration_between(started, completed),
        error=redacted(text(error, "agents.error", required=False), redact_secrets),
    )


def duration_between(started_at: str | None, ended_at: str | None) -> float | None:
    """Milliseconds from one stored timestamp to another (never negative), if both known."""
    if started_at is None or ended_at is None:
        return None
    elapsed = parse_timestamp(ended_at) - parse_timestamp(started_at)
    return max(0.0, elapsed.total_seconds() * 1000)


def prompt_row(fields: PromptFields, *, redact_secrets: bool = True) -> Prompt:
    """Validate, redact and price one model call (nothing is written).

    Priced at the call's own ``created_at`` (default: now). ``cost_usd`` is kept
    as reported when given; the price-based figure is computed beside it.
    """
    from .models import Prompt

    return validate(Prompt, "prompts", **_prompt(fields, redact_secrets))


def prompt_tuple(fields: PromptFields, *, redact_secrets: bool = True) -> tuple[Any, ...]:
    """:func:`prompt_row` as a tuple in :data:`PROMPT_COLUMNS` order."""
    return checked("prompts", **_prompt(fields, redact_secrets))


def _prompt(fields: PromptFields, redact_secrets: bool) -> dict[str, Any]:
    unknown = fields.keys() - _PROMPT_FIELDS
    if unknown:
        raise InvalidInput(f"prompts.{sorted(unknown)[0]}", "is not a prompt field")
    now = utc_now()
    status = fields.get("status", PromptStatus.COMPLETED)
    created = fields.get("created_at")
    created_at = now if created is None else timestamp(created, "prompts.created_at")
    completed = fields.get("completed_at")
    if completed is not None:
        completed_at: str | None = (
            created_at  # the same value (collect's calls): read once
            if completed is created
            else timestamp(completed, "prompts.completed_at")
        )
    else:
        completed_at = None if status in (PromptStatus.PENDING, "pending") else now
    usage = usage_counts(
        fields.get("usage"),
        tokens_input=fields.get("tokens_input"),
        tokens_output=fields.get("tokens_output"),
        tokens_cache_read=fields.get("tokens_cache_read"),
        tokens_cache_write=fields.get("tokens_cache_write"),
        tokens_cache_write_1h=fields.get("tokens_cache_write_1h"),
    )
    reported = non_negative(fields.get("cost_usd"), "prompts.cost_usd")
    model = redacted(text(fields.get("model"), "prompts.model", required=False), redact_secrets)
    cost = resolve_cost(
        model,
        reported_usd=reported,
        when=parse_timestamp(created_at),
        base_tier=fields.get("base_tier") is True,
        **usage,
    )
    return dict(
        id=fields.get("prompt_id") or new_id(),
        agent_id=fields["agent_id"],
        content=redacted(fields["content"], redact_secrets),
        response=redacted(fields.get("response"), redact_secrets),
        status=status,
        model=model,
        **usage,
        cost_usd=cost.cost_usd,
        cost_source=cost.source,
        cost_computed_usd=cost.computed_usd,
        priced_with=cost.priced_with,
        cache_savings_usd=cost.cache_savings_usd,
        duration_ms=fields.get("duration_ms"),
        error=redacted(fields.get("error"), redact_secrets),
        created_at=created_at,
        completed_at=completed_at,
    )


def pending_prompt_row(
    agent_id: Any, content: Any, model: Any = None, *, redact_secrets: bool = True
) -> Prompt:
    """A prompt about to be sent: no response, usage or cost yet."""
    from .models import Prompt

    return validate(
        Prompt,
        "prompts",
        id=new_id(),
        agent_id=agent_id,
        content=redacted(content, redact_secrets),
        model=model,
        created_at=utc_now(),
    )


def prompt_values(prompt: Prompt, columns: Sequence[str] = PROMPT_COLUMNS) -> list[Any]:
    """A prompt's values in ``columns`` order, for an INSERT."""
    return [getattr(prompt, column) for column in columns]


def row_values(row: BaseModel, columns: Sequence[str]) -> list[Any]:
    """A built row's values in ``columns`` order (e.g. :data:`AGENT_COLUMNS`), for an INSERT."""
    return [getattr(row, column) for column in columns]


def agent_log_row(
    agent_id: Any,
    log_type: Any,
    message: Any,
    metadata: Any = None,
    step: Any = None,
    duration_ms: Any = None,
    created_at: Any = None,
    *,
    redact_secrets: bool = True,
) -> tuple[Any, ...]:
    """One agent log event as a row in :data:`AGENT_LOG_COLUMNS` order."""
    agent_id = canonical_id(agent_id, "agent_logs.agent_id")
    log_type = getattr(log_type, "value", log_type)
    if log_type not in LOG_TYPES:
        raise InvalidInput(
            "agent_logs.log_type", f"must be one of {sorted(LOG_TYPES)}, got {log_type!r:.80}"
        )
    message = redacted(text(message, "agent_logs.message"), redact_secrets)
    step = redacted(text(step, "agent_logs.step", required=False), redact_secrets)
    return (
        new_id(),
        agent_id,
        log_type,
        message,
        json_text(metadata, "agent_logs.metadata", redact_secrets),
        utc_now() if created_at is None else timestamp(created_at, "agent_logs.created_at"),
        step,
        non_negative(duration_ms, "agent_logs.duration_ms"),
    )


def system_log_row(
    log_level: Any,
    message: Any,
    source: Any = None,
    metadata: Any = None,
    created_at: Any = None,
    *,
    redact_secrets: bool = True,
) -> tuple[Any, ...]:
    """One system log event as a row in :data:`SYSTEM_LOG_COLUMNS` order."""
    level = getattr(log_level, "value", log_level)
    level = level.upper() if isinstance(level, str) else level
    if level not in LOG_LEVELS:
        raise InvalidInput(
            "system_logs.log_level", f"must be one of {sorted(LOG_LEVELS)}, got {log_level!r:.80}"
        )
    message = redacted(text(message, "system_logs.message"), redact_secrets)
    source = redacted(text(source, "system_logs.source", required=False), redact_secrets)
    return (
        new_id(),
        level,
        message,
        source,
        json_text(metadata, "system_logs.metadata", redact_secrets),
        utc_now() if created_at is None else timestamp(created_at, "system_logs.created_at"),
    )
