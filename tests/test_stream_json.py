"""Recording Claude Code stream-json: per-response prompts, tool logs, reported usage and cost."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Target, rows
from click.testing import CliRunner

from orchestrator import DatabaseManager
from orchestrator.claude_code import StreamRecorder
from orchestrator.cli import cli

STREAM = Path(__file__).parent / "data" / "claude_code" / "stream.jsonl"
COLUMNS = {
    "tokens_input": "inputTokens",
    "tokens_output": "outputTokens",
    "tokens_cache_read": "cacheReadInputTokens",
    "tokens_cache_write": "cacheCreationInputTokens",
}


def result_line(path: Path) -> dict[str, Any]:
    for line in path.read_text().splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("type") == "result":
            return dict(message)
    raise AssertionError("no result line")


def check_run_matches_result(target: Target, agent_id: str, result: dict[str, Any]) -> None:
    """Per-model tokens in prompts and agent_model_usage, and the reported cost, equal the
    result line's modelUsage and total_cost_usd."""
    for model, figures in result["modelUsage"].items():
        sums = rows(
            target,
            f"SELECT {', '.join(f'sum({column})' for column in COLUMNS)} "
            "FROM prompts WHERE agent_id = ? AND model = ?",
            (agent_id, model),
        )[0]
        [stored] = rows(
            target,
            f"SELECT {', '.join(COLUMNS)}, cost_usd FROM agent_model_usage "
            "WHERE agent_id = ? AND model = ?",
            (agent_id, model),
        )
        for index, (column, key) in enumerate(COLUMNS.items()):
            assert sums[index] == figures[key], (model, column)
            assert stored[index] == figures[key], (model, column)
        assert stored[-1] == figures["costUSD"]
    [(reported,)] = rows(
        target, "SELECT reported_cost_usd FROM claude_code_runs WHERE agent_id = ?", (agent_id,)
    )
    assert reported == result["total_cost_usd"]
    [(total,)] = rows(
        target, "SELECT sum(cost_usd) FROM agent_model_usage WHERE agent_id = ?", (agent_id,)
    )
    assert total == pytest.approx(result["total_cost_usd"], abs=1e-12)


async def test_recorded_stream_matches_result_line(db_target: Target) -> None:
    result = result_line(STREAM)
    async with DatabaseManager(db_target) as db:
        recorder = StreamRecorder(db, orchestrator="adw_test")
        for line in STREAM.read_text().splitlines():
            await recorder.feed_line(line)
        summary = await recorder.finish()
        assert summary.agent_id is not None
        agent = await db.get_agent(summary.agent_id)
        assert agent is not None and agent.status == "completed"
        prompts = await db.list_prompts(summary.agent_id)
        tool_logs = await db.get_agent_logs(summary.agent_id, "tool_use")
        results = await db.get_agent_logs(summary.agent_id, "tool_result")
    check_run_matches_result(db_target, summary.agent_id, result)
    assert summary.malformed == 1
    assert summary.prompts == 2  # msg_1 (two lines) counted once, msg_2
    per_response = [p for p in prompts if not p.content.startswith("[reconciliation]")]
    # msg_1's usage is its last line's: 88 output tokens, not 5 + 88.
    assert sorted(p.tokens_output for p in per_response) == [40, 88]
    assert all(p.cost_source == "computed" for p in prompts)
    assert [log.message for log in tool_logs] == ['Bash: {"command": "pytest -q"}']
    assert results[0].metadata == {"tool_use_id": "toolu_1", "name": "Bash", "is_error": False}


async def test_error_result_marks_run_failed(db_target: Target) -> None:
    lines = [json.loads(line) for line in STREAM.read_text().splitlines() if line[0] == "{"]
    lines[-1].update(is_error=True, subtype="success", result="Claude AI usage limit reached")
    async with DatabaseManager(db_target) as db:
        recorder = StreamRecorder(db)
        for message in lines:
            await recorder.feed(message)
        summary = await recorder.finish(exit_code=0)
        assert summary.agent_id is not None
        agent = await db.get_agent(summary.agent_id)
    assert agent is not None and agent.status == "failed"
    assert agent.error is not None and "usage limit" in agent.error


async def test_stream_without_result_is_failed(db_path: Path) -> None:
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        await recorder.feed_line(STREAM.read_text().splitlines()[0])
        summary = await recorder.finish()
        assert summary.agent_id is not None
        agent = await db.get_agent(summary.agent_id)
    assert agent is not None and agent.status == "failed"


FAKE_CLAUDE = """
import sys, time
data = open(sys.argv[1], "rb").read()
for line in data.splitlines(keepends=True):
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
sys.exit(3)
"""


def test_record_passes_output_and_exit_code_through(tmp_path: Path, db_target: Target) -> None:
    script = tmp_path / "fake_claude.py"
    script.write_text(FAKE_CLAUDE)
    result = CliRunner().invoke(
        cli,
        ["record", "--db", str(db_target), "--", sys.executable, str(script), str(STREAM)],
        catch_exceptions=False,
    )
    assert result.exit_code == 3
    assert result.stdout_bytes == STREAM.read_bytes()
    [(agent_id, status, error)] = rows(db_target, "SELECT id, status, error FROM agents")
    assert status == "failed" and error == "command exited with code 3"
    check_run_matches_result(db_target, agent_id, result_line(STREAM))


def test_record_missing_command_is_a_clear_error(db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["record", "--db", str(db_path), "--", "no-such-cmd-xyz"])
    assert result.exit_code == 1
    assert "cannot run 'no-such-cmd-xyz'" in result.output


def test_import_stream_json_cli(db_target: Target) -> None:
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_target), str(STREAM)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "(completed)" in result.output and "1 malformed" in result.output
    [(agent_id,)] = rows(db_target, "SELECT id FROM agents")
    check_run_matches_result(db_target, agent_id, result_line(STREAM))


def _stored(db_target: Target) -> dict[str, int]:
    return {
        table: rows(db_target, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("orchestrator_agents", "agents", "prompts", "agent_logs")
    }


@pytest.mark.parametrize(
    "text",
    [
        "# adw-orchestrator\n\nKnow what your AI developer workflows did.\n",
        '{"name": "adw-orchestrator", "version": "1.0"}\n{"type": "commit", "id": 3}\n',
        "",
    ],
    ids=["markdown", "other-json", "empty"],
)
def test_import_of_a_file_without_stream_json_is_an_error_and_stores_nothing(
    tmp_path: Path, db_target: Target, text: str
) -> None:
    CliRunner().invoke(cli, ["init", str(db_target)], catch_exceptions=False)
    other = tmp_path / "README.md"
    other.write_text(text)
    before = _stored(db_target)
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_target), str(other), str(STREAM)]
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {other}: no stream-json message")
    assert "None" not in result.output and f"{STREAM}: run " in result.stdout
    after = _stored(db_target)
    assert after["agents"] == before["agents"] + 1  # the stream's run, nothing for the other


@pytest.mark.parametrize(("code", "expected"), [(0, 1), (3, 3)])
def test_record_of_a_command_without_stream_json_is_an_error_and_stores_nothing(
    db_target: Target, code: int, expected: int
) -> None:
    command = [sys.executable, "-c", f"import sys; print('hello'); sys.exit({code})"]
    result = CliRunner().invoke(cli, ["record", "--db", str(db_target), "--", *command])
    assert result.exit_code == expected  # the command's, 1 when it succeeded
    assert result.stdout == "hello\n"  # passed through
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {sys.executable}: no stream-json")
    assert "None" not in result.stderr
    assert _stored(db_target) == dict.fromkeys(_stored(db_target), 0)


async def test_reported_vs_computed_report(db_path: Path) -> None:
    """The canned report shows the run's reported cost beside genai-prices' figure for the
    same modelUsage tokens (computed here independently, model by model)."""
    import warnings

    from genai_prices import Usage, calc_price

    from orchestrator.reports.canned import run_report

    result = result_line(STREAM)
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db, orchestrator="adw_test")
        for line in STREAM.read_text().splitlines():
            await recorder.feed_line(line)
        summary = await recorder.finish()
    rows = run_report("reported_vs_computed", db_path, {"min_diff_usd": "0"}).as_dicts()
    [run] = [row for row in rows if row["level"] == "run"]
    assert run["agent_id"] == summary.agent_id
    assert run["reported_usd"] == result["total_cost_usd"]
    expected = 0.0
    for model, figures in result["modelUsage"].items():
        read, write = figures["cacheReadInputTokens"], figures["cacheCreationInputTokens"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected += float(
                calc_price(
                    Usage(
                        input_tokens=figures["inputTokens"] + read + write,
                        cache_read_tokens=read,
                        cache_write_tokens=write,
                        output_tokens=figures["outputTokens"],
                    ),
                    model,
                ).total_price
            )
    assert run["computed_usd"] == pytest.approx(expected, rel=1e-9)
    models = {row["model"]: row for row in rows if row["level"] == "model"}
    assert set(models) == set(result["modelUsage"])


def test_stream_and_transcript_of_one_conversation_store_the_same_logs(
    tmp_path: Path, db_path: Path
) -> None:
    """The stream's messages written as a session transcript (the same content blocks, with
    the lines' timestamps and request ids) import to the same tool logs and responses."""
    from orchestrator.claude_code import import_transcripts

    messages = [json.loads(line) for line in STREAM.read_text().splitlines() if line[0] == "{"]
    session = messages[0]["session_id"]
    transcript = tmp_path / "projects" / "p" / f"{session}.jsonl"
    transcript.parent.mkdir(parents=True)
    with transcript.open("w") as handle:
        for second, message in enumerate(messages):
            if message["type"] in ("assistant", "user"):
                line = {**message, "timestamp": f"2026-02-01T00:00:{second:02d}.000Z"}
                if message["type"] == "assistant":
                    line["requestId"] = "req_" + message["message"]["id"]
                handle.write(json.dumps(line) + "\n")
    imported = tmp_path / "imported.db"
    import_transcripts([transcript], db_path=imported)
    CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_path), str(STREAM)], catch_exceptions=False
    )

    def stored(path: Path) -> tuple[list[tuple[Any, ...]], list[str]]:
        conn = sqlite3.connect(path)
        logs = conn.execute(
            "SELECT log_type, message, metadata FROM agent_logs "
            "WHERE log_type IN ('tool_use', 'tool_result') ORDER BY log_type, message"
        ).fetchall()
        responses = [
            row[0]
            for row in conn.execute(
                "SELECT response FROM prompts WHERE content NOT LIKE '[reconciliation]%' "
                "ORDER BY response"
            )
        ]
        conn.close()
        return logs, responses

    logs, responses = stored(db_path)
    assert stored(imported) == (logs, responses)
    assert [row[:2] for row in logs] == [
        ("tool_result", "Bash: 3 passed"),
        ("tool_use", 'Bash: {"command": "pytest -q"}'),
    ]
    # msg_1's two lines, a text block then a tool call, make one response.
    assert responses == ["All 3 tests pass.", "Running the tests.\n[tool_use Bash]"]


async def test_garbled_token_counts_count_zero(db_path: Path) -> None:
    """A negative or non-numeric count in a stream's usage is stored as 0; the run is kept."""
    lines = [json.loads(line) for line in STREAM.read_text().splitlines() if line[0] == "{"]
    lines[1]["message"]["usage"].update(output_tokens=-5, input_tokens="3")
    lines[2]["message"]["usage"].update(output_tokens=-5, input_tokens="3")
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        for message in lines:
            await recorder.feed(message)
        summary = await recorder.finish()
        assert summary.agent_id is not None
        prompts = await db.list_prompts(summary.agent_id)
    msg_1 = [p for p in prompts if p.response and p.response.startswith("Running")]
    assert [(p.tokens_input, p.tokens_output, p.tokens_cache_write) for p in msg_1] == [
        (0, 0, 12000)
    ]
    assert summary.status == "completed"


def stream_messages() -> list[dict[str, Any]]:
    return [json.loads(line) for line in STREAM.read_text().splitlines() if line[0] == "{"]


def assistant(message_id: str, **body: Any) -> dict[str, Any]:
    """A synthetic assistant message of the fixture's session."""
    return {
        "type": "assistant",
        "session_id": "9f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
        "message": {
            "id": message_id,
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "fine"}],
            "usage": {"input_tokens": 1, "output_tokens": 1},
            **body,
        },
    }


#: Lines that stopped an import or a recording (the run left `running`); each is skipped.
BAD_STREAM_LINES = [
    json.dumps(assistant("msg_b1", content=[{"type": "text", "text": "\ud800"}])),
    json.dumps(assistant("msg_b2", usage={"input_tokens": float("inf"), "output_tokens": 1})),
    json.dumps(
        assistant("msg_b3", content=[{"type": "tool_use", "id": float("nan"), "name": "Bash"}])
    ),
    json.dumps(assistant("msg_b4", model=5)),
    json.dumps({"type": "user", "message": {"content": "\udfff"}}),
]


def stream_with_bad_lines(tmp_path: Path) -> Path:
    lines = STREAM.read_text().splitlines()
    result = json.loads(lines[-1])
    # Values no column can hold in the result line: they are dropped, the line is kept.
    result.update(num_turns=2**70, duration_ms="1e400", duration_api_ms=[1])
    result_text = json.dumps(result).replace('"1e400"', "1e400")  # valid JSON, an infinite float
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*lines[:-1], *BAD_STREAM_LINES, result_text]) + "\n")
    return path


def test_bad_stream_lines_are_skipped(tmp_path: Path, db_target: Target) -> None:
    path = stream_with_bad_lines(tmp_path)
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_target), str(path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "(completed)" in result.output
    assert f"{1 + len(BAD_STREAM_LINES)} malformed" in result.output
    [(agent_id,)] = rows(db_target, "SELECT id FROM agents")
    [run] = rows(
        db_target,
        "SELECT num_turns, duration_ms, duration_api_ms, result_subtype FROM claude_code_runs",
    )
    assert run == (None, None, None, "success")
    check_run_matches_result(db_target, agent_id, result_line(STREAM))


async def test_bad_messages_fed_as_dicts_are_skipped(db_target: Target) -> None:
    """The same refusals when an ADW feeds decoded dicts (no JSON parser to stop them)."""
    messages = stream_messages()
    bad = [
        assistant("msg_b1", content=[{"type": "text", "text": "\ud800"}]),
        assistant("msg_b3", content=[{"type": "tool_use", "id": float("nan"), "name": "B"}]),
        assistant("msg_b4", model=5),
        assistant("msg_b5", model="claude-\udc00"),
        {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": 1e999}]}},
        {"type": "user", "message": {"content": "fix \ud800 this"}},
    ]
    async with DatabaseManager(db_target) as db:
        recorder = StreamRecorder(db)
        for message in [*messages[:-1], *bad, messages[-1]]:
            await recorder.feed(message)
        summary = await recorder.finish()
    assert summary.status == "completed" and summary.malformed == len(bad)
    assert summary.prompts == 2  # msg_1 and msg_2: no prompt for a refused line
    assert summary.agent_id is not None
    check_run_matches_result(db_target, summary.agent_id, result_line(STREAM))


def test_record_with_bad_lines_exits_with_the_commands_code(
    tmp_path: Path, db_target: Target
) -> None:
    script = tmp_path / "fake_claude.py"
    script.write_text(FAKE_CLAUDE)
    path = stream_with_bad_lines(tmp_path)
    result = CliRunner().invoke(
        cli,
        ["record", "--db", str(db_target), "--", sys.executable, str(script), str(path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 3
    assert result.stdout_bytes == path.read_bytes()
    [(status, error)] = rows(db_target, "SELECT status, error FROM agents")
    assert (status, error) == ("failed", "command exited with code 3")


def test_a_failing_recording_keeps_the_commands_output_and_code(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks the recording, the command runs to its end, its output is passed
    through whole, `record` exits with its code and the run ends failed, with the reason."""
    script = tmp_path / "fake_claude.py"
    script.write_text(FAKE_CLAUDE.replace("sys.exit(3)", "sys.exit(0)"))
    feed = StreamRecorder.feed

    async def failing(self: StreamRecorder, message: dict[str, Any]) -> None:
        if message.get("type") == "user":
            raise RuntimeError("disk on fire")
        await feed(self, message)

    monkeypatch.setattr(StreamRecorder, "feed", failing)
    result = CliRunner().invoke(
        cli,
        ["record", "--db", str(db_path), "--", sys.executable, str(script), str(STREAM)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert result.stdout_bytes == STREAM.read_bytes()
    conn = sqlite3.connect(db_path)
    status, error = conn.execute("SELECT status, error FROM agents").fetchone()
    conn.close()
    assert (status, error) == ("failed", "recording failed: RuntimeError: disk on fire")
    assert "error: recording failed: RuntimeError: disk on fire" in result.stderr


async def test_a_stream_that_cannot_be_read_ends_the_run_failed(db_path: Path) -> None:
    def lines() -> Any:
        yield STREAM.read_text().splitlines()[0]
        raise OSError(5, "Input/output error")

    async with DatabaseManager(db_path) as db:
        from orchestrator.claude_code import record_stream

        with pytest.raises(OSError):
            await record_stream(db, lines())
        [agent] = await db.list_agents()
    assert agent.status == "failed"
    assert agent.error == "import interrupted: OSError: [Errno 5] Input/output error"


async def test_a_result_that_cannot_be_written_ends_the_run_failed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.claude_code import stream_json

    def no_prices(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no prices today")

    monkeypatch.setattr(stream_json, "compute_cost", no_prices)
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        for message in stream_messages():
            await recorder.feed(message)
        summary = await recorder.finish()
        assert summary.agent_id is not None
        agent = await db.get_agent(summary.agent_id)
    assert agent is not None and agent.status == "failed"
    assert agent.error == "recording failed: RuntimeError: no prices today"


def totals(db_target: Target) -> tuple[Any, ...]:
    [row] = rows(
        db_target,
        "SELECT (SELECT count(*) FROM agents), count(*), sum(tokens_input), sum(tokens_output), "
        "sum(tokens_cache_read), sum(tokens_cache_write), sum(cost_usd), "
        "(SELECT count(*) FROM agent_logs WHERE log_type IN ('tool_use', 'tool_result')) "
        "FROM prompts",
    )
    return tuple(row)


def test_reimporting_a_stream_file_adds_nothing(
    tmp_path: Path, db_target: Target, new_db_target: Callable[[], Target]
) -> None:
    def run(db: Target, *paths: Path) -> str:
        result = CliRunner().invoke(
            cli,
            ["import", "stream-json", "--db", str(db), *map(str, paths)],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return result.output

    run(db_target, STREAM)
    once = totals(db_target)
    assert once[:2] == (1, 3)  # one run: msg_1, msg_2, a reconciling prompt for haiku
    assert "already imported, nothing added" in run(db_target, STREAM, STREAM)
    assert totals(db_target) == once
    [(agent_id,)] = rows(db_target, "SELECT id FROM agents")
    check_run_matches_result(db_target, agent_id, result_line(STREAM))
    # A stream cut before its result line (a killed run) is known by its first response.
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(STREAM.read_text().splitlines(keepends=True)[:-1]))
    cut_db = new_db_target()
    assert "(failed)" in run(cut_db, cut)
    cut_once = totals(cut_db)
    assert cut_once[:2] == (1, 2)
    assert "already imported, nothing added" in run(cut_db, cut)
    assert totals(cut_db) == cut_once


def transcript_of_stream(directory: Path) -> Path:
    """The stream's messages written as its session transcript (the same content blocks,
    with timestamps and request ids, as Claude Code writes them beside the stream)."""
    messages = stream_messages()
    session = messages[0]["session_id"]
    transcript = directory / "projects" / "p" / f"{session}.jsonl"
    transcript.parent.mkdir(parents=True)
    with transcript.open("w") as handle:
        for second, message in enumerate(messages):
            if message["type"] in ("assistant", "user"):
                line = {**message, "timestamp": f"2026-02-01T00:00:{second:02d}.000Z"}
                if message["type"] == "assistant":
                    line["requestId"] = "req_" + message["message"]["id"]
                handle.write(json.dumps(line) + "\n")
    return transcript


async def test_a_session_recorded_live_then_imported_from_its_transcript_counts_once(
    tmp_path: Path, db_path: Path
) -> None:
    from orchestrator.claude_code import import_transcripts

    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db, orchestrator="adw_test")
        for line in STREAM.read_text().splitlines():
            await recorder.feed_line(line)
        summary = await recorder.finish()
    recorded = totals(db_path)
    transcript = transcript_of_stream(tmp_path)
    imported = import_transcripts([transcript], db_path=db_path)
    # Its two responses are found by message.id (the stream has no request ids), its two
    # tool logs in the run recorded live: the transcript goes into that run, adding nothing.
    assert imported.prompts_added == 0 and imported.tool_events == 0
    assert imported.runs_created == 0 and imported.errors == []
    assert totals(db_path) == recorded
    assert summary.agent_id is not None
    check_run_matches_result(db_path, summary.agent_id, result_line(STREAM))
    # Imported again (or a copy of it elsewhere): found by message.id and requestId now.
    again = import_transcripts([tmp_path / "projects"], db_path=db_path)
    assert again.files_unchanged == 1 and totals(db_path) == recorded


def test_a_transcript_imported_before_its_stream_counts_once(tmp_path: Path, db_path: Path) -> None:
    from orchestrator.claude_code import import_transcripts

    import_transcripts([transcript_of_stream(tmp_path)], db_path=db_path)
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_path), str(STREAM)], catch_exceptions=False
    )
    assert "2 responses stored already" in result.output
    conn = sqlite3.connect(db_path)
    per_message = conn.execute(
        "SELECT message_id, count(*) FROM prompt_responses GROUP BY message_id"
    ).fetchall()
    models = conn.execute(
        "SELECT model, count(*) FROM prompts GROUP BY model ORDER BY model"
    ).fetchall()
    tools = conn.execute(
        "SELECT log_type, count(*) FROM agent_logs WHERE log_type LIKE 'tool%' GROUP BY 1"
    ).fetchall()
    conn.close()
    assert sorted(per_message) == [("msg_1", 1), ("msg_2", 1)]
    assert sorted(tools) == [("tool_result", 1), ("tool_use", 1)]  # the transcript's
    # The sonnet responses once (the transcript's), haiku's background calls reconciled.
    assert models == [("claude-haiku-4-5-20251001", 1), ("claude-sonnet-4-5-20250929", 2)]


SLOW_CLAUDE = """
import sys, time
sys.stdout.buffer.write(open(sys.argv[1], "rb").readline())
sys.stdout.buffer.flush()
time.sleep(60)
"""


async def test_a_cancelled_recording_stops_the_command_and_ends_the_run(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from orchestrator.claude_code import record_command, stream_json

    monkeypatch.setattr(stream_json, "STOP_GRACE_S", 0.5)
    script = tmp_path / "slow_claude.py"
    script.write_text(SLOW_CLAUDE)
    output = tmp_path / "out"
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        with output.open("wb") as out:
            task = asyncio.ensure_future(
                record_command(
                    db, [sys.executable, str(script), str(STREAM)], output=out, recorder=recorder
                )
            )
            while recorder.agent_id is None:  # the first line is recorded
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert recorder.agent_id is not None
        agent = await db.get_agent(recorder.agent_id)
    assert agent is not None and agent.status == "failed"
    assert agent.error == "recording interrupted: CancelledError"
    assert recorder.summary.exit_code == 128 + 15  # SIGTERM, once the grace period ran out


def test_import_stream_json_reports_a_failing_file_and_imports_the_others(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.claude_code import stream_json

    record_stream = stream_json.record_stream
    broken = tmp_path / "broken.jsonl"
    broken.write_text(STREAM.read_text())

    async def failing(db: Any, handle: Any, **options: Any) -> Any:
        if options["name"] == broken.name:
            raise OSError(5, "Input/output error")
        return await record_stream(db, handle, **options)

    monkeypatch.setattr(stream_json, "record_stream", failing)
    result = CliRunner().invoke(
        cli,
        ["import", "stream-json", "--db", str(db_path), str(broken), str(STREAM)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert result.stderr == f"Error: {broken}: OSError: [Errno 5] Input/output error\n"
    assert f"{STREAM}: run " in result.output and "(completed)" in result.output


async def test_a_transcript_imported_while_its_session_is_recorded_live(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import (a cron job, say) during a live recording: the transcript goes into the
    running run without ending it, and the stream then adds what the transcript had not.
    (The recorder looks for what an import logged once a second: here, as if a second
    passed between lines.)"""
    from orchestrator.claude_code import import_transcripts, stream_json

    monkeypatch.setattr(stream_json, "LOGGED_CHECK_S", 0.0)

    transcript = transcript_of_stream(tmp_path)
    lines = STREAM.read_text().splitlines()
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db, orchestrator="adw_test")
        for line in lines[:2]:
            await recorder.feed_line(line)
        imported = import_transcripts([transcript], db_path=db_path)
        assert recorder.agent_id is not None
        running = await db.get_agent(recorder.agent_id)
        for line in lines[2:]:
            await recorder.feed_line(line)
        summary = await recorder.finish()
        done = await db.get_agent(recorder.agent_id)
    assert imported.runs_created == 0 and imported.prompts_added == 2
    assert running is not None and running.status == "running" and running.completed_at is None
    assert done is not None and done.status == "completed" and done.completed_at is not None
    assert summary.duplicates_skipped == 2 and summary.prompts == 0
    assert totals(db_path)[:2] == (1, 3)
    # The tool call and its result, logged by the import from the transcript, are not
    # logged again as the stream brings them.
    conn = sqlite3.connect(db_path)
    logs = conn.execute(
        "SELECT log_type, message FROM agent_logs WHERE log_type LIKE 'tool%' ORDER BY rowid"
    ).fetchall()
    conn.close()
    assert logs == [
        ("tool_use", 'Bash: {"command": "pytest -q"}'),
        ("tool_result", "Bash: 3 passed"),
    ]
    assert summary.tool_events == 0


TRANSCRIPT = (
    Path(__file__).parent
    / "data"
    / "claude-code-transcripts"
    / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
)
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
# Anthropic's published USD per million tokens (input, output, cache read, 5-minute write,
# 1-hour write), Sonnet 4.5 up to and over 200k input tokens in one request, and Haiku 4.5.
RATES = {
    (SONNET, False): (3, 15, 0.30, 3.75, 6),
    (SONNET, True): (6, 22.5, 0.60, 7.5, 12),
    (HAIKU, False): (1, 5, 0.10, 1.25, 2),
}


def request_cost(model: str, usage: dict[str, Any]) -> float:
    """What one request costs at the published rates (the long-context tier is the request's)."""
    read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
    write_1h = usage.get("cache_creation", {}).get("ephemeral_1h_input_tokens", 0)
    over = usage["input_tokens"] + read + write > 200_000
    rate_in, rate_out, rate_read, rate_write, rate_1h = RATES[model, over]
    return (
        usage["input_tokens"] * rate_in
        + usage["output_tokens"] * rate_out
        + read * rate_read
        + (write - write_1h) * rate_write
        + write_1h * rate_1h
    ) / 1e6


def long_run_stream() -> tuple[list[str], dict[str, Any]]:
    """A stream-json run made of a real Claude Code session's responses (139 requests, each
    under 200k input tokens, over 16M in all), relabelled Sonnet 4.5, plus Haiku tokens
    that only modelUsage shows; each model's costUSD as Claude Code computes it, request by
    request."""
    usages: dict[str, dict[str, Any]] = {}
    for line in TRANSCRIPT.read_text().splitlines():
        message = json.loads(line)
        if message.get("type") == "assistant":
            usages[message["message"]["id"]] = message["message"]["usage"]
    session = "5e551077-0000-4000-8000-000000000001"
    lines = []
    sums = dict.fromkeys(["inputTokens", "outputTokens", "cacheReadInputTokens"], 0)
    sums["cacheCreationInputTokens"] = 0
    for message_id, usage in usages.items():
        body = {"model": SONNET, "id": message_id, "content": [], "usage": usage}
        lines.append(json.dumps({"type": "assistant", "message": body, "session_id": session}))
        sums["inputTokens"] += usage["input_tokens"]
        sums["outputTokens"] += usage["output_tokens"]
        sums["cacheReadInputTokens"] += usage["cache_read_input_tokens"]
        sums["cacheCreationInputTokens"] += usage["cache_creation_input_tokens"]
    haiku = {
        "input_tokens": 30_000,
        "output_tokens": 900,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    model_usage = {
        SONNET: {**sums, "costUSD": sum(request_cost(SONNET, u) for u in usages.values())},
        HAIKU: {
            "inputTokens": 30_000,
            "outputTokens": 900,
            "cacheReadInputTokens": 0,
            "cacheCreationInputTokens": 0,
            "costUSD": request_cost(HAIKU, haiku),
        },
    }
    total = sum(figures["costUSD"] for figures in model_usage.values())
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 600_000,
        "session_id": session,
        "total_cost_usd": total,
        "modelUsage": model_usage,
    }
    lines.append(json.dumps(result))
    return lines, result


async def test_long_context_tiers_apply_per_request_not_to_a_runs_sums(db_path: Path) -> None:
    """Summed over 139 requests, the run's input passes 200k tokens though no request's
    does: the computed cost agrees with Claude Code's (request by request), not with the
    long-context rate; tokens known only from modelUsage are priced at the base tier."""
    from orchestrator.reports.canned import run_report

    lines, result = long_run_stream()
    assert result["modelUsage"][SONNET]["cacheReadInputTokens"] > 200_000
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        for line in lines:
            await recorder.feed_line(line)
        summary = await recorder.finish()
    assert summary.status == "completed"
    assert set(summary.approximate_usd) == {HAIKU}
    assert "approximate" in str(summary)
    rows = run_report("reported_vs_computed", db_path, {"min_diff_usd": "0"}).as_dicts()
    by_model = {row["model"]: row for row in rows if row["level"] == "model"}
    for model in (SONNET, HAIKU):
        reported = result["modelUsage"][model]["costUSD"]
        assert by_model[model]["reported_usd"] == pytest.approx(reported)
        assert by_model[model]["computed_usd"] == pytest.approx(reported, rel=0.01)
        assert abs(by_model[model]["diff_pct"]) <= 1
    [run] = [row for row in rows if row["level"] == "run"]
    assert run["computed_usd"] == pytest.approx(result["total_cost_usd"], rel=0.01)
    assert run["diff_pct"] == round(
        100 * (run["computed_usd"] - run["reported_usd"]) / run["reported_usd"], 1
    )


def test_an_imported_stream_is_dated_by_its_file_not_import_time(
    tmp_path: Path, db_path: Path
) -> None:
    """Stream lines carry no time: the run starts at the file's modification time minus
    the result's duration_ms (5120 ms here), and ends at the modification time."""
    from datetime import datetime, timezone

    path = tmp_path / "run.jsonl"
    path.write_bytes(STREAM.read_bytes())
    ended = datetime(2025, 10, 3, 12, 0, 10, tzinfo=timezone.utc).timestamp()
    os.utime(path, (ended, ended))
    result = CliRunner().invoke(
        cli, ["import", "stream-json", "--db", str(db_path), str(path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "dated by file time minus duration_ms" in result.output
    conn = sqlite3.connect(db_path)
    run = conn.execute("SELECT created_at, started_at, completed_at FROM agents").fetchone()
    assert run == (
        "2025-10-03T12:00:04.880Z",
        "2025-10-03T12:00:04.880Z",
        "2025-10-03T12:00:10.000Z",
    )
    days = {row[0] for row in conn.execute("SELECT substr(created_at, 1, 10) FROM prompts")}
    assert days == {"2025-10-03"}
    conn.close()


def test_started_at_dates_an_imported_stream(tmp_path: Path, db_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "import",
            "stream-json",
            "--db",
            str(db_path),
            "--started-at",
            "2025-09-30T23:59:00+02:00",
            str(STREAM),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "dated by the given start time" in result.output
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT started_at, completed_at FROM agents").fetchone() == (
        "2025-09-30T21:59:00.000Z",
        "2025-09-30T21:59:05.120Z",
    )
    assert {row[0] for row in conn.execute("SELECT created_at FROM prompts")} == {
        "2025-09-30T21:59:00.000Z"
    }
    conn.close()


async def test_a_live_recording_keeps_wall_clock_time(db_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from orchestrator.core.ids import parse_timestamp

    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        for line in STREAM.read_text().splitlines():
            await recorder.feed_line(line)
        summary = await recorder.finish()
        prompts = await db.list_prompts(str(summary.agent_id))
    assert summary.dated_by is None
    assert all(parse_timestamp(str(p.created_at)) >= before for p in prompts)


async def test_tokens_known_only_from_model_usage_are_priced_at_the_base_tier(
    db_path: Path,
) -> None:
    """Sonnet tokens a run's modelUsage counts beyond its responses (subagents, background
    calls) are a sum of requests: their reconciling prompt is priced at the base tier,
    as if each request stayed under 200k tokens, never at the long-context rate."""
    extra = {"input_tokens": 100, "output_tokens": 5_000}
    extra |= {"cache_read_input_tokens": 400_000, "cache_creation_input_tokens": 20_000}
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "session_id": "9f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
        "total_cost_usd": 1.0,
        "modelUsage": {
            SONNET: {
                "inputTokens": 1 + extra["input_tokens"],
                "outputTokens": 1 + extra["output_tokens"],
                "cacheReadInputTokens": extra["cache_read_input_tokens"],
                "cacheCreationInputTokens": extra["cache_creation_input_tokens"],
                "costUSD": 1.0,
            }
        },
    }
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db)
        await recorder.feed_line(json.dumps(assistant("msg_1")))
        await recorder.feed_line(json.dumps(result))
        await recorder.finish()
    conn = sqlite3.connect(db_path)
    [(cost,)] = conn.execute(
        "SELECT cost_usd FROM prompts WHERE content LIKE '[reconciliation]%'"
    ).fetchall()
    # Independently: the same tokens as four requests of a quarter each, under 200k each.
    quarter = {key: value // 4 for key, value in extra.items()}
    assert sum(quarter.values()) - quarter["output_tokens"] < 200_000
    assert cost == pytest.approx(4 * request_cost(SONNET, quarter), rel=1e-4)
    assert cost < request_cost(SONNET, extra)  # the long-context rate would be higher


async def test_a_streams_prompt_is_what_the_person_wrote(db_path: Path) -> None:
    """As in transcripts: text Claude Code writes in the user's name (a skill's body,
    ``isMeta``) is not the prompt of what follows; the recording's own prompt is."""

    def user(text: str, **flags: bool) -> dict[str, Any]:
        return {"type": "user", "message": {"role": "user", "content": text}, **flags}

    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db, prompt="/review 123")
        await recorder.feed(user("Review the pull request: read its diff ...", isMeta=True))
        await recorder.feed(assistant("msg_p1"))
        await recorder.feed(user("and the tests too"))
        await recorder.feed(assistant("msg_p2"))
        summary = await recorder.finish()
        assert summary.agent_id is not None
        prompts = await db.list_prompts(summary.agent_id)
    contents = [p.content for p in prompts if not p.content.startswith("[reconciliation]")]
    assert sorted(contents) == ["/review 123", "and the tests too"]


async def test_a_transcript_imported_during_a_recording_keeps_its_environment(
    tmp_path: Path, db_path: Path
) -> None:
    """The result line, written when the recording ends, keeps what a transcript import
    (a cron job during the run) stored on the run: its working directory."""
    from orchestrator.claude_code import import_transcripts

    transcript = transcript_of_stream(tmp_path)
    environment = {
        "type": "attachment",
        "attachment": {
            "type": "environment",
            "snapshot": {"workingDirectory": "/src/app", "isWorktree": False, "isGitRepo": False},
        },
        "timestamp": "2026-02-01T00:00:00.000Z",
    }
    with transcript.open("a") as handle:
        handle.write(json.dumps(environment) + "\n")
    lines = STREAM.read_text().splitlines()
    async with DatabaseManager(db_path) as db:
        recorder = StreamRecorder(db, orchestrator="adw_test")
        for line in lines[:-1]:
            await recorder.feed_line(line)
        await db.flush()
        import_transcripts([transcript], db_path=db_path)
        await recorder.feed_line(lines[-1])  # the result line
        summary = await recorder.finish()
    assert summary.agent_id is not None
    check_run_matches_result(db_path, summary.agent_id, result_line(STREAM))
    conn = sqlite3.connect(db_path)
    runs = conn.execute("SELECT agent_id, cwd FROM claude_code_runs").fetchall()
    conn.close()
    assert runs == [(summary.agent_id, "/src/app")]
