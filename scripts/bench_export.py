"""Speed of ``orchestrator export otlp``: spans per second from a demo store, beside the
OpenTelemetry SDK's own OTLP/HTTP exporter fed the same spans prebuilt (the floor: the
encoding and the POSTs alone), and the peak memory of each, at two store sizes (flat
memory: the export holds one batch of runs at a time).

Both send to a local sink that answers 200 to every POST /v1/traces (the receiver's own
speed is not measured). Each measurement runs in a fresh process (its peak RSS its own).

    .venv/bin/python scripts/bench_export.py [--prompts 100000] [--small 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_export(db: str) -> dict[str, float]:
    from orchestrator.commands.export import export_otlp

    sink = _sink()
    started = time.perf_counter()
    result = export_otlp(db, sink)
    took = time.perf_counter() - started
    return {"spans": result.spans, "seconds": took, "peak_mb": _peak_mb()}


def phase_floor(db: str) -> dict[str, float]:
    """The same spans built first (not timed), then only the SDK exporter's export()."""
    from orchestrator.commands.export import BATCH, _rows_of, build_traces, make_exporter
    from orchestrator.store.targets import backend_for

    async def spans() -> list[list[Any]]:
        backend = backend_for(db)
        await backend.open()
        roots = [
            row["id"]
            for row in await backend.fetchall(
                "SELECT id FROM agents WHERE parent_agent_id IS NULL AND status IN "
                "('completed', 'failed', 'cancelled') ORDER BY created_at, id"
            )
        ]
        workflows = {
            r["id"]: r["name"]
            for r in await backend.fetchall("SELECT id, name FROM orchestrator_agents")
        }
        batches = []
        for start in range(0, len(roots), BATCH):
            chunk = roots[start : start + BATCH]
            runs, prompts, logs = await _rows_of(backend, chunk)
            traces = build_traces(runs, prompts, logs, workflows)
            batches.append([span for root in chunk for span in traces.get(root, [])])
        await backend.close()
        return batches

    batches = asyncio.run(spans())
    exporter = make_exporter(_sink() + "/v1/traces", {}, 10.0)
    started = time.perf_counter()
    for batch in batches:
        exporter.export(batch)
    took = time.perf_counter() - started
    return {"spans": sum(map(len, batches)), "seconds": took, "peak_mb": _peak_mb()}


def _child(phase: str, db: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--db", db],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--phase", choices=["export", "floor"])
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.phase:
        phase = phase_export if args.phase == "export" else phase_floor
        print(json.dumps(phase(args.db)))
        return
    from orchestrator.commands.demo import create_demo_database

    with tempfile.TemporaryDirectory() as folder:
        for prompts in (args.small, args.prompts):
            db = os.path.join(folder, f"demo-{prompts}.db")
            asyncio.run(create_demo_database(Path(db), prompts=prompts, days=42, seed=7))
            ours, floor = _child("export", db), _child("floor", db)
            print(
                f"{prompts:>7} prompts, {ours['spans']:.0f} spans: "
                f"export otlp {ours['spans'] / ours['seconds']:,.0f} spans/s "
                f"(peak {ours['peak_mb']:.0f} MB); "
                f"SDK exporter fed prebuilt spans {floor['spans'] / floor['seconds']:,.0f} spans/s "
                f"(peak {floor['peak_mb']:.0f} MB); "
                f"ratio {floor['seconds'] / ours['seconds']:.2f}"
            )


if __name__ == "__main__":
    main()
