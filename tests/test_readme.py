"""The README's examples stay true: its deterministic console sessions are run and their
output compared line for line, and the counts and versions it quotes are the code's."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PREFIX = "$ .venv/bin/orchestrator "

#: Commands whose output depends on the clock, the machine or a server, or on the
#: reader's own Claude Code transcripts (the ccusage views' example): not compared.
UNCOMPARED = (
    "tail",
    "budget list",
    "budget check",
    "backup",
    "import claude-code",
    "report monthly_tokens --tz",
    "report usage_blocks",
)


def console_examples() -> list[tuple[str, list[str]]]:
    """Every ``$ .venv/bin/orchestrator ...`` line of the README's console blocks with the
    lines printed under it, in order."""
    examples: list[tuple[str, list[str]]] = []
    for indent, block in re.findall(r"^( *)```console\n(.*?)^ *```", README, flags=re.S | re.M):
        output: list[str] | None = None  # the lines under the current orchestrator command
        for line in block.splitlines():
            line = line.removeprefix(indent)
            if line.startswith("$ "):
                output = [] if line.startswith(PREFIX) else None
                if output is not None:
                    examples.append((line[2:], output))
            elif output is not None:
                output.append(line)
    return examples


def run(command: str, cwd: Path) -> list[str]:
    """The lines ``command`` (a README line, maybe ``| tail -1``, maybe a comment) prints."""
    command = command.split("  #", 1)[0].strip()
    command, _, pipe = command.partition(" | ")
    args = shlex.split(command)[1:]
    script = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_DB", "DATABASE_PATH")}
    result = subprocess.run(
        [*script, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if pipe:
        assert pipe == "tail -1", pipe
        lines = lines[-1:]
    return lines


def test_the_console_examples_print_what_the_readme_shows(tmp_path: Path) -> None:
    compared = 0
    for command, shown in console_examples():
        if command.removeprefix(PREFIX[2:]).startswith(UNCOMPARED):
            continue
        assert run(command, tmp_path) == shown, command
        compared += 1
    assert compared >= 8  # demo, two reports, reprice, budget set and remove, prune


def test_the_report_count_quoted_is_the_code_s() -> None:
    from orchestrator.reports.canned import reports

    (count,) = re.findall(r"^\s*(\d+) reports$", README, flags=re.M)
    assert int(count) == len(reports())


def test_the_versions_quoted_are_the_code_s() -> None:
    from orchestrator.core.pricing import PRICED_WITH

    (requires,) = re.findall(
        r'^requires-python = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M
    )
    (python,) = re.findall(r"\(Python >= ([\d.]+)\)", README)
    assert requires == f">={python}"
    for quoted in re.findall(r"priced with (genai-prices [\d.]+)", README):
        assert quoted == PRICED_WITH


@pytest.mark.parametrize("command", [c for c, _ in console_examples()])
def test_every_console_example_is_a_command_that_exists(command: str) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import cli

    words = shlex.split(command.split("  #", 1)[0].split(" | ")[0])[1:]
    path = [w for w in words if not w.startswith("-")][:2]
    result = CliRunner().invoke(cli, [*path, "--help"])
    if result.exit_code != 0:  # a command with an argument (report NAME): its parent
        result = CliRunner().invoke(cli, [path[0], "--help"])
    assert result.exit_code == 0, (command, result.output)
