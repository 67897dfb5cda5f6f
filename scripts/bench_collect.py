"""``orchestrator collect`` under load, beside a raw executemany of the same rows.

    python scripts/bench_collect.py [--clients 8] [--requests 50] [--turns 10]
                                    [--metrics-every 5] [--db PATH|postgresql://...]
                                    [--protobuf] [--workers N]

The load: ``--clients`` Claude Code sessions, each posting ``--requests`` OTLP/JSON exports
(``--protobuf``: the same requests as OTLP protobuf) over one keep-alive connection (as the
OpenTelemetry exporter does), from a process of their own (a client's CPU is not the
server's). A logs export holds ``--turns`` turns of
the recorded session of tests/data/otlp (logs-user-prompt, logs-api-request,
logs-tool-result: a user prompt, a tool decision, an API request and its response, a tool
result, an API request and its response: 7 log records) with their own prompt, request and
tool-use ids, event sequence numbers and times (a turn every 20 s); every
``--metrics-every``-th export is instead the recorded metrics (metrics-usage,
metrics-usage-2, metrics-active-time: 11 data points).

An *event* is one log record or one metric data point received (what Claude Code sends);
each is stored (an API request and its response are one prompt row, a data point is added
to its day's sum). The server (collect's, in this process, or ``--workers N`` processes
accepting from one listening socket as ``collect --workers`` does, each with its own
writer, the connections each accepted printed; writing a fresh store: an SQLite file, or
with ``--db postgresql://...`` a database made on that server and dropped after) is timed
from the first request to the last answer: events/s, requests/s, p50/p99 request latency,
peak RSS, and the CPU time (user + system) per event of the server process(es) and, apart,
of the clients' process while posting: events per CPU-second carry to a machine with more
cores; the server's CPU-seconds per second of the run (one process cannot pass one core:
its Python holds one lock). The writer's flush is the time its transactions took
(statements and commits). The baselines: every row the run stored, read back and inserted
into other fresh stores of the same engine with the driver's own ``executemany`` (sqlite3 /
asyncpg), no lookup, no HTTP: in one transaction; in one transaction without the store's
triggers (what the triggers cost); in as many transactions as the writer committed (what
the commits cost). The flush's rows/s beside them as ratios. Stored counts are checked
against the events sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.claude_code import otlp  # noqa: E402
from orchestrator.claude_code.collect import Collector, CollectServer, settle_receiver  # noqa: E402

DATA = ROOT / "tests" / "data" / "otlp"
RECORDED_LOGS = ["logs-user-prompt.json", "logs-api-request.json", "logs-tool-result.json"]
RECORDED_METRICS = ["metrics-usage.json", "metrics-usage-2.json", "metrics-active-time.json"]
UNIQUE = ("prompt.id", "request_id", "tool_use_id")
TURN_NANOS = 20 * 10**9
#: The tables collect writes, parents first (the baseline inserts them in this order).
TABLES = [
    "orchestrator_agents",
    "agents",
    "agent_attributes",
    "otel_user_prompts",
    "prompts",
    "otel_requests",
    "agent_logs",
    "otel_metrics_daily",
]


def recorded_turn() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The recorded logs payloads' resource and log records (one turn, in order)."""
    records: list[dict[str, Any]] = []
    resource_part: dict[str, Any] = {}
    for name in RECORDED_LOGS:
        for resource_logs in json.loads((DATA / name).read_text())["resourceLogs"]:
            resource_part = resource_logs["resource"]
            for scope in resource_logs["scopeLogs"]:
                records.extend(scope["logRecords"])
    return resource_part, records


def logs_body(
    resource_part: dict[str, Any],
    turn: list[dict[str, Any]],
    session: str,
    first: int,
    turns: int,
) -> bytes:
    """Turns ``first`` .. ``first + turns - 1`` of session ``session``: the recorded turn
    with the session's id, each turn's own ids and sequence numbers, 20 s after the last."""
    out = []
    for number in range(first, first + turns):
        for sequence, record in enumerate(turn):
            record = copy.deepcopy(record)
            for key in ("timeUnixNano", "observedTimeUnixNano"):  # a turn every 20 s
                if key in record:
                    record[key] = str(int(record[key]) + number * TURN_NANOS)
            for attribute in record["attributes"]:
                value = attribute["value"]
                if attribute["key"] == "session.id":
                    value["stringValue"] = session
                elif attribute["key"] in UNIQUE and "stringValue" in value:
                    value["stringValue"] = f"{value['stringValue']}-{session}-{number}"
                elif attribute["key"] == "event.sequence":
                    value.clear()
                    value["intValue"] = str(number * len(turn) + sequence)
            out.append(record)
    payload = {
        "resourceLogs": [
            {
                "resource": resource_part,
                "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code"}, "logRecords": out}],
            }
        ]
    }
    return json.dumps(payload).encode()


def metrics_body(session: str) -> bytes:
    """The recorded metrics exports as one, their session.id the client's."""
    resource_metrics = []
    for name in RECORDED_METRICS:
        for part in json.loads((DATA / name).read_text())["resourceMetrics"]:
            for scope in part["scopeMetrics"]:
                for metric in scope["metrics"]:
                    for kind in ("sum", "gauge"):
                        for point in metric.get(kind, {}).get("dataPoints", []):
                            for attribute in point.get("attributes", []):
                                if attribute["key"] == "session.id":
                                    attribute["value"] = {"stringValue": session}
            resource_metrics.append(part)
    return json.dumps({"resourceMetrics": resource_metrics}).encode()


def as_protobuf(path: str, body: bytes) -> bytes:
    """An OTLP/JSON body as the same request in protobuf."""
    from google.protobuf import json_format

    message = otlp._message(path.removeprefix("/v1/"))
    return bytes(json_format.Parse(body, message).SerializeToString())


def client_bodies(args: argparse.Namespace, client: int) -> list[tuple[str, bytes]]:
    if args.protobuf:
        return [(path, as_protobuf(path, body)) for path, body in json_bodies(args, client)]
    return json_bodies(args, client)


def json_bodies(args: argparse.Namespace, client: int) -> list[tuple[str, bytes]]:
    resource_part, turn = recorded_turn()
    session = str(uuid.UUID(int=client + 1))
    bodies = []
    turns_sent = 0
    for number in range(args.requests):
        if args.metrics_every and number % args.metrics_every == args.metrics_every - 1:
            bodies.append(("/v1/metrics", metrics_body(session)))
        else:
            bodies.append(
                ("/v1/logs", logs_body(resource_part, turn, session, turns_sent, args.turns))
            )
            turns_sent += args.turns
    return bodies


def clients(args: argparse.Namespace, port: int, ready: Any, go: Any, out: Any) -> None:
    """The client process: build every body, say so, wait, post them from one thread per
    client over a keep-alive connection each; send back the latencies."""
    bodies = [client_bodies(args, c) for c in range(args.clients)]
    content_type = "application/x-protobuf" if args.protobuf else "application/json"
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def post_all(mine: list[tuple[str, bytes]]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        took = []
        for path, body in mine:
            started = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
            took.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    failures.append(f"{path}: {response.status} {answer[:200]!r}")
        connection.close()
        with lock:
            latencies.extend(took)

    threads = [threading.Thread(target=post_all, args=(mine,)) for mine in bodies]
    ready.set()
    go.wait()
    before = resource.getrusage(resource.RUSAGE_SELF)  # posting only, not building bodies
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    out.send((latencies, failures, cpu))


class Timed:
    """The CPU time (of the calling thread) spent in a function, summed over threads."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.seconds = 0.0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return self.function(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            with self.lock:
                self.seconds += spent


class TimedCollector(Collector):
    """The writer, with the CPU time its thread spends in transactions (the SQLite driver
    runs in that thread; a PostgreSQL server's own CPU is not counted)."""

    cpu = 0.0

    async def _write(self, work: Any) -> None:
        started = time.thread_time()
        try:
            await super()._write(work)
        finally:
            self.cpu += time.thread_time() - started


def worker(
    db: str,
    listener: Any,
    shared: tuple[Any, Any, int],
    ready: Any,
    go: Any,
    stop: Any,
    out: Any,
) -> None:
    """A receiver process: collect's server and writer of its own, accepting from the
    listening socket it shares with the others, taking turns with their writers and
    counting its connections in the spread as ``collect --workers`` does (``shared``: the
    turns' lock, the spread, this worker's place in it)."""
    turns, spread, index = shared

    class Counting(CollectServer):
        accepted = 0

        def process_request(self, request: Any, client_address: Any) -> None:
            self.accepted += 1
            super().process_request(request, client_address)

    collector = Collector(db, turns=turns)
    collector.start()
    server = Counting(
        ("127.0.0.1", 0),
        collector,
        max_body=otlp.MAX_BODY,
        listener=listener,
        spread=spread,
        worker=index,
    )
    settle_receiver()  # as collect's workers do
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    ready.set()
    go.wait()
    reset_peak_rss()
    before = cpu_seconds()
    stop.wait()
    cpu = cpu_seconds() - before
    peak = peak_rss_mb()
    server.shutdown()
    server.server_close()
    serving.join()
    collector.stop()
    out.send((cpu, collector.flush_seconds, collector.flushes, peak, server.accepted))


class Receivers:
    """``count`` receiver processes accepting from one listening socket (whichever
    accepts a connection first serves it: ``collect --workers``), each writing the store
    through its own writer, the writers taking turns as collect's do."""

    def __init__(self, context: Any, db: str, count: int) -> None:
        import socket

        from orchestrator.store.targets import backend_for

        async def migrate() -> None:  # once, before the writers open it together
            backend = backend_for(db)
            await backend.open()
            await backend.close()

        asyncio.run(migrate())
        listener = socket.create_server(("127.0.0.1", 0), backlog=CollectServer.request_queue_size)
        listener.setblocking(False)  # a worker that lost the race to accept moves on
        self.port = listener.getsockname()[1]
        self.start, self.end = context.Event(), context.Event()
        turns = context.Lock()  # the writers take turns with it, as collect's do
        spread = context.Array("i", count, lock=False)  # the connections each serves
        self.pipes = []
        self.processes = []
        for index in range(count):
            ready = context.Event()
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=worker,
                args=(db, listener, (turns, spread, index), ready, self.start, self.end, send),
            )
            process.start()
            ready.wait()
            self.pipes.append(receive)
            self.processes.append(process)
        listener.close()  # the workers hold it

    def go(self) -> None:
        self.start.set()

    def stop(self) -> tuple[float, float, int, float, list[int]]:
        """CPU seconds, flush seconds and transactions summed over the workers; the sum
        of their peak RSS (MB); the connections each accepted."""
        self.end.set()
        found = [pipe.recv() for pipe in self.pipes]
        for process in self.processes:
            process.join()
        return (
            sum(f[0] for f in found),
            sum(f[1] for f in found),
            sum(f[2] for f in found),
            sum(f[3] for f in found),
            [f[4] for f in found],
        )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


# -- stores -----------------------------------------------------------------------------


class Stores:
    """Two fresh stores of one engine: collect's and the baseline's."""

    def __init__(self, db: str | None) -> None:
        self.url = db if db and db.startswith(("postgres://", "postgresql://")) else None
        self.made: list[str] = []
        self.folder: Path | None = None
        if self.url is None:
            self.folder = folder = Path(tempfile.mkdtemp(prefix="bench-collect-"))
            self.collect = db or str(folder / "collect.db")
            self.raw = str(folder / "raw.db")
            self.bare = str(folder / "bare.db")
            self.split = str(folder / "split.db")
        else:
            suffix = f"{os.getpid()}_{int(time.time())}"
            self.collect = self._database(f"bench_collect_{suffix}")
            self.raw = self._database(f"bench_collect_raw_{suffix}")
            self.bare = self._database(f"bench_collect_bare_{suffix}")
            self.split = self._database(f"bench_collect_split_{suffix}")

    @property
    def engine(self) -> str:
        return "SQLite" if self.url is None else "PostgreSQL"

    def _admin(self, sql: str, url: str | None = None) -> None:
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(url or self.url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def _database(self, name: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        assert self.url is not None
        self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop(self) -> None:
        for name in self.made:
            self._admin(f'DROP DATABASE IF EXISTS "{name}"')
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def prepare_raw(self) -> None:
        """The baselines' stores, migrated (the same schema, triggers and indexes); the
        bare one without the triggers (its search index and summary tables not kept)."""
        from orchestrator.store.targets import backend_for

        async def run() -> None:
            for target in (self.raw, self.bare, self.split):
                backend = backend_for(target)
                await backend.open()
                await backend.close()

        asyncio.run(run())
        if self.url is None:
            conn = sqlite3.connect(self.bare, isolation_level=None)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                conn.execute(f"DROP TRIGGER {name}")
            conn.close()
        else:
            self._admin(
                "; ".join(f"ALTER TABLE {table} DISABLE TRIGGER USER" for table in TABLES),
                self.bare,
            )

    def rows(self) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        """Every row collect stored, per table: (columns, rows)."""
        found: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        if self.url is None:
            conn = sqlite3.connect(self.collect)
            for table in TABLES:
                cursor = conn.execute(f"SELECT * FROM {table}")
                found[table] = ([c[0] for c in cursor.description], cursor.fetchall())
            conn.close()
            return found
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.collect)
            try:
                for table in TABLES:
                    columns = [  # not the generated ones (search)
                        r["column_name"]
                        for r in await conn.fetch(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = $1 AND table_schema = current_schema() "
                            "AND is_generated = 'NEVER' ORDER BY ordinal_position",
                            table,
                        )
                    ]
                    records = await conn.fetch(f"SELECT {', '.join(columns)} FROM {table}")
                    found[table] = (columns, [tuple(r.values()) for r in records])
            finally:
                await conn.close()

        asyncio.run(run())
        return found

    def executemany(
        self,
        rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
        target: str,
        transactions: int = 1,
    ) -> float:
        """Insert ``rows`` into a baseline's store in ``transactions`` transactions (each a
        slice of every table, parents first); seconds taken."""
        parts = split(rows, transactions)
        if self.url is None:
            from orchestrator.store.sqlite import configure

            conn = sqlite3.connect(target, isolation_level=None)
            configure(conn)  # the writer's settings (synchronous = FULL...)
            started = time.perf_counter()
            for part in parts:
                conn.execute("BEGIN IMMEDIATE")
                for table, (columns, values) in part.items():
                    if values:
                        conn.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})",
                            values,
                        )
                conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
            conn.close()
            return elapsed
        import asyncpg

        async def run() -> float:
            conn = await asyncpg.connect(target)
            try:
                started = time.perf_counter()
                for part in parts:
                    async with conn.transaction():
                        for table, (columns, values) in part.items():
                            if values:
                                places = ", ".join(f"${n + 1}" for n in range(len(columns)))
                                await conn.executemany(
                                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places})",
                                    values,
                                )
                return time.perf_counter() - started
            finally:
                await conn.close()

        return asyncio.run(run())


def split(
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], transactions: int
) -> list[dict[str, tuple[list[str], list[tuple[Any, ...]]]]]:
    """``rows`` in ``transactions`` slices: the runs, workflows and attributes in the first,
    every other table's rows spread evenly (an API request's row in its prompt's slice)."""
    columns, requests = rows["otel_requests"]
    prompt_ids = [row[0] for row in rows["prompts"][1]]
    at = {prompt_id: n for n, prompt_id in enumerate(prompt_ids)}
    by_prompt = columns.index("prompt_id")
    ordered = {**rows, "otel_requests": (columns, sorted(requests, key=lambda r: at[r[by_prompt]]))}
    first_only = ("orchestrator_agents", "agents", "agent_attributes")
    parts = []
    for k in range(transactions):
        part = {}
        for table, (names, values) in ordered.items():
            if table in first_only:
                part[table] = (names, values if k == 0 else [])
            else:
                size = len(values)
                part[table] = (
                    names,
                    values[size * k // transactions : size * (k + 1) // transactions],
                )
        parts.append(part)
    return parts


def count(stores: Stores, sql: str) -> int:
    if stores.url is None:
        conn = sqlite3.connect(stores.collect)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    import asyncpg

    async def run() -> int:
        conn = await asyncpg.connect(stores.collect)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="exports per client")
    parser.add_argument("--turns", type=int, default=10, help="recorded turns per logs export")
    parser.add_argument(
        "--metrics-every", type=int, default=5, help="every Nth export is metrics (0: none)"
    )
    parser.add_argument("--db", help="an SQLite path or a postgresql:// server URL")
    parser.add_argument(
        "--protobuf", action="store_true", help="post http/protobuf (else http/json)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="receiver processes sharing the port"
    )
    args = parser.parse_args()

    stores = Stores(args.db)
    try:
        run(args, stores)
    finally:
        stores.drop()


def run(args: argparse.Namespace, stores: Stores) -> None:
    _, turn = recorded_turn()
    metric_points = sum(
        len(otlp.parse_metrics(json.loads((DATA / name).read_text())).points)
        for name in RECORDED_METRICS
    )
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    receive, send = context.Pipe(duplex=False)
    if args.workers > 1:
        receivers = Receivers(context, stores.collect, args.workers)
        port = receivers.port
    else:
        import orchestrator.claude_code.collect as collect_module

        parse_cpu = Timed(otlp.parse)
        build_cpu = Timed(collect_module.build)
        otlp.parse, collect_module.build = parse_cpu, build_cpu
        collector = TimedCollector(stores.collect)
        collector.start()
        server = CollectServer(("127.0.0.1", 0), collector, max_body=otlp.MAX_BODY)
        settle_receiver()  # as collect does
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        serving.start()
        port = server.server_address[1]
    process = context.Process(target=clients, args=(args, port, ready, go, send))
    process.start()
    ready.wait()
    reset_peak_rss()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    go.set()
    if args.workers > 1:
        receivers.go()
    latencies, failures, client_cpu = receive.recv()
    elapsed = time.perf_counter() - started
    if args.workers > 1:
        server_cpu, flush, flushes, peak_mb, spread = receivers.stop()
    else:
        server_cpu = cpu_seconds() - cpu_before
        peak_mb = peak_rss_mb()
        server.shutdown()
        server.server_close()
        serving.join()
        collector.stop()
        flush, flushes = collector.flush_seconds, collector.flushes
        cpu_parts = (parse_cpu.seconds, build_cpu.seconds, collector.cpu)
    process.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, the first: {failures[0]}")

    metrics_requests = args.metrics_every and args.requests // args.metrics_every
    logs_requests = args.requests - metrics_requests
    turns = args.clients * logs_requests * args.turns
    events = turns * len(turn) + args.clients * metrics_requests * metric_points
    requests = args.clients * args.requests
    expected = {
        "prompts": turns * 2,
        "agent_logs": turns * 2,  # a tool decision, a tool result
        "otel_user_prompts": turns,
        "agents": args.clients,
    }
    for table, wanted in expected.items():
        got = count(stores, f"SELECT count(*) FROM {table}")
        if got != wanted:
            raise SystemExit(f"collect stored {got} rows in {table}, {wanted} sent")
    if metrics_requests:
        points = count(stores, "SELECT sum(points) FROM otel_metrics_daily")
        if points != args.clients * metrics_requests * metric_points:
            raise SystemExit(f"collect counted {points} data points")

    stored = stores.rows()
    rows = sum(len(values) for _, values in stored.values())
    stores.prepare_raw()
    raw_elapsed = stores.executemany(stored, stores.raw)
    bare_elapsed = stores.executemany(stored, stores.bare)
    split_elapsed = stores.executemany(stored, stores.split, flushes)

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"{stores.engine}, {'protobuf' if args.protobuf else 'JSON'}"
        f"{f', {args.workers} receiver processes' if args.workers > 1 else ''}: "
        f"{args.clients} clients x {args.requests} exports "
        f"({args.turns} turns = {args.turns * len(turn)} log records each; every "
        f"{args.metrics_every}th: {metric_points} metric points): {events:,} events, "
        f"{requests} requests, {rows:,} rows stored"
    )
    print(
        f"collect      {elapsed:7.2f} s  {events / elapsed:9,.0f} events/s  "
        f"{requests / elapsed:6,.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"CPU          server {server_cpu:.2f} s ({server_cpu / events * 1e6:.0f} us/event, "
        f"{events / server_cpu:,.0f} events per CPU-second); clients {client_cpu:.2f} s "
        f"({client_cpu / events * 1e6:.0f} us/event, {events / client_cpu:,.0f} events per "
        f"CPU-second); {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    if args.workers == 1:
        reading, building, writing = (part / events * 1e6 for part in cpu_parts)
        rest = server_cpu / events * 1e6 - reading - building - writing
        print(
            f"server CPU per event: reading the body {reading:.0f} us, building rows "
            f"{building:.0f} us, the writer's thread {writing:.0f} us, the rest (HTTP, "
            f"threads, hand-offs) {rest:.0f} us"
        )
    if args.workers > 1:
        print(
            f"connections accepted per receiver process: {', '.join(map(str, spread))}; "
            f"server CPU {server_cpu / elapsed:.2f} s per second"
        )
    else:
        print(f"server CPU {server_cpu / elapsed:.2f} s per second (one process: one core)")
    print(f"writer flush {flush:7.2f} s  {rows / flush:9,.0f} rows/s  ({flushes} transactions)")
    print(
        f"executemany  {raw_elapsed:7.2f} s  {rows / raw_elapsed:9,.0f} rows/s  "
        "(1 transaction, the store's triggers)"
    )
    print(
        f"executemany  {bare_elapsed:7.2f} s  {rows / bare_elapsed:9,.0f} rows/s  "
        f"(1 transaction, no triggers: they take {1 - bare_elapsed / raw_elapsed:.0%} "
        "of the insert)"
    )
    print(
        f"executemany  {split_elapsed:7.2f} s  {rows / split_elapsed:9,.0f} rows/s  "
        f"({flushes} transactions, as many as the writer's)"
    )
    print(
        f"flush / executemany (rows/s): {raw_elapsed / flush:.2f}x of 1 transaction's, "
        f"{split_elapsed / flush:.2f}x of {flushes} transactions'"
    )


if __name__ == "__main__":
    main()
