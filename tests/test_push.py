"""`orchestrator copy --follow`: a machine's file kept flowing into the team's store.

The pusher runs as a real child process. It is SIGKILLed half way through its first copy
and started again, and the server it pushes to (a cluster of the test's own) is stopped
half way and started again: every time the target ends up holding exactly the source's
rows (counts, token and cost sums, ids), nothing doubled, and rows written to the file
meanwhile arrive too.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Target, rows
from servers import postgres_cluster

from orchestrator import SyncDatabaseManager
from orchestrator.commands.copy import copy_database

ROOT = Path(__file__).resolve().parents[1]
LOGS = 150_000


def _laptop(path: Path) -> None:
    """A file with one run of 50 priced prompts and LOGS agent logs (the logs written in
    SQL: the writer would take minutes), so that a first copy takes a few seconds."""
    _more(path, "laptop")
    conn = sqlite3.connect(path)
    with conn:
        (run_id,) = conn.execute("SELECT id FROM agents").fetchone()
        conn.executemany(
            "INSERT INTO agent_logs (id, agent_id, log_type, message, created_at) "
            "VALUES (?, ?, 'event', ?, ?)",
            (
                (str(uuid.UUID(int=index + 1)), run_id, f"log {index}", "2026-11-20T10:00:00Z")
                for index in range(LOGS)
            ),
        )
    conn.close()


def _more(path: Target, name: str) -> None:
    """A run of 50 priced prompts and a few logs, written by the writer."""
    with SyncDatabaseManager(path) as db, db.agent_run(name) as run:
        for index in range(50):
            run.prompt(
                f"prompt {index}",
                "answer",
                model="claude-sonnet-4-5",
                tokens_input=1000 + index,
                tokens_output=100 + index,
            )
            run.log("event", f"{name} {index}")


def _numbers(target: Target) -> list[Any]:
    """What must be equal on both sides: row counts, token and cost sums, the runs' totals."""
    return [
        *rows(target, "SELECT count(*) FROM agents")[0],
        *rows(target, "SELECT count(*), sum(tokens_input), sum(cost_usd) FROM prompts")[0],
        *rows(target, "SELECT count(*), count(DISTINCT id) FROM agent_logs")[0],
        *rows(target, "SELECT sum(prompt_count), sum(total_tokens_input) FROM agents")[0],
        *rows(target, "SELECT sum(prompts), sum(tokens_input) FROM usage_daily")[0],
    ]


def _logs(target: Target) -> int:
    try:
        return int(rows(target, "SELECT count(*) FROM agent_logs")[0][0])
    except Exception:  # not created yet, or the server away
        return 0


@pytest.fixture
def pushers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _push(source: Path, target: str, log: Path, pushers: list[Any]) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "copy"]
    command += ["--follow", "--every", "0.5", str(source), target]
    with log.open("ab") as output:
        child = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    pushers.append(child)
    return child


def _wait(until: Any, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _caught_up(source: Path, target: str, log: Path) -> None:
    expected = _numbers(source)
    _wait(lambda: _numbers(target) == pytest.approx(expected), log)
    # Nothing left to copy, and the copy's own verification passes.
    result = copy_database(source, target)
    assert result.inserted == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_push_killed_half_way_is_started_again_and_nothing_is_doubled_or_lost(
    tmp_path: Path, db_target: str, pushers: list[subprocess.Popen[bytes]]
) -> None:
    source = tmp_path / "laptop.db"
    _laptop(source)
    log = tmp_path / "push.log"
    child = _push(source, db_target, log, pushers)
    _wait(lambda: _logs(db_target) > 0, log)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert 0 < _logs(db_target) < LOGS  # killed half way
    _more(source, "while-away")  # the laptop goes on writing
    _push(source, db_target, log, pushers)
    _caught_up(source, db_target, log)
    _more(source, "later")  # and what it writes next follows
    _caught_up(source, db_target, log)
    assert "copied" in log.read_text()


def test_a_push_outlives_its_server_and_catches_up(
    tmp_path: Path, pushers: list[subprocess.Popen[bytes]]
) -> None:
    """The hub (a cluster of the test's own) stopped as a crash half way through the first
    copy: the pusher says so and goes on; the file gains rows meanwhile; once the server
    is back, everything is there once."""
    source = tmp_path / "laptop.db"
    _laptop(source)
    log = tmp_path / "push.log"
    with postgres_cluster() as cluster:
        _push(source, cluster.url, log, pushers)
        _wait(lambda: _logs(cluster.url) > 0, log)
        cluster.stop()
        _more(source, "while-away")
        _wait(lambda: "trying again" in log.read_text(), log, 30)
        cluster.start()
        _caught_up(source, cluster.url, log)
        _more(source, "later")
        _caught_up(source, cluster.url, log)


def _more_logs(path: Path, count: int) -> None:
    """``count`` more agent logs in the file, in SQL, with random ids (out of id order)."""
    conn = sqlite3.connect(path)
    with conn:
        (run_id,) = conn.execute("SELECT id FROM agents LIMIT 1").fetchone()
        conn.executemany(
            "INSERT INTO agent_logs (id, agent_id, log_type, message) VALUES (?, ?, 'event', ?)",
            ((str(uuid.uuid4()), run_id, f"later {index}") for index in range(count)),
        )
    conn.close()


def test_a_later_round_killed_or_cut_off_by_its_server_is_finished_by_the_next(
    tmp_path: Path, pushers: list[subprocess.Popen[bytes]]
) -> None:
    """Rounds after the first read only what the file gained since the last verified one
    (its watermarks in the hub): one SIGKILLed half way, then one whose server stops half
    way, leave the hub with every row once when the pusher is back."""
    source = tmp_path / "laptop.db"
    _more(source, "laptop")
    log = tmp_path / "push.log"
    with postgres_cluster() as cluster:
        child = _push(source, cluster.url, log, pushers)
        _wait(lambda: _logs(cluster.url) > 0, log)
        _caught_up(source, cluster.url, log)
        before = _logs(cluster.url)
        _more_logs(source, LOGS)
        _wait(lambda: _logs(cluster.url) > before, log)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        assert before < _logs(cluster.url) < before + LOGS  # killed half way
        _push(source, cluster.url, log, pushers)
        _caught_up(source, cluster.url, log)
        before = _logs(cluster.url)
        _more_logs(source, LOGS)
        _wait(lambda: _logs(cluster.url) > before, log)
        cluster.stop()
        _more(source, "while-away")
        _wait(lambda: "trying again" in log.read_text(), log, 30)
        cluster.start()
        _caught_up(source, cluster.url, log)
