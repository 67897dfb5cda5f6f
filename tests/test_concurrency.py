"""Several processes writing one file at once; a writer killed mid-stream."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from orchestrator import DatabaseManager

WRITERS = 4
RUNS_PER_WRITER = 5
LOGS_PER_RUN = 300


def _writer(path: str, number: int) -> None:
    async def work() -> None:
        async with DatabaseManager(path, flush_interval=0.05, batch_size=100) as db:
            for run_number in range(RUNS_PER_WRITER):
                async with db.agent_run(
                    f"workflow-{number % 2}", session_id=f"w{number}-r{run_number}"
                ) as run:
                    for i in range(LOGS_PER_RUN):
                        run.log("event", f"writer {number} run {run_number} event {i}")
                        if i % 50 == 0:
                            await run.prompt(
                                "p", "r", model="claude-haiku-4-5", tokens_input=10, tokens_output=5
                            )
                            await db.log_system_event("INFO", f"writer {number} tick")
                        if i % 25 == 0:
                            await asyncio.sleep(0)

    asyncio.run(work())


def test_several_processes_write_at_once_without_errors_or_losses(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db_path), n)) for n in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(180)
        assert proc.exitcode == 0, "a writer process failed (see its stderr)"
    conn = sqlite3.connect(db_path)
    runs = WRITERS * RUNS_PER_WRITER
    assert conn.execute("SELECT count(*) FROM agents WHERE status = 'completed'").fetchone() == (
        runs,
    )
    assert conn.execute("SELECT count(*) FROM agent_logs WHERE log_type = 'event'").fetchone() == (
        runs * LOGS_PER_RUN,
    )
    assert conn.execute("SELECT count(*) FROM prompts").fetchone() == (runs * LOGS_PER_RUN // 50,)
    assert conn.execute("SELECT count(*) FROM system_logs").fetchone() == (
        runs * LOGS_PER_RUN // 50,
    )
    assert conn.execute("SELECT count(*) FROM orchestrator_agents").fetchone() == (2,)
    # every run's totals agree with its prompts
    assert conn.execute(
        "SELECT count(*) FROM agents a WHERE prompt_count != "
        "(SELECT count(*) FROM prompts p WHERE p.agent_id = a.id)"
    ).fetchone() == (0,)


KILLED_WRITER = textwrap.dedent("""
    import asyncio, sys
    from orchestrator import DatabaseManager

    async def main():
        async with DatabaseManager(sys.argv[1], flush_interval=1.0) as db:
            async with db.agent_run("killed") as run:
                i = 0
                while True:
                    for _ in range(200):
                        run.log("event", f"event {i}", {"i": i})
                        i += 1
                    await db.flush()
                    # acknowledged: everything below i is on disk
                    print(i, flush=True)
                    for _ in range(137):  # queued, not yet flushed when the kill lands
                        run.log("event", "unflushed")
                    await asyncio.sleep(0.01)

    asyncio.run(main())
""")


def test_sigkill_mid_stream_leaves_an_intact_file_with_every_flushed_row(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = 0
    deadline = time.monotonic() + 60
    while acknowledged < 3000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged >= 3000, "the writer did not get going"
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    stored = {
        row[0]
        for row in conn.execute(
            "SELECT json_extract(metadata, '$.i') FROM agent_logs WHERE message LIKE 'event %'"
        )
    }
    assert set(range(acknowledged)) <= stored
    assert conn.execute("SELECT status FROM agents").fetchone() == ("running",)
