"""Importing Claude Code transcripts: token totals against ccusage and an independent count."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Target, is_postgres, records
from click.testing import CliRunner
from conftest import FIXTURES

from orchestrator.claude_code import daily_tokens, import_transcripts
from orchestrator.cli import cli

ROOT = Path(__file__).resolve().parents[1]
CCUSAGE = ROOT / ".cache" / "ccusage" / "node_modules" / ".bin" / "ccusage"
OWN = Path(__file__).parent / "data" / "claude_code"
SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"
KEYS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def fixture_config_dir(tmp_path: Path) -> Path:
    """A CLAUDE_CONFIG_DIR holding the shared transcripts under projects/<name>/."""
    project = tmp_path / "claude" / "projects" / "-home-marco-projects-spotter"
    project.mkdir(parents=True)
    for item in FIXTURES.iterdir():
        if item.suffix == ".jsonl":
            shutil.copy(item, project / item.name)
    shutil.copytree(FIXTURES / SESSION, project / SESSION)
    return tmp_path / "claude"


def independent_daily(config_dir: Path) -> dict[str, dict[str, int]]:
    """Per-UTC-day tokens straight from the JSON lines: each message.id+requestId once."""
    seen: set[tuple[str, str]] = set()
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KEYS, 0))
    for path in sorted((config_dir / "projects").rglob("*.jsonl")):
        for raw in path.read_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            message = line.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if not isinstance(usage, dict) or not isinstance(line.get("timestamp"), str):
                continue
            if None in (usage.get("cache_creation_input_tokens", 0),):
                continue  # a null field: ccusage rejects the line
            key = (message.get("id"), line.get("requestId"))
            if None not in key:
                if key in seen:
                    continue
                seen.add(key)
            day = days[line["timestamp"][:10]]
            day["input_tokens"] += usage["input_tokens"]
            day["output_tokens"] += usage["output_tokens"]
            day["cache_creation_tokens"] += usage.get("cache_creation_input_tokens", 0)
            day["cache_read_tokens"] += usage.get("cache_read_input_tokens", 0)
    return dict(days)


def stored_daily(db_path: Target) -> dict[str, dict[str, int]]:
    return {row["day"]: {k: row[k] for k in KEYS} for row in daily_tokens(db_path)}


def ccusage_daily(config_dir: Path) -> dict[str, dict[str, int]]:
    if not CCUSAGE.exists():
        if os.environ.get("ORCHESTRATOR_REQUIRE_CCUSAGE") == "1":
            pytest.fail(f"ccusage is not installed at {CCUSAGE}")
        pytest.skip("ccusage not installed (npm install --prefix .cache/ccusage ccusage@17.2.1)")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config_dir)}
    run = subprocess.run(
        [str(CCUSAGE), "daily", "--offline", "-z", "UTC", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        day["date"]: {
            "input_tokens": day["inputTokens"],
            "output_tokens": day["outputTokens"],
            "cache_creation_tokens": day["cacheCreationTokens"],
            "cache_read_tokens": day["cacheReadTokens"],
        }
        for day in json.loads(run.stdout)["daily"]
    }


def test_fixture_totals_match_ccusage(tmp_path: Path, db_target: Target) -> None:
    config = fixture_config_dir(tmp_path)
    import_transcripts([config], db_path=db_target)
    assert stored_daily(db_target) == ccusage_daily(config)


def test_own_files_match_ccusage(db_path: Path) -> None:
    import_transcripts([OWN], db_path=db_path)
    assert stored_daily(db_path) == ccusage_daily(OWN)


def test_fixture_totals_match_independent_count(tmp_path: Path, db_target: Target) -> None:
    config = fixture_config_dir(tmp_path)
    summary = import_transcripts([config], db_path=db_target)
    expected = independent_daily(config)
    assert stored_daily(db_target) == expected
    assert summary.malformed == 0 and summary.errors == []
    assert len(expected) == 2


def test_own_files_match_independent_count(db_target: Target) -> None:
    summary = import_transcripts([OWN], db_path=db_target)
    assert stored_daily(db_target) == independent_daily(OWN)
    assert stored_daily(db_target)["2026-01-31"]["input_tokens"] == 3 + 5 + 5 + 20
    # Two lines that are no JSON object, plus the usage with a null field.
    assert summary.malformed == 3
    assert summary.unknown_types == 1
    # msg_A: its second line in the session file, its copy in the subagent file.
    assert summary.duplicates_skipped == 2
    assert summary.prompts_added == 6


def rows(db_path: Target, sql: str, *params: Any) -> list[Any]:
    """Rows read by column name or position, from an SQLite file or a PostgreSQL URL."""
    if is_postgres(db_path):
        return records(db_path, sql, params)
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_runs_subagents_tools_and_cost(db_target: Target) -> None:
    import_transcripts([OWN], db_path=db_target)
    runs = {
        r["name"]: r
        for r in rows(
            db_target,
            "SELECT a.*, o.name AS orchestrator FROM agents a "
            "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id",
        )
    }
    session = runs["11111111-2222-4333-8444-555555555555"]
    subagent = runs["agent-a77"]
    assert session["orchestrator"] == "claude-code:-home-me-demo"
    assert subagent["parent_agent_id"] == session["id"]
    assert session["started_at"] == "2026-01-30T23:59:58.000Z"
    assert session["completed_at"] == "2026-01-31T00:00:06.000Z"
    prompts = {
        r["model"]: r
        for r in rows(db_target, "SELECT * FROM prompts WHERE agent_id = ?", session["id"])
    }
    # An unknown model is unpriced, never $0; <synthetic> costs nothing.
    assert prompts["claude-imaginary-9"]["cost_source"] == "unpriced"
    assert prompts["claude-imaginary-9"]["cost_usd"] is None
    assert prompts["<synthetic>"]["cost_usd"] == 0
    # Sonnet 4.5 at $3 / $15 / $3.75 / $0.30 per million: 10 in, 2 out, 1000 write, 500 read.
    sonnet = prompts["claude-sonnet-4-5-20250929"]
    assert sonnet["cost_usd"] == pytest.approx((10 * 3 + 2 * 15 + 1000 * 3.75 + 500 * 0.3) / 1e6)
    # The same tokens uncached (1510 input at $3) minus that.
    assert sonnet["cache_savings_usd"] == pytest.approx(
        (1510 * 3 + 2 * 15 - (10 * 3 + 2 * 15 + 1000 * 3.75 + 500 * 0.3)) / 1e6
    )
    # At msg_A's first line, the one ccusage counts (and the day it is priced at).
    assert sonnet["completed_at"] == sonnet["created_at"] == "2026-01-30T23:59:59.100Z"
    assert "[REDACTED" in sonnet["content"] and "sk-ant-api03" not in sonnet["content"]
    final = rows(db_target, "SELECT * FROM prompt_responses WHERE message_id = 'msg_A'")
    assert [r["tokens_output_final"] for r in final] == [40]
    logs = rows(
        db_target,
        "SELECT log_type, message, created_at FROM agent_logs WHERE agent_id = ? "
        "ORDER BY created_at",
        subagent["id"],
    )
    assert [(r["log_type"], r["created_at"]) for r in logs] == [
        ("tool_use", "2026-01-31T00:00:01.300Z"),
        ("tool_result", "2026-01-31T00:00:01.400Z"),
    ]
    assert logs[1]["message"] == "Glob: a.txt"


def test_reimport_adds_nothing(tmp_path: Path, db_target: Target) -> None:
    config = fixture_config_dir(tmp_path)
    first = import_transcripts([config], db_path=db_target)
    before = stored_daily(db_target)
    logs = rows(db_target, "SELECT count(*) FROM agent_logs")[0][0]
    second = import_transcripts([config], db_path=db_target)
    assert second.prompts_added == 0 and second.lines == 0
    assert second.files_unchanged == second.files == first.files
    assert stored_daily(db_target) == before
    assert rows(db_target, "SELECT count(*) FROM agent_logs")[0][0] == logs


def test_grown_file_adds_only_new_prompts(
    tmp_path: Path, db_target: Target, new_db_target: Callable[[], Target]
) -> None:
    lines = (FIXTURES / "tool_heavy.jsonl").read_bytes().splitlines(keepends=True)
    project = tmp_path / "claude" / "projects" / "p"
    project.mkdir(parents=True)
    grown = project / "d6e0bada-1959-4eec-a9d2-0bfade768d8f.jsonl"
    half = len(lines) // 2
    # The first half, then the start of the next line without its newline (being written).
    grown.write_bytes(b"".join(lines[:half]) + lines[half][:40])
    first = import_transcripts([grown], db_path=db_target)
    grown.write_bytes(b"".join(lines))
    second = import_transcripts([grown], db_path=db_target)
    assert first.malformed == second.malformed == 0
    assert second.lines == len(lines) - half
    fresh = new_db_target()
    whole = import_transcripts([grown], db_path=fresh)
    assert first.prompts_added + second.prompts_added == whole.prompts_added
    assert stored_daily(db_target) == stored_daily(fresh) == independent_daily(tmp_path / "claude")
    assert rows(db_target, "SELECT count(*) FROM agents")[0][0] == 1
    # Appending a copy of already imported lines adds no prompt (the unique key).
    with grown.open("ab") as handle:
        handle.writelines(lines[:half])
    third = import_transcripts([grown], db_path=db_target)
    assert third.prompts_added == 0 and third.duplicates_skipped > 0
    assert stored_daily(db_target) == stored_daily(fresh)


def test_secrets_in_tool_arguments_and_results_are_stored_nowhere(
    tmp_path: Path, db_path: Path
) -> None:
    """A tool call's arguments are JSON: a secret's pair in them (``"password": "..."``)
    is redacted in the log message and in the metadata, where the arguments are a JSON
    string whose quotes are escaped; a result's secrets too. Nothing of them reaches the
    file, its write-ahead log or its search index."""
    password, key = "hunter2hunter2", "sk-ant-api03-" + "Q" * 40
    arguments = {"command": "deploy", "env": {"password": password, "DEPLOY": key}}
    transcript = tmp_path / "projects" / "p" / "s.jsonl"
    transcript.parent.mkdir(parents=True)
    call = [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": arguments}]
    result = {
        "type": "user",
        "timestamp": "2026-01-31T10:00:01.000Z",
        "message": {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": f"token={password}"}
            ],
        },
    }
    transcript.write_text(f"{usage_line('m_1', content=call)}\n{json.dumps(result)}\n")
    assert import_transcripts([tmp_path], db_path=db_path).tool_events == 2
    raw = b"".join(p.read_bytes() for p in tmp_path.glob(f"{db_path.name}*"))
    assert password.encode() not in raw and key.encode() not in raw
    logs = rows(db_path, "SELECT log_type, message, metadata FROM agent_logs ORDER BY log_type")
    assert [(log["log_type"], log["message"]) for log in logs] == [
        ("tool_result", "Bash: token=[REDACTED]"),
        (
            "tool_use",
            'Bash: {"command": "deploy", "env": {"password": "[REDACTED]", '
            '"DEPLOY": "[REDACTED:anthropic]"}}',
        ),
    ]
    stored = json.loads(logs[1]["metadata"])["input"]
    assert json.loads(stored) == {
        "command": "deploy",
        "env": {"password": "[REDACTED]", "DEPLOY": "[REDACTED:anthropic]"},
    }


def test_a_prompt_is_what_the_person_wrote_not_what_claude_code_wrote_for_them(
    tmp_path: Path, db_path: Path
) -> None:
    """After a conversation is compacted the agent goes on with the task the person gave,
    and a skill's expanded instructions answer the command the person typed: neither the
    summary (``isCompactSummary``) nor the instructions (``isMeta``) is the prompt, unless
    the file holds nothing the person wrote."""
    folder = tmp_path / "projects" / "p"
    folder.mkdir(parents=True)

    def user(second: int, text: str, **flags: bool) -> str:
        stamp = f"2026-01-31T10:00:{second:02d}.000Z"
        return json.dumps(
            {"type": "user", "timestamp": stamp, "message": {"content": text}, **flags}
        )

    def answer(n: int) -> str:
        return usage_line(f"m_{n}", timestamp=f"2026-01-31T10:00:{n:02d}.000Z")

    command = "<command-name>/review</command-name>\n<command-args>123</command-args>"
    (folder / "s.jsonl").write_text(
        "\n".join(
            [
                user(0, "fix the parser"),
                answer(1),
                user(2, "This session is being continued ...", isCompactSummary=True),
                answer(3),
                user(4, command),
                user(5, "Review the pull request: read its diff ...", isMeta=True),
                answer(6),
            ]
        )
        + "\n"
    )
    (folder / "continued.jsonl").write_text(
        "\n".join(
            [
                user(10, "Summary of the earlier conversation", isCompactSummary=True),
                answer(11),
                user(12, "now run the tests"),
                answer(13),
            ]
        )
        + "\n"
    )
    assert import_transcripts([tmp_path], db_path=db_path).prompts_added == 5
    stored = rows(db_path, "SELECT content FROM prompts ORDER BY created_at")
    assert [row["content"] for row in stored] == [
        "fix the parser",
        "fix the parser",
        command,
        "Summary of the earlier conversation",
        "now run the tests",
    ]


def test_fixture_prompts_hold_no_compaction_summary_or_skill_body(
    tmp_path: Path, db_path: Path
) -> None:
    """On the real sessions: every response's prompt begins as the last user text before
    it that Claude Code did not write (read here straight from the JSON lines)."""
    config = fixture_config_dir(tmp_path)
    import_transcripts([config], db_path=db_path)
    expected: dict[str, str] = {}
    for path in sorted(config.rglob("*.jsonl")):
        typed = ""
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            message = line.get("message")
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            injected = line.get("isMeta") or line.get("isCompactSummary")
            if line.get("type") == "user" and not injected:
                if isinstance(content, str) and content.strip():
                    typed = content
                elif isinstance(content, list):
                    texts = [b["text"] for b in content if b.get("type") == "text"]
                    typed = "\n".join(texts) if texts else typed
            if isinstance(message.get("usage"), dict) and message.get("id"):
                expected.setdefault(message["id"], typed)
    found = {
        row["message_id"]: row["content"]
        for row in rows(
            db_path,
            "SELECT message_id, content FROM prompts JOIN prompt_responses ON prompt_id = id",
        )
    }
    assert found.keys() == expected.keys() and len(found) > 100
    compacted = [k for k, v in found.items() if "session is being continued" in v]
    assert compacted == []
    assert all(found[k][:100] == expected[k][:100] for k in found)


def test_malformed_file_is_not_fatal(tmp_path: Path, db_path: Path) -> None:
    bad = tmp_path / "projects" / "x" / "bad.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b'\x00\xff garbage\n{"type": "assistant", "message": 3}\n\n"text"\n')
    summary = import_transcripts([tmp_path], db_path=db_path)
    assert summary.malformed == 2 and summary.lines == 3 and summary.prompts_added == 0


def test_missing_path_is_a_clear_error(tmp_path: Path, db_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_transcripts([tmp_path / "nope"], db_path=db_path)
    result = CliRunner().invoke(
        cli, ["import", "claude-code", "--db", str(db_path), str(tmp_path / "nope")]
    )
    assert result.exit_code == 1 and "no such file or directory" in result.output


def test_cli_defaults_to_claude_config_dir(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{tmp_path / 'missing'},{OWN}")
    result = CliRunner().invoke(
        cli, ["import", "claude-code", "--db", str(db_path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"2 files \(0 unchanged\), 17 lines: 6 prompts added", result.output)
    assert "3 malformed, 1 unknown types (brand-new-line-type: 1)," in result.output
    again = CliRunner().invoke(cli, ["import", "claude-code", "--db", str(db_path)])
    assert "2 files (2 unchanged), 0 lines: 0 prompts added" in again.output


def usage_line(
    message_id: str,
    *,
    tokens: Any = 11,
    timestamp: str = "2026-01-31T10:00:00.000Z",
    model: Any = "claude-sonnet-4-5-20250929",
    content: Any = None,
) -> str:
    """One synthetic assistant line with usage, as Claude Code writes it."""
    return json.dumps(
        {
            "type": "assistant",
            "sessionId": "22222222-2222-4333-8444-555555555555",
            "timestamp": timestamp,
            "requestId": f"req_{message_id}",
            "message": {
                "id": message_id,
                "model": model,
                "role": "assistant",
                "content": content or [{"type": "text", "text": "ok"}],
                "usage": {"input_tokens": tokens, "output_tokens": 2},
            },
        }
    )


def failing_on(marker: bytes, message: str) -> Callable[[bytes], Any]:
    """The importer's line parser, failing with RuntimeError(message) on a line holding
    ``marker``: something unforeseen inside one file."""
    from orchestrator.claude_code import transcripts

    parse = transcripts.parse_line

    def failing(raw: bytes) -> Any:
        if marker in raw:
            raise RuntimeError(message)
        return parse(raw)

    return failing


#: Lines that stopped an import with a traceback; each must be one malformed line.
BAD_LINES = {
    "lone surrogate in a response": usage_line(
        "m_bad", content=[{"type": "text", "text": "\ud800"}]
    ),
    "lone surrogate in a prompt": json.dumps(
        {"type": "user", "timestamp": "2026-01-31T09:00:00.000Z", "message": {"content": "\udfff"}}
    ),
    "NaN tool-use id": usage_line(
        "m_bad", content=[{"type": "tool_use", "id": float("nan"), "name": "Bash", "input": {}}]
    ),
    "Infinity tokens": usage_line("m_bad", tokens=float("inf")),
    "1e300 tokens": usage_line("m_bad", tokens=1e300),
    "a huge integer of tokens": usage_line("m_bad", tokens=2**64),
    "an impossible day": usage_line("m_bad", timestamp="2026-02-30T00:00:00.000Z"),
    "an impossible day, no milliseconds": usage_line("m_bad", timestamp="2026-02-30T00:00:00Z"),
    "an hour that does not exist": usage_line("m_bad", timestamp="2026-01-31T25:00:00.000Z"),
    "a model that is no string": usage_line("m_bad", model=5),
    "more 1-hour cache writes than cache writes": json.dumps(
        {
            **json.loads(usage_line("m_bad")),
            "message": {
                "id": "m_bad",
                "model": "claude-sonnet-4-5-20250929",
                "role": "assistant",
                "content": [{"type": "text", "text": "ok"}],
                "usage": {
                    "input_tokens": 11,
                    "output_tokens": 2,
                    "cache_creation_input_tokens": 5,
                    "cache_creation": {"ephemeral_1h_input_tokens": 9},
                },
            },
        }
    ),
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_is_skipped_and_the_rest_imported(
    bad: str, tmp_path: Path, db_path: Path
) -> None:
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    # The bad line first in the file that sorts first, a good line after it, a good file.
    (project / "00000000-0000-4000-8000-000000000000.jsonl").write_text(
        f"{bad}\n{usage_line('m_good_1', tokens=11)}\n"
    )
    (project / "ffffffff-0000-4000-8000-000000000000.jsonl").write_text(
        usage_line("m_good_2", tokens=13) + "\n"
    )
    summary = import_transcripts([tmp_path], db_path=db_path)
    assert summary.errors == []
    assert (summary.malformed, summary.prompts_added, summary.lines) == (1, 2, 3)
    [day] = daily_tokens(db_path)
    assert (day["day"], day["input_tokens"], day["output_tokens"]) == ("2026-01-31", 24, 4)


def test_a_file_that_fails_never_stops_the_others(
    tmp_path: Path, db_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong inside one file is rolled back and reported; the files after it
    are imported, and the failed one is imported by the next run."""
    from orchestrator.claude_code import transcripts

    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    first = project / "00000000-0000-4000-8000-000000000000.jsonl"
    first.write_text(f"{usage_line('m_1', tokens=11)}\n{usage_line('m_boom', tokens=5)}\n")
    (project / "ffffffff-0000-4000-8000-000000000000.jsonl").write_text(
        usage_line("m_2", tokens=13) + "\n"
    )
    failing = failing_on(b"m_boom", "something unforeseen")
    monkeypatch.setattr(transcripts, "parse_line", failing)
    result = CliRunner().invoke(
        cli, ["import", "claude-code", "--db", str(db_target), str(tmp_path)]
    )
    assert result.exit_code == 1  # like `import stream-json`: a script can tell
    assert f"error: {first}: RuntimeError: something unforeseen" in result.output
    assert "1 prompts added" in result.output and result.output.startswith("2 files")
    assert [day["input_tokens"] for day in daily_tokens(db_target)] == [13]
    monkeypatch.undo()
    again = import_transcripts([tmp_path], db_path=db_target)
    assert again.errors == [] and again.prompts_added == 2 and again.files_unchanged == 1
    assert [day["input_tokens"] for day in daily_tokens(db_target)] == [13 + 11 + 5]


def test_small_batches_import_the_same(
    tmp_path: Path,
    db_target: Target,
    new_db_target: Callable[[], Target],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Responses and logs are written in batches as the lines come; batches of one (lines
    of a response written apart) give the same prompts, logs and totals."""
    from orchestrator.claude_code import transcripts

    config = fixture_config_dir(tmp_path)
    whole = import_transcripts([config], db_path=tmp_path / "whole.db")
    monkeypatch.setattr(transcripts, "RESPONSES_HELD", 1)
    monkeypatch.setattr(transcripts, "LOGS_HELD", 1)
    batched = import_transcripts([config], db_path=db_target)
    assert batched.prompts_added == whole.prompts_added
    assert batched.tool_events == whole.tool_events
    assert batched.duplicates_skipped == whole.duplicates_skipped
    assert stored_daily(db_target) == independent_daily(config)


def test_an_overlong_line_is_skipped_unread(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.claude_code import transcripts

    monkeypatch.setattr(transcripts, "LINE_LIMIT", 500)
    path = tmp_path / "projects" / "p" / "33333333-0000-4000-8000-000000000000.jsonl"
    path.parent.mkdir(parents=True)
    long = usage_line("m_long", content=[{"type": "text", "text": "x" * 2000}])
    path.write_text(f"{long}\n{usage_line('m_1', tokens=11)}\n{long[:1200]}")
    summary = import_transcripts([path], db_path=db_path)
    assert (summary.lines, summary.malformed, summary.prompts_added) == (2, 1, 1)
    # The unfinished last line is left for the next import, which reads it once complete.
    with path.open("a") as handle:
        handle.write(long[1200:] + "\n" + usage_line("m_2", tokens=13) + "\n")
    again = import_transcripts([path], db_path=db_path)
    assert (again.lines, again.malformed, again.prompts_added) == (2, 1, 1)
    assert [day["input_tokens"] for day in daily_tokens(db_path)] == [24]


def test_a_rewritten_file_logs_no_tool_call_twice(tmp_path: Path, db_target: Target) -> None:
    config = fixture_config_dir(tmp_path)
    path = next((config / "projects").rglob("tool_heavy.jsonl"))
    first = import_transcripts([path], db_path=db_target)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))  # smaller: read again from its start
    second = import_transcripts([path], db_path=db_target)
    assert second.lines == len(lines) - 3
    assert second.prompts_added == 0 and second.tool_events == 0
    assert rows(db_target, "SELECT count(*) FROM agent_logs")[0][0] == first.tool_events


def _words(text: str | None) -> set[str]:
    """The words FTS5's default tokenizer finds (letters and digits; ASCII fixtures)."""
    return set(re.findall(r"[^\W_]+", (text or "").lower()))


def test_imported_rows_are_searchable_and_the_schema_stays_checked(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search index is filled at each commit, not row by row: after imports committed
    file by file, with a file rolled back, every row is found by its words, the index
    equals its content, the triggers are back and the schema is still recorded checked."""
    from orchestrator.claude_code import transcripts
    from orchestrator.store import sqlite as backend

    backend.connect(db_path).close()
    monkeypatch.setattr(transcripts, "COMMIT_EVERY_S", 0.0)  # a transaction per file
    config = fixture_config_dir(tmp_path)
    broken = config / "projects" / "p" / "00000000-0000-4000-8000-000000000000.jsonl"
    broken.parent.mkdir()
    broken.write_text(f"{usage_line('m_1', tokens=11)}\n{usage_line('m_boom')}\n")
    failing = failing_on(b"m_boom", "rolled back")
    monkeypatch.setattr(transcripts, "parse_line", failing)
    summary = import_transcripts([config], db_path=db_path)
    assert len(summary.errors) == 1 and summary.prompts_added > 100
    monkeypatch.undo()
    import_transcripts([broken], db_path=db_path)  # now whole: indexed by a later import

    conn = sqlite3.connect(db_path)
    searched = {"prompts": ("content", "response"), "agent_logs": ("message",)}
    for table, columns in searched.items():
        conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")
        texts = conn.execute(f"SELECT rowid, {', '.join(columns)} FROM {table}").fetchall()
        for word in ("the", "bash", "test", "file"):
            expected = {row[0] for row in texts if any(word in _words(t) for t in row[1:])}
            found = conn.execute(
                f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?", (f'"{word}"',)
            ).fetchall()
            assert {row[0] for row in found} == expected and expected, (table, word)
    triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"prompts_ai", "agent_logs_ai", "system_logs_ai"} <= triggers
    (user_version, schema_version) = conn.execute(
        "SELECT * FROM pragma_user_version, pragma_schema_version"
    ).fetchone()
    assert user_version == schema_version  # opening it stays cheap


HEAVY = ("pandas", "datasette", "sqlite_utils", "genai_prices", "orchestrator.core.rows")


def modules_imported_by(tmp_path: Path, *argv: str, **env_vars: str) -> set[str]:
    """The modules a fresh ``orchestrator ARGV`` process imports (run in a subprocess,
    with ``env_vars`` set)."""
    out = tmp_path / "modules.json"
    code = (
        "import json, sys\n"
        f"sys.argv = ['orchestrator', *{list(argv)!r}]\n"
        "from orchestrator.cli import cli\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        f"open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_vars}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return set(json.loads(out.read_text()))


def test_start_up_and_an_unchanged_import_load_nothing_heavy(tmp_path: Path, db_path: Path) -> None:
    """`orchestrator --help` and re-importing unchanged transcripts import neither the
    writer's models and prices nor the notebook and Datasette stacks."""
    assert not modules_imported_by(tmp_path, "--help") & {*HEAVY, "orchestrator.writer.db"}
    config = fixture_config_dir(tmp_path)
    import_transcripts([config], db_path=db_path)
    again = modules_imported_by(
        tmp_path, "import", "claude-code", "--db", str(db_path), str(config)
    )
    assert not again & set(HEAVY)


def test_a_first_import_of_well_formed_transcripts_loads_neither_pydantic_nor_prices(
    tmp_path: Path,
) -> None:
    """Rows are checked without pydantic, and once genai-prices has been asked about the
    models (its answers cached), a new import does not import it either."""
    config = fixture_config_dir(tmp_path)
    cache = str(tmp_path / "cache")
    runs = []
    for name in ("cold.db", "warm.db"):
        argv = ("import", "claude-code", "--db", str(tmp_path / name), str(config))
        runs.append(modules_imported_by(tmp_path, *argv, XDG_CACHE_HOME=cache))
        conn = sqlite3.connect(tmp_path / name)
        assert conn.execute("SELECT count(*) FROM prompts").fetchone()[0] > 100
        conn.close()
    cold, warm = runs
    assert (
        "genai_prices" in cold and "orchestrator.core.models" not in cold
    )  # (it imports pydantic)
    assert not warm & {"pydantic", "genai_prices", "importlib.metadata", "orchestrator.core.models"}


#: Every summary the triggers keep, read so that two databases compare without their ids.
SUMMARIES = {
    "agents": "SELECT name, status, created_at, prompt_count, total_tokens_input, "
    "total_tokens_output, total_tokens_cache_read, total_tokens_cache_write, total_cost_usd, "
    "unpriced_prompt_count FROM agents ORDER BY name, created_at",
    "usage_daily": "SELECT u.day, o.name, u.model, u.prompts, u.failed_prompts, u.tokens_input, "
    "u.tokens_output, u.tokens_cache_read, u.tokens_cache_write, u.tokens_cache_write_1h, "
    "u.cost_usd, u.unpriced_prompts, u.cache_savings_usd FROM usage_daily u "
    "JOIN orchestrator_agents o ON o.id = u.orchestrator_agent_id ORDER BY 1, 2, 3",
    "runs_daily": "SELECT r.day, o.name, r.runs, r.completed, r.failed, r.cancelled "
    "FROM runs_daily r JOIN orchestrator_agents o ON o.id = r.orchestrator_agent_id "
    "ORDER BY 1, 2",
    "sessions": "SELECT * FROM sessions ORDER BY session_id",
}


def summaries(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The summaries, without the all-zero rows triggers leave behind (a run moved from
    the day it was created to its transcript's first day)."""
    count = {"usage_daily": 3, "runs_daily": 2, "sessions": 1}  # prompts, runs, runs
    return {
        table: [tuple(row) for row in rows(db_path, sql) if table not in count or row[count[table]]]
        for table, sql in SUMMARIES.items()
    }


def assert_same_summaries(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal table by table; sums of costs within 1e-9 relative (added in another order)."""
    for table, expected_rows in expected.items():
        assert len(got[table]) == len(expected_rows) and expected_rows, table
        for row, expected_row in zip(got[table], expected_rows, strict=True):
            for value, expected_value in zip(row, expected_row, strict=True):
                if isinstance(expected_value, float):
                    assert value == pytest.approx(expected_value, rel=1e-9, abs=1e-12), table
                else:
                    assert value == expected_value, (table, row, expected_row)


def test_the_summaries_an_import_adds_at_commit_are_those_of_the_triggers(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import adds its prompts to the runs' totals and to usage_daily in one statement
    each at commit, instead of the insert triggers' four statements per prompt. Into a
    database that already holds prompts, committed file by file, with a file rolled back
    and a grown file read again: every summary equals both a recomputation from the base
    tables and the same imports made with the triggers firing row by row."""
    from orchestrator.claude_code import transcripts
    from orchestrator.store import migrations
    from orchestrator.store.sqlite import SQLiteBackend

    config = fixture_config_dir(tmp_path)
    project = config / "projects" / "-home-marco-projects-spotter"
    session = project / f"{SESSION}.jsonl"
    whole = session.read_bytes()
    broken = config / "projects" / "p" / "00000000-0000-4000-8000-000000000000.jsonl"
    broken.parent.mkdir()
    broken.write_text(f"{usage_line('m_1', tokens=11)}\n{usage_line('m_boom')}\n")
    failing = failing_on(b"m_boom", "rolled back")

    def imports(db: Path) -> None:
        session.write_bytes(whole[: len(whole) // 2].rpartition(b"\n")[0] + b"\n")
        import_transcripts([project / "tool_heavy.jsonl"], db_path=db)
        with monkeypatch.context() as patch:
            patch.setattr(transcripts, "parse_line", failing)
            patch.setattr(transcripts, "COMMIT_EVERY_S", 0.0)  # a transaction per file
            assert len(import_transcripts([config], db_path=db).errors) == 1
        session.write_bytes(whole)  # grown: read on from where the last import stopped
        assert import_transcripts([config], db_path=db).prompts_added > 0

    deferred: list[set[str]] = []
    catch_up = SQLiteBackend.catch_up_search_index

    async def recording(self: SQLiteBackend, triggers: Any) -> None:
        deferred.append(set(triggers))
        await catch_up(self, triggers)

    monkeypatch.setattr(SQLiteBackend, "catch_up_search_index", recording)
    imports(db_path)
    assert deferred and all(set(migrations.prompt_summary_triggers()) <= d for d in deferred)
    added = summaries(db_path)

    # The same sums from the base tables, recomputed in a copy.
    shutil.copy(db_path, tmp_path / "rebuilt.db")
    conn = sqlite3.connect(tmp_path / "rebuilt.db", isolation_level=None)
    with migrations.write_transaction(conn):
        migrations.rebuild_summaries(conn)
    conn.close()
    assert_same_summaries(added, summaries(tmp_path / "rebuilt.db"))

    # The same imports with the triggers left in place (their SQL is not the one known).
    monkeypatch.setattr(migrations, "prompt_summary_triggers", dict)
    deferred.clear()
    imports(tmp_path / "row_by_row.db")
    assert deferred and not any(name.startswith("prompts_totals") for d in deferred for name in d)
    by_row = summaries(tmp_path / "row_by_row.db")
    for table in ("agents", "sessions"):  # times of a file without any ("now") differ
        added[table] = [row for row in added[table] if "short" not in row]
        by_row[table] = [row for row in by_row[table] if "short" not in row]
    assert_same_summaries(added, by_row)
    triggers = {row[0] for row in rows(db_path, "SELECT name FROM sqlite_master")}
    assert set(migrations.prompt_summary_triggers()) <= triggers


def _json_values() -> Any:
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats()  # NaN and both infinities included
        | st.text()  # lone surrogates included
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )


def _as_javascript_reads_it(value: Any) -> Any:
    """``value`` with each integer past 64 bits as the nearest float (parse_line's reading)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [_as_javascript_reads_it(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_javascript_reads_it(item) for key, item in value.items()}
    return value


def test_lines_read_as_the_standard_parser_reads_them() -> None:
    """parse_line reads lines with orjson and gives what the standard parser (its reading
    before) gives: the same object, or None for the same lines (not JSON, not an object,
    NaN / Infinity, a lone surrogate, bytes that are not UTF-8), except that an integer
    past 64 bits is the nearest float, as JavaScript reads it."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from orchestrator.claude_code.common import _parse_refused, parse_line

    @settings(max_examples=400, deadline=None)
    @given(
        value=_json_values(),
        ascii_only=st.booleans(),
        cut=st.integers(min_value=0, max_value=8),
        junk=st.binary(max_size=3),
    )
    def check(value: Any, ascii_only: bool, cut: int, junk: bytes) -> None:
        text = json.dumps({"v": value} if cut % 2 else value, ensure_ascii=ascii_only)
        lines = [text.encode("utf-8", "surrogatepass"), text.encode("utf-8", "surrogatepass")]
        lines[1] = lines[1][: len(lines[1]) - cut] + junk  # cut short, garbage after
        for raw in lines:
            expected = _parse_refused(raw)
            got = parse_line(raw)
            if expected is None:
                assert got is None, raw
            else:
                assert got == _as_javascript_reads_it(expected), raw

    check()
    # Read by the standard parser alone: what orjson refuses and it reads.
    for raw, expected in [
        (b'{"tokens": 1e400}', {"tokens": float("inf")}),
        (b'\xef\xbb\xbf{"a": 1}', None),  # a byte order mark
        ('\ufeff{"a": 1}', None),
        (b'{"a": "\\ud800"}', None),
        (b"[" * 600 + b"]" * 600, None),
        (b'{"a": ' + b"[" * 1200 + b"]" * 1200 + b"}", None),  # too deep for both
        (b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}", "deep"),  # too deep for orjson alone
    ]:
        got = parse_line(raw)
        if expected == "deep":
            assert got is not None and got == _parse_refused(raw)
        else:
            assert got == expected == _parse_refused(raw), raw


# --- today's transcripts (Claude Code 2.1.337): cost-state, environment, requests --------


def _table(db_path: Target, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if is_postgres(db_path):
        return [tuple(row) for row in records(db_path, sql, params)]
    conn = sqlite3.connect(db_path)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def _git_worktree(tmp_path: Path, branch: str) -> Path:
    """A git repository with a worktree of branch ``branch`` at ``tmp_path/project``."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "README").write_text("x")
    git("add", "README")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    git("worktree", "add", "-q", "-b", branch, str(tmp_path / "project"))
    return tmp_path / "project"


def _result(run: Any) -> dict[str, Any]:
    return next(m for m in run.messages if m["type"] == "result")


def test_real_claude_code_transcripts_import_with_their_cost_environment_and_requests(
    tmp_path: Path, db_path: Path
) -> None:
    """The real CLI's transcripts: no unknown line type; Claude Code's reported cost (the
    stream's total_cost_usd) kept beside the computed one, which equals it for a model
    genai-prices knows; the latest cost-state after a resume; the worktree; each request's
    effort, thinking and max_tokens as the fake API received them."""
    from fake_anthropic import FakeAnthropic, run_claude, token_totals

    model = "claude-opus-4-5-20251101"  # takes an effort; genai-prices knows it
    project = _git_worktree(tmp_path, "feature-x")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    with FakeAnthropic() as api:
        first = run_claude(tmp_path, "say hi", api=api, model=model, args=["--effort", "high"])
        assert first.returncode == 0, first.stderr
        projects = first.home / ".claude" / "projects"
        summary = import_transcripts([projects], db_path=db_path)
        assert summary.unknown_types == 0 and summary.malformed == 0, str(summary)
        assert summary.skipped > 0  # api-request-shape, last-prompt, queue-operation...
        runs = "SELECT reported_cost_usd, total_duration_ms FROM claude_code_runs"
        assert _table(db_path, runs)[0][0] == _result(first)["total_cost_usd"]
        resumed = run_claude(
            tmp_path, "again", api=api, model=model, args=["--resume", str(first.session_id)]
        )
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.transcript == first.transcript  # resumed in the same file
        # A model Claude Code has no price for, in a project of its own.
        odd = run_claude(unknown, "say hi", api=api, model="claude-nonesuch-9-20300101")
        assert odd.returncode == 0, odd.stderr
    summary = import_transcripts([projects, odd.home / ".claude" / "projects"], db_path=db_path)
    assert summary.unknown_types == 0 and summary.malformed == 0, str(summary)
    assert "0 unknown types," in str(summary)

    session = _table(
        db_path,
        "SELECT r.reported_cost_usd, r.duration_api_ms, r.total_duration_ms, "
        "r.tool_duration_ms, r.lines_added, r.lines_removed, r.has_unknown_model_cost, r.cwd, "
        "r.git_branch, r.is_git_repo, r.is_worktree FROM claude_code_runs r "
        "JOIN agents a ON a.id = r.agent_id WHERE a.session_id = ?",
        first.session_id,
    )
    result = _result(resumed)  # Claude Code's figures for the whole session
    assert session[0][0] == result["total_cost_usd"] > _result(first)["total_cost_usd"]
    assert session[0][1] == result["duration_api_ms"]
    assert session[0][2] > 0 and session[0][3] > 0  # wall time, the Bash tool's time
    assert session[0][4:] == (0, 0, 0, str(project.resolve()), "feature-x", 1, 1)
    # Per model: Claude Code's tokens and cost, and the same tokens priced by genai-prices.
    main_sent = [s for s in api.main if s.model == model]
    expected = token_totals(main_sent)
    usage = _table(
        db_path,
        "SELECT m.model, m.tokens_input, m.tokens_output, m.tokens_cache_read, "
        "m.tokens_cache_write, m.cost_usd, m.cost_computed_usd FROM agent_model_usage m "
        "JOIN agents a ON a.id = m.agent_id WHERE a.session_id = ?",
        first.session_id,
    )
    assert len(usage) == 1 and usage[0][0] == model
    assert list(usage[0][1:5]) == [expected[c] for c in TOKEN_COLUMNS_4]
    assert usage[0][5] == result["modelUsage"][model]["costUSD"]
    assert usage[0][6] == pytest.approx(result["total_cost_usd"], rel=1e-9)
    # The model without a price: flagged by Claude Code, no computed cost.
    odd_usage = _table(
        db_path,
        "SELECT r.has_unknown_model_cost, r.reported_cost_usd, m.cost_computed_usd, "
        "r.is_git_repo FROM claude_code_runs r JOIN agents a ON a.id = r.agent_id "
        "JOIN agent_model_usage m ON m.agent_id = r.agent_id WHERE a.session_id = ?",
        odd.session_id,
    )
    assert odd_usage == [(1, _result(odd)["total_cost_usd"], None, 0)]
    # reported_vs_computed covers the session: the unpriced model's run is listed.
    from orchestrator.reports.canned import run_report

    params = {"min_diff_usd": "0.0000001"}
    report = run_report("reported_vs_computed", db_path, params).as_dicts()
    listed = {(r["level"], r["session_id"]) for r in report}
    assert ("run", odd.session_id) in listed and ("run", first.session_id) not in listed

    # Each response's request, as the fake API received it.
    asked = [
        (
            r["body"].get("output_config", {}).get("effort"),
            r["body"]["thinking"]["type"],
            r["body"]["thinking"].get("budget_tokens"),
            r["body"]["max_tokens"],
        )
        for r in api.requests
        if r["path"].startswith("/v1/messages")
        and r["body"].get("model") == model
        and r["body"].get("tools")
    ]
    stored = _table(
        db_path,
        "SELECT pr.effort, pr.thinking, pr.thinking_budget_tokens, pr.max_tokens "
        "FROM prompt_responses pr JOIN prompts p ON p.id = pr.prompt_id "
        "JOIN agents a ON a.id = p.agent_id WHERE a.session_id = ? ORDER BY p.created_at",
        first.session_id,
    )
    assert len(stored) == len(main_sent) == len(asked) == 3
    assert stored == asked and asked[0][0] == "high"

    # Importing again changes nothing.
    before = [
        _table(db_path, f"SELECT * FROM {t} ORDER BY 1, 2")
        for t in ("claude_code_runs", "agent_model_usage", "prompt_responses")
    ]
    again = import_transcripts([projects], db_path=db_path)
    assert again.files_unchanged == again.files
    db = tmp_path / "again.db"  # and from scratch, the same figures
    import_transcripts([projects], db_path=db)
    assert _table(db, runs) == _table(db_path, runs + " WHERE has_unknown_model_cost = 0")
    assert before == [
        _table(db_path, f"SELECT * FROM {t} ORDER BY 1, 2")
        for t in ("claude_code_runs", "agent_model_usage", "prompt_responses")
    ]


TOKEN_COLUMNS_4 = ("tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write")


def _cost_state(session: str, cost: float, duration: float, **extra: Any) -> dict[str, Any]:
    """A cost-state line of the shape Claude Code 2.1.337 writes (its schema in the CLI)."""
    return {
        "type": "cost-state",
        "sessionId": session,
        "totalCostUSD": cost,
        "totalAPIDuration": 10,
        "totalAPIDurationWithoutRetries": 9,
        "totalToolDuration": 5,
        "totalLinesAdded": 7,
        "totalLinesRemoved": 2,
        "totalDuration": duration,
        "startTime": 1796661775401,
        "modelUsage": {
            "claude-sonnet-4-5-20250929": {
                "inputTokens": 1000,
                "outputTokens": 100,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": cost,
            }
        },
        "hasUnknownModelCost": False,
        **extra,
    }


def _write_lines(path: Path, lines: list[dict[str, Any]], mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


def test_the_latest_cost_state_wins_whatever_the_order_of_reading(
    tmp_path: Path, db_target: Target
) -> None:
    session = "5e55a1e0-0000-4000-8000-000000000001"
    path = tmp_path / "projects" / "p" / f"{session}.jsonl"
    _write_lines(path, [_cost_state(session, 0.5, 1000)])
    runs = "SELECT reported_cost_usd, total_duration_ms, lines_added FROM claude_code_runs"
    import_transcripts([path], db_path=db_target)
    assert _table(db_target, runs) == [(0.5, 1000.0, 7)]
    _write_lines(path, [_cost_state(session, 0.75, 1500)], "a")  # the session went on
    import_transcripts([path], db_path=db_target)
    assert _table(db_target, runs) == [(0.75, 1500.0, 7)]
    # The file rewritten to an older state (read again from its start): the later stays.
    _write_lines(path, [_cost_state(session, 0.25, 200)])
    summary = import_transcripts([path], db_path=db_target)
    assert summary.lines == 1 and summary.malformed == 0
    assert _table(db_target, runs) == [(0.75, 1500.0, 7)]
    # Computed from genai-prices for tokens no response shows: Sonnet 4.5 at $3 / $15 per
    # million input / output tokens.
    assert _table(db_target, "SELECT cost_usd, cost_computed_usd FROM agent_model_usage") == [
        (0.75, pytest.approx(1000 * 3e-6 + 100 * 15e-6))
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"totalCostUSD": -1},
        {"totalCostUSD": "0.5"},
        {"totalDuration": None},
        {"modelUsage": []},
        {"totalLinesAdded": -3},
        {"hasUnknownModelCost": "yes"},
        {"modelUsage": {"m": {"inputTokens": 1.5, "outputTokens": 0}}},
        {"modelUsage": {"m": {**dict.fromkeys(("inputTokens", "outputTokens"), 1)}}},
    ],
)
def test_a_cost_state_of_another_shape_is_malformed_and_stores_nothing(
    tmp_path: Path, db_target: Target, change: dict[str, Any]
) -> None:
    session = "5e55a1e0-0000-4000-8000-000000000002"
    path = tmp_path / f"{session}.jsonl"
    _write_lines(path, [{**_cost_state(session, 0.5, 1000), **change}])
    summary = import_transcripts([path], db_path=db_target)
    assert summary.malformed == 1 and summary.unknown_types == 0 and summary.errors == []
    assert _table(db_target, "SELECT count(*) FROM claude_code_runs") == [(0,)]
    assert _table(db_target, "SELECT count(*) FROM agent_model_usage") == [(0,)]


def test_the_environment_and_a_worktree_entered_are_the_runs(
    tmp_path: Path, db_target: Target
) -> None:
    """The environment snapshot as 2.1.337 writes it, then a worktree-state line of the
    shape its code writes (EnterWorktree; not produced by the tests' -p runs)."""
    session = "5e55a1e0-0000-4000-8000-000000000003"
    path = tmp_path / f"{session}.jsonl"
    environment = {
        "type": "attachment",
        "attachment": {
            "type": "environment",
            "snapshot": {
                "workingDirectory": "/src/app",
                "isWorktree": False,
                "isGitRepo": True,
                "additionalWorkingDirectories": [],
                "platform": "linux",
            },
        },
        "timestamp": "2026-05-01T10:00:00.000Z",
        "sessionId": session,
        "gitBranch": "main",
    }
    _write_lines(path, [environment])
    env = (
        "SELECT cwd, git_branch, is_git_repo, is_worktree, reported_cost_usd FROM claude_code_runs"
    )
    import_transcripts([path], db_path=db_target)
    assert _table(db_target, env) == [("/src/app", "main", 1, 0, None)]
    worktree = {
        "type": "worktree-state",
        "worktreeSession": {
            "originalCwd": "/src/app",
            "worktreePath": "/src/app/.claude/worktrees/fix-1",
            "worktreeName": "fix-1",
            "worktreeBranch": "worktree-fix-1",
            "sessionId": session,
        },
        "sessionId": session,
    }
    _write_lines(path, [worktree, {"type": "worktree-state", "worktreeSession": None}], "a")
    summary = import_transcripts([path], db_path=db_target)
    assert summary.unknown_types == 0 and summary.malformed == 0
    assert _table(db_target, env) == [
        ("/src/app/.claude/worktrees/fix-1", "worktree-fix-1", 1, 1, None)
    ]


def test_old_transcripts_import_the_same_rows(tmp_path: Path, db_path: Path) -> None:
    """The Claude Code 2.1.38/2.1.39 transcripts of tests/data: one run per file, one prompt
    per response (message.id + requestId once), every tool call logged once, nothing of
    today's lines: counted from the JSON lines, not from the importer."""
    config = fixture_config_dir(tmp_path)
    files = sorted((config / "projects").rglob("*.jsonl"))
    responses: set[tuple[str, str]] = set()
    tool_ids: set[tuple[str, str]] = set()
    for path in files:
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            message = line.get("message")
            if not isinstance(message, dict):
                continue
            if isinstance(message.get("usage"), dict):
                responses.add((message["id"], line["requestId"]))
            for block in message.get("content") if isinstance(message.get("content"), list) else []:
                if block.get("type") == "tool_use":
                    tool_ids.add(("tool_use", block["id"]))
                elif block.get("type") == "tool_result":
                    tool_ids.add(("tool_result", block["tool_use_id"]))
    summary = import_transcripts([config], db_path=db_path)
    assert summary.unknown_types == 0 and summary.errors == []
    assert _table(db_path, "SELECT count(*) FROM agents") == [(len(files),)]
    assert set(_table(db_path, "SELECT message_id, request_id FROM prompt_responses")) == responses
    assert _table(db_path, "SELECT count(*) FROM prompts") == [(len(responses),)]
    logged = _table(
        db_path,
        "SELECT log_type, json_extract(metadata, '$.tool_use_id') FROM agent_logs "
        "WHERE log_type LIKE 'tool%'",
    )
    assert sorted(logged) == sorted(tool_ids)
    for table in ("claude_code_runs", "agent_model_usage"):
        assert _table(db_path, f"SELECT count(*) FROM {table}") == [(0,)]
    assert _table(
        db_path,
        "SELECT count(*) FROM prompt_responses WHERE coalesce(effort, thinking, "
        "thinking_budget_tokens, max_tokens) IS NOT NULL",
    ) == [(0,)]
