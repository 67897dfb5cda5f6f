"""The command line: every command's help and --db, demo, report, serve's Datasette command."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.cli_options import DB_HELP
from orchestrator.commands.serve import datasette_command
from orchestrator.reports.canned import run_report

ARGS = ["--prompts", "300", "--seed", "4", "--end", "2026-11-01", "--days", "14"]


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The command line of every command and group, ``()`` for ``orchestrator`` itself."""
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(walk(cli))
#: Options still without help, in code another change is rewriting (report's parameters).
HELP_PENDING: set[tuple[str, ...]] = set()


def test_the_walk_reaches_every_command() -> None:
    leaves = {" ".join(path) for path in COMMANDS}
    assert {"init", "demo", "serve", "report", "schema", "record"} <= leaves
    assert {"import", "import stream-json", "import claude-code"} <= leaves


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "orchestrator" for p in COMMANDS])
def test_help_documents_every_option_and_argument(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    command = command_at(path)
    undocumented = set()
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.opts[0] in result.output
            if not (param.help or "").strip():
                undocumented.add((" ".join(path), param.opts[-1]))
        else:  # click arguments have no help: the docstring names them
            name = param.human_readable_name.strip("[].")
            if name not in (command.help or ""):
                undocumented.add((" ".join(path), name))
    assert undocumented <= HELP_PENDING, f"document these: {sorted(undocumented - HELP_PENDING)}"


@pytest.mark.parametrize(
    "path",
    # copy names its two databases as arguments (SOURCE TARGET), both required; hook hands
    # its arguments to the hook's own parser (Claude Code's hot path: no click there);
    # hooks install / uninstall write settings files and open no database.
    [
        p
        for p in COMMANDS
        if p
        and p
        not in {("schema",), ("copy",), ("hook",), ("hooks", "install"), ("hooks", "uninstall")}
        and not isinstance(command_at(p), click.Group)
    ],
)
def test_every_command_that_opens_a_database_takes_the_one_db_option(path: tuple[str, ...]) -> None:
    options = [p for p in command_at(path).params if "--db" in p.opts]
    assert len(options) == 1 and options[0].help == DB_HELP
    assert options[0].metavar == "PATH"


def test_db_positional_or_option_and_default_from_the_environment(
    tmp_path: Path, _isolated_db: Path
) -> None:
    runner = CliRunner()
    given, option = tmp_path / "given.db", tmp_path / "option.db"
    assert "Created" in runner.invoke(cli, ["init", str(given)], catch_exceptions=False).output
    assert "Created" in runner.invoke(cli, ["init", "--db", str(option)]).output
    assert given.exists() and option.exists()
    same = runner.invoke(cli, ["init", str(given), "--db", str(given)], catch_exceptions=False)
    assert same.exit_code == 0 and "Upgraded" in same.output
    both = runner.invoke(cli, ["init", str(given), "--db", str(option)])
    assert both.exit_code == 2 and "two databases given" in both.output
    assert not _isolated_db.exists()
    default = runner.invoke(cli, ["init"], catch_exceptions=False)
    assert f"Created {_isolated_db}" in default.output and _isolated_db.exists()
    listing = runner.invoke(cli, ["report", "spend_by_day", "--db", str(tmp_path / "none.db")])
    assert listing.exit_code == 1 and "none.db" in listing.output
    unopenable = runner.invoke(cli, ["init", "--db", str(tmp_path / "no" / "dir" / "x.db")])
    assert unopenable.exit_code == 1 and "x.db" in unopenable.output  # an error, no traceback


def demo(path: Path, *extra: str, option: bool = False) -> None:
    where = ["--db", str(path)] if option else [str(path)]
    result = CliRunner().invoke(cli, ["demo", *where, *ARGS, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_demo_is_deterministic_and_realistic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    demo(first)
    demo(second, option=True)
    query = (
        "SELECT p.created_at, p.model, p.tokens_input, p.tokens_output, "
        "p.tokens_cache_read, p.tokens_cache_write, p.cost_usd, p.status, a.session_id "
        "FROM prompts p JOIN agents a ON a.id = p.agent_id ORDER BY p.created_at, p.content"
    )
    rows = [sqlite3.connect(path).execute(query).fetchall() for path in (first, second)]
    assert rows[0] == rows[1] and len(rows[0]) >= 300
    conn = sqlite3.connect(first)
    models = {row[0] for row in conn.execute("SELECT DISTINCT model FROM prompts")}
    assert {"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"} <= models
    read, other = conn.execute(
        "SELECT sum(tokens_cache_read), sum(tokens_input + "
        "tokens_output + tokens_cache_write) FROM prompts"
    ).fetchone()
    assert read > other  # cache reads dominate, as in real Claude Code use
    statuses = dict(conn.execute("SELECT status, count(*) FROM agents GROUP BY status"))
    assert statuses.get("failed", 0) > 0 and statuses["completed"] > statuses["failed"]
    assert (
        conn.execute(
            "SELECT count(*) FROM prompts WHERE cost_source = 'unpriced' AND cost_usd IS NULL"
        ).fetchone()[0]
        > 0
    )
    days = conn.execute("SELECT count(DISTINCT substr(created_at, 1, 10)) FROM prompts")
    assert days.fetchone()[0] >= 10  # spread over the two weeks


def test_report_formats_agree_with_the_library(tmp_path: Path) -> None:
    db = tmp_path / "orchestrator.db"
    demo(db)
    runner = CliRunner()
    base = ["report", "spend_by_model", "--db", str(db), "--start", "2026-10-01"]
    as_json = json.loads(
        runner.invoke(cli, [*base, "--format", "json"], catch_exceptions=False).output
    )
    expected = run_report("spend_by_model", db, {"start": "2026-10-01"}).as_dicts()
    assert as_json == expected and expected
    as_csv = list(
        csv.DictReader(
            io.StringIO(
                runner.invoke(cli, [*base, "--format", "csv"], catch_exceptions=False).output
            )
        )
    )
    assert [row["model"] for row in as_csv] == [row["model"] for row in expected]
    table = runner.invoke(cli, base, catch_exceptions=False).output
    assert "claude-sonnet-4-5" in table and f"({len(expected)} rows)" in table
    listing = runner.invoke(cli, ["report"], catch_exceptions=False).output
    assert "spend_by_day" in listing and "--budget_usd" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "no_such_report"], "no report 'no_such_report'"),
        (["report", "spend_by_day", "--colour", "red"], "not ['colour']"),
    ],
)
def test_report_errors_are_clear(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "orchestrator.db"
    CliRunner().invoke(cli, ["init", str(db)], catch_exceptions=False)
    result = CliRunner().invoke(cli, [*args, "--db", str(db)])
    assert result.exit_code != 0 and message in result.output


def test_the_console_script_is_main_and_keeps_exit_codes_and_output(tmp_path: Path) -> None:
    """``orchestrator`` runs :func:`orchestrator.entry.main` (``statusline`` at once, any
    other command through :func:`orchestrator.cli.main`: the command group, then an exit
    that freezes what is alive): whole processes keep their exit codes, print everything
    and leave their writes committed."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="orchestrator")
    assert script.value == "orchestrator.entry:main"
    db = tmp_path / "orchestrator.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from orchestrator.entry import main; main()", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert run("demo", str(db), *ARGS).returncode == 0
    rows = run("report", "spend_by_model", "--db", str(db), "--format", "json")
    assert rows.returncode == 0
    assert json.loads(rows.stdout) == run_report("spend_by_model", db).as_dicts()
    assert run("report", "no_such_report", "--db", str(db)).returncode == 1
    assert run("init", "--no-such-option").returncode == 2
    budget = run("budget", "set", "plan-build", "--db", str(db), "--daily", "0.5")
    assert budget.returncode == 0 and "$0.50 a day" in budget.stdout
    with sqlite3.connect(db) as conn:  # committed by its own process
        assert conn.execute("SELECT count(*) FROM budgets").fetchone() == (1,)


def test_serve_runs_datasette_on_localhost_on_the_live_file(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    command, _ = datasette_command(db, port=9123, metadata_dir=tmp_path)
    assert "--immutable" not in command and "-i" not in command
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert str(db) in command
    # The reports and dashboard come from the plugin (tests/test_plugin.py), not from a file.
    assert "--metadata" not in command and not (tmp_path / "metadata.yml").exists()


def test_sharing_requires_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATOR_PASSWORD", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_PASSWORD_HASH", raising=False)
    with pytest.raises(ValueError, match="ORCHESTRATOR_PASSWORD"):
        datasette_command(tmp_path / "x.db", share=True, metadata_dir=tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse")
    _, env = datasette_command(tmp_path / "x.db", host="0.0.0.0", share=True, metadata_dir=tmp_path)
    metadata = yaml.safe_load((tmp_path / "metadata.yml").read_text())
    assert metadata["allow"] == {"id": "*"} and metadata["allow_sql"] == {"id": "*"}
    assert env["ORCHESTRATOR_PASSWORD_HASH"].startswith("pbkdf2_sha256$")


async def test_shared_instance_refuses_anonymous_visitors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasette.app import Datasette

    from orchestrator.commands.serve import password_hash_from_env, share_metadata
    from orchestrator.reports.canned import metadata_for
    from orchestrator.store import sqlite as backend

    db = tmp_path / "orchestrator.db"
    backend.connect(db).close()
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD", "correct horse")
    monkeypatch.setenv("ORCHESTRATOR_PASSWORD_HASH", password_hash_from_env())
    ds = Datasette([str(db)], metadata=share_metadata(metadata_for("orchestrator")))
    assert (await ds.client.get("/orchestrator/prompts")).status_code == 403
    assert (await ds.client.get("/orchestrator.json?sql=select+1")).status_code == 403
    login = await ds.client.get("/-/login")
    assert login.status_code == 200
    actor = ds.sign({"a": {"id": "admin"}}, "actor")
    cookies = {"ds_actor": actor}
    assert (await ds.client.get("/orchestrator/prompts", cookies=cookies)).status_code == 200
    assert (
        await ds.client.get("/orchestrator.json?sql=select+1", cookies=cookies)
    ).status_code == 200


def test_demo_end_is_the_last_day_of_the_history_included(tmp_path: Path) -> None:
    db = tmp_path / "orchestrator.db"
    args = ["--prompts", "2000", "--days", "14", "--end", "2026-11-25"]
    result = CliRunner().invoke(cli, ["demo", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        first, last = conn.execute(
            "SELECT min(substr(created_at, 1, 10)), max(substr(created_at, 1, 10)) FROM agents"
        ).fetchone()
    conn.close()
    assert last == "2026-11-25"  # the last day has runs (a Wednesday: about 40)
    assert first >= "2026-11-12"  # 14 days: 12th to 25th


def test_a_demo_ending_within_a_day_starts_no_run_after_its_end(tmp_path: Path) -> None:
    """Sessions are put at working hours of their day: one ending at 10:30 had runs at
    13:00 to 21:00 that day, hours ahead of the clock the status line bench then read."""
    import asyncio
    from datetime import datetime, timezone

    from orchestrator.commands.demo import create_demo_database

    end = datetime(2026, 11, 25, 10, 30, tzinfo=timezone.utc)
    db = tmp_path / "orchestrator.db"
    asyncio.run(create_demo_database(db, prompts=3000, days=3, end=end))
    with sqlite3.connect(db) as conn:
        (latest,) = conn.execute("SELECT max(started_at) FROM agents").fetchone()
    conn.close()
    assert "2026-11-25T08" <= latest < "2026-11-25T10:30"  # the last day's morning has runs
