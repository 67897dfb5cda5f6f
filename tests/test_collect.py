"""orchestrator collect: Claude Code's OTLP export (recorded real payloads under
tests/data/otlp/, and the real CLI against the fake API) received into the store."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from backends import Target, is_postgres, rows
from servers import free_port, listening

from orchestrator.claude_code import otlp
from orchestrator.claude_code.collect import Collector, CollectServer, build

DATA = Path(__file__).parent / "data" / "otlp"
SESSION = "a219a55c-1a53-406a-a098-0922a0c9652f"  # the recorded JSON payloads' session
JSON_LOGS = ["logs-user-prompt.json", "logs-api-request.json", "logs-tool-result.json"]


def records(name: str) -> list[dict[str, Any]]:
    """The log records of a recorded JSON payload, attributes as a dict (read here by
    hand, independently of orchestrator.claude_code.otlp)."""
    found = []
    for resource in json.loads((DATA / name).read_text())["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                attrs = {a["key"]: next(iter(a["value"].values())) for a in record["attributes"]}
                found.append({"body": record["body"]["stringValue"], **attrs})
    return found


def start_collect(db: Target, port: int, *options: str) -> subprocess.Popen[bytes]:
    """``orchestrator collect --db DB --port PORT OPTIONS`` in a process (and session) of
    its own, from this checkout, its stderr piped."""
    return subprocess.Popen(
        [
            *(sys.executable, "-c", "from orchestrator.cli import main; main()", "collect"),
            *("--db", str(db), "--port", str(port), *options),
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def post(
    port: int,
    path: str,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": content_type, **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def server(db_target: Target) -> Iterator[tuple[int, Target]]:
    """A collect server in this process, on a free port, writing ``db_target``."""
    collector = Collector(str(db_target))
    collector.start()
    httpd = CollectServer(("127.0.0.1", free_port()), collector, max_body=1 << 20)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[1], db_target
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        collector.stop()


# -- the parse layer -------------------------------------------------------------------


def test_recorded_json_and_protobuf_payloads_parse_to_claude_code_events() -> None:
    parsed, protobuf = otlp.parse(
        "logs", (DATA / "logs-api-request.json").read_bytes(), "application/json", None
    )
    assert not protobuf and parsed.rejected == 0
    expected = [r["body"].removeprefix("claude_code.") for r in records("logs-api-request.json")]
    assert [e.name for e in parsed.events] == expected
    request = next(e for e in parsed.events if e.name == "api_request")
    raw = next(r for r in records("logs-api-request.json") if r["body"].endswith("api_request"))
    assert request.session_id == SESSION and request.resource["adw.workflow"] == "plan_build"
    assert request.attributes["cost_usd"] == raw["cost_usd"]
    assert request.attributes["cache_creation_1h_tokens"] == raw["cache_creation_1h_tokens"]
    gzipped = gzip.compress((DATA / "logs-1.pb").read_bytes())
    parsed, protobuf = otlp.parse("logs", gzipped, "application/x-protobuf", "gzip")
    assert protobuf
    names = [e.name for e in parsed.events]
    assert "user_prompt" in names and "api_request" in names
    pb_request = next(e for e in parsed.events if e.name == "api_request")
    assert pb_request.attributes["input_tokens"] == 11  # int64 read from protobuf's text
    points, _ = otlp.parse(
        "metrics", (DATA / "metrics.pb").read_bytes(), "application/x-protobuf", None
    )
    assert {p.name for p in points.points} >= {"claude_code.cost.usage", "claude_code.token.usage"}


def test_protobuf_logs_read_from_the_message_as_from_its_json_mapping() -> None:
    """A protobuf body is read from the message itself (not through json_format's dicts):
    the same events as its OTLP/JSON mapping read by the JSON path, for the recorded
    bodies and for a record holding every kind of AnyValue; a non-finite double is
    refused by both, naming where."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    def events(parsed: otlp.Parsed) -> list[tuple[Any, ...]]:
        return [(e.name, e.at, e.session_id, e.attributes, e.resource) for e in parsed.events]

    every_kind = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "team", "value": {"stringValue": "core"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1765000000123456789",
                                "body": {"stringValue": "claude_code.tool_result"},
                                "attributes": [
                                    {"key": "session.id", "value": {"stringValue": SESSION}},
                                    {"key": "n", "value": {"intValue": "-7"}},
                                    {"key": "x", "value": {"doubleValue": 2.5}},
                                    {"key": "ok", "value": {"boolValue": False}},
                                    {"key": "raw", "value": {"bytesValue": "AAEC"}},
                                    {"key": "none", "value": {}},
                                    {
                                        "key": "list",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"stringValue": "a"}, {"intValue": 1}]
                                            }
                                        },
                                    },
                                    {
                                        "key": "map",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"boolValue": True}}
                                                ]
                                            }
                                        },
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    bodies = [(DATA / name).read_bytes() for name in ("logs-1.pb", "logs-2.pb")]
    bodies.append(json_format.ParseDict(every_kind, ExportLogsServiceRequest()).SerializeToString())
    for body in bodies:
        message = ExportLogsServiceRequest.FromString(body)
        from_json = otlp.parse_logs(json_format.MessageToDict(message))
        parsed, protobuf = otlp.parse("logs", body, "application/x-protobuf", None)
        assert protobuf and parsed.events and events(parsed) == events(from_json)
    [event] = parsed.events
    assert event.attributes["raw"] == "000102" and event.attributes["map"] == {"k": True}
    assert event.attributes["n"] == -7 and event.attributes["none"] is None
    record = every_kind["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    record["attributes"][2]["value"] = {"doubleValue": "NaN"}
    message = json_format.ParseDict(every_kind, ExportLogsServiceRequest())
    for read in (
        lambda: otlp.parse_logs(json_format.MessageToDict(message)),
        lambda: otlp.parse("logs", message.SerializeToString(), "application/x-protobuf", None),
    ):
        with pytest.raises(otlp.BadRequest, match=r"logRecords\[0\]\.attributes\[2\]"):
            read()


@pytest.mark.parametrize(
    ("body", "encoding", "content_type", "problem"),
    [
        (b"{not json", None, "application/json", "body: not JSON"),
        (b"[1]", None, "application/json", "is a JSON object"),
        (
            json.dumps(
                {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": 3}]}]}]}]}
            ).encode(),
            None,
            "application/json",
            "resourceLogs[0].scopeLogs[0].logRecords[0].attributes[0].key: must be a string",
        ),
        (gzip.compress(b"{" + b" " * (2 << 20) + b"}"), "gzip", "application/json", "more than"),
        (b"\x1f\x8b\x08garbage", "gzip", "application/json", "not valid gzip"),
        (b"\xff\xff\xff", None, "application/x-protobuf", "not an OTLP logs protobuf"),
        (b"{}", None, "text/plain", "Content-Type"),
        (b"{}", "br", "application/json", "Content-Encoding"),
    ],
)
def test_bad_bodies_are_refused_naming_the_problem(
    body: bytes, encoding: str | None, content_type: str, problem: str
) -> None:
    with pytest.raises(otlp.BadRequest) as error:
        otlp.parse("logs", body, content_type, encoding, limit=1 << 20)
    assert problem in str(error.value)


def test_an_api_request_of_wrong_types_is_refused_naming_event_and_field() -> None:
    payload = json.loads((DATA / "logs-api-request.json").read_text())
    for record in payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for attribute in record["attributes"]:
            if attribute["key"] == "input_tokens":
                attribute["value"] = {"stringValue": "many"}
    parsed = otlp.parse_logs(payload)
    with pytest.raises(otlp.BadRequest, match=r"claude_code.api_request\).input_tokens"):
        build(parsed)


# -- the server ------------------------------------------------------------------------


def test_recorded_payloads_become_one_run_with_prompts_costs_and_tool_results(
    server: tuple[int, Target],
) -> None:
    port, target = server
    for name in [
        *JSON_LOGS,
        "metrics-usage.json",
        "metrics-usage-2.json",
        "metrics-active-time.json",
    ]:
        path = "/v1/metrics" if name.startswith("metrics") else "/v1/logs"
        status, body = post(port, path, (DATA / name).read_bytes())
        assert (status, json.loads(body)) == (200, {}), body
    events = [r for name in JSON_LOGS for r in records(name)]
    calls = [r for r in events if r["body"] == "claude_code.api_request"]
    [(workflow, session, status)] = rows(
        target,
        "SELECT o.name, a.session_id, a.status FROM agents a "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id",
    )
    assert (workflow, session, status) == ("plan_build", SESSION, "completed")
    stored = rows(
        target,
        "SELECT p.content, p.tokens_input, p.tokens_output, p.tokens_cache_read, "
        "p.tokens_cache_write, p.tokens_cache_write_1h, p.cost_usd, p.cost_source, "
        "p.cost_computed_usd, p.duration_ms, o.request_id FROM prompts p "
        "JOIN otel_requests o ON o.prompt_id = p.id ORDER BY p.created_at",
    )
    assert [
        (
            "say hi",
            c["input_tokens"],
            c["output_tokens"],
            c["cache_read_tokens"],
            c["cache_creation_tokens"],
            c["cache_creation_1h_tokens"],
            pytest.approx(c["cost_usd"]),
            "reported",
            pytest.approx(c["cost_usd"], rel=0.01),  # genai-prices agrees with Claude Code
            float(c["duration_ms"]),
            c["request_id"],
        )
        for c in calls
    ] == stored
    tools = [r for r in events if r["body"] == "claude_code.tool_result"]
    logged = rows(
        target,
        "SELECT message, duration_ms FROM agent_logs WHERE log_type = 'tool_result'",
    )
    assert logged == [(f"{t['tool_name']}: succeeded", float(t["duration_ms"])) for t in tools]
    attributes = dict(rows(target, "SELECT key, value FROM agent_attributes"))
    assert attributes["team"] == "core" and attributes["service.version"] == "2.1.337"
    # Delta sums: the day's cost is the sum of the calls' reported costs.
    [(cost,)] = rows(
        target, "SELECT sum(value) FROM otel_metrics_daily WHERE name = 'claude_code.cost.usage'"
    )
    assert cost == pytest.approx(sum(c["cost_usd"] for c in calls))
    # The same batches again (an exporter retrying): nothing stored twice.
    before = rows(target, "SELECT count(*) FROM prompts UNION ALL SELECT count(*) FROM agent_logs")
    for name in JSON_LOGS:
        assert post(port, "/v1/logs", (DATA / name).read_bytes())[0] == 200
    assert (
        rows(target, "SELECT count(*) FROM prompts UNION ALL SELECT count(*) FROM agent_logs")
        == before
    )


def test_a_bad_request_stores_nothing_and_the_server_keeps_serving(
    server: tuple[int, Target],
) -> None:
    port, target = server
    good = (DATA / "logs-api-request.json").read_text()
    # A valid first event and a broken second one: the request is refused whole.
    broken = good.replace(
        '{"key":"output_tokens","value":{"intValue":23}}',
        '{"key":"output_tokens","value":{"intValue":-23}}',
    )
    assert broken != good
    status, body = post(port, "/v1/logs", broken.encode())
    assert status == 400 and b"output_tokens" in body
    status, body = post(
        port,
        "/v1/logs",
        gzip.compress(b"[" * 10 + b" " * (3 << 20)),
        headers={"Content-Encoding": "gzip"},
    )
    assert status == 400 and b"more than" in body
    status, body = post(port, "/v1/logs", b"x" * ((1 << 20) + 1))
    assert status == 413
    assert rows(target, "SELECT count(*) FROM prompts UNION ALL SELECT count(*) FROM agents") == [
        (0,),
        (0,),
    ]
    status, _ = post(port, "/v1/logs", good.encode())
    assert status == 200
    assert rows(target, "SELECT count(*) FROM prompts") == [(1,)]


def test_records_that_are_no_claude_code_event_are_a_partial_success(
    server: tuple[int, Target],
) -> None:
    port, target = server
    payload = json.loads((DATA / "logs-tool-result.json").read_text())
    scope = payload["resourceLogs"][0]["scopeLogs"][0]
    scope["logRecords"].append({"body": {"stringValue": "GET /health"}, "attributes": []})
    status, body = post(port, "/v1/logs", json.dumps(payload).encode())
    answer = json.loads(body)
    assert status == 200 and answer["partialSuccess"]["rejectedLogRecords"] == 1
    assert "not a Claude Code event" in answer["partialSuccess"]["errorMessage"]
    assert rows(target, "SELECT count(*) FROM agent_logs WHERE log_type = 'tool_result'") == [(1,)]


def test_protobuf_is_answered_in_protobuf_and_hooks_land_in_the_sessions_run(
    server: tuple[int, Target],
) -> None:
    port, target = server
    for name in ("logs-1.pb", "logs-2.pb"):
        status, body = post(port, "/v1/logs", (DATA / name).read_bytes(), "application/x-protobuf")
        assert (status, body) == (200, b"")
    [(run, session)] = rows(target, "SELECT id, session_id FROM agents")
    hook = {
        "hook_event_name": "Stop",
        "session_id": session,
        "cwd": "/tmp/project",
    }
    status, _ = post(port, "/hooks", json.dumps(hook).encode())
    assert status == 200
    assert rows(target, "SELECT agent_id FROM agent_logs WHERE log_type = 'Stop'") == [(run,)]
    assert post(port, "/hooks", b"[]")[0] == 400


def test_other_interfaces_need_a_token(tmp_path: Path) -> None:
    from orchestrator.claude_code.collect import serve
    from orchestrator.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="--token"):
        serve(str(tmp_path / "o.db"), "0.0.0.0", free_port())
    collector = Collector(str(tmp_path / "o.db"))
    collector.start()
    httpd = CollectServer(("127.0.0.1", free_port()), collector, token="s3cret-token")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        port = httpd.server_address[1]
        body = (DATA / "logs-api-request.json").read_bytes()
        assert post(port, "/v1/logs", body)[0] == 401
        assert post(port, "/v1/logs", body, headers={"Authorization": "Bearer nope"})[0] == 401
        ok = post(port, "/v1/logs", body, headers={"Authorization": "Bearer s3cret-token"})
        assert ok[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        collector.stop()


def test_a_sigkill_after_the_answer_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    port = free_port()
    process = start_collect(db, port)
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        for name in JSON_LOGS:
            assert post(port, "/v1/logs", (DATA / name).read_bytes())[0] == 200
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM prompts").fetchone() == (2,)
    assert conn.execute(
        "SELECT count(*) FROM agent_logs WHERE log_type = 'tool_result'"
    ).fetchone() == (1,)


# -- the real client -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_the_real_claude_code_exports_into_collect_once_with_its_transcript_and_stream(
    tmp_path: Path, protocol: str
) -> None:
    from click.testing import CliRunner
    from fake_anthropic import TOKEN_COLUMNS, FakeAnthropic, run_claude, token_totals

    from orchestrator.cli import cli

    db = tmp_path / "collected.db"
    port = free_port()
    collector = start_collect(db, port)
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert collector.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        telemetry = {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_LOGS_EXPORT_INTERVAL": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_LOG_USER_PROMPTS": "1",
            "OTEL_RESOURCE_ATTRIBUTES": "adw.workflow=plan_build,team=core",
            # The harness's DISABLE_TELEMETRY=1 and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
            # stay: Claude Code 2.1.337 exports OpenTelemetry with them set.
        }
        with FakeAnthropic() as api:
            run = run_claude(tmp_path, "say hi", api=api, extra_env=telemetry)
        assert run.returncode == 0, run.stderr
        # Claude Code flushes its exporters before it exits, and collect answers after the
        # commit: everything is stored now.
        conn = sqlite3.connect(db)
        [(run_id, session, workflow)] = conn.execute(
            "SELECT a.id, a.session_id, o.name FROM agents a "
            "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id"
        ).fetchall()
        assert (session, workflow) == (run.session_id, "plan_build")
        assert dict(conn.execute("SELECT key, value FROM agent_attributes"))["team"] == "core"
        columns = ", ".join(f"coalesce(sum({c}), 0)" for c in TOKEN_COLUMNS)
        totals = conn.execute(f"SELECT {columns} FROM prompts").fetchone()
        assert dict(zip(TOKEN_COLUMNS, totals, strict=True)) == token_totals(api.sent)
        result = run.messages[-1]
        [(cost, reported)] = conn.execute(
            "SELECT sum(cost_usd), count(*) FILTER (WHERE cost_source = 'reported') FROM prompts"
        ).fetchall()
        assert cost == pytest.approx(result["total_cost_usd"], abs=1e-12)
        assert reported == len(api.sent)
        assert conn.execute("SELECT DISTINCT content FROM prompts").fetchall() == [("say hi",)]
        transcript = [json.loads(line) for line in run.transcript.read_text().splitlines()]
        tool_ids = {
            block["id"]
            for line in transcript
            if line.get("type") == "assistant"
            for block in line["message"]["content"]
            if block.get("type") == "tool_use"
        }
        logged = conn.execute(
            "SELECT json_extract(metadata, '$.tool_use_id'), json_extract(metadata, "
            "'$.is_error') FROM agent_logs WHERE log_type = 'tool_result'"
        ).fetchall()
        assert logged == [(tool_id, 0) for tool_id in sorted(tool_ids)]
        request_ids = {line["requestId"] for line in transcript if line.get("requestId")}
        stored_ids = {r for (r,) in conn.execute("SELECT request_id FROM otel_requests")}
        assert stored_ids == request_ids
        conn.close()
    finally:
        os.kill(collector.pid, signal.SIGKILL)
        collector.wait()

    # The same session imported from its transcript and its stream: one run, each call once.
    for command in (["claude-code", str(run.transcript)], ["stream-json", str(run.stream)]):
        outcome = CliRunner().invoke(cli, ["import", command[0], "--db", str(db), command[1]])
        assert outcome.exit_code == 0, outcome.output
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT id FROM agents WHERE parent_agent_id IS NULL").fetchall() == [
        (run_id,)
    ]
    assert conn.execute(f"SELECT {columns} FROM prompts").fetchone() == totals
    assert conn.execute("SELECT count(*) FROM prompts").fetchone() == (len(api.sent),)
    assert conn.execute(
        "SELECT count(*) FROM agent_logs WHERE log_type = 'tool_result'"
    ).fetchone() == (len(tool_ids),)


# -- metrics in the reports ---------------------------------------------------------------

#: The report's columns summed from each metric (and its ``type``), read by hand below.
ACTIVITY_COLUMNS = {
    ("claude_code.session.count", None): "sessions",
    ("claude_code.commit.count", None): "commits",
    ("claude_code.pull_request.count", None): "pull_requests",
    ("claude_code.lines_of_code.count", "added"): "lines_added",
    ("claude_code.lines_of_code.count", "removed"): "lines_removed",
    ("claude_code.active_time.total", None): "active_s",
    ("claude_code.cost.usage", None): "cost_usd",
    ("claude_code.token.usage", None): "tokens",
}


def activity_by_hand(
    payloads: list[dict[str, Any]],
) -> dict[tuple[str, str, str], dict[str, float]]:
    """Each (UTC day, user, team)'s sums, read from the OTLP/JSON payloads directly."""
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for payload in payloads:
        for resource in payload["resourceMetrics"]:
            for scope in resource["scopeMetrics"]:
                for metric in scope["metrics"]:
                    for point in metric["sum"]["dataPoints"]:
                        attrs = {
                            a["key"]: next(iter(a["value"].values())) for a in point["attributes"]
                        }
                        seconds = int(point["timeUnixNano"]) / 1e9
                        day = datetime.fromtimestamp(seconds, timezone.utc).date().isoformat()
                        user = attrs.get("user.email") or attrs.get("user.id") or ""
                        team = attrs.get("team.id") or attrs.get("team") or ""
                        column = ACTIVITY_COLUMNS.get(
                            (metric["name"], attrs.get("type"))
                        ) or ACTIVITY_COLUMNS.get((metric["name"], None))
                        value = float(point.get("asDouble", point.get("asInt", 0)))
                        sums = found.setdefault((day, user, team), {})
                        if column:
                            sums[column] = sums.get(column, 0) + value
    return found


def test_activity_metrics_per_day_user_and_team_in_the_report(
    server: tuple[int, Target],
) -> None:
    """commits, pull requests, lines, active time, cost and tokens of claude_code_activity,
    on both engines, against the sums of the payloads' points read by hand."""
    from backends import activity_payload

    from orchestrator.reports.canned import run_report

    port, target = server
    recorded = ["metrics-usage.json", "metrics-usage-2.json", "metrics-active-time.json"]
    payloads = [json.loads((DATA / name).read_text()) for name in recorded]
    payloads.append(activity_payload())
    for payload in payloads:
        status, body = post(port, "/v1/metrics", json.dumps(payload).encode())
        assert (status, json.loads(body)) == (200, {}), body
    expected = activity_by_hand(payloads)
    result = run_report("claude_code_activity", str(target))
    shown = {(r["day"], r["user_id"], r["team"]): r for r in result.as_dicts()}
    assert sorted(shown) == sorted(expected) and len(shown) >= 5
    assert [key[0] for key in shown] == sorted((key[0] for key in shown), reverse=True)
    for key, sums in expected.items():
        row = shown[key]
        for column in set(ACTIVITY_COLUMNS.values()):
            # active_s is rounded to a tenth, cost_usd to a millionth.
            assert row[column] == pytest.approx(sums.get(column, 0), abs=0.0501), (key, column)
    assert shown[("2026-10-20", "ana@example.com", "core")]["commits"] == 5  # two deltas
    # One team, one user, a window.
    web = run_report("claude_code_activity", str(target), {"team": "web"}).as_dicts()
    assert {r["team"] for r in web} == {"web"} and len(web) == 2
    ana = run_report(
        "claude_code_activity", str(target), {"user": "ana@example.com", "start": "2026-10-21"}
    ).as_dicts()
    assert [(r["day"], r["pull_requests"]) for r in ana] == [("2026-10-21", 2)]


# -- the writer: many requests, one transaction --------------------------------------------


def turns_payload(session: str, turns: int, first: int = 0) -> dict[str, Any]:
    """``turns`` copies of the recorded turn (the three JSON payloads' records) in one
    export of session ``session``, each turn with its own ids and sequence numbers."""
    out: list[dict[str, Any]] = []
    resource: dict[str, Any] = {}
    for name in JSON_LOGS:
        for part in json.loads((DATA / name).read_text())["resourceLogs"]:
            resource = part["resource"]
            turn = [r for scope in part["scopeLogs"] for r in scope["logRecords"]]
            for number in range(first, first + turns):
                for record in json.loads(json.dumps(turn)):
                    for attribute in record["attributes"]:
                        value = attribute["value"]
                        if attribute["key"] == "session.id":
                            value["stringValue"] = session
                        elif attribute["key"] in ("prompt.id", "request_id", "tool_use_id"):
                            value["stringValue"] += f"-{session}-{number}"
                        elif attribute["key"] == "event.sequence":
                            value["intValue"] = 100 * number + int(value["intValue"])
                    out.append(record)
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": out}]}]}


def batch_of(payload: dict[str, Any]) -> Any:
    return build(otlp.parse_logs(payload))


def write_together(collector: Collector, batches: list[Any]) -> list[BaseException | None]:
    """The batches written as one group of waiting requests (one transaction); what each
    request's answer would be."""
    import asyncio

    async def group() -> list[BaseException | None]:
        work = [(batch, collector.loop.create_future()) for batch in batches]
        await collector._write(work)
        return [done.exception() for _, done in work]

    return asyncio.run_coroutine_threadsafe(group(), collector.loop).result(60)


@pytest.fixture
def collector(db_target: Target) -> Iterator[Collector]:
    collector = Collector(str(db_target))
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


class Counted:
    """The collector's backend, counting the statements sent to the database."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.statements = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.backend, name)
        if name in ("execute", "executemany", "fetchone", "fetchall", "begin", "commit"):

            async def counted(*args: Any) -> Any:
                self.statements += 1
                return await found(*args)

            return counted
        return found


def test_a_group_of_requests_is_written_in_statements_not_growing_with_its_events(
    collector: Collector, db_target: Target
) -> None:
    """A request of one turn and 8 requests of 25 turns each (5 sessions, 1,400 events,
    against runs already stored): the same number of statements (a row by row writer
    sends several per event)."""
    collector.backend = counted = Counted(collector.backend)
    sessions = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(5)]
    assert (
        write_together(collector, [batch_of(turns_payload(s, 1)) for s in sessions]) == [None] * 5
    )
    counted.statements = 0
    write_together(collector, [batch_of(turns_payload(sessions[0], 1, first=1))])
    small = counted.statements
    counted.statements = 0
    big = [batch_of(turns_payload(sessions[n % 5], 25, first=10 + 25 * n)) for n in range(8)]
    assert sum(b.events for b in big) == 8 * 25 * 5
    assert write_together(collector, big) == [None] * 8
    assert counted.statements == small
    assert rows(db_target, "SELECT count(*) FROM prompts") == [((5 + 1 + 8 * 25) * 2,)]
    assert rows(db_target, "SELECT count(*) FROM agents") == [(5,)]


def test_requests_written_together_count_each_call_once_and_a_failing_one_stores_nothing(
    collector: Collector, db_target: Target
) -> None:
    """One transaction holding: a session's user prompt and, in the next request, its API
    request (the text joins the prompt); an exporter's retry of a request (stored once);
    a tool result sent again under another sequence number (logged once); and a request
    the store refuses (a log row without its message): that one fails alone."""
    session = "11111111-2222-4333-8444-555555555555"
    payload = turns_payload(session, 2)
    records = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    prompts = [r for r in records if r["body"]["stringValue"] == "claude_code.user_prompt"]
    rest = [r for r in records if r["body"]["stringValue"] != "claude_code.user_prompt"]

    def export(part: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            **payload,
            "resourceLogs": [{**payload["resourceLogs"][0], "scopeLogs": [{"logRecords": part}]}],
        }

    again = json.loads(json.dumps([r for r in rest if "tool_result" in str(r["body"])]))
    for record in again:
        for attribute in record["attributes"]:
            if attribute["key"] == "event.sequence":
                attribute["value"]["intValue"] += 50
    refused = batch_of(turns_payload("99999999-2222-4333-8444-555555555555", 1))
    session_rows = next(iter(refused.sessions.values()))
    session_rows.logs[0] = (*session_rows.logs[0][:3], None, *session_rows.logs[0][4:])
    answers = write_together(
        collector,
        [
            batch_of(export(prompts)),
            batch_of(export(rest)),
            refused,
            batch_of(export(rest)),
            batch_of(export(again)),
        ],
    )
    assert [a is None for a in answers] == [True, True, False, True, True]
    calls = [r for r in records if r["body"]["stringValue"] == "claude_code.api_request"]
    text = next(a["value"]["stringValue"] for a in prompts[0]["attributes"] if a["key"] == "prompt")
    assert rows(db_target, "SELECT content FROM prompts") == [(text,)] * len(calls)
    tools = [r for r in rest if "tool_result" in str(r["body"])]
    assert rows(db_target, "SELECT count(*) FROM agent_logs WHERE log_type = 'tool_result'") == [
        (len(tools),)
    ]
    assert rows(db_target, "SELECT session_id FROM agents") == [(session,)]


def test_a_tool_result_another_writer_logged_hours_before_is_not_logged_again(
    collector: Collector, db_target: Target
) -> None:
    """A hook logged the tool call's result (PostToolUse, its tool_use_id in the metadata)
    six hours before Claude Code's event of it arrives: found by its tool_use_id (not
    only near the event's time), the result is not logged a second time; the other tool
    result of the turn, which nobody logged, is."""
    import asyncio

    from orchestrator.claude_code import hook
    from orchestrator.store import migrations

    # The writers' lookup states the index's log types word for word (SQLite uses it then).
    assert hook.TOOL_LOG_TYPES == migrations.TOOL_LOG_TYPES
    session = "22222222-2222-4333-8444-555555555555"
    payload = turns_payload(session, 2)
    records = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    first = [r for r in records if r["body"]["stringValue"] == "claude_code.user_prompt"]
    rest = [r for r in records if r["body"]["stringValue"] != "claude_code.user_prompt"]

    def export(part: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            **payload,
            "resourceLogs": [{**payload["resourceLogs"][0], "scopeLogs": [{"logRecords": part}]}],
        }

    assert write_together(collector, [batch_of(export(first))]) == [None]
    [(run,)] = rows(db_target, "SELECT id FROM agents")
    results = [r for r in rest if r["body"]["stringValue"] == "claude_code.tool_result"]
    assert len(results) == 2
    attrs = {
        a["key"]: a["value"]["stringValue"]
        for a in results[0]["attributes"]
        if "stringValue" in a["value"]
    }
    when = datetime.fromtimestamp(int(results[0]["timeUnixNano"]) / 1e9, tz=timezone.utc)
    hours_before = otlp.stamp(when - timedelta(hours=6))

    async def hook_logged() -> None:
        await collector.backend.execute(
            "INSERT INTO agent_logs (id, agent_id, log_type, message, metadata, created_at) "
            "VALUES (?, ?, 'PostToolUse', 'PostToolUse', ?, ?)",
            (
                "33333333-2222-4333-8444-555555555555",
                run,
                json.dumps({"tool_use_id": attrs["tool_use_id"]}),
                hours_before,
            ),
        )

    asyncio.run_coroutine_threadsafe(hook_logged(), collector.loop).result(30)
    assert write_together(collector, [batch_of(export(rest))]) == [None]
    tool_id = "json_extract(metadata, '$.tool_use_id')"
    if is_postgres(db_target):
        tool_id = "(metadata::jsonb ->> 'tool_use_id')"
    logged = rows(
        db_target,
        f"SELECT {tool_id}, log_type FROM agent_logs "
        "WHERE log_type IN ('tool_result', 'PostToolUse') ORDER BY 1, 2",
    )
    other = next(
        a["value"]["stringValue"] for a in results[1]["attributes"] if a["key"] == "tool_use_id"
    )
    assert logged == sorted([(attrs["tool_use_id"], "PostToolUse"), (other, "tool_result")])


def test_the_tool_result_lookup_uses_the_tool_use_index(tmp_path: Path) -> None:
    """SQLite uses the partial index only when the query repeats its predicate: the
    lookup's plan searches idx_agent_logs_tool_use (no scan of agent_logs)."""
    from orchestrator.claude_code.collect import _logged_sql
    from orchestrator.store.sqlite import SQLiteBackend, connect

    conn = connect(tmp_path / "plan.db")
    sql = _logged_sql(SQLiteBackend(tmp_path / "plan.db")).format(keys="?, ?")
    plan = " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("a", "b")))
    conn.close()
    assert "USING INDEX idx_agent_logs_tool_use" in plan, plan


def test_a_session_ends_when_its_session_end_hook_reaches_collect(
    server: tuple[int, Target],
) -> None:
    """Claude Code's telemetry has no session end (a run only collect saw is `completed`
    at its last event); its hooks do: UserPromptSubmit posted to collect's /hooks makes the
    run running, an export meanwhile leaves it running, SessionEnd completes it at the
    hook's time."""
    port, target = server
    session = "44444444-2222-4333-8444-555555555555"
    first = json.dumps(turns_payload(session, 1)).encode()
    assert post(port, "/v1/logs", first)[0] == 200
    [(status, completed)] = rows(target, "SELECT status, completed_at FROM agents")
    last = max(e.at for e in otlp.parse_logs(json.loads(first)).events)
    assert (status, completed) == ("completed", last)
    hook = {"session_id": session, "cwd": "/tmp/project"}
    submitted = {**hook, "hook_event_name": "UserPromptSubmit", "prompt": "again"}
    assert post(port, "/hooks", json.dumps(submitted).encode())[0] == 200
    assert rows(target, "SELECT status, completed_at FROM agents") == [("running", None)]
    later = json.dumps(turns_payload(session, 1, first=1)).encode()
    assert post(port, "/v1/logs", later)[0] == 200
    assert rows(target, "SELECT status, completed_at FROM agents") == [("running", None)]
    before = datetime.now(timezone.utc)
    ended = {**hook, "hook_event_name": "SessionEnd", "reason": "exit"}
    assert post(port, "/hooks", json.dumps(ended).encode())[0] == 200
    [(status, completed)] = rows(target, "SELECT status, completed_at FROM agents")
    at = datetime.fromisoformat(completed.replace("Z", "+00:00"))
    assert status == "completed" and before - timedelta(seconds=1) <= at
    assert at <= datetime.now(timezone.utc)


def test_a_log_id_is_its_time_then_the_hash_of_session_sequence_and_event() -> None:
    """A log's id, computed without uuid.UUID objects: with the event's own time, a UUID
    version 8 of that time's milliseconds then 74 bits of the SHA-1 of the namespace and
    the event's session, sequence number and name (the same for a retry; ids sort by
    time, as UUIDv7's do); without one, uuid5 of the same."""
    import hashlib
    import uuid

    from orchestrator.claude_code.collect import _LOG_NAMESPACE

    ids = []
    cases = [
        (1_767_225_600_000, SESSION, 3, "tool_result"),
        (1_767_225_600_001, "s", "17", "api_error"),
        (1_767_225_660_000, "séance", 0, "tool_decision"),
        (2**48 - 1, SESSION, 4, "tool_result"),
    ]
    for ms, session, sequence, name in cases:
        event = otlp.Event(
            name, "2026-01-01T00:00:00.000Z", session, {"event.sequence": sequence}, {}, ms
        )
        [row] = build(otlp.Parsed(events=[event])).sessions[session].logs
        found = uuid.UUID(row[0])
        assert str(found) == row[0] and (found.version, found.variant) == (8, uuid.RFC_4122)
        assert found.int >> 80 == ms
        hashed = hashlib.sha1(_LOG_NAMESPACE.bytes + f"{session}\0{sequence}\0{name}".encode())
        top = int.from_bytes(hashed.digest()[:10], "big")
        assert (found.int >> 64) & 0xFFF == top >> 68
        assert found.int & (2**62 - 1) == top & (2**62 - 1)
        [again] = build(otlp.Parsed(events=[event])).sessions[session].logs
        assert again[0] == row[0]
        ids.append(row[0])
    assert ids == sorted(ids)
    for session, sequence, name in [(SESSION, 3, "tool_result"), ("séance", 0, "tool_decision")]:
        event = otlp.Event(
            name, "2026-01-01T00:00:00.000Z", session, {"event.sequence": sequence}, {}
        )
        [row] = build(otlp.Parsed(events=[event])).sessions[session].logs
        assert row[0] == str(uuid.uuid5(_LOG_NAMESPACE, f"{session}\0{sequence}\0{name}"))


def test_an_event_has_its_own_time_or_its_observed_time_or_none() -> None:
    """``Event.ms``: the record's time, else its observed time (both in a retry), else
    None (stamped when received)."""
    record = {
        "body": {"stringValue": "claude_code.tool_decision"},
        "attributes": [{"key": "session.id", "value": {"stringValue": SESSION}}],
    }
    found = []
    for times in (
        {"timeUnixNano": "1767225600123456789", "observedTimeUnixNano": "1767225601000000000"},
        {"timeUnixNano": "0", "observedTimeUnixNano": "1767225601000000000"},
        {"observedTimeUnixNano": 1767225602000000000},
        {},
    ):
        payload = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{**record, **times}]}]}]}
        [event] = otlp.parse_logs(payload).events
        found.append(event.ms)
    assert found == [1767225600123, 1767225601000, 1767225602000, None]


def test_one_commit_answers_a_request_of_each_connected_client(db_target: Target) -> None:
    """Four exporters on keep-alive connections post at once, five times: each time one
    transaction holds the four requests (the first waits for the others, whose clients are
    connected), and every event is stored."""
    import http.client

    collector = Collector(str(db_target), wait=20.0)  # only the clients' pace, never this
    collector.start()
    httpd = CollectServer(("127.0.0.1", free_port()), collector, max_body=1 << 20)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    sessions = [f"5555555{n}-2222-4333-8444-555555555555" for n in range(4)]
    connections = [
        http.client.HTTPConnection("127.0.0.1", httpd.server_address[1]) for _ in sessions
    ]
    try:
        for connection in connections:
            connection.connect()
        # Connected for the kernel is not yet accepted by the server: wait until it counts
        # the four (else a first request may find fewer and commit alone).
        deadline = time.monotonic() + 20
        while collector._connections < len(connections) and time.monotonic() < deadline:
            time.sleep(0.01)
        for turn in range(5):
            before = collector.flushes
            answers: list[int] = []

            def export(connection: Any, body: bytes, answers: list[int]) -> None:
                connection.request("POST", "/v1/logs", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                answers.append(response.status)

            posting = [
                threading.Thread(
                    target=export,
                    args=(
                        connection,
                        json.dumps(turns_payload(session, 1, turn)).encode(),
                        answers,
                    ),
                )
                for connection, session in zip(connections, sessions, strict=True)
            ]
            for each in posting:
                each.start()
            for each in posting:
                each.join()
            assert answers == [200] * 4
            assert collector.flushes == before + 1
    finally:
        for connection in connections:
            connection.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        collector.stop()
    calls = sum(1 for name in JSON_LOGS for r in records(name) if r["body"].endswith("api_request"))
    assert calls == 2
    assert rows(db_target, "SELECT count(*) FROM prompts") == [(4 * 5 * calls,)]


def test_workers_receive_on_one_port_and_store_a_batch_sent_at_once_once(
    db_target: Target,
) -> None:
    """`collect --workers 3`: three processes accept from the one port; the same export
    posted over eight connections at once (an exporter's retries reaching different
    workers), five times, is stored once, beside the other sessions' exports; SIGTERM
    stops every worker."""
    port = free_port()
    process = start_collect(db_target, port, "--workers", "3")
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        children: list[str] = []
        while len(children) < 3:  # forked after the port is open
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(children) == 3
        retried = "66666666-2222-4333-8444-555555555555"
        others = [f"7777777{n}-2222-4333-8444-555555555555" for n in range(4)]
        for turn in range(5):
            bodies = [json.dumps(turns_payload(retried, 1, turn)).encode()] * 4 + [
                json.dumps(turns_payload(other, 1, turn)).encode() for other in others
            ]
            answers: list[int] = []

            def send(body: bytes, answers: list[int]) -> None:
                answers.append(post(port, "/v1/logs", body)[0])

            posting = [threading.Thread(target=send, args=(body, answers)) for body in bodies]
            for each in posting:
                each.start()
            for each in posting:
                each.join()
            assert answers == [200] * 8
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not any(Path(f"/proc/{child}").exists() for child in children)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the workers too, whatever happened
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    calls = 2 * 5  # two API requests a turn, five turns
    assert rows(
        db_target,
        "SELECT a.session_id, count(*) FROM prompts p JOIN agents a ON a.id = p.agent_id "
        "GROUP BY a.session_id ORDER BY 1",
    ) == [(retried, calls)] + [(other, calls) for other in others]
    assert rows(db_target, "SELECT count(*) FROM otel_user_prompts") == [(5 * 5,)]


def test_two_writers_given_the_same_batch_at_once_store_it_once(db_target: Target) -> None:
    """Two collectors (two `--workers`' writers) write the same export at the same moment,
    ten times, each time a new session: one run per session and each call once (they take
    turns: SQLite's write transaction, PostgreSQL's advisory lock)."""
    first, second = Collector(str(db_target)), Collector(str(db_target))
    first.start()
    second.start()
    try:
        for n in range(10):
            session = f"888888{n:02d}-2222-4333-8444-555555555555"
            payload = turns_payload(session, 1)
            together = threading.Barrier(2)
            answers: list[BaseException | None] = []

            def write(
                collector: Collector,
                payload: dict[str, Any],
                together: threading.Barrier,
                answers: list[BaseException | None],
            ) -> None:
                batch = batch_of(payload)
                together.wait()
                answers.extend(write_together(collector, [batch]))

            writing = [
                threading.Thread(target=write, args=(c, payload, together, answers))
                for c in (first, second)
            ]
            for each in writing:
                each.start()
            for each in writing:
                each.join()
            assert answers == [None, None]
    finally:
        first.stop()
        second.stop()
    assert rows(db_target, "SELECT count(DISTINCT session_id), count(*) FROM agents") == [(10, 10)]
    assert rows(db_target, "SELECT count(*) FROM prompts") == [(10 * 2,)]


def test_workers_end_with_their_parent_killed_and_keep_what_they_answered(
    tmp_path: Path,
) -> None:
    """SIGKILL of `collect --workers 2` itself: its workers end too (not left serving the
    port), and what they answered 200 is stored."""
    db = tmp_path / "workers.db"
    port = free_port()
    process = start_collect(db, port, "--workers", "2")
    children: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len(children) < 2 or not listening(port):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        for name in JSON_LOGS:
            assert post(port, "/v1/logs", (DATA / name).read_bytes())[0] == 200
        process.kill()
        process.wait()
        while any(Path(f"/proc/{child}").exists() for child in children):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not listening(port)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the workers too, whatever happened
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM prompts").fetchone() == (2,)


def answer_read_once(connection: Any, request: bytes) -> tuple[bytes, int]:
    """``request`` sent; what one read of the socket then returns (the status line and
    headers, and as much of the body as came with them) and the body's Content-Length."""
    connection.sendall(request)
    first = connection.recv(1 << 16)
    head, _, body = first.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return body, length


def test_each_answer_of_a_keep_alive_connection_leaves_in_one_write(
    server: tuple[int, Target],
) -> None:
    """Twenty exports on one keep-alive connection: each answer (headers and body) comes
    in the first read. Written in two sends, its body would wait for the client's delayed
    ACK of the headers (Nagle's algorithm), about 40 ms of idling per request."""
    import socket

    port, db_target = server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        for turn in range(20):
            payload = json.dumps(turns_payload(SESSION, 1, turn)).encode()
            request = (
                f"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload
            body, length = answer_read_once(connection, request)
            assert length > 0
            assert len(body) == length, f"export {turn}: the body came apart from the headers"
            assert json.loads(body) == {}  # every record stored: no partial success
    calls = sum(1 for name in JSON_LOGS for r in records(name) if r["body"].endswith("api_request"))
    assert rows(db_target, "SELECT count(*) FROM prompts") == [(20 * calls,)]


def test_a_client_expecting_100_continue_gets_it_before_sending_the_body(
    server: tuple[int, Target],
) -> None:
    """``Expect: 100-continue`` (curl's for big bodies): the 100 Continue is sent at once,
    not kept in the answer's buffer, and the export is then answered."""
    import socket

    port, db_target = server
    payload = json.dumps(turns_payload(SESSION, 1)).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert connection.recv(1 << 16).startswith(b"HTTP/1.1 100 Continue\r\n")
        connection.sendall(payload)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(1 << 16)
        assert answer.startswith(b"HTTP/1.1 200 ")
    calls = sum(1 for name in JSON_LOGS for r in records(name) if r["body"].endswith("api_request"))
    assert rows(db_target, "SELECT count(*) FROM prompts") == [(calls,)]


def test_writers_sharing_turns_never_find_the_file_locked(tmp_path: Path) -> None:
    """Two writers of one SQLite file (two `--workers`' writers) with the busy timeout at 0,
    so that meeting the other's write transaction fails at once instead of sleeping in
    SQLite's busy handler: sharing `turns`, each of 20 exports each written at the same
    moment is stored, and each call once."""
    import asyncio
    import multiprocessing

    db = tmp_path / "turns.db"
    turns = multiprocessing.get_context("spawn").Lock()
    writers = [Collector(str(db), turns=turns) for _ in range(2)]
    for writer in writers:
        writer.start()
        asyncio.run_coroutine_threadsafe(
            writer.backend.execute("PRAGMA busy_timeout = 0"), writer.loop
        ).result(30)
    sessions = [f"9999999{n}-2222-4333-8444-555555555555" for n in range(2)]
    answers: list[BaseException | None] = []
    together = threading.Barrier(2)

    def write(writer: Collector, session: str) -> None:
        batches = [batch_of(turns_payload(session, 1, turn)) for turn in range(20)]
        together.wait()
        for batch in batches:
            answers.extend(write_together(writer, [batch]))

    try:
        writing = [
            threading.Thread(target=write, args=(writer, session))
            for writer, session in zip(writers, sessions, strict=True)
        ]
        for each in writing:
            each.start()
        for each in writing:
            each.join()
    finally:
        for writer in writers:
            writer.stop()
    assert answers == [None] * 40
    calls = sum(1 for name in JSON_LOGS for r in records(name) if r["body"].endswith("api_request"))
    assert rows(db, "SELECT count(*) FROM prompts") == [(2 * 20 * calls,)]


def served_by(pid: int, port: int) -> int:
    """The connections to ``port`` process ``pid`` holds (its sockets' inodes among the
    established ones in /proc/net/tcp)."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(target[len("socket:[") : -1])
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    return len(held & established)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_workers_serve_as_many_clients_each(tmp_path: Path) -> None:
    """`collect --workers 2` and eight exporters connecting one after another (each
    answered before the next connects): each worker serves four (the first to accept
    would take a connection otherwise, whichever it is: 5 and 3, 6 and 2)."""
    import http.client

    db = tmp_path / "spread.db"
    port = free_port()
    process = start_collect(db, port, "--workers", "2")
    connections = []
    try:
        deadline = time.monotonic() + 60
        children: list[str] = []
        while len(children) < 2:  # forked after the port is open
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        sessions = [f"4444444{n}-2222-4333-8444-555555555555" for n in range(8)]
        for session in sessions:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps(turns_payload(session, 1)).encode()
            connection.request("POST", "/v1/logs", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            connections.append(connection)
        assert sorted(served_by(int(child), port) for child in children) == [4, 4]
    finally:
        for connection in connections:
            connection.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert rows(db, "SELECT count(DISTINCT session_id) FROM agents") == [(8,)]


def test_an_events_time_is_written_as_strftime_writes_it() -> None:
    """``otlp.stamp`` reads the datetime's fields itself (strftime cost three times as
    much): the same text as strftime for times across the years, aware in UTC or another
    zone, naive, and the years before 1000 that %Y does not pad."""
    import random

    chooser = random.Random(25)
    zones = [timezone.utc, timezone(timedelta(hours=5, minutes=30))]
    whens = [datetime(1, 1, 1), datetime(999, 12, 31, 23, 59, 59, 999999), datetime(9999, 12, 31)]
    for _ in range(5000):
        micros = chooser.randrange(0, 253402214400 * 10**6)
        when = datetime.fromtimestamp(micros / 1e6, timezone.utc)
        whens.append(when.astimezone(chooser.choice(zones)))
        whens.append(when.replace(tzinfo=None, year=chooser.randrange(1, 10000), day=1))
    for when in whens:
        expected = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        assert otlp.stamp(when) == expected, when


def test_a_count_is_read_as_the_number_it_stands_for() -> None:
    """``_count`` takes a plain int as it is and reads any other value as a number: the
    same whole number either way, big ints past float's precision as float reads them."""
    from orchestrator.claude_code.collect import _count

    for value in [0, 1, 708, 2**53 - 1, 2**53 + 1, 2**60 + 3, "708", "12.0", 7.0]:
        expected = int(float(value))
        assert _count({"n": value}, "n", "event 0") == expected, value
    assert _count({}, "n", "event 0") is None and _count({"n": ""}, "n", "event 0") is None
    for bad in [-1, "-3", 2.5, "x", [1], True]:
        with pytest.raises(otlp.BadRequest, match=r"event 0\.n: must be"):
            _count({"n": bad}, "n", "event 0")


def test_each_records_time_is_its_own_when_records_share_or_lack_one() -> None:
    """Records in a row with the same time (remembered from one to the next), none (the
    observed time, else the request's), the same time as text and as a number, a float
    equal to the last one: each event's time is read from its own record; a bad time
    after a good one still fails naming its field."""
    base = 1796662444193000000

    def record(time: Any = None, observed: Any = None, sequence: int = 0) -> dict[str, Any]:
        found: dict[str, Any] = {
            "body": {"stringValue": "claude_code.api_error"},
            "attributes": [
                {"key": "session.id", "value": {"stringValue": "s"}},
                {"key": "event.sequence", "value": {"intValue": sequence}},
            ],
        }
        if time is not None:
            found["timeUnixNano"] = time
        if observed is not None:
            found["observedTimeUnixNano"] = observed
        return found

    def stamped(nanos: int) -> str:
        when = datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    later = base + 7_000_000_000
    records = [
        (record(str(base)), stamped(base)),
        (record(str(base)), stamped(base)),
        (record(base), stamped(base)),
        (record(None, str(later)), stamped(later)),
        (record("0", str(later)), stamped(later)),
        (record(str(base)), stamped(base)),
        (record(float(later)), stamped(later)),
        (record(base + 1_000_000), stamped(base + 1_000_000)),
        (record(), "2026-01-02T03:04:05.006Z"),
    ]
    payload = {"resourceLogs": [{"scopeLogs": [{"logRecords": [r for r, _ in records]}]}]}
    now = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)
    for _ in range(2):  # the second time begins with the first's last time remembered
        parsed = otlp.parse_logs(payload, now)
        assert [event.at for event in parsed.events] == [at for _, at in records]
    for good, wrong in [(str(base), "x"), (1, True)]:  # True == 1, but not a time
        bad = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record(good), record(wrong)]}]}]}
        with pytest.raises(otlp.BadRequest, match=r"logRecords\[1\]\.timeUnixNano: must be an"):
            otlp.parse_logs(bad, now)
