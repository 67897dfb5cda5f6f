"""The real Claude Code CLI against the fake Anthropic API: the harness the Claude Code
tests build on (tests/fake_anthropic.py), and what the importers make of a real session."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_anthropic import TOKEN_COLUMNS, FakeAnthropic, run_claude, token_totals

from orchestrator.cli import cli

pytestmark = pytest.mark.claude_cli


def prompt_totals(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    row = conn.execute(
        f"SELECT {', '.join(f'coalesce(sum({c}), 0)' for c in TOKEN_COLUMNS)} FROM prompts"
    ).fetchone()
    conn.close()
    return dict(zip(TOKEN_COLUMNS, row, strict=True))


def test_a_real_claude_session_runs_a_tool_and_imports_with_the_fakes_tokens(
    tmp_path: Path,
) -> None:
    with FakeAnthropic() as api:
        run = run_claude(tmp_path, "say hi", api=api)
    assert run.returncode == 0, run.stderr
    assert run.session_id is not None and run.transcript is not None
    # The scripted conversation: a Bash call, then the final text; each request after the
    # first carries the tool's real output back.
    assert [len(s.content) for s in api.main] == [2, 1]
    tool_use = api.main[0].content[1]
    results = [
        block
        for request in api.requests
        if request["path"].startswith("/v1/messages")
        for message in request["body"].get("messages", [])
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results and results[-1]["tool_use_id"] == tool_use["id"]
    assert "hi" in json.dumps(results[-1]["content"])
    # The transcript and the stream both hold the call and its result.
    transcript = run.transcript.read_text()
    assert tool_use["id"] in transcript and '"content":"hi"' in transcript
    kinds = [m["type"] for m in run.messages]
    assert kinds[0] == "system" and kinds[-1] == "result"
    assert any(
        block.get("type") == "tool_result" and block.get("tool_use_id") == tool_use["id"]
        for m in run.messages
        if m["type"] == "user"
        for block in m["message"]["content"]
    )

    # Each importer, on a database of its own, stores the tokens the fake reported.
    expected = token_totals(api.main)
    from_transcript = tmp_path / "transcript.db"
    result = CliRunner().invoke(
        cli, ["import", "claude-code", "--db", str(from_transcript), str(run.transcript)]
    )
    assert result.exit_code == 0, result.output
    assert prompt_totals(from_transcript) == expected
    from_stream = tmp_path / "stream.db"
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(from_stream), str(run.stream)]
    )
    assert result.exit_code == 0, result.output
    # The stream's lines carry the start of each response's output count; the result
    # line's modelUsage brings the rest (a reconciling prompt), cache tiers aside.
    stream_totals = prompt_totals(from_stream)
    for column in TOKEN_COLUMNS[:4]:
        assert stream_totals[column] == expected[column], column
    conn = sqlite3.connect(from_transcript)
    logged = conn.execute(
        "SELECT log_type, json_extract(metadata, '$.tool_use_id') FROM agent_logs "
        "WHERE log_type LIKE 'tool%' ORDER BY log_type"
    ).fetchall()
    conn.close()
    assert logged == [("tool_result", tool_use["id"]), ("tool_use", tool_use["id"])]
