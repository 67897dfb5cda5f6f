"""Secrets in prompts and logs are redacted before they are stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Target, dump, is_postgres, rows
from hypothesis import given
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
