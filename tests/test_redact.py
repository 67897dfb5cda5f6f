"""Secrets in prompts and logs are redacted before they are stored."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backends import Target, dump, is_postgres, rows
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import DatabaseManager, redact, redact_text

SECRETS = {
    "anthropic": "sk-ant-api03-" + "Ab1_" * 20,
    "openai": "sk-proj-" + "x9Y" * 16,
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a1B2" * 9,
    "slack": "xoxb-1234567890-abcdefghij",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n"
    "-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_known_format_is_redacted(kind: str) -> None:
    text = f"before {SECRETS[kind]} after"
    redacted = redact_text(text)
    assert SECRETS[kind] not in redacted
    assert f"[REDACTED:{kind}]" in redacted
    assert redacted.startswith("before ") and redacted.endswith(" after")


@pytest.mark.parametrize(
    "text",
    [
        "password=hunter2",
        "DB_PASSWORD: 'hunter2'",
        '{"api_key": "hunter2"}',
        "export SECRET_KEY=hunter2",
        "Authorization: Bearer hunter2hunter2",
    ],
)
def test_secret_pairs_lose_their_value(text: str) -> None:
    assert "hunter2" not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=4096",
        "the key to success",
        "tokens: 1200 in, 300 out",
        "passed 12 tests",
        "sk-short",
        "def get_token(self):",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_text_without_secret_words_is_unchanged(text: str) -> None:
    lowered = text.lower()
    words = (
        "sk-",
        "akia",
        "asia",
        "abia",
        "acca",
        "gh",
        "xox",
        "aiza",
        "eyj",
        "private",
        "pass",
        "pwd",
        "secret",
        "key",
        "token",
        "bearer",
        "hooks",
    )
    if not any(word in lowered for word in words):
        assert redact_text(text) == text


def test_nested_metadata_is_redacted_by_key_and_by_value() -> None:
    metadata = {
        "env": {"OPENAI_API_KEY": "plain-looking", "HOME": "/root"},
        "args": ["--token", SECRETS["github"]],
        "n": 3,
    }
    result = redact(metadata)
    assert result["env"]["OPENAI_API_KEY"] == "[REDACTED]"
    assert result["env"]["HOME"] == "/root"
    assert result["args"][1] == "[REDACTED:github]" and result["n"] == 3


async def test_stored_rows_carry_no_secret_and_redaction_can_be_turned_off(
    db_target: Target, new_db_target: Callable[[], Target]
) -> None:
    key = SECRETS["anthropic"]
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("x") as run:
            await run.prompt(f"use {key}", f"ok, using {key}", model="claude-haiku-4-5")
            run.log("info", f"env has {key}", {"password": 'quo"te', "nested": {"k": key}})
        await db.log_system_event("ERROR", f"auth failed for {key}", "adw", {"key": key})
    stored = dump(db_target)
    assert key not in stored
    assert "quo" not in stored
    for (metadata,) in rows(
        db_target, "SELECT metadata FROM agent_logs WHERE metadata IS NOT NULL"
    ):
        json.loads(metadata)  # still valid JSON after redaction

    plain = new_db_target()
    async with DatabaseManager(plain, redact_secrets=False) as db:
        async with db.agent_run("x") as run:
            run.log("info", f"env has {key}")
    assert key in dump(plain)


async def test_metadata_is_redacted_value_by_value_before_it_is_encoded(
    db_target: Target,
) -> None:
    """A secret's pair inside a string of the metadata (a tool's arguments as JSON) loses
    its value: in the encoded text the string's quotes are escaped (``\\"password\\": ...``)
    and the pair could not be seen there. A key that is itself a secret is redacted."""
    key = SECRETS["github"]
    metadata = {"input": json.dumps({"password": "hunter2hunter2"}), key: "its value"}
    async with DatabaseManager(db_target) as db:
        async with db.agent_run("x") as run:
            run.log("tool_use", "Bash", metadata)
        await db.log_system_event("INFO", "started", "adw", metadata)
    stored = dump(db_target)
    assert "hunter2hunter2" not in stored and key not in stored
    for table in ("agent_logs", "system_logs"):
        ((text,),) = rows(db_target, f"SELECT metadata FROM {table} WHERE metadata IS NOT NULL")
        assert json.loads(text) == {
            "input": json.dumps({"password": "[REDACTED]"}),
            "[REDACTED:github]": "its value",
        }


async def test_every_free_text_column_is_redacted(db_target: Target) -> None:
    """Secrets in run names, session ids, steps, sources, workflow names and URLs with a
    password never reach the store (an SQLite file's pages, indexes and FTS tables; every
    row of every PostgreSQL table, full-text vectors included)."""
    key = "sk-ant-api03-" + "A" * 40
    url = "postgresql://adw:hunter2hunter2@db.internal:5432/orchestrator"
    async with DatabaseManager(db_target) as db:
        async with db.agent_run(
            f"wf {key}", session_id=f"adw-{key}", name=f"plan {url}", description=url
        ) as run:
            with run.step(f"step token={key}"):
                run.log("event", f"cloning {url}")
            await run.prompt(f"use {url}", f"ok {key}", model="claude-sonnet-4-5")
        await db.log_system_event("ERROR", f"connect {url}", source=f"adw {key}")
        assert [a.id for a in await db.list_agents(session_id=f"adw-{key}")] == [run.id]
    if is_postgres(db_target):
        raw = dump(db_target).encode()
    else:
        files = [Path(db_target), Path(f"{db_target}-wal")]
        raw = b"".join(path.read_bytes() for path in files if path.exists())
    for secret in (key.encode(), b"hunter2hunter2"):
        assert secret not in raw
    assert rows(db_target, "SELECT session_id FROM agents") == [("adw-[REDACTED:anthropic]",)]
    cloning = "SELECT message FROM agent_logs WHERE message LIKE 'cloning%'"
    expected = "cloning postgresql://adw:[REDACTED]@db.internal:5432/orchestrator"
    assert rows(db_target, cloning) == [(expected,)]


# --- the cheap checks redact_text makes first never skip a secret ------------------------

_redact = importlib.import_module("orchestrator.core.redact")


def _every_pattern(text: str) -> str:
    """Redaction the slow way: every pattern over the whole text, with no hint or pre-check
    first. redact_text must give the same text."""
    patterns = _redact.compiled()
    for _, pattern, replacement in patterns.tokens:
        text = pattern.sub(replacement, text)
    text = patterns.url_password.sub(lambda m: f"{m.group('key')}{_redact.REDACTED}@", text)
    text = patterns.bearer.sub(_redact._pair, text)
    return patterns.pair.sub(_redact._pair, text)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_redaction_equals_every_pattern_run_on_the_real_transcripts() -> None:
    """Every line of the real transcripts, and every string in them, is redacted exactly as
    running every pattern over it would (their own few secrets and secret-looking pairs
    included)."""
    data = Path(__file__).resolve().parent / "data"
    texts = set()
    for path in sorted(data.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.add(line)
            with contextlib.suppress(ValueError):  # the fixtures' malformed lines
                texts.update(_strings(json.loads(line)))
    assert len(texts) > 5_000
    changed = 0
    for text in texts:
        expected = _every_pattern(text)
        assert redact_text(text) == expected, text[:200]
        changed += expected != text
    assert changed  # the comparison saw redactions, not only texts left alone


_PAIR_SAMPLES = [
    "password=hunter2",
    "DB_PASSWORD: 'hunter2'",
    '{"api_key": "hunter2"}',
    "export SECRET_KEY=hunter2",
    "Authorization: Bearer hunter2hunter2",
    "postgresql://adw:hunter2hunter2@db.internal:5432/x",
]


@pytest.mark.parametrize("sample", [*SECRETS.values(), *_PAIR_SAMPLES])
def test_each_secret_sample_is_redacted_as_every_pattern_would_in_any_case_and_context(
    sample: str,
) -> None:
    for variant in (sample, sample.upper(), sample.lower(), sample.swapcase()):
        for text in (variant, f"x {variant} y", json.dumps({"cmd": variant}), f"«{variant}»"):
            assert redact_text(text) == _every_pattern(text), text


#: Pieces of secrets, keys and separators, with the characters that match an ASCII letter
#: case-insensitively but do not lower-case to it (dotless i, long s, dotted capital I).
_PIECES = [
    *SECRETS.values(),
    *_PAIR_SAMPLES,
    "password", "PASSWORD", "paſsword", "api_key", "apİ_key", "apı-key", "access-token",
    "Token", "bearer", "Authorization:", "Bearer ", "secret", "pwd", "=", ":", " ", "\n",
    '"', "'", "hunter2hunter2", "://", "@", "user:", "sk-ant-", "AKIA", "ghp_", "eyJ", ".",
    "İ", "ı", "ſ", "\u212a", "\u0307", "é", "→",
]  # fmt: skip


@settings(max_examples=400)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12).map("".join))
def test_redaction_equals_every_pattern_on_texts_made_of_secret_pieces(text: str) -> None:
    assert redact_text(text) == _every_pattern(text)


def test_a_key_written_with_letters_that_only_match_case_insensitively_is_redacted() -> None:
    for text in ("paſsword=hunter2", "apİ_key: hunter2", "ApI_KEY=hunter2"):
        assert "hunter2" not in redact_text(text), text


def _redacted_by_reference(value: object) -> object:
    """:func:`redact` as first written: every key redacted and asked whether it names a
    secret, with the patterns themselves (no remembered answers)."""
    import re

    from orchestrator.core import redact as module

    secret_key = re.compile(module._SECRET_KEY_NAME, re.IGNORECASE)
    if isinstance(value, str):
        return _every_pattern(value)
    if isinstance(value, dict):
        return {
            (_every_pattern(key) if isinstance(key, str) else key): (
                "[REDACTED]"
                if isinstance(key, str)
                and secret_key.match(key)
                and isinstance(item, (str, int, float))
                and not isinstance(item, bool)
                else _redacted_by_reference(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redacted_by_reference(item) for item in value]
    return value


_KEYS = st.sampled_from(
    ["password", "DB_PASSWORD", "api-key", "tokens", "token", "name", SECRETS["github"],
     "k" * 300 + "_token", "k" * 300, "paſsword"]
) | st.text(max_size=6)  # fmt: skip
_LEAVES = (
    st.sampled_from(_PIECES) | st.text(max_size=6) | st.integers() | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False) | st.none()
)  # fmt: skip
_METADATA = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(_KEYS | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(_KEYS, _METADATA, max_size=5))
def test_metadata_is_redacted_and_encoded_as_value_by_value_redaction_would(
    metadata: dict[str, object],
) -> None:
    """``redact`` (its keys' answers remembered) and ``json_text`` (the text made once when
    nothing is redacted) give what redacting every key and value afresh and encoding that
    gives: the stored metadata of a dict with quotes, secrets, long and non-text keys."""
    from orchestrator.core.rows import json_text

    expected = _redacted_by_reference(metadata)
    assert redact(metadata) == expected
    text = json_text(metadata, "agent_logs.metadata", True)
    plain = json.dumps(metadata, ensure_ascii=False)
    if "\\" in plain:  # value by value (else the text itself is redacted)
        assert text == json.dumps(expected, ensure_ascii=False)
    assert json_text(metadata, "agent_logs.metadata", False) == plain
