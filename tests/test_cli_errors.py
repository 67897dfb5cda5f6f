"""Commands that fail say so in one line: every command, run as a real process, against a
file that is not SQLite, a schema newer than the code, a missing file, a server that
cannot be reached, a PostgreSQL database holding another application's tables and a
server stopped mid-copy. One line on stderr naming the file or URL, no traceback, a
non-zero exit; nothing created where there was nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backends import Target, postgres_admin, rows, with_search_path
from servers import free_port

from orchestrator import DatabaseManager
from orchestrator.reports.canned import run_report
from orchestrator.reports.notebooks import has_data
from orchestrator.reports.tail import EventSource, follow
from orchestrator.store import sqlite as backend
from orchestrator.writer.budgets import remove_budget, set_budget, statuses

UNREACHABLE = "postgresql://127.0.0.1:1/x"


def orchestrator(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from orchestrator.cli import main; main()", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *named: str) -> str:
    """The failure's one line on stderr (``Error: ...``), which names each of ``named``."""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert result.returncode != 0
    assert lines[0].startswith("Error: "), lines[0]
    for name in named:
        assert name in lines[0], lines[0]
    return lines[0]


def not_sqlite(folder: Path) -> Path:
    path = folder / "notes.db"
    path.write_text("These are my notes, not a database.\n" * 10)
    return path


def newer(folder: Path) -> Path:
    path = folder / "newer.db"
    backend.connect(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('orchestrator', 'm999_from_the_future', '2031-01-01')"
        )
    conn.close()
    return path


def missing(folder: Path) -> Path:
    return folder / "missing.db"


#: Every command that opens a database, ``{db}`` standing for it.
COMMANDS: dict[str, list[str]] = {
    "init": ["init", "{db}"],
    "demo": ["demo", "--prompts", "20", "{db}"],
    "report": ["report", "runs", "--db", "{db}"],
    "tail": ["tail", "-n", "1", "--db", "{db}"],
    "budget set": ["budget", "set", "plan", "--daily", "1", "--db", "{db}"],
    "budget remove": ["budget", "remove", "plan", "--db", "{db}"],
    "budget list": ["budget", "list", "--db", "{db}"],
    "budget check": ["budget", "check", "--db", "{db}"],
    "prune": ["prune", "--before", "2026-01-01", "--db", "{db}"],
    "reprice": ["reprice", "--db", "{db}"],
    "redact": ["redact", "--db", "{db}"],
    "import stream-json": ["import", "stream-json", "{stream}", "--db", "{db}"],
    "import claude-code": ["import", "claude-code", "{folder}", "--db", "{db}"],
    "record": ["record", "--db", "{db}", "--", sys.executable, "-c", "pass"],
    "serve": ["serve", "--no-demo", "--port", "{port}", "{db}"],
    "backup": ["backup", "--db", "{db}", "{folder}/backup.db"],
    "copy": ["copy", "{db}", "{folder}/copy.db"],
}
#: Commands that make the database when there is none (a writer, init, demo).
CREATE = {"init", "demo", "import stream-json", "import claude-code", "record"}
#: Commands that take a postgresql:// URL.
POSTGRES = {"init", "demo", "report", "redact", "serve", "copy"}


def command_line(name: str, db: Target, folder: Path) -> list[str]:
    stream = folder / "run.jsonl"
    if not stream.exists():
        stream.write_text(
            '{"type":"system","subtype":"init","session_id":"s1","model":"claude-haiku-4-5"}\n'
        )
    (folder / "transcripts").mkdir(exist_ok=True)
    values = {
        "{db}": str(db),
        "{stream}": str(stream),
        "{folder}": str(folder),
        "{port}": str(free_port()),
    }
    line = []
    for arg in COMMANDS[name]:
        for key, value in values.items():
            arg = arg.replace(key, value)
        line.append(arg)
    return line


def fingerprint(path: Path) -> tuple[bytes, ...] | None:
    """The file and its WAL, as bytes (None: no file)."""
    if not path.exists():
        return None
    return tuple(
        Path(f"{path}{s}").read_bytes() for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )


#: (command, bad file): every command on each, but a missing file for the commands that
#: create one, and a newer schema for backup (it copies the file as it is) and
#: import claude-code (no transcript to import: it opens no database).
CASES = [
    (name, make)
    for name in COMMANDS
    for make in (not_sqlite, newer, missing)
    if not (make is missing and name in CREATE)
    and not (make is newer and name in ("backup", "import claude-code"))
]


@pytest.mark.parametrize(
    ("name", "make"), CASES, ids=[f"{name}-{make.__name__}" for name, make in CASES]
)
def test_every_command_fails_in_one_line_on_a_bad_file(
    tmp_path: Path, name: str, make: Callable[[Path], Path]
) -> None:
    db = make(tmp_path)
    before = fingerprint(db)
    result = orchestrator(*command_line(name, db, tmp_path))
    assert_one_line(result, str(db))
    assert fingerprint(db) == before  # nothing written, nothing created
    if name == "budget check":
        assert result.returncode == 2  # failed, not "over budget" (1)


def test_budget_check_exits_1_only_over_budget(tmp_path: Path) -> None:
    db = tmp_path / "orchestrator.db"

    async def spend() -> None:  # $0.15 today
        async with DatabaseManager(db) as manager, manager.agent_run("plan_build") as run:
            await run.prompt(
                "p", "r", model="claude-haiku-4-5", tokens_input=100_000, tokens_output=10_000
            )

    asyncio.run(spend())
    budget = ["budget", "set", "plan_build", "--db", str(db), "--daily"]
    assert orchestrator(*budget, "0.16").returncode == 0
    assert orchestrator("budget", "check", "--db", str(db)).returncode == 0
    assert orchestrator(*budget, "0.14").returncode == 0
    over = orchestrator("budget", "check", "--db", str(db))
    assert over.returncode == 1 and over.stderr == "1 budget(s) exceeded\n"
    for target in (tmp_path / "none.db", not_sqlite(tmp_path)):
        failed = orchestrator("budget", "check", "--db", str(target))
        assert_one_line(failed, str(target))
        assert failed.returncode == 2


#: What reads or changes a store from Python, given where it should be.
READERS: dict[str, Callable[[Path], object]] = {
    "run_report": lambda db: run_report("runs", db),
    "EventSource.open": lambda db: EventSource.open(db),
    "follow": lambda db: next(follow(db, duration=0)),
    "statuses": lambda db: statuses(db),
    "set_budget": lambda db: set_budget(db, "workflow", "plan", daily_usd=1),
    "remove_budget": lambda db: remove_budget(db, "workflow", "plan"),
}


@pytest.mark.parametrize("name", READERS)
def test_a_folder_is_no_database_to_read(tmp_path: Path, name: str) -> None:
    """Given a folder (the CLI refuses one as it parses), each reader says there is no
    database there, as for a missing file, and creates nothing in it."""
    with pytest.raises(FileNotFoundError, match=f"^no database at {tmp_path}"):
        READERS[name](tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_notebook_says_a_folder_is_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert has_data(tmp_path) is False
    assert capsys.readouterr().out.startswith(f"**No database at `{tmp_path}`.**")


@pytest.mark.parametrize("name", sorted(POSTGRES))
def test_an_unreachable_server_is_one_line(tmp_path: Path, name: str) -> None:
    result = orchestrator(*command_line(name, UNREACHABLE, tmp_path))
    assert_one_line(result, UNREACHABLE)
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("name", sorted(POSTGRES))
def test_a_postgres_database_of_another_application_is_one_line_and_left_alone(
    tmp_path: Path, name: str, postgres_database: str
) -> None:
    database, schema = postgres_database, f"other_{uuid.uuid4().hex[:10]}"
    postgres_admin(
        database,
        f"CREATE SCHEMA {schema}; "
        f"CREATE TABLE {schema}.agents (id integer PRIMARY KEY, nickname text); "
        f"INSERT INTO {schema}.agents VALUES (1, 'bob')",
    )
    url = with_search_path(database, schema)
    line = assert_one_line(orchestrator(*command_line(name, url, tmp_path)))
    assert 'relation "agents" already exists' in line and "nothing was changed" in line
    if name != "copy":  # copy names both stores (not this change's)
        assert database.split("@")[-1].split("/")[0] in line
    tables = rows(
        database,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
        (schema,),
    )
    assert tables == [("agents",)]  # no migration half applied
    assert rows(database, f"SELECT * FROM {schema}.agents") == [(1, "bob")]


# -- a server stopped mid-copy: a cluster of this test's own --------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def own_server() -> Iterator[tuple[str, Callable[[], None]]]:
    """A PostgreSQL cluster of this test's own (the shared one must not be stopped): its
    URL and a function that stops it (fast shutdown)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("no PostgreSQL 15 binaries")
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def pg_ctl(*args: str) -> None:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", *args],
            check=True,
            capture_output=True,
        )

    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl("-o", options, "-l", str(folder / "log"), "start")
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            pg_ctl("-m", "fast", "stop")
            stopped.append(True)

    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", stop
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_server_stopped_mid_copy_is_one_line(
    tmp_path: Path, own_server: tuple[str, Callable[[], None]]
) -> None:
    url, stop = own_server
    source = tmp_path / "orchestrator.db"
    assert orchestrator("demo", "--prompts", "3000", "--days", "10", str(source)).returncode == 0
    command = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    copying = subprocess.Popen(
        [*command, "copy", str(source), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stop it once rows are landing
            try:
                if rows(url, "SELECT count(*) FROM agent_logs")[0][0] > 0:
                    break
            except Exception:  # not migrated yet
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the copy never started")
        assert copying.poll() is None, "the copy finished before the server stopped"
        stop()
        out, err = copying.communicate(timeout=120)
    finally:
        copying.kill()
    result = subprocess.CompletedProcess(copying.args, copying.returncode, out, err)
    assert_one_line(result, "127.0.0.1")
