"""Several processes writing one store at once; a writer killed mid-stream.

On PostgreSQL the writers are 16 processes, as 16 hosts writing to one server would be:
they share workflows (so the same summary rows), and none may lose a row or deadlock.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from backends import Target, is_postgres, rows

from orchestrator import DatabaseManager

#: Writer processes per backend: SQLite serialises writers on one file; a server takes many.
WRITERS = {"sqlite": 4, "postgresql": 16}
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
                        if i % 100 == 0:  # step_end rows: the step histogram's upserts
                            with run.step(f"step-{i // 100}"):
                                pass
                        run.log("event", f"writer {number} run {run_number} event {i}")
                        if i % 50 == 0:
                            await run.prompt(
                                "p", "r", model="claude-haiku-4-5", tokens_input=10, tokens_output=5
                            )
                            await db.log_system_event("INFO", f"writer {number} tick")
                        if i % 25 == 0:
                            await asyncio.sleep(0)

    asyncio.run(work())


def test_several_processes_write_at_once_without_errors_or_losses(
    db_target: Target, backend: str
) -> None:
    writers = WRITERS[backend]
    deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    deadlocks_before = rows(db_target, deadlocks) if is_postgres(db_target) else None
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db_target), n)) for n in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(240)
        assert proc.exitcode == 0, "a writer process failed (see its stderr)"

    def count(sql: str) -> int:
        return int(rows(db_target, sql)[0][0])

    runs = writers * RUNS_PER_WRITER
    assert count("SELECT count(*) FROM agents WHERE status = 'completed'") == runs
    assert count("SELECT count(*) FROM agent_logs WHERE log_type = 'event'") == runs * LOGS_PER_RUN
    assert count("SELECT count(*) FROM prompts") == runs * LOGS_PER_RUN // 50
    assert count("SELECT count(*) FROM system_logs") == runs * LOGS_PER_RUN // 50
    assert count("SELECT count(*) FROM orchestrator_agents") == 2
    # every run's totals agree with its prompts, and the summaries with the base tables
    assert (
        count(
            "SELECT count(*) FROM agents a WHERE prompt_count != "
            "(SELECT count(*) FROM prompts p WHERE p.agent_id = a.id)"
        )
        == 0
    )
    assert count("SELECT sum(prompts) FROM usage_daily") == runs * LOGS_PER_RUN // 50
    assert count("SELECT sum(runs) + sum(completed) FROM runs_daily") == 2 * runs
    assert count("SELECT sum(prompts) FROM sessions") == runs * LOGS_PER_RUN // 50
    steps = count("SELECT count(*) FROM agent_logs WHERE log_type = 'step_end'")
    assert steps == runs * LOGS_PER_RUN // 100
    assert count("SELECT sum(steps) FROM step_histogram_daily") == steps
    if deadlocks_before is not None:
        assert rows(db_target, deadlocks) == deadlocks_before, "the server saw a deadlock"


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


def test_sigkill_mid_stream_leaves_an_intact_store_with_every_flushed_row(
    db_target: Target,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(db_target)], stdout=subprocess.PIPE, text=True
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
    if not is_postgres(db_target):  # a server's integrity is the server's; a file's is ours
        conn = sqlite3.connect(db_target)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
    stored = {
        json.loads(metadata)["i"]
        for (metadata,) in rows(
            db_target, "SELECT metadata FROM agent_logs WHERE message LIKE 'event %'"
        )
    }
    assert set(range(acknowledged)) <= stored
    assert rows(db_target, "SELECT status FROM agents") == [("running",)]
