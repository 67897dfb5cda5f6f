"""``orchestrator export otlp`` against a real Arize Phoenix (``phoenix serve`` from PyPI,
offline, started once per session from ``.cache/phoenix``): what Phoenix's REST API
returns after an export is compared with the store, read with plain SQL; a run's trace
view in Phoenix's UI is checked in Chromium (its screenshot: docs/phoenix-run.png).

Without Phoenix these tests skip, unless ``$ORCHESTRATOR_REQUIRE_PHOENIX=1`` (CI) makes
them fail. Install it as ``.ci/run`` does:
``python3 -m venv .cache/phoenix && .cache/phoenix/bin/pip install arize-phoenix==20.26.1``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from backends import Target, execute, rows
from click.testing import CliRunner
from servers import free_port, http_get, http_status

from orchestrator.cli import cli
from orchestrator.commands.demo import create_demo_database
from orchestrator.writer.db import DatabaseManager

PHOENIX = Path(__file__).resolve().parent.parent / ".cache" / "phoenix" / "bin" / "phoenix"
#: The demo's last day: half its runs were created before DAY, half on or after.
END = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = "2026-10-25"


@pytest.fixture(scope="session")
def phoenix() -> Iterator[str]:
    """A Phoenix server of the session's own: its base URL (SQLite in a temp folder,
    telemetry off, nothing fetched from outside)."""
    if not PHOENIX.exists():
        message = f"Arize Phoenix is not installed at {PHOENIX}"
        if os.environ.get("ORCHESTRATOR_REQUIRE_PHOENIX") == "1":
            pytest.fail(message + " (ORCHESTRATOR_REQUIRE_PHOENIX=1)")
        pytest.skip(message)
    port, grpc = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="phoenix-") as folder:
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": folder,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        log = open(Path(folder) / "phoenix.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [str(PHOENIX), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while http_status(f"{base}/healthz") != 200:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (Path(folder) / "phoenix.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"phoenix serve did not start:\n{tail}")
                time.sleep(0.3)
            yield base
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.close()


def spans_of(base: str, project: str) -> list[dict[str, Any]]:
    """Every span of ``project`` as Phoenix's REST API returns it (none: no project yet)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        status, body = http_get(
            f"{base}/v1/projects/{project}/spans?{urllib.parse.urlencode(query)}"
        )
        if status == 404:
            return found
        assert status == 200, body
        page = json.loads(body)
        found += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def settled(base: str, project: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    """The spans of ``project`` once Phoenix holds ``count`` (it ingests in the background)
    and a second look finds no more."""
    deadline = time.monotonic() + timeout
    while True:
        found = spans_of(base, project)
        if len(found) >= count:
            time.sleep(1.5)
            again = spans_of(base, project)
            if len(again) == len(found):
                return again
        assert time.monotonic() < deadline, f"Phoenix holds {len(found)} spans, not {count}"
        time.sleep(0.5)


def export(target: Target, base: str, project: str, *args: str) -> str:
    result = CliRunner().invoke(
        cli,
        ["export", "otlp", str(target), "--endpoint", base, *args],
        env={"OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _store(target: Target) -> None:
    """A small demo, then a run with tool calls of every kind, a subagent and a failed run."""
    await create_demo_database(target, prompts=150, days=14, seed=11, end=END)
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 30_000,
        "cache_creation_input_tokens": 1_500,
        "output_tokens": 800,
    }
    async with DatabaseManager(target) as db:
        async with db.agent_run("tooling", session_id="s-tools", name="tools-run") as run:
            with run.step("build"):
                await run.prompt("build it", "built", model="claude-sonnet-4-5", usage=usage)
                # a transcript's tool_use/tool_result and a hook's Pre/PostToolUse
                run.log(
                    "tool_use",
                    "Bash: make",
                    {"tool_use_id": "tu-1", "name": "Bash", "input": '{"command": "make"}'},
                )
                run.log(
                    "tool_result",
                    "Bash: ok",
                    {"tool_use_id": "tu-1", "name": "Bash", "is_error": False},
                )
            async with db.agent_run(
                "reviewer", session_id="s-tools", name="review-sub", parent_agent_id=run.id
            ) as sub:
                await sub.prompt("review it", "fine", model="claude-haiku-4-5", usage=usage)
        with pytest.raises(RuntimeError):
            async with db.agent_run("tooling", session_id="s-fail", name="broken-run") as failing:
                await failing.prompt(
                    "try",
                    None,
                    model="claude-sonnet-4-5",
                    usage=usage,
                    error="overloaded_error: Overloaded",
                )
                raise RuntimeError("the build broke")


@pytest.fixture
def store(db_target: Target) -> Target:
    asyncio.run(_store(db_target))
    # A hook's PreToolUse / PostToolUseFailure, stored by the hook under the event's name.
    ((run_id, at),) = rows(
        db_target,
        "SELECT l.agent_id, l.created_at FROM agent_logs l JOIN agents a ON a.id = l.agent_id "
        "WHERE a.name = 'tools-run' AND l.log_type = 'step_start'",
    )
    insert = (
        "INSERT INTO agent_logs (id, agent_id, log_type, message, metadata, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    execute(
        db_target,
        (
            insert,
            (
                str(uuid.uuid4()),
                run_id,
                "PreToolUse",
                "Read: a.py",
                '{"tool_use_id": "tu-2", "name": "Read", "input": "a.py"}',
                at,
            ),
        ),
        (
            insert,
            (
                str(uuid.uuid4()),
                run_id,
                "PostToolUseFailure",
                "Read: no such file",
                '{"tool_use_id": "tu-2", "name": "Read", "is_error": true}',
                at,
            ),
        ),
    )
    return db_target


def expected_spans(target: Target, since: str | None = None) -> int:
    """Runs + prompts + tool calls + steps, counted with plain SQL (every tool call of the
    store has its start logged; a step is its step_end)."""
    runs = (
        f"SELECT id FROM agents WHERE status IN ('completed', 'failed', 'cancelled') "
        f"AND parent_agent_id IS NULL {'' if since is None else f'AND created_at >= {since!r}'}"
    )
    family = f"SELECT id FROM agents WHERE id IN ({runs}) OR parent_agent_id IN ({runs})"
    ((count,),) = rows(
        target,
        f"SELECT (SELECT count(*) FROM ({family}) f) "
        f"+ (SELECT count(*) FROM prompts WHERE agent_id IN ({family})) "
        f"+ (SELECT count(*) FROM agent_logs WHERE agent_id IN ({family}) "
        "AND log_type IN ('tool_use', 'PreToolUse', 'step_end'))",
    )
    return int(count)


def test_phoenix_holds_each_run_prompt_and_tool_as_the_store_has_them(
    store: Target, phoenix: str
) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    total = expected_spans(store)
    output = export(store, phoenix, project)
    assert f"({total} spans)" in output
    spans = settled(phoenix, project, total)
    assert len(spans) == total
    by_span = {s["context"]["span_id"]: s for s in spans}

    # each prompt: model and tokens as stored (input = uncached + cache read + cache write)
    prompts = {
        row[0]: row[1:]
        for row in rows(
            store,
            "SELECT id, model, tokens_input, tokens_cache_read, tokens_cache_write, "
            "tokens_output, cost_usd FROM prompts",
        )
    }
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(llm) == len(prompts)
    for span in llm:
        a = span["attributes"]
        model, uncached, read, written, output_tokens, cost = prompts[a["adw.prompt.id"]]
        assert span["name"] == f"chat {model}"
        assert a["llm.model_name"] == a["gen_ai.request.model"] == model
        assert a["llm.provider"] == a["gen_ai.provider.name"] == "anthropic"
        assert a["llm.token_count.prompt"] == a["gen_ai.usage.input_tokens"]
        assert a["gen_ai.usage.input_tokens"] == uncached + read + written
        assert a["llm.token_count.prompt_details.cache_read"] == read
        assert a["gen_ai.usage.cache_creation.input_tokens"] == written
        assert a["llm.token_count.completion"] == a["gen_ai.usage.output_tokens"] == output_tokens
        assert a["llm.token_count.total"] == uncached + read + written + output_tokens
        assert a.get("llm.cost.total") == cost or math.isclose(a["llm.cost.total"], cost)

    # each run: its prompts' cost and tokens in Phoenix add up to the run's totals
    def run_of(span: dict[str, Any]) -> str:
        while span["span_kind"] != "AGENT":
            span = by_span[span["parent_id"]]
        return str(span["attributes"]["adw.run.id"])

    sums: dict[str, list[float]] = {}
    for span in llm:
        a = span["attributes"]
        total_of = sums.setdefault(run_of(span), [0, 0, 0, 0.0])
        total_of[0] += 1
        total_of[1] += a["gen_ai.usage.input_tokens"]
        total_of[2] += a["gen_ai.usage.output_tokens"]
        total_of[3] += a.get("llm.cost.total") or 0.0
    for run_id, count, tokens_in, tokens_out, cost in rows(
        store,
        "SELECT id, prompt_count, total_tokens_input + total_tokens_cache_read "
        "+ total_tokens_cache_write, total_tokens_output, total_cost_usd FROM agents "
        "WHERE prompt_count > 0",
    ):
        assert sums[run_id][:3] == [count, tokens_in, tokens_out], run_id
        assert math.isclose(sums[run_id][3], cost, rel_tol=1e-9, abs_tol=1e-12), run_id

    # runs: one trace each, its id the run's; a subagent inside its parent's trace
    agents = {s["attributes"]["adw.run.id"]: s for s in spans if s["span_kind"] == "AGENT"}
    ((tools_id, review_id, broken_id, error),) = rows(
        store,
        "SELECT t.id, r.id, b.id, b.error FROM agents t, agents r, agents b "
        "WHERE t.name = 'tools-run' AND r.name = 'review-sub' AND b.name = 'broken-run'",
    )
    tools, review, broken = agents[tools_id], agents[review_id], agents[broken_id]
    assert tools["context"]["trace_id"] == uuid.UUID(tools_id).hex
    assert tools["name"] == "invoke_agent tooling" and tools["parent_id"] is None
    assert tools["attributes"]["gen_ai.conversation.id"] == "s-tools"
    assert review["context"]["trace_id"] == tools["context"]["trace_id"]
    assert review["parent_id"] == tools["context"]["span_id"]
    assert broken["status_code"] == "ERROR" and broken["status_message"] == error
    assert [e["name"] for e in broken["events"]] == ["exception"]
    assert tools["status_code"] == "OK"

    # tool calls: joined on tool_use_id, under their step, failures as errors
    calls = {
        s["attributes"].get("gen_ai.tool.call.id"): s for s in spans if s["span_kind"] == "TOOL"
    }
    assert calls["tu-1"]["name"] == "execute_tool Bash" and calls["tu-1"]["status_code"] == "OK"
    assert calls["tu-2"]["name"] == "execute_tool Read"
    assert calls["tu-2"]["status_code"] == "ERROR"
    step = by_span[calls["tu-1"]["parent_id"]]
    assert step["span_kind"] == "CHAIN" and step["name"] == "build"
    assert step["parent_id"] == tools["context"]["span_id"]
    (chat,) = [s for s in llm if s["attributes"]["input.value"] == "build it"]
    assert chat["parent_id"] == step["context"]["span_id"]

    # again: nothing is sent; sent again regardless (the record lost), nothing doubles
    assert "Sent 0 runs (0 spans)" in export(store, phoenix, project)
    execute(store, "DELETE FROM otlp_exports")
    assert f"({total} spans)" in export(store, phoenix, project)
    assert len(settled(phoenix, project, total)) == total


async def _one_run(target: Target) -> str:
    """A run as an ADW makes one: two steps with a prompt and a tool call each, a
    reviewing subagent; each prompt's tokens distinct. Its id."""

    def usage(n: int) -> dict[str, int]:
        return {
            "input_tokens": 10 + n,
            "cache_read_input_tokens": 20_000 + 1_000 * n,
            "cache_creation_input_tokens": 1_200 + 100 * n,
            "output_tokens": 600 + 50 * n,
        }

    async with DatabaseManager(target) as db:
        async with db.agent_run("plan_build", session_id="s-ui", name="issue-42") as run:
            for n, (step, tool, text) in enumerate(
                [("plan", "Read", "/plan issue 42"), ("build", "Bash", "/build the plan")]
            ):
                with run.step(step):
                    await run.prompt(text, "ok", model="claude-sonnet-4-5", usage=usage(n))
                    meta = {"tool_use_id": f"tu-{step}", "name": tool}
                    run.log("tool_use", f"{tool}: ...", {**meta, "input": "{}"})
                    run.log("tool_result", f"{tool}: ok", {**meta, "is_error": False})
            async with db.agent_run(
                "review", session_id="s-ui", name="review-sub", parent_agent_id=run.id
            ) as sub:
                await sub.prompt("review it", "fine", model="claude-haiku-4-5", usage=usage(2))
        return run.id


def test_a_run_shows_in_phoenixs_own_ui_with_its_spans_and_tokens(
    db_path: Path, phoenix: str, tmp_path: Path
) -> None:
    """Phoenix's trace view of an exported run, in Chromium (offline): every span's name
    and each prompt's token count as text; the screenshot is docs/phoenix-run.png
    (``$ORCHESTRATOR_SCREENSHOT_DIR``)."""
    from test_browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS

    if not CHROMIUM.exists():
        if os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} not found")
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    run_id = asyncio.run(_one_run(db_path))
    project = "adw"  # this test's own project in the session's Phoenix
    total = expected_spans(db_path)
    assert total == 2 + 3 + 2 + 2  # runs, prompts, tool calls, steps
    export(db_path, phoenix, project)
    settled(phoenix, project, total)
    status, body = http_get(f"{phoenix}/v1/projects/{project}")
    assert status == 200, body
    project_id = json.loads(body)["data"]["id"]
    # What the view must show, from the store: each span's name, each prompt's tokens.
    prompts = rows(
        db_path,
        "SELECT model, tokens_input + tokens_cache_read + tokens_cache_write + tokens_output "
        "FROM prompts ORDER BY created_at",
    )
    names = [
        "invoke_agent plan_build",
        "plan",
        "build",
        "execute_tool Read",
        "execute_tool Bash",
        "invoke_agent review",
        *{f"chat {model}" for model, _ in prompts},
    ]
    counts = [f"{tokens:,}" for _, tokens in prompts]
    assert len(set(counts)) == 3

    external: list[str] = []
    errors: list[str] = []

    def route(route: Any) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.set_default_timeout(30_000)
            tab.route("**/*", route)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            trace = uuid.UUID(run_id).hex
            tab.goto(f"{phoenix}/projects/{project_id}/spans/{trace}", wait_until="load")
            tab.get_by_text(trace, exact=True).first.wait_for()
            for name in names:
                tab.get_by_text(name, exact=True).first.wait_for()
            for count in counts:
                tab.get_by_text(count, exact=True).first.wait_for()
            tab.wait_for_load_state("networkidle")
            shot = tmp_path / "phoenix-run.png"
            tab.screenshot(path=str(shot))
        finally:
            browser.close()
    assert external == [] and errors == []
    assert shot.stat().st_size > 20_000
    if os.environ.get("ORCHESTRATOR_SCREENSHOT_DIR"):
        folder = Path(os.environ["ORCHESTRATOR_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / shot.name)


def test_since_sends_the_later_runs_and_the_rest_follow(store: Target, phoenix: str) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    later = expected_spans(store, DAY)
    total = expected_spans(store)
    assert 0 < later < total
    export(store, phoenix, project, "--since", DAY)
    spans = settled(phoenix, project, later)
    roots = {s["context"]["trace_id"] for s in spans if s["parent_id"] is None}
    expected = {
        uuid.UUID(run_id).hex
        for (run_id,) in rows(
            store,
            "SELECT id FROM agents WHERE parent_agent_id IS NULL AND created_at >= ? "
            "AND status IN ('completed', 'failed', 'cancelled')",
            (DAY,),
        )
    }
    assert roots == expected
    export(store, phoenix, project)  # the runs before DAY: the others were sent
    assert len(settled(phoenix, project, total)) == total
    ((recorded,),) = rows(store, "SELECT count(*) FROM otlp_exports")
    assert recorded == len({s["context"]["trace_id"] for s in spans}) + len(
        rows(
            store, "SELECT id FROM agents WHERE parent_agent_id IS NULL AND created_at < ?", (DAY,)
        )
    )


def test_follow_sends_runs_as_they_finish(
    db_path: Path, phoenix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.commands.export import export_otlp

    project = f"p-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")

    async def one_run(name: str) -> str:
        async with DatabaseManager(db_path) as db:
            async with db.agent_run("follow", session_id="f", name=name) as run:
                await run.prompt(
                    "go", "went", model="claude-sonnet-4-5", tokens_input=5, tokens_output=7
                )
            return run.id

    first = asyncio.run(one_run("first"))
    stop = threading.Event()
    done: list[Any] = []
    follower = threading.Thread(
        target=lambda: done.append(export_otlp(db_path, phoenix, follow=True, poll=0.2, stop=stop))
    )
    follower.start()
    try:
        settled(phoenix, project, 2)
        second = asyncio.run(one_run("second"))
        spans = settled(phoenix, project, 4)
    finally:
        stop.set()
        follower.join(30)
    assert {s["context"]["trace_id"] for s in spans} == {
        uuid.UUID(first).hex,
        uuid.UUID(second).hex,
    }
    assert done and (done[0].runs, done[0].spans) == (2, 4)


def test_an_unreachable_endpoint_records_nothing(db_path: Path) -> None:
    from orchestrator.commands.export import ExportError, export_otlp

    asyncio.run(create_demo_database(db_path, prompts=20, days=2, seed=3, end=END))
    with pytest.raises(
        ExportError, match=r"127\.0\.0\.1:\d+/v1/traces: \[Errno 111\] Connection refused"
    ):
        export_otlp(db_path, f"http://127.0.0.1:{free_port()}", timeout=0.5)
    assert rows(db_path, "SELECT count(*) FROM otlp_exports") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--endpoint", "ftp://host"],
            "Error: --endpoint 'ftp://host': not an http:// or https:// URL",
        ),
        (
            ["--endpoint", "http://h", "--since", "2026-13-01"],
            "Error: --since '2026-13-01': not a day (YYYY-MM-DD)",
        ),
        (
            ["--endpoint", "http://h", "--headers", "Authorization"],
            "Error: --headers: 'Authorization' is not NAME=VALUE",
        ),
    ],
)
def test_bad_input_is_one_line(db_path: Path, args: list[str], message: str) -> None:
    asyncio.run(create_demo_database(db_path, prompts=5, days=1, seed=3, end=END))
    result = CliRunner().invoke(cli, ["export", "otlp", str(db_path), *args])
    assert result.exit_code == 1
    assert result.output.strip() == message


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["export", "otlp", str(missing), "--endpoint", "http://h"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no database at {missing}"
    assert not missing.exists()


def test_headers_are_read_like_otel_exporter_otlp_headers() -> None:
    from orchestrator.commands.export import parse_headers, traces_url

    assert parse_headers("Authorization=Basic%20cGs6c2s=,x-team = adw") == {
        "Authorization": "Basic cGs6c2s=",
        "x-team": "adw",
    }
    assert traces_url("https://cloud.langfuse.com/api/public/otel") == (
        "https://cloud.langfuse.com/api/public/otel/v1/traces"
    )
    assert traces_url("http://localhost:6006/v1/traces/") == "http://localhost:6006/v1/traces"
