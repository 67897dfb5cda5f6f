"""What the CLI prints for people: stored text never drives the terminal (control
characters escaped in tables and in `tail`), long cells cut with a marker, floats
rounded; JSON and CSV keep the values exactly."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator import SyncDatabaseManager
from orchestrator.cli import cli
from orchestrator.reports import tail as tail_module
from orchestrator.reports.tail import Event, follow

#: Sets the window title, rings the bell, returns to the start of the line, clears the
#: screen, a C1 CSI, a right-to-left override; among plain non-ASCII text.
HOSTILE = "é😀\x1b]0;t\x07\rX\x1b[2J\x9b1m\u202ea"
#: Characters a terminal acts on.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_history(db_path: Path) -> None:
    with SyncDatabaseManager(db_path) as db:
        with pytest.raises(RuntimeError):
            with db.agent_run(
                f"wf {HOSTILE}", session_id=f"s {HOSTILE}", name=f"run {HOSTILE}"
            ) as run:
                run.prompt(f"p {HOSTILE}", "ok", model="claude-haiku-4-5", tokens_input=1000)
                run.log("tool_use", f"Bash: {HOSTILE}")
                raise RuntimeError(f"boom {HOSTILE}")
        db.log_system_event("ERROR", f"sys {HOSTILE}", source="adw")


def assert_shown_escaped(text: str) -> None:
    """No character a terminal acts on, except the newlines between lines; the hostile
    text shown escaped, the plain non-ASCII text as it is."""
    assert not CONTROL.search(text.replace("\n", "")), repr(text)
    assert "é😀\\x1b]0;t\\x07\\rX\\x1b[2J\\x9b1m\\u202ea" in text


def test_tail_shows_stored_control_characters_escaped(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_history(db_path)

    def once(*args: Any, **kwargs: Any) -> Iterator[Event]:
        return follow(*args, **kwargs, duration=0)

    monkeypatch.setattr(tail_module, "follow", once)
    result = CliRunner().invoke(cli, ["tail", "--db", str(db_path)], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 6  # start, prompt, log, end, system... one line each
    assert_shown_escaped(result.output)
    as_json = CliRunner().invoke(
        cli, ["tail", "--db", str(db_path), "--json"], catch_exceptions=False
    )
    events = [json.loads(line) for line in as_json.output.splitlines()]
    assert {event["run"] for event in events if event["run"]} == {f"run {HOSTILE}"}  # exact


@pytest.mark.parametrize("report", ["runs", "failed_runs", "system_problems"])
def test_report_tables_show_stored_control_characters_escaped(db_path: Path, report: str) -> None:
    hostile_history(db_path)
    base = ["report", report, "--db", str(db_path)]
    table = CliRunner().invoke(cli, base, catch_exceptions=False).output
    assert_shown_escaped(table)
    data = json.loads(CliRunner().invoke(cli, [*base, "--format", "json"]).output)
    assert any(HOSTILE in str(value) for row in data for value in row.values())  # exact
    rows = list(csv.reader(io.StringIO(CliRunner().invoke(cli, [*base, "--format", "csv"]).output)))
    assert any(HOSTILE in value for row in rows for value in row)


def test_a_long_cell_is_cut_with_a_marker_and_floats_are_rounded(db_path: Path) -> None:
    from orchestrator.cli import format_result

    long = "x" * 59 + "yz"  # 61 characters
    columns = ["name", "cost_usd", "ratio", "tiny", "tokens"]
    rows = [(long, 0.23266499999999998, 1 / 3, 0.0000123, 12345), ("short", 2.0, 0.5, 0.0, 0)]
    lines = format_result(columns, rows, "table").splitlines()
    assert lines[2].split()[:5] == ["x" * 59 + "…", "0.2327", "0.3333", "1.2e-05", "12345"]
    assert lines[3].split()[:5] == ["short", "2.0", "0.5", "0.0", "0"]
    assert max(len(line) for line in lines) == len(lines[1])  # the header rule spans each row
    assert json.loads(format_result(columns, rows, "json"))[0]["name"] == long  # whole
    assert json.loads(format_result(columns, rows, "json"))[0]["cost_usd"] == 0.23266499999999998
