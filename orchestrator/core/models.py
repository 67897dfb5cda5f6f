"""Pydantic models of the five tables (and the enums their text columns take).

These are the shapes the writer validates before anything is stored and the
shapes the read methods return. Validation errors name the field; the writer
turns them into :class:`orchestrator.core.errors.InvalidInput`. The enums and the
checks that need no pydantic live in :mod:`orchestrator.core.columns` (imported here,
so both modules name them), where ``columns.PLAIN`` mirrors each model's fields
for rows built without pydantic (tests/test_bad_input.py checks that the two agree).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    field_validator,
    model_validator,
)

from .columns import (
    MAX_INTEGER,
    AgentStatus,
    CostSource,
    LogLevel,
    LogType,
    OrchestratorStatus,
    PromptStatus,
    anthropic_counts,
    is_canonical_uuid,
    storable_text,
)


def _canonical_uuid(value: Any) -> str:
    if is_canonical_uuid(value):
        return value  # what str(UUID(value)) gives: no need to parse it
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a UUID string, not {type(value).__name__}")
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError(f"must be a UUID, got {value!r:.80}") from None


def _json_object(value: Any) -> dict[str, Any] | None:
    """Metadata is a dict that JSON can store as it is (no NaN, no sets, no objects)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object (a dict), not {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be JSON-serialisable: {exc}") from None
    return value


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Id = Annotated[str, BeforeValidator(_canonical_uuid)]
#: A string (never a number or bytes) that can be stored.
Text = Annotated[StrictStr, AfterValidator(storable_text)]
#: A token count: a real int (not "12", not True), 0 <= n <= MAX_INTEGER.
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INTEGER)]
Metadata = Annotated[Any, AfterValidator(_json_object)]
NonNegativeFloat = Annotated[float, Field(ge=0), AfterValidator(_finite)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True, validate_default=True)


class OrchestratorAgent(_Row):
    id: Id
    name: Text = Field(min_length=1, max_length=200)
    description: Text | None = None
    status: OrchestratorStatus = OrchestratorStatus.ACTIVE
    created_at: str | None = None
    updated_at: str | None = None


class Agent(_Row):
    id: Id
    orchestrator_agent_id: Id
    session_id: Text | None = None
    status: AgentStatus = AgentStatus.PENDING
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    name: Text | None = None
    error: Text | None = None
    parent_agent_id: Id | None = None
    duration_ms: NonNegativeFloat | None = None
    prompt_count: Count = 0
    total_tokens_input: Count = 0
    total_tokens_output: Count = 0
    total_tokens_cache_read: Count = 0
    total_tokens_cache_write: Count = 0
    total_cost_usd: float = 0.0
    unpriced_prompt_count: Count = 0


class Usage(_Row):
    """Token usage of one model call, in Anthropic's convention (see ``migrations``)."""

    tokens_input: Count = 0
    tokens_output: Count = 0
    tokens_cache_read: Count = 0
    tokens_cache_write: Count = 0
    tokens_cache_write_1h: Count = 0  # the part of tokens_cache_write cached for 1 hour

    @model_validator(mode="after")
    def _one_hour_part(self) -> Usage:
        if self.tokens_cache_write_1h > self.tokens_cache_write:
            raise ValueError(
                f"tokens_cache_write_1h ({self.tokens_cache_write_1h}) is a part of "
                f"tokens_cache_write ({self.tokens_cache_write}) and cannot exceed it"
            )
        return self

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any]) -> Usage:
        """Read an Anthropic / Claude Code ``usage`` object (with its
        ``cache_creation.ephemeral_1h_input_tokens`` when present)."""
        return cls(**anthropic_counts(usage))


class Prompt(_Row):
    id: Id
    agent_id: Id
    content: Text
    response: Text | None = None
    status: PromptStatus = PromptStatus.PENDING
    tokens_input: Count = 0
    tokens_output: Count = 0
    tokens_cache_read: Count = 0
    tokens_cache_write: Count = 0
    tokens_cache_write_1h: Count = 0
    cost_usd: NonNegativeFloat | None = None
    cost_source: CostSource | None = None
    cost_computed_usd: NonNegativeFloat | None = None
    priced_with: Text | None = None
    cache_savings_usd: float | None = None
    model: Text | None = None
    duration_ms: NonNegativeFloat | None = None
    error: Text | None = None
    created_at: str | None = None
    completed_at: str | None = None


class AgentLog(_Row):
    id: Id
    agent_id: Id
    log_type: LogType
    message: Text
    metadata: Metadata = None
    step: Text | None = None
    duration_ms: NonNegativeFloat | None = None
    created_at: str | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class SystemLog(_Row):
    id: Id
    log_level: LogLevel
    message: Text
    source: Text | None = None
    metadata: Metadata = None
    created_at: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metadata", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value
