"""Bad input: a clear error naming the field, raised at the call, nothing written."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import pytest
from backends import Target, counts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import DatabaseManager, InvalidInput
from orchestrator.core.columns import PLAIN, is_canonical_uuid, plain_row
from orchestrator.core.models import (
    Agent,
    AgentLog,
    AgentStatus,
    CostSource,
    LogType,
    OrchestratorAgent,
    OrchestratorStatus,
    Prompt,
    PromptStatus,
    Usage,
    _canonical_uuid,
)
from orchestrator.core.rows import PROMPT_COLUMNS, canonical_id, prompt_row, prompt_tuple


@pytest.fixture
async def db(db_target: Target):
    async with DatabaseManager(db_target) as manager:
        yield manager


@pytest.fixture
async def agent_id(db: DatabaseManager) -> str:
    return await db.create_agent(await db.ensure_orchestrator_agent("x"), "s")


CASES = [
    (
        "create_agent bad uuid",
        "agents.orchestrator_agent_id",
        lambda db, a: db.create_agent("not-a-uuid"),
    ),
    (
        "create_agent unknown fk",
        "agents.orchestrator_agent_id",
        lambda db, a: db.create_agent(str(uuid.uuid4())),
    ),
    (
        "create_agent bad status",
        "agents.status",
        lambda db, a: db.create_agent(str(uuid.uuid4()), status="exploded"),
    ),
    (
        "prompt unknown agent",
        "prompts.agent_id",
        lambda db, a: db.create_prompt(str(uuid.uuid4()), "hi"),
    ),
    ("prompt content not str", "prompts.content", lambda db, a: db.create_prompt(a, 42)),
    (
        "negative tokens",
        "prompts.tokens_input",
        lambda db, a: db.record_prompt(a, "hi", "ok", tokens_input=-1),
    ),
    (
        "tokens wrong type",
        "prompts.tokens_output",
        lambda db, a: db.record_prompt(a, "hi", "ok", tokens_output="many"),
    ),
    (
        "negative cost",
        "prompts.cost_usd",
        lambda db, a: db.record_prompt(a, "hi", "ok", cost_usd=-0.5),
    ),
    (
        "nan cost",
        "prompts.cost_usd",
        lambda db, a: db.record_prompt(a, "hi", "ok", cost_usd=math.nan),
    ),
    (
        "log unknown agent",
        "agent_logs.agent_id",
        lambda db, a: db.log_agent_event(str(uuid.uuid4()), "info", "m"),
    ),
    (
        "log bad agent id",
        "agent_logs.agent_id",
        lambda db, a: db.log_agent_event("123", "info", "m"),
    ),
    ("log bad type", "agent_logs.log_type", lambda db, a: db.log_agent_event(a, "shouting", "m")),
    (
        "log message not str",
        "agent_logs.message",
        lambda db, a: db.log_agent_event(a, "info", None),
    ),
    (
        "metadata not json",
        "agent_logs.metadata",
        lambda db, a: db.log_agent_event(a, "info", "m", {"when": object()}),
    ),
    (
        "metadata a set",
        "agent_logs.metadata",
        lambda db, a: db.log_agent_event(a, "info", "m", {"tags": {1, 2}}),
    ),
    (
        "metadata not a dict",
        "agent_logs.metadata",
        lambda db, a: db.log_agent_event(a, "info", "m", ["a"]),
    ),
    (
        "metadata nan",
        "agent_logs.metadata",
        lambda db, a: db.log_agent_event(a, "info", "m", {"x": math.inf}),
    ),
    ("system bad level", "system_logs.log_level", lambda db, a: db.log_system_event("LOUD", "m")),
    (
        "system source not str",
        "system_logs.source",
        lambda db, a: db.log_system_event("INFO", "m", source=3),
    ),
    (
        "status update bad status",
        "agents.status",
        lambda db, a: db.update_agent_status(a, "done-ish"),
    ),
    (
        "complete unknown prompt",
        "prompts.id",
        lambda db, a: db.complete_prompt(str(uuid.uuid4()), "r"),
    ),
    (
        "empty orchestrator name",
        "orchestrator_agents.name",
        lambda db, a: db.create_orchestrator_agent(""),
    ),
]


@pytest.mark.parametrize(("case", "field", "call"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_names_the_field_and_writes_nothing(
    db: DatabaseManager, agent_id: str, db_target: Target, case: str, field: str, call
) -> None:
    await db.flush()
    before = counts(db_target)
    with pytest.raises(InvalidInput) as error:
        await call(db, agent_id)
    assert error.value.field == field, str(error.value)
    assert str(error.value).startswith(field + ": ")
    await db.flush()
    assert counts(db_target) == before


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
anything = json_values | st.sets(st.integers(), max_size=2) | st.builds(object) | st.floats()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log_type=st.sampled_from([t.value for t in LogType]) | st.text(max_size=8),
    message=st.text() | st.integers() | st.none(),
    metadata=st.none() | st.dictionaries(st.text(max_size=5), anything, max_size=3) | st.integers(),
)
def test_hot_path_validation_agrees_with_the_model(log_type, message, metadata) -> None:
    """The writer's fast checks accept exactly what the pydantic model accepts."""
    db = DatabaseManager(":memory:", redact_secrets=False)
    agent = str(uuid.uuid4())
    try:
        db.agent_log_row(agent, log_type, message, metadata)
        fast_ok = True
    except InvalidInput:
        fast_ok = False
    try:
        AgentLog(
            id=str(uuid.uuid4()),
            agent_id=agent,
            log_type=log_type,
            message=message,
            metadata=metadata,
        )
        model_ok = True
    except ValueError:
        model_ok = False
    assert fast_ok == model_ok


async def test_a_bad_event_never_fails_a_batch_of_good_ones(
    db: DatabaseManager, agent_id: str, db_target: Target
) -> None:
    for i in range(100):
        await db.log_agent_event(agent_id, "info", f"good {i}")
        if i == 50:
            with pytest.raises(InvalidInput):
                await db.log_agent_event(agent_id, "info", "bad", {"x": {1}})
    await db.flush()
    assert counts(db_target)["agent_logs"] == 100


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda run: run.log("event", "bad \udcff"), "agent_logs.message"),
        (lambda run: run.log("event", "ok", {"k": "bad \udcff"}), "agent_logs.metadata"),
        (lambda run: run.log("event", "ok", {"bad \udcff": 1}), "agent_logs.metadata"),
        (lambda run: run.log("event", "ok", step="s\ud800"), "agent_logs.step"),
        (lambda run: run.log("event", "ok", _nested(10_000)), "agent_logs.metadata"),
        (lambda run: run.db.log_system_event("INFO", "x\udcff"), "system_logs.message"),
        (lambda run: run.db.log_system_event("INFO", "x", "s\udcff"), "system_logs.source"),
        (lambda run: run.prompt("p", model=5), "prompts.model"),
        (lambda run: run.prompt("p", tokens_input=2**70), "prompts.tokens_input"),
        (lambda run: run.prompt("p", tokens_output=-1), "prompts.tokens_output"),
        (lambda run: run.prompt("p", tokens_input="12"), "prompts.tokens_input"),
        (lambda run: run.prompt("p", tokens_cache_read=True), "prompts.tokens_cache_read"),
        (lambda run: run.prompt("p", tokens_input=1.5), "prompts.tokens_input"),
        (lambda run: run.prompt("p\ud800"), "prompts.content"),
        (lambda run: run.prompt("p", "r\ud800"), "prompts.response"),
        (lambda run: run.prompt("p", usage={"input_tokens": 2**64}), "prompts.tokens_input"),
        (
            lambda run: run.db.create_agent(run.orchestrator_agent_id, "s\udcff"),
            "agents.session_id",
        ),
        (lambda run: run.db.create_agent(run.orchestrator_agent_id, name="\udcff"), "agents.name"),
        (lambda run: run.db.create_orchestrator_agent("w\udcff"), "orchestrator_agents.name"),
    ],
)
async def test_values_that_cannot_be_stored_are_refused_at_the_call(
    db: DatabaseManager, agent_id: str, db_target: Target, call: Any, field: str
) -> None:
    """InvalidInput naming the field, never a raw AttributeError / OverflowError /
    RecursionError / UnicodeEncodeError, and nothing written; the writer keeps working."""
    from orchestrator.writer.runs import AgentRun

    orch = (await db.get_agent(agent_id)).orchestrator_agent_id
    run = AgentRun(db, agent_id, orch, None, None)
    await db.flush()
    before = counts(db_target)
    with pytest.raises(InvalidInput) as error:
        result = call(run)
        if asyncio.iscoroutine(result):
            await result
    assert error.value.field == field
    await db.flush()
    assert counts(db_target) == before
    run.log("event", "still writing")
    await db.flush()
    assert counts(db_target)["agent_logs"] == before["agent_logs"] + 1


def _normalised(value: str) -> str | None:
    """What a timestamp's text is stored as, the long way (None: refused)."""
    from orchestrator.core.ids import format_timestamp, parse_timestamp

    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        return None


@given(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z")
    | st.from_regex(
        r"\A[0-9]{4}-[0-3][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]\.[0-9]{3}Z\Z"
    )
    | st.text(alphabet="0123456789-:.TZ+ ", max_size=30)
)
def test_a_timestamp_is_kept_normalised_or_refused_as_parsing_it_would(value: str) -> None:
    from orchestrator.core.rows import timestamp

    expected = _normalised(value)
    if expected is None:
        with pytest.raises(InvalidInput, match=r"prompts\.created_at"):
            timestamp(value, "prompts.created_at")
    else:
        assert timestamp(value, "prompts.created_at") == expected


@pytest.mark.parametrize("value", ["2026-02-30T00:00:00.000Z", "2026-01-31T25:00:00.000Z"])
def test_an_impossible_time_in_the_stored_format_is_refused(value: str) -> None:
    from orchestrator.core.rows import timestamp

    with pytest.raises(InvalidInput, match=r"agents\.created_at"):
        timestamp(value, "agents.created_at")


# -- rows built without pydantic: exactly as the models build them ------------------------

MODELS = {
    "orchestrator_agents": OrchestratorAgent,
    "agents": Agent,
    "prompts": Prompt,
    "usage": Usage,
}


class Text(str):
    """A str subclass: left to the model."""


def uuid_texts() -> st.SearchStrategy[str]:
    """UUIDs written every way uuid.UUID reads them, and near misses."""
    hexes = st.text(alphabet="0123456789abcdefABCDEF-{}:urn", min_size=30, max_size=45)
    return (
        st.uuids().map(str)
        | st.uuids().map(lambda u: str(u).upper())
        | st.uuids().map(lambda u: u.hex)
        | st.uuids().map(lambda u: "{" + str(u) + "}")
        | st.uuids().map(lambda u: f"urn:uuid:{u}")
        | st.uuids().map(lambda u: str(u)[:35] + "-")  # the last digit a dash
        | st.uuids().map(lambda u: str(u)[:23] + str(u)[24:] + "-")  # a dash out of place
        | st.uuids().map(lambda u: str(u)[:34] + "-" + str(u)[35:])  # 36 long, 5 dashes
        | st.uuids().map(lambda u: str(u).replace("-", "", 1) + "a")
        | st.uuids().map(lambda u: str(u)[:-1] + "\u0661")  # a non-ASCII digit
        | hexes
    )


ENUMS = [*OrchestratorStatus, *AgentStatus, *PromptStatus, *CostSource]
#: Values plain and not, of every kind the models' fields take or refuse.
EDGES = [
    None,
    *ENUMS,
    *(member.value for member in ENUMS),
    "",
    "x",
    "x" * 200,
    "x" * 201,
    "a\ud800",
    "\udcff",
    "é",
    "12",
    "1.5",
    Text("t"),
    b"x",
    "2026-01-01T00:00:00.000Z",
    str(uuid.uuid4()),
    str(uuid.uuid4()).upper(),
    uuid.uuid4().hex,
    uuid.uuid4(),
    True,
    False,
    0,
    1,
    -1,
    2**63 - 1,
    2**63,
    0.0,
    -0.0,
    1.5,
    -1.0,
    -1e-300,
    1e308,
    math.inf,
    -math.inf,
    math.nan,
    [],
    {},
]
#: A valid row of each table: its required values.
REQUIRED = {
    "orchestrator_agents": {"id": str(uuid.uuid4()), "name": "plan"},
    "agents": {"id": str(uuid.uuid4()), "orchestrator_agent_id": str(uuid.uuid4())},
    "prompts": {"id": str(uuid.uuid4()), "agent_id": str(uuid.uuid4()), "content": "hi"},
    "usage": {},
}


def assert_built_as_the_model_builds(table: str, values: dict[str, Any]) -> None:
    """plain_row accepts only what the model accepts, and stores exactly what it stores
    (same values, same types); anything else it leaves to the model (None)."""
    row = plain_row(table, values)
    try:
        model = MODELS[table](**values)
    except ValueError:  # pydantic's ValidationError
        assert row is None, values
        return
    if row is not None:
        expected = tuple(getattr(model, column) for column in MODELS[table].model_fields)
        assert [type(v) for v in row] == [type(v) for v in expected], values
        assert repr(row) == repr(expected), values  # (repr: NaN is not equal to itself)


@pytest.mark.parametrize(
    ("table", "column"),
    [(table, column) for table in sorted(MODELS) for column in [*MODELS[table].model_fields, "x"]],
)
def test_a_row_built_without_pydantic_is_the_models_row(table: str, column: str) -> None:
    for value in EDGES:
        assert_built_as_the_model_builds(table, {**REQUIRED[table], column: value})
    assert_built_as_the_model_builds(table, {})
    assert_built_as_the_model_builds(table, REQUIRED[table])


@settings(max_examples=500, deadline=None)
@given(table=st.sampled_from(sorted(MODELS)), data=st.data())
def test_a_row_of_any_values_built_without_pydantic_is_the_models_row(
    table: str, data: st.DataObject
) -> None:
    anything = st.sampled_from(EDGES) | uuid_texts() | st.text() | st.integers() | st.floats()
    columns = st.sampled_from([*MODELS[table].model_fields, "x"])
    changed = data.draw(st.dictionaries(columns, anything, max_size=4))
    assert_built_as_the_model_builds(table, {**REQUIRED[table], **changed})


@pytest.mark.parametrize("table", sorted(MODELS))
def test_plain_rows_have_the_models_columns_in_their_order(table: str) -> None:
    assert list(PLAIN[table]) == list(MODELS[table].model_fields)


AGENT = uuid.uuid4()
PROMPT_FIELDS = {
    "prompt_id": str(uuid.uuid4()),
    "agent_id": str(AGENT),
    "content": "hi",
    "response": "ok",
    "model": "claude-sonnet-4-5",
    "usage": {
        "input_tokens": 3,
        "output_tokens": 5,
        "cache_creation_input_tokens": 7,
        "cache_creation": {"ephemeral_1h_input_tokens": 2},
    },
    "created_at": "2026-01-02T03:04:05.678Z",
    "completed_at": "2026-01-02T03:04:06.000Z",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"agent_id": AGENT},  # not plain: the model makes it text
        {"agent_id": str(AGENT).upper()},
        {"usage": None, "tokens_input": 4, "tokens_cache_write": 2, "tokens_cache_write_1h": 1},
        {"usage": {"input_tokens": "12"}},
        {
            "usage": {
                "cache_creation_input_tokens": 1,
                "cache_creation": {"ephemeral_1h_input_tokens": 2},
            }
        },
        {"tokens_output": True, "usage": None},
        {"status": "failed", "error": "boom", "cost_usd": 0.5, "duration_ms": 12},
        {"created_at": "2026-01-02T03:04:05+01:00", "status": PromptStatus.COMPLETED},
        {"content": 5},
        {"prompt_id": "nope"},
    ],
)
def test_a_prompt_tuple_is_the_prompt_rows_values(changes: dict[str, Any]) -> None:
    """What the importers store (prompt_tuple, pydantic only for values that are not
    plain) is what the writer stores (prompt_row): the same values, or the same error."""
    fields: Any = {**PROMPT_FIELDS, **changes}
    try:
        expected = tuple(getattr(prompt_row(fields), column) for column in PROMPT_COLUMNS)
    except InvalidInput as error:
        with pytest.raises(InvalidInput) as refused:
            prompt_tuple(fields)
        assert str(refused.value) == str(error)
        return
    assert repr(prompt_tuple(fields)) == repr(expected)


@given(uuid_texts() | st.text(max_size=40))
def test_a_canonical_uuid_is_recognised_without_parsing_it(text: str) -> None:
    """The fast path takes exactly the texts uuid.UUID gives back unchanged; every other
    text is parsed as before (the model and canonical_id agree with uuid.UUID)."""
    try:
        parsed: str | None = str(uuid.UUID(text))
    except ValueError:
        parsed = None
    assert is_canonical_uuid(text) == (parsed == text)
    if parsed is None:
        with pytest.raises(InvalidInput, match=r"^agents\.id: "):
            canonical_id(text, "agents.id")
        with pytest.raises(ValueError, match="must be a UUID"):
            _canonical_uuid(text)
    else:
        assert canonical_id(text, "agents.id") == parsed == _canonical_uuid(text)
