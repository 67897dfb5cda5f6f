"""``orchestrator collect`` under load, beside a raw executemany of the same rows.

    python scripts/bench_collect.py [--clients 8] [--requests 50] [--copies 20] [--db PATH]

Builds ``--clients`` x ``--requests`` OTLP/JSON log requests from the recorded Claude Code
payloads of tests/data/otlp (a user prompt, an API request, a tool result), each request
``--copies`` copies of them with their own session, prompt, request and tool-use ids and
event sequence numbers (so nothing is a repeat); starts ``collect``'s server in this process
on a fresh SQLite store and posts them from ``--clients`` threads at once, each request over
its own connection. Prints the events stored per second (events as ``Batch.events`` counts
them), the p50 and p99 request latency, and the process's peak RSS (the server and the
clients). Beside it, the baseline: the prompts and agent logs those requests hold (built by
``collect.build``, as the server builds them) inserted into another fresh store with
sqlite3's ``executemany`` in one transaction (no run lookup, no repeat check, no HTTP);
its rows per second and the ratio. The stored counts are checked against the rows sent.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import sqlite as backend  # noqa: E402
from orchestrator.claude_code import otlp  # noqa: E402
from orchestrator.claude_code.collect import PLACEHOLDER, Collector, CollectServer, build  # noqa: E402
from orchestrator.core.rows import AGENT_LOG_COLUMNS, PROMPT_COLUMNS  # noqa: E402

DATA = ROOT / "tests" / "data" / "otlp"
RECORDED = ["logs-user-prompt.json", "logs-api-request.json", "logs-tool-result.json"]
UNIQUE = ("session.id", "prompt.id", "request_id", "tool_use_id")


def recorded_records() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recorded payloads' resource and log records (in order)."""
    records: list[dict[str, Any]] = []
    resource_part: dict[str, Any] = {}
    for name in RECORDED:
        for resource_logs in json.loads((DATA / name).read_text())["resourceLogs"]:
            resource_part = resource_logs["resource"]
            for scope in resource_logs["scopeLogs"]:
                records.extend(scope["logRecords"])
    return resource_part, records


def request_body(
    resource_part: dict[str, Any], records: list[dict[str, Any]], tag: str, copies: int
) -> bytes:
    """``copies`` copies of ``records``, each one session's, ids made unique by ``tag``."""
    out = []
    for number in range(copies):
        for sequence, record in enumerate(records):
            record = copy.deepcopy(record)
            for attribute in record["attributes"]:
                value = attribute["value"]
                if attribute["key"] in UNIQUE and "stringValue" in value:
                    value["stringValue"] = f"{value['stringValue']}-{tag}-{number}"
                elif attribute["key"] == "event.sequence":
                    value.clear()
                    value["intValue"] = str(number * len(records) + sequence)
            out.append(record)
    payload = {
        "resourceLogs": [
            {
                "resource": resource_part,
                "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": out}],
            }
        ]
    }
    return json.dumps(payload).encode()


def post(port: int, body: bytes) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/logs",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"collect answered {response.status}")
    return time.perf_counter() - started


def run_collect(db: Path, bodies: list[list[bytes]]) -> tuple[float, list[float]]:
    collector = Collector(str(db))
    collector.start()
    server = CollectServer(("127.0.0.1", 0), collector, max_body=otlp.MAX_BODY)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    port = server.server_address[1]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(mine: list[bytes]) -> None:
        for body in mine:
            took = post(port, body)
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in bodies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    server.shutdown()
    server.server_close()
    serving.join()
    collector.stop()
    return elapsed, latencies


def raw_rows(bodies: list[list[bytes]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """The prompts and agent logs the requests hold, as collect builds them; the events."""
    prompts: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    events = 0
    for mine in bodies:
        for body in mine:
            batch = build(otlp.parse_logs(json.loads(body)))
            events += batch.events
            for session in batch.sessions.values():
                prompts.extend(prompt.row for prompt in session.prompts)
                logs.extend(session.logs)
    return prompts, logs, events


def run_raw(db: Path, prompts: list[tuple[Any, ...]], logs: list[tuple[Any, ...]]) -> float:
    conn = sqlite3.connect(db)
    now = "2026-01-01T00:00:00.000Z"
    conn.execute(
        "INSERT INTO orchestrator_agents (id, name, created_at, updated_at) "
        "VALUES ('w', 'bench', ?, ?)",
        (now, now),
    )
    conn.execute(
        "INSERT INTO agents (id, orchestrator_agent_id, status, created_at) "
        "VALUES (?, 'w', 'running', ?)",
        (PLACEHOLDER, now),
    )
    conn.commit()
    started = time.perf_counter()
    with conn:
        conn.executemany(
            f"INSERT INTO prompts ({', '.join(PROMPT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(PROMPT_COLUMNS))})",
            prompts,
        )
        conn.executemany(
            f"INSERT INTO agent_logs ({', '.join(AGENT_LOG_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(AGENT_LOG_COLUMNS))})",
            logs,
        )
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--copies", type=int, default=20, help="recorded sessions per request")
    parser.add_argument("--db", type=Path, help="the store collect writes (default: a temp file)")
    args = parser.parse_args()

    resource_part, records = recorded_records()
    bodies = [
        [
            request_body(resource_part, records, f"c{c}r{r}", args.copies)
            for r in range(args.requests)
        ]
        for c in range(args.clients)
    ]
    prompts, logs, events = raw_rows(bodies)
    folder = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    db = args.db or folder / "collect.db"
    raw_db = folder / "raw.db"
    for path in (db, raw_db):
        backend.connect(path).close()  # the schema

    elapsed, latencies = run_collect(db, bodies)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stored = count(db, "prompts"), count(db, "agent_logs")
    if stored[0] != len(prompts):
        raise SystemExit(f"collect stored {stored[0]} prompts of {len(prompts)} sent")
    raw_elapsed = run_raw(raw_db, prompts, logs)

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rows = len(prompts) + len(logs)
    print(
        f"{args.clients} clients x {args.requests} requests x {args.copies} sessions: "
        f"{events} events ({len(prompts)} prompts, {len(logs)} agent logs stored: "
        f"{stored[1]} in the store)"
    )
    print(
        f"collect      {elapsed:8.2f} s  {events / elapsed:10,.0f} events/s  "
        f"{rows / elapsed:10,.0f} rows/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"executemany  {raw_elapsed:8.2f} s  {'':>10}           {rows / raw_elapsed:10,.0f} rows/s"
    )
    print(f"collect / executemany (rows/s): {raw_elapsed / elapsed:.2f}x")


if __name__ == "__main__":
    main()
