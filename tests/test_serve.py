"""``orchestrator serve``: which database it serves, and that stopping it stops Datasette."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from servers import free_port, http_get, http_status, listening

from orchestrator.cli import cli
from orchestrator.commands.serve import (
    MIN_PASSWORD_LENGTH,
    database_to_serve,
    datasette_command,
    demo_path_for,
    password_hash_from_env,
    share_metadata,
)
from orchestrator.reports.canned import reports
from orchestrator.store import sqlite as backend

ROOT = Path(__file__).resolve().parents[1]


def test_an_existing_database_is_served_upgraded(db_path: Path) -> None:
    sqlite3.connect(db_path).execute("CREATE TABLE unrelated (x)").connection.close()
    target = database_to_serve(db_path)
    assert target.path == db_path and not target.is_demo
    tables = {row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")}
    assert {"unrelated", "prompts", "usage_daily"} <= tables


def test_a_missing_database_is_stood_in_for_by_a_demo_beside_it(tmp_path: Path) -> None:
    wanted = tmp_path / "team" / "adw.db"
    wanted.parent.mkdir()
    announced: list[Path] = []
    target = database_to_serve(wanted, prompts=40, creating=announced.append)
    assert target.is_demo and target.requested == wanted and not wanted.exists()
    assert (
        target.path == announced[0] == tmp_path / "team" / "orchestrator-demo" / "orchestrator.db"
    )
    (prompts,) = sqlite3.connect(target.path).execute("SELECT count(*) FROM prompts").fetchone()
    assert prompts >= 40
    again = database_to_serve(wanted, prompts=40, creating=announced.append)
    assert again.path == target.path and len(announced) == 1  # reused, not rewritten


def test_no_demo_names_the_missing_database(tmp_path: Path) -> None:
    wanted = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError, match=r"missing\.db"):
        database_to_serve(wanted, demo=False)
    result = CliRunner().invoke(cli, ["serve", "--no-demo", "--db", str(wanted)])
    assert result.exit_code == 1 and "orchestrator init" in result.output
    assert not wanted.exists() and not demo_path_for(wanted).exists()


def test_share_needs_a_password_of_12_characters(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasette_auth_passwords.utils import verify_password

    backend.connect(db_path).close()
    monkeypatch.delenv("ORCHESTRATOR_PASSWORD_HASH", raising=False)
    short = "x" * 11
    assert MIN_PASSWORD_LENGTH == 12
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", short)
    with pytest.raises(ValueError, match="11 characters long; sharing needs at least 12"):
        password_hash_from_env()
    result = CliRunner().invoke(cli, ["serve", str(db_path), "--share"])
    assert result.exit_code == 1 and "at least 12" in result.output

    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse")  # 13 characters
    password_hash = password_hash_from_env()
    assert verify_password("correct horse", password_hash)
    assert not verify_password(short, password_hash)


def test_the_command_leaves_the_metadata_to_the_plugin(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, _ = datasette_command(db_path)
    assert command[1:5] == ["-m", "orchestrator.datasette_plugin", "serve", str(db_path)]
    assert "--metadata" not in command
    monkeypatch.delenv("ORCHESTRATOR_PASSWORD_HASH", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse battery")
    command, env = datasette_command(db_path, share=True, metadata_dir=tmp_path)
    given = yaml.safe_load(Path(command[command.index("--metadata") + 1]).read_text())
    assert given == share_metadata() and set(given) == {"allow", "allow_sql", "plugins"}
    assert env["ORCHESTRATOR_PASSWORD_HASH"].startswith("pbkdf2_sha256$")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by the test; whatever is left is killed with its session."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        # The session outlives its leader when a child is left behind: kill it whole.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _start_serve(
    args: list[str], log: Path, started: list[subprocess.Popen[bytes]], **environment: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """``orchestrator serve ARGS`` in a process of its own (``--port`` among ARGS), once it
    answers HTTP; its output goes to ``log``."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env.pop("ORCHESTRATOR_PASSWORD_HASH", None)
    env.update(environment)
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "serve", *args]
    with log.open("wb") as output:
        # Its own session, so that cleanup after a failure reaches any child it left.
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    started.append(process)
    port = args[args.index("--port") + 1]
    deadline = time.monotonic() + 60
    while http_status(f"http://127.0.0.1:{port}/-/versions.json", 2) is None:
        assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"serve did not answer in 60 s:\n{log.read_text()}"
        time.sleep(0.2)
    return process, log


@pytest.mark.parametrize("share", [False, True], ids=["local", "share"])
def test_serves_the_plugin_once_and_sigterm_frees_the_port(
    db_path: Path, share: bool, serve_process: list[subprocess.Popen[bytes]]
) -> None:
    backend.connect(db_path).close()
    port = free_port()
    process, _ = _start_serve(
        [str(db_path), "--port", str(port)] + (["--share"] if share else []),
        db_path.with_suffix(".log"),
        serve_process,
        ORCHESTRATOR_PASSWORD="correct horse",
    )
    url = f"http://127.0.0.1:{port}"
    if share:  # everything behind the login, the live page too
        for path in ["/orchestrator.json", "/-/live", "/-/live/events", "/-/dashboards/overview"]:
            assert http_get(url + path)[0] == 403, path
    else:
        status, body = http_get(f"{url}/orchestrator.json")
        assert status == 200
        assert [query["name"] for query in json.loads(body)["queries"]] == list(reports())
        names = [plugin["name"] for plugin in json.loads(http_get(f"{url}/-/plugins.json")[1])]
        ours = ("adw-orchestrator", "orchestrator.datasette_plugin")  # installed, or not
        assert len([name for name in names if name in ours]) == 1
        assert http_get(f"{url}/-/live")[0] == 200
        # A live page left open: its event stream must not keep the server from stopping.
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        stream.request("GET", "/-/live/events")
        response = stream.getresponse()
        assert response.status == 200 and response.readline().startswith(b"retry:")

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert not listening(port), "something still listens on the port after SIGTERM"
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of its session is left


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_postgresql_store_is_served_from_a_snapshot_that_follows_it(
    db_target: str, tmp_path: Path, serve_process: list[subprocess.Popen[bytes]]
) -> None:
    from orchestrator import SyncDatabaseManager

    with SyncDatabaseManager(db_target) as db, db.agent_run("pg-served") as run:
        for index in range(3):
            run.log("event", f"before {index}")
        db.flush()
        run_id = run.id
        port = free_port()
        snapshot = tmp_path / "snap" / "orchestrator.db"
        process, log = _start_serve(
            [db_target, "--port", str(port), "--refresh", "0.5", "--snapshot", str(snapshot)],
            tmp_path / "serve.log",
            serve_process,
        )
        url = f"http://127.0.0.1:{port}"

        def logs_served() -> list[str]:
            sql = urllib.parse.quote("SELECT message FROM agent_logs ORDER BY message")
            status, body = http_get(f"{url}/orchestrator.json?sql={sql}&_shape=arrayfirst")
            assert status == 200, body
            return list(json.loads(body))

        assert logs_served() == ["before 0", "before 1", "before 2"]
        status, page = http_get(f"{url}/orchestrator/agents")
        assert status == 200 and b"Snapshot of postgresql://" in page and b" as of " in page
        assert http_get(f"{url}/orchestrator/spend_by_model")[0] == 200
        first = json.loads(http_get(f"{url}/-/snapshot.json")[1])
        for index in range(4):
            run.log("event", f"after {index}")
    # The run is finished and its logs are in the store: the snapshot follows.
    deadline = time.monotonic() + 30
    while len(logs_served()) < 7:
        assert time.monotonic() < deadline, f"the snapshot did not follow:\n{log.read_text()}"
        time.sleep(0.3)
    sql = urllib.parse.quote(f"SELECT status FROM agents WHERE id = '{run_id}'")
    deadline = time.monotonic() + 30
    while json.loads(http_get(f"{url}/orchestrator.json?sql={sql}&_shape=arrayfirst")[1]) != [
        "completed"
    ]:
        assert time.monotonic() < deadline, "the finished run did not reach the snapshot"
        time.sleep(0.3)
    # Rows show as soon as a refresh commits them; "as of" moves when it has finished.
    deadline = time.monotonic() + 30
    while (now := json.loads(http_get(f"{url}/-/snapshot.json")[1]))["as_of"] <= first["as_of"]:
        assert time.monotonic() < deadline, now
        time.sleep(0.3)
    assert now["error"] is None and now["refreshes"] >= 1, now
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_password_in_the_url_query_is_shown_nowhere(
    db_target: str, tmp_path: Path, serve_process: list[subprocess.Popen[bytes]]
) -> None:
    """libpq and asyncpg take ``?password=`` as well as ``user:password@``: no served
    page, ``/-/snapshot.json`` nor the command's output shows either."""
    from orchestrator import SyncDatabaseManager

    # The server's own password where it asks for one (pg_virtualenv's, in CI: the URL's
    # wins over $PGPASSWORD); any text where it trusts local users.
    secret = os.environ.get("PGPASSWORD") or f"hunter2-{os.getpid()}-{time.time_ns()}"
    url = f"{db_target}&password={urllib.parse.quote(secret)}&sslpassword={secret}x"
    with SyncDatabaseManager(url) as db, db.agent_run("masked") as run:
        run.log("event", "shown")
    port = free_port()
    snapshot = tmp_path / "snap" / "orchestrator.db"
    process, log = _start_serve(
        [url, "--port", str(port), "--snapshot", str(snapshot)],
        tmp_path / "serve.log",
        serve_process,
    )
    base = f"http://127.0.0.1:{port}"
    shown = json.loads(http_get(f"{base}/-/snapshot.json")[1])["source"]
    assert shown.endswith("&password=***&sslpassword=***"), shown
    pages = ["/", "/orchestrator", "/orchestrator/agents", "/orchestrator/spend_by_model"]
    pages += ["/-/dashboards/overview", "/-/live", "/-/snapshot.json"]
    for page in pages:
        status, body = http_get(base + page)
        assert status == 200 and secret.encode() not in body, page
    assert b"password=***" in http_get(f"{base}/orchestrator/agents")[1]  # the banner
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    output = log.read_text()
    assert "password=***" in output and secret not in output, output


def _store_with_history(url: str, logs: int) -> None:
    """A store with one run of 300 priced prompts and ``logs`` agent logs (written in SQL:
    the writer would take minutes), for copies that take a while."""
    from backends import execute

    from orchestrator import SyncDatabaseManager

    with SyncDatabaseManager(url) as db, db.agent_run("snapshotted") as run:
        for index in range(300):
            run.prompt(
                f"prompt {index}",
                f"answer {index}",
                model="claude-sonnet-4-5",
                tokens_input=1000 + index,
                tokens_output=100 + index,
            )
        run_id = run.id
    execute(
        url,
        (
            "INSERT INTO agent_logs (id, agent_id, log_type, message, created_at) "
            "SELECT '01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), ?, 'event', "
            "'needle number ' || i, '2026-11-01T00:00:00.000Z' FROM generate_series(1, ?) i",
            (run_id, logs),
        ),
    )


def _served_numbers(base: str) -> list[Any]:
    sql = (
        "SELECT (SELECT count(*) FROM agent_logs), (SELECT count(*) FROM prompts), "
        "(SELECT total(cost_usd) FROM prompts), (SELECT total(total_cost_usd) FROM agents), "
        "(SELECT count(*) FROM agent_logs_fts WHERE agent_logs_fts MATCH 'needle')"
    )
    status, body = http_get(f"{base}/orchestrator.json?sql={urllib.parse.quote(sql)}&_shape=array")
    assert status == 200, body
    return list(json.loads(body)[0].values())


def _store_numbers(url: str) -> list[Any]:
    from backends import rows

    ((logs, prompts, cost),) = rows(
        url,
        "SELECT (SELECT count(*) FROM agent_logs), count(*), sum(cost_usd) FROM prompts",
    )
    return [logs, prompts, cost, cost, logs]


def _building_logs(snapshot: Path) -> int:
    """Agent logs committed so far into a snapshot being built beside ``snapshot``."""
    for building in snapshot.parent.glob(f"{snapshot.name}.building-*"):
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(f"file:{building}?mode=ro", uri=True, timeout=0.1)
            try:
                return int(conn.execute("SELECT count(*) FROM agent_logs").fetchone()[0])
            finally:
                conn.close()
    return 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_serve_killed_during_its_first_snapshot_starts_again(
    db_target: str, tmp_path: Path, serve_process: list[subprocess.Popen[bytes]]
) -> None:
    """A snapshot is a cache: one cut short (SIGKILL as agent_logs are being copied) is
    never served, and the next serve builds it whole."""
    _store_with_history(db_target, 60_000)
    expected = _store_numbers(db_target)
    assert expected[0] == 60_000 and expected[1] == 300 and expected[2] > 0
    snapshot = tmp_path / "snap" / "orchestrator.db"
    port = free_port()
    args = [db_target, "--port", str(port), "--snapshot", str(snapshot)]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    log = tmp_path / "killed.log"
    command = [sys.executable, "-c", "from orchestrator.cli import cli; cli()", "serve", *args]
    with log.open("wb") as output:
        killed = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    serve_process.append(killed)
    deadline = time.monotonic() + 60
    while _building_logs(snapshot) == 0:
        assert killed.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    time.sleep(0.3)  # some agent_logs chunks committed, the search triggers still deferred
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert "Reports and dashboards" not in log.read_text()  # killed before serving

    process, log = _start_serve(args, tmp_path / "again.log", serve_process)
    assert _served_numbers(f"http://127.0.0.1:{port}") == pytest.approx(expected)
    assert not list(snapshot.parent.glob("*.building-*")), "the cut-short build is left"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_broken_snapshot_is_built_anew(db_target: str, tmp_path: Path) -> None:
    """A snapshot missing what its migrations create (a refresh cut short before the
    search triggers came back), or not SQLite at all, is made again, not refused."""
    from backends import rows

    from orchestrator.commands.serve import make_snapshot

    _store_with_history(db_target, 50)
    snapshot = tmp_path / "orchestrator.db"
    make_snapshot(db_target, snapshot)
    with contextlib.closing(sqlite3.connect(snapshot)) as conn:
        conn.execute("DROP TRIGGER agent_logs_ai")
    make_snapshot(db_target, snapshot)
    assert rows(snapshot, "SELECT count(*) FROM sqlite_master WHERE name = 'agent_logs_ai'") == [
        (1,)
    ]
    snapshot.write_bytes(b"not a database" * 100)
    result = make_snapshot(db_target, snapshot)
    assert result.fresh and rows(snapshot, "SELECT count(*) FROM agent_logs") == [(50,)]


@pytest.mark.parametrize("share", [False, True], ids=["local", "share"])
def test_a_busy_port_is_one_line_before_anything_starts(
    tmp_path: Path, share: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port is checked first: one line naming it, no "startup complete" before it, no
    demo database made, no Datasette started."""
    import socket

    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse battery")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0" if share else "127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        missing = tmp_path / "orchestrator.db"  # would be stood in for by a demo
        command = [sys.executable, "-c", "from orchestrator.cli import main; main()", "serve"]
        args = [str(missing), "--port", str(port), *(["--share"] if share else [])]
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
    host = "0.0.0.0" if share else "127.0.0.1"
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: cannot listen on {host}:{port}: Address already in use; "
        "choose another with --port\n"
    )
    assert not demo_path_for(missing).exists()


async def test_the_403_page_leads_to_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered_plugin: None
) -> None:
    from datasette.app import Datasette

    from orchestrator.reports.canned import metadata_for

    db = tmp_path / "orchestrator.db"
    backend.connect(db).close()
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse battery")
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD_HASH", password_hash_from_env())
    ds = Datasette([str(db)], metadata=share_metadata(metadata_for("orchestrator")))
    for path in ["/", "/orchestrator/prompts", "/-/dashboards/overview"]:
        page = await ds.client.get(path)
        assert page.status_code == 403, path
        assert '<a href="/-/login">Log in</a>' in page.text, path
    login = await ds.client.get("/-/login")
    assert login.status_code == 200 and 'name="password"' in login.text


def test_a_snapshot_of_a_store_dropped_and_created_again_is_built_anew(
    tmp_path: Path, postgres_database: str
) -> None:
    """The database at the URL dropped and created again with another history: a running
    serve's refresh copies nothing of it into the snapshot of the old one (it says why),
    and the next serve's snapshot is built anew, of the new store alone."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    from backends import counts, postgres_admin

    from orchestrator import SyncDatabaseManager
    from orchestrator.commands.serve import make_snapshot
    from orchestrator.datasette_plugin.snapshot import Snapshot

    name = f"orchestrator_tests_{uuid.uuid4().hex[:10]}"
    url = urlunsplit(urlsplit(postgres_database)._replace(path=f"/{name}"))
    postgres_admin(postgres_database, f"CREATE DATABASE {name}")
    try:
        demo = ["demo", url, "--prompts", "40", "--seed", "1", "--end", "2026-11-25"]
        assert CliRunner().invoke(cli, demo, catch_exceptions=False).exit_code == 0
        snapshot = tmp_path / "snap" / "orchestrator.db"
        make_snapshot(url, snapshot)
        before = counts(snapshot)
        assert before == counts(url)
        served = Snapshot(url, str(snapshot), 5.0, "now")
        served.refresh()
        assert served.error is None

        postgres_admin(postgres_database, f"DROP DATABASE {name} WITH (FORCE)")
        postgres_admin(postgres_database, f"CREATE DATABASE {name}")
        with SyncDatabaseManager(url) as db, db.agent_run("after-the-drop") as run:
            run.prompt("/plan", "ok", model="claude-sonnet-4-5", tokens_input=5, tokens_output=1)
        served.refresh()
        assert served.error is not None and "not the store" in served.error
        assert counts(snapshot) == before  # nothing of the new store mixed in

        result = make_snapshot(url, snapshot)
        assert result.fresh and counts(snapshot) == counts(url)
        assert counts(url)["agents"] == 1 and counts(url)["prompts"] == 1
        again = Snapshot(url, str(snapshot), 5.0, "now")
        again.refresh()
        assert again.error is None and counts(snapshot) == counts(url)
    finally:
        postgres_admin(postgres_database, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
