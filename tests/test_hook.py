"""`orchestrator hook` / `hooks install`: Claude Code's hook events recorded live, with the
real Claude Code CLI (tests/fake_anthropic.py), a database that goes away and comes back,
and a session later imported from its transcript and its stream counted once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from backends import is_postgres, postgres_admin, rows
from click.testing import CliRunner
from fake_anthropic import TOKEN_COLUMNS, FakeAnthropic, Script, run_claude, token_totals

from orchestrator.claude_code.hook import spool_path
from orchestrator.claude_code.hook_settings import MARK
from orchestrator.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def hook(
    target: str | Path, event: Any, spool: Path, *, raw: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """One hook call as Claude Code makes it: a process, the event on stdin."""
    env = {**os.environ, "ORCHESTRATOR_HOOK_SPOOL": str(spool), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.claude_code.hook", "--db", str(target)],
        input=raw if raw is not None else json.dumps(event).encode(),
        capture_output=True,
        env=env,
        timeout=60,
    )


def event(name: str, session: str = "sess-1", **fields: Any) -> dict[str, Any]:
    return {
        "session_id": session,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-app/{session}.jsonl",
        "cwd": "/home/dev/app",
        "hook_event_name": name,
        **fields,
    }


def pre(tool_id: str) -> dict[str, Any]:
    return event("PreToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id=tool_id)


def init_db(target: str | Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output


def stored(target: str | Path) -> list[tuple[Any, ...]]:
    tool_id = (
        "(l.metadata::jsonb ->> 'tool_use_id')"
        if is_postgres(target)
        else "json_extract(l.metadata, '$.tool_use_id')"
    )
    return rows(
        target,
        f"SELECT l.log_type, {tool_id}, a.session_id, o.name "
        "FROM agent_logs l JOIN agents a ON a.id = l.agent_id "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id ORDER BY l.created_at, l.id",
    )


def test_hook_events_become_logs_of_the_sessions_run(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    spool = tmp_path / "spool"
    calls = [
        event("SessionStart", source="startup"),
        event("UserPromptSubmit", prompt="fix it, api_key=sk-ant-api03-" + "x" * 40),
        pre("toolu_1"),
        event(
            "PostToolUse",
            tool_name="Bash",
            tool_input={"command": "ls"},
            tool_use_id="toolu_1",
            tool_response={"stdout": "a\n" * 2000, "stderr": ""},
            duration_ms=12,
        ),
        event("SubagentStart", agent_id="abc", agent_type="Explore"),
        event("SubagentStop", agent_id="abc", agent_type="Explore"),
        event("Stop"),
    ]
    for call in calls:
        done = hook(db, call, spool)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    runs = rows(
        db,
        "SELECT a.name, a.session_id, a.status, a.parent_agent_id IS NULL, o.name, "
        "a.completed_at IS NOT NULL FROM agents a "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id ORDER BY a.created_at",
    )
    assert runs == [
        ("sess-1", "sess-1", "completed", 1, "claude-code:-home-dev-app", 1),
        ("agent-abc", "sess-1", "completed", 0, "claude-code:-home-dev-app", 1),
    ]
    logs = rows(db, "SELECT log_type, message, duration_ms FROM agent_logs ORDER BY id")
    assert [log[0] for log in logs] == [c["hook_event_name"] for c in calls]
    prompt = logs[1][1]
    assert prompt.startswith("fix it, api_key=") and "sk-ant" not in prompt
    assert len(logs[3][1]) == 500 and logs[3][2] == 12  # clipped as the importers' tool logs
    report = CliRunner().invoke(cli, ["report", "hook_events", "--db", str(db), "--format", "json"])
    assert report.exit_code == 0, report.output
    [session] = json.loads(report.output)
    assert session["session_id"] == "sess-1" and session["events"] == len(calls)
    assert (session["prompts"], session["tool_calls"], session["tool_failures"]) == (1, 1, 0)
    assert session["tool_ms"] == 12 and session["slowest_tool_ms"] == 12


def spooled(target: str | Path, spool: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spool file the hook keeps for ``target``'s events."""
    monkeypatch.setenv("ORCHESTRATOR_HOOK_SPOOL", str(spool))
    return Path(spool_path(str(target)))


def test_tail_shows_hook_events_as_they_arrive(tmp_path: Path) -> None:
    from orchestrator.reports.tail import EventSource

    db = tmp_path / "o.db"
    init_db(db)
    with EventSource.open(db) as source:
        source.poll()
        spool = tmp_path / "spool"
        hook(db, pre("toolu_1"), spool)
        failure = event(
            "PostToolUseFailure", tool_name="Bash", tool_use_id="toolu_1", error="exit 2"
        )
        hook(db, failure, spool)
        logs = [e for e in source.poll() if e.kind == "log"]
    assert [(e.level, e.text) for e in logs] == [
        ("INFO", 'PreToolUse: Bash: {"command": "ls"}'),
        ("WARNING", "PostToolUseFailure: Bash: exit 2"),
    ]
    assert {e.workflow for e in logs} == {"claude-code:-home-dev-app"}


def test_bad_input_never_gets_in_claude_codes_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "o.db"
    for raw in (b"", b"not json", b"[1, 2]", b'{"hook_event_name": "Stop"}', b"\xff\xfe"):
        done = hook(db, None, tmp_path / "spool", raw=raw)
        assert (done.returncode, done.stdout) == (0, b"")
    # A folder where the database should be: no database, and still exit 0, nothing
    # printed; the event is kept for when it can be written.
    folder = tmp_path / "folder.db"
    folder.mkdir()
    done = hook(folder, pre("toolu_9"), tmp_path / "spool")
    assert (done.returncode, done.stdout) == (0, b"")
    kept = spooled(folder, tmp_path / "spool", monkeypatch).read_text().splitlines()
    assert [json.loads(line)["event"]["tool_use_id"] for line in kept] == ["toolu_9"]


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def test_a_locked_database_spools_then_nothing_is_lost_or_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "o.db"
    spool = tmp_path / "spool"
    init_db(db)
    assert hook(db, event("SessionStart"), spool).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        for tool_id in ("toolu_1", "toolu_2"):
            started = time.monotonic()
            done = hook(db, pre(tool_id), spool)
            assert (done.returncode, done.stdout) == (0, b"")
            assert time.monotonic() - started < 10  # waited ~0.5 s for the lock, not 60 s
    finally:
        holder.communicate("")
    kept = spooled(db, spool, monkeypatch)
    lines = kept.read_text().splitlines()
    assert [json.loads(line)["event"]["tool_use_id"] for line in lines] == ["toolu_1", "toolu_2"]
    assert [log[:2] for log in stored(db)] == [("SessionStart", None)]
    # The next call writes the spooled events first, in order, then its own.
    assert hook(db, pre("toolu_3"), spool).returncode == 0
    assert [log[:2] for log in stored(db)] == [
        ("SessionStart", None),
        ("PreToolUse", "toolu_1"),
        ("PreToolUse", "toolu_2"),
        ("PreToolUse", "toolu_3"),
    ]
    assert kept.read_text() == ""
    # A process killed after its commit, before it emptied the spool: written again,
    # stored once (each event's row id is chosen when it is spooled).
    kept.write_text("\n".join(lines) + "\n")
    assert hook(db, event("Stop"), spool).returncode == 0
    assert [log[1] for log in stored(db)] == [None, "toolu_1", "toolu_2", "toolu_3", None]


@pytest.mark.postgres
def test_a_postgres_database_away_then_back(tmp_path: Path) -> None:
    server = os.environ.get("ORCHESTRATOR_TEST_POSTGRES")
    if not server:
        if os.environ.get("ORCHESTRATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail("no PostgreSQL server (ORCHESTRATOR_REQUIRE_POSTGRES=1)")
        pytest.skip("no PostgreSQL server: set ORCHESTRATOR_TEST_POSTGRES=postgresql://...")
    name = f"orchestrator_hook_{uuid.uuid4().hex[:10]}"
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    spool = tmp_path / "spool"
    postgres_admin(server, f"CREATE DATABASE {name}")
    try:
        assert hook(url, event("SessionStart"), spool).returncode == 0  # creates the schema
        # The server refuses connections to the database: the events wait in the spool.
        postgres_admin(server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        for tool_id in ("toolu_1", "toolu_2"):
            done = hook(url, pre(tool_id), spool)
            assert (done.returncode, done.stdout) == (0, b"")
        postgres_admin(server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert [log[:2] for log in stored(url)] == [("SessionStart", None)]
        assert hook(url, event("Stop"), spool).returncode == 0
        assert [log[:2] for log in stored(url)] == [
            ("SessionStart", None),
            ("PreToolUse", "toolu_1"),
            ("PreToolUse", "toolu_2"),
            ("Stop", None),
        ]
        assert rows(url, "SELECT status, name FROM agents") == [("completed", "sess-1")]
    finally:
        postgres_admin(server, f"DROP DATABASE {name} WITH (FORCE)", check=False)


# -- hooks install / uninstall -------------------------------------------------------------

FOREIGN: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"]},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh"}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home of the test's own: `hooks install --user` must never touch the real one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_hooks_install_keeps_foreign_hooks_is_idempotent_and_uninstalls_only_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(FOREIGN, indent=4))
    before = settings.read_text()
    dry = invoke("hooks", "install", "--project", "--db", "o.db", "--dry-run")
    assert dry.exit_code == 0 and settings.read_text() == before  # nothing written
    assert dry.output.startswith("---") and "\n+" in dry.output and MARK in dry.output
    assert invoke("hooks", "install", "--project", "--db", "o.db").exit_code == 0
    installed = json.loads(settings.read_text())
    assert installed["model"] == "opus" and installed["permissions"] == FOREIGN["permissions"]
    pre_groups = installed["hooks"]["PreToolUse"]
    assert pre_groups[0] == FOREIGN["hooks"]["PreToolUse"][0]
    ours = pre_groups[1]["hooks"][0]["command"]
    assert MARK in ours and str((tmp_path / "o.db").resolve()) in ours
    assert installed["hooks"]["Stop"][0] == FOREIGN["hooks"]["Stop"][0]
    assert "SessionEnd" in installed["hooks"] and "UserPromptSubmit" in installed["hooks"]
    text = settings.read_text()
    again = invoke("hooks", "install", "--project", "--db", "o.db")
    assert "unchanged" in again.output and settings.read_text() == text  # twice = once
    assert invoke("hooks", "uninstall", "--project").exit_code == 0
    assert json.loads(settings.read_text()) == FOREIGN
    assert "unchanged" in invoke("hooks", "uninstall", "--project").output
    # --user: the settings of every project, in the home folder.
    assert invoke("hooks", "install", "--user", "--db", "o.db").exit_code == 0
    user = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())
    assert MARK in user["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert json.loads(settings.read_text()) == FOREIGN


def test_hooks_install_refuses_a_settings_file_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    result = CliRunner().invoke(cli, ["hooks", "install", "--db", "o.db"])  # --project
    assert result.exit_code == 1 and "settings.json" in result.output
    assert "Traceback" not in result.output and settings.read_text() == "{not json"


# -- the real Claude Code CLI, hooks installed -------------------------------------------


def test_a_real_session_seen_by_hooks_then_imported_is_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "o.db"
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert invoke("hooks", "install", "--project", "--db", str(db)).exit_code == 0
    with FakeAnthropic() as api:
        run = run_claude(tmp_path, "say hi", api=api, extra_env={"PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.session_id is not None and run.transcript is not None
    tool_id = api.main[0].content[1]["id"]
    workflow = f"claude-code:{run.transcript.parent.name}"
    logs = stored(db)
    assert [log[0] for log in logs] == [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "SessionEnd",
    ]
    assert {log[2:] for log in logs} == {(run.session_id, workflow)}
    assert [log[1] for log in logs if log[0].endswith("ToolUse")] == [tool_id, tool_id]
    assert rows(db, "SELECT message FROM agent_logs WHERE log_type = 'UserPromptSubmit'") == [
        ("say hi",)
    ]

    def runs() -> list[tuple[Any, ...]]:
        return rows(
            db,
            "SELECT a.session_id, o.name, a.status, "
            + ", ".join(f"a.total_{c}" for c in TOKEN_COLUMNS[:4])
            + " FROM agents a JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id",
        )

    assert runs() == [(run.session_id, workflow, "completed", 0, 0, 0, 0)]  # hooks: no tokens
    expected = token_totals(api.main)
    totals = tuple(expected[c] for c in TOKEN_COLUMNS[:4])
    for command in (
        ["import", "claude-code", "--db", str(db), str(run.transcript)],
        ["import", "stream-json", "--db", str(db), str(run.stream)],
    ):
        result = invoke(*command)
        assert result.exit_code == 0, result.output
        # One run, its tokens once (from the transcript), each tool call once.
        assert runs() == [(run.session_id, workflow, "completed", *totals)]
        calls = rows(
            db,
            "SELECT log_type FROM agent_logs WHERE json_extract(metadata, '$.tool_use_id') = ?",
            (tool_id,),
        )
        assert sorted(calls) == [("PostToolUse",), ("PreToolUse",)]
        assert rows(db, "SELECT count(*) FROM agent_logs WHERE log_type = 'UserPromptSubmit'") == [
            (1,)
        ]
    assert rows(db, "SELECT count(*) FROM prompts WHERE content = 'say hi'") == [(2,)]


def test_a_real_session_with_a_subagent_seen_by_hooks_then_imported_is_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "o.db"
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert invoke("hooks", "install", "--project", "--db", str(db)).exit_code == 0
    script = Script(subagent="Run `echo from-subagent` and say what it printed.")
    with FakeAnthropic(script) as api:
        run = run_claude(tmp_path, "delegate it", api=api, extra_env={"PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.session_id is not None and run.transcript is not None
    # What the fake said: the main conversation's Agent call, the subagent's Bash call.
    agent_call = api.main[0].content[1]
    sub_call = api.subagent[0].content[1]
    assert (agent_call["name"], sub_call["name"]) == ("Agent", "Bash")
    assert [s.content[-1]["type"] for s in api.subagent] == ["tool_use", "text"]
    # The subagent's id, from the stream Claude Code printed and from its transcript's name.
    [started] = [m for m in run.messages if m.get("subtype") == "task_started"]
    assert started["tool_use_id"] == agent_call["id"]
    agent_id = started["task_id"]
    [sub_transcript] = (run.transcript.parent / run.session_id / "subagents").glob("*.jsonl")
    assert sub_transcript.name == f"agent-{agent_id}.jsonl"

    workflow = f"claude-code:{run.transcript.parent.name}"

    def runs() -> list[tuple[Any, ...]]:
        return rows(
            db,
            "SELECT a.name, a.session_id, o.name, a.status, p.name, "
            + ", ".join(f"a.total_{c}" for c in TOKEN_COLUMNS[:4])
            + " FROM agents a JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id "
            "LEFT JOIN agents p ON p.id = a.parent_agent_id ORDER BY a.parent_agent_id IS NOT NULL",
        )

    def logs_of(name: str) -> list[tuple[Any, ...]]:
        return rows(
            db,
            "SELECT l.log_type, json_extract(l.metadata, '$.tool_use_id') FROM agent_logs l "
            "JOIN agents a ON a.id = l.agent_id WHERE a.name = ? ORDER BY l.created_at, l.id",
            (name,),
        )

    subagent = f"agent-{agent_id}"
    session = run.session_id
    hooked: list[tuple[Any, ...]] = [
        (session, session, workflow, "completed", None, 0, 0, 0, 0),
        (subagent, session, workflow, "completed", session, 0, 0, 0, 0),
    ]
    assert runs() == hooked  # hooks: the subagent's run under the session's, no tokens
    assert [log[0] for log in logs_of(subagent)] == [
        "SubagentStart",
        "PreToolUse",
        "PostToolUse",
        "SubagentStop",
    ]
    assert [log[1] for log in logs_of(subagent) if log[1]] == [sub_call["id"]] * 2
    assert [log for log in logs_of(session) if log[1]] == [
        ("PreToolUse", agent_call["id"]),
        ("PostToolUse", agent_call["id"]),
    ]
    before = {name: logs_of(name) for name in (session, subagent)}

    main, sub = token_totals(api.main), token_totals(api.subagent)
    imported = [
        (*hooked[0][:5], *(main[c] for c in TOKEN_COLUMNS[:4])),
        (*hooked[1][:5], *(sub[c] for c in TOKEN_COLUMNS[:4])),
    ]
    # The session's folder (its transcript and the subagent's), then both files again.
    for paths in ([run.transcript.parent], [run.transcript, sub_transcript]):
        result = invoke("import", "claude-code", "--db", str(db), *map(str, paths))
        assert result.exit_code == 0, result.output
        # One run each, the tokens of each conversation in its own run, no tool call twice.
        assert runs() == imported
        assert {name: logs_of(name) for name in (session, subagent)} == before
        for call in (agent_call, sub_call):
            assert rows(
                db,
                "SELECT count(*) FROM agent_logs WHERE json_extract(metadata, '$.tool_use_id') = ?",
                (call["id"],),
            ) == [(2,)]
    prompts = rows(
        db,
        "SELECT a.name, count(*) FROM prompts p JOIN agents a ON a.id = p.agent_id "
        "GROUP BY a.name ORDER BY a.name",
    )
    assert prompts == sorted([(session, len(api.main)), (subagent, len(api.subagent))])
