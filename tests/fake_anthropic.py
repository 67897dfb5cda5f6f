"""A small fake Anthropic Messages API, and the real Claude Code CLI run against it.

The model API is the one far end the tests cannot run; everything else is real: the
Claude Code CLI (``npm install --prefix .cache/claude-code @anthropic-ai/claude-code@PINNED``,
as ``.ci/run`` does), its tools, its hooks, the transcript it writes. The fake answers
``POST /v1/messages`` (streamed SSE, or one JSON body when ``stream`` is false) from a
script: while the conversation holds no tool result, a ``tool_use`` turn (by default
Bash ``echo hi``) so that a real tool runs and the tool hooks fire, then a final text
turn. With :attr:`Script.subagent`, the main conversation's tool turn calls the ``Agent``
tool instead (in the foreground), and the subagent's own conversation (recognised by the
prompt the fake gave it, its first user message) makes one tool call (``Bash``) and answers,
never starting another. Requests without tools (Claude Code's own background calls:
titles, topics) get a short text. Every request is recorded (:attr:`FakeAnthropic.requests`)
and every message sent (:attr:`FakeAnthropic.sent`, with the usage it reported) so tests
compute expected tokens from what the fake said, independently of the importers.

    with FakeAnthropic() as api:
        run = run_claude(tmp_path, "say hi", api=api)
        run.transcript, run.stream, api.sent
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The pinned Claude Code CLI (.ci/run installs it).
CLAUDE_VERSION = "2.1.337"
CLAUDE = ROOT / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
#: A model genai-prices knows, so costs compute.
MODEL = "claude-sonnet-4-5-20250929"


def claude_binary() -> Path:
    """The pinned CLI; skips the test when it is missing, fails it in CI
    (``ORCHESTRATOR_REQUIRE_CLAUDE=1``)."""
    if CLAUDE.exists():
        return CLAUDE
    message = (
        f"Claude Code CLI not installed at {CLAUDE} (npm install --prefix .cache/claude-code "
        f"@anthropic-ai/claude-code@{CLAUDE_VERSION})"
    )
    if os.environ.get("ORCHESTRATOR_REQUIRE_CLAUDE") == "1":
        pytest.fail(message)
    pytest.skip(message)


def usage_for(turn: int) -> dict[str, Any]:
    """The usage the fake reports for the main conversation's ``turn`` (0, 1, ...): every
    kind of token, distinct per turn, 1-hour cache writes among the cache writes."""
    return {
        "input_tokens": 11 + turn,
        "output_tokens": 23 + 7 * turn,
        "cache_read_input_tokens": 1000 * turn + 300,
        "cache_creation_input_tokens": 400 + 10 * turn,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 300 + 10 * turn,
            "ephemeral_1h_input_tokens": 100,
        },
        "service_tier": "standard",
    }


BACKGROUND_USAGE = {
    "input_tokens": 5,
    "output_tokens": 3,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}


def subagent_usage_for(turn: int) -> dict[str, Any]:
    """The usage the fake reports for the subagent conversation's ``turn``: distinct from
    every main turn's."""
    return usage_for(100 + turn)


@dataclass
class Sent:
    """A message the fake sent: its id, model, usage (final output count) and blocks."""

    id: str
    model: str
    usage: dict[str, Any]
    content: list[dict[str, Any]]
    main: bool  # a turn of the main scripted conversation (not a background call)
    subagent: bool = False  # a turn of the subagent's scripted conversation


def token_totals(sent: list[Sent]) -> dict[str, int]:
    """The prompt token columns summed over ``sent``, from the usage the fake reported."""
    totals = dict.fromkeys(TOKEN_COLUMNS, 0)
    for message in sent:
        usage = message.usage
        totals["tokens_input"] += usage["input_tokens"]
        totals["tokens_output"] += usage["output_tokens"]
        totals["tokens_cache_read"] += usage["cache_read_input_tokens"]
        totals["tokens_cache_write"] += usage["cache_creation_input_tokens"]
        totals["tokens_cache_write_1h"] += usage.get("cache_creation", {}).get(
            "ephemeral_1h_input_tokens", 0
        )
    return totals


TOKEN_COLUMNS = (
    "tokens_input",
    "tokens_output",
    "tokens_cache_read",
    "tokens_cache_write",
    "tokens_cache_write_1h",
)


@dataclass
class Script:
    """What the fake answers: ``tool`` and ``tool_input`` for the tool_use turn (None: no
    tool turn), then ``final_text``. With ``subagent`` (the prompt the subagent is given),
    the tool turn is an ``Agent`` call (``subagent_type`` general-purpose, in the
    foreground) instead, and the subagent's conversation runs ``subagent_tool_input`` with
    Bash, then answers ``subagent_text``."""

    tool: str | None = "Bash"
    tool_input: dict[str, Any] = field(
        default_factory=lambda: {"command": "echo hi", "description": "Say hi"}
    )
    final_text: str = "Done: the command printed hi."
    subagent: str | None = None
    subagent_tool_input: dict[str, Any] = field(
        default_factory=lambda: {"command": "echo from-subagent", "description": "Say hi"}
    )
    subagent_text: str = "Subagent done: the command printed from-subagent."

    def agent_input(self) -> dict[str, Any]:
        """The ``Agent`` tool's input of the main conversation's tool turn."""
        assert self.subagent is not None
        return {
            "description": "Run one command",
            "prompt": self.subagent,
            "subagent_type": "general-purpose",
            "run_in_background": False,
        }


class FakeAnthropic:
    """The fake API in a thread on a free port; a context manager."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[dict[str, Any]] = []  # {"method", "path", "headers", "body"}
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._count = 0
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def main(self) -> list[Sent]:
        """The main scripted conversation's messages, in order."""
        return [s for s in self.sent if s.main]

    @property
    def subagent(self) -> list[Sent]:
        """The subagent's scripted conversation's messages, in order (with
        :attr:`Script.subagent`)."""
        return [s for s in self.sent if s.subagent]

    def _is_subagent(self, messages: list[dict[str, Any]]) -> bool:
        """Whether a conversation is the subagent's: its first user message holds the
        prompt the fake gave the subagent (the main conversation has it only in the
        ``Agent`` call, an assistant message)."""
        prompt = self.script.subagent
        if prompt is None or not messages or messages[0].get("role") != "user":
            return False
        content = messages[0].get("content")
        if isinstance(content, str):
            return prompt in content
        return any(
            isinstance(block, dict) and block.get("type") == "text" and prompt in block["text"]
            for block in content or []
        )

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}_fake{self._count:04d}"

    def answer(self, body: dict[str, Any]) -> Sent:
        """The message answering a ``/v1/messages`` request ``body`` (recorded as sent): the
        model asked for answers."""
        messages = body.get("messages") or []
        main = bool(body.get("tools")) and bool(messages)
        if not main:
            sent = Sent(
                self._next_id("msg"),
                str(body.get("model") or MODEL),
                dict(BACKGROUND_USAGE),
                [{"type": "text", "text": "Fake title"}],
                main=False,
            )
        else:
            answered = any(
                isinstance(block, dict) and block.get("type") == "tool_result"
                for message in messages
                if message.get("role") == "user" and isinstance(message.get("content"), list)
                for block in message["content"]
            )
            subagent = self._is_subagent(messages)
            with self._lock:
                turn = sum(1 for s in self.sent if (s.subagent if subagent else s.main))
            tool: tuple[str, dict[str, Any]] | None = None
            if subagent:
                tool = ("Bash", self.script.subagent_tool_input)
                final_text = self.script.subagent_text
            else:
                if self.script.subagent is not None:
                    tool = ("Agent", self.script.agent_input())
                elif self.script.tool is not None:
                    tool = (self.script.tool, self.script.tool_input)
                final_text = self.script.final_text
            if tool is not None and not answered:
                content: list[dict[str, Any]] = [
                    {"type": "text", "text": "I will run a tool."},
                    {
                        "type": "tool_use",
                        "id": self._next_id("toolu"),
                        "name": tool[0],
                        "input": tool[1],
                    },
                ]
            else:
                content = [{"type": "text", "text": final_text}]
            model = str(body.get("model") or MODEL)
            usage = subagent_usage_for(turn) if subagent else usage_for(turn)
            sent = Sent(
                self._next_id("msg"), model, usage, content, main=not subagent, subagent=subagent
            )
        with self._lock:
            self.sent.append(sent)
        return sent

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("request-id", fake._next_id("req"))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                self._reply(status, json.dumps(value).encode(), "application/json")

            def _record(self, body: Any) -> None:
                with fake._lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )

            def do_GET(self) -> None:
                self._record(None)
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

            def do_HEAD(self) -> None:
                self._record(None)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                self._record(body)
                path = self.path.split("?")[0]
                if path.endswith("/v1/messages/count_tokens"):
                    self._json(200, {"input_tokens": 42})
                elif path.endswith("/v1/messages"):
                    sent = fake.answer(body)
                    if body.get("stream"):
                        self._reply(200, sse(sent), "text/event-stream")
                    else:
                        self._json(200, message_json(sent))
                else:
                    self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

        return Handler


def message_json(sent: Sent) -> dict[str, Any]:
    return {
        "id": sent.id,
        "type": "message",
        "role": "assistant",
        "model": sent.model,
        "content": sent.content,
        "stop_reason": "tool_use" if sent.content[-1]["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": sent.usage,
    }


def sse(sent: Sent) -> bytes:
    """``sent`` as the Messages API streams it: message_start (usage, output 1 token),
    a start / delta / stop per content block, message_delta (the final output count)."""
    start = message_json(sent)
    final = start["usage"]
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **start,
                    "content": [],
                    "stop_reason": None,
                    "usage": {**final, "output_tokens": 1},
                },
            },
        )
    ]
    for index, block in enumerate(sent.content):
        if block["type"] == "text":
            events += [
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": block["text"]},
                    },
                ),
            ]
        else:
            events += [
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block["input"]),
                        },
                    },
                ),
            ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": start["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": final["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


# -- the real CLI -------------------------------------------------------------------------


@dataclass
class ClaudeRun:
    """What one ``claude -p`` run left: its exit code, stream-json lines (decoded), stderr,
    the session id and the transcript Claude Code wrote."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]]
    home: Path
    project: Path
    session_id: str | None
    transcript: Path | None
    stream: Path  # the stdout, saved (for `import stream-json`)


def claude_env(
    home: Path, api: FakeAnthropic, extra_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a CLI run: HOME in ``home``, the fake API, nothing sent elsewhere."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE", "ORCHESTRATOR_"))
    }
    env.update(
        {
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": api.url,
            "ANTHROPIC_API_KEY": "sk-ant-test-0000000000000000",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "IS_SANDBOX": "1",  # --dangerously-skip-permissions as root (CI containers)
        }
    )
    env.update(extra_env or {})
    return env


def run_claude(
    tmp_path: Path,
    prompt: str,
    *,
    api: FakeAnthropic,
    settings: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    args: list[str] | None = None,
    model: str = MODEL,
    timeout: float = 120,
) -> ClaudeRun:
    """Run the real ``claude -p PROMPT --output-format stream-json --verbose`` with HOME in
    ``tmp_path/home`` (its ``.claude/settings.json`` = ``settings`` when given; kept when
    there already), in the project folder ``tmp_path/project``, against ``api`` (which
    answers as ``model``: the model asked for, so a result line's ``modelUsage`` names the
    model the responses did), every tool allowed. Skips when the CLI is missing (fails
    with ORCHESTRATOR_REQUIRE_CLAUDE=1)."""
    claude = claude_binary()
    home = tmp_path / "home"
    project = tmp_path / "project"
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    project.mkdir(exist_ok=True)
    if settings is not None:
        (home / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))
    # First-run dialogs are for a terminal; -p skips them, this keeps the config quiet too.
    config = home / ".claude.json"
    if not config.exists():
        config.write_text(
            json.dumps({"hasCompletedOnboarding": True, "bypassPermissionsModeAccepted": True})
        )
    done = subprocess.run(
        [
            str(claude),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--model",
            model,
            *(args or []),
        ],
        cwd=project,
        env=claude_env(home, api, extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    messages = []
    for line in done.stdout.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            messages.append(value)
    session_id = next(
        (m["session_id"] for m in messages if isinstance(m.get("session_id"), str)), None
    )
    transcript = None
    if session_id is not None:
        found = sorted((home / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))
        transcript = found[0] if found else None
    stream = tmp_path / f"stream-{session_id or 'none'}.jsonl"
    stream.write_text(done.stdout)
    return ClaudeRun(
        done.returncode,
        done.stdout,
        done.stderr,
        messages,
        home,
        project,
        session_id,
        transcript,
        stream,
    )
