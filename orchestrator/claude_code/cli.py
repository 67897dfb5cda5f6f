"""CLI commands for Claude Code: ``record`` and ``import stream-json`` / ``import claude-code``.

Thin wrappers over :mod:`~orchestrator.claude_code.stream_json` and
:mod:`~orchestrator.claude_code.transcripts`, imported by the command that runs (every
``orchestrator`` command imports this module to register these).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..cli_options import db_option

if TYPE_CHECKING:
    from .stream_json import StreamRecorder, StreamSummary

_orchestrator_option = click.option(
    "--orchestrator",
    "-o",
    default="claude-code",
    show_default=True,
    help="Orchestrator agent (workflow type) the run belongs to.",
)


@click.command(context_settings={"ignore_unknown_options": True})
@db_option(postgres=True)
@_orchestrator_option
@click.option("--name", default=None, help="Name of the run, e.g. 'plan'.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record(
    db_path: Path | str, orchestrator: str, name: str | None, command: tuple[str, ...]
) -> None:
    """Run COMMAND (e.g. `claude -p ... --output-format stream-json --verbose`) and record it.

    Its stdout is passed through unchanged; the exit code is the command's, whatever
    happens to the recording (a failed recording is reported on stderr). A command that
    succeeds without writing stream-json is an error (exit 1): nothing is recorded.

        orchestrator record -- claude -p "fix the tests" --output-format stream-json --verbose
    """
    import asyncio

    from ..core.errors import format_exception
    from ..writer.db import DatabaseManager
    from .stream_json import NoStreamJson, StreamRecorder, record_command

    recorders: list[StreamRecorder] = []

    async def run() -> int:
        db = DatabaseManager(db_path)
        await db.connect()  # before the command starts: a database that cannot open stops here
        try:
            recorder = StreamRecorder(db, orchestrator=orchestrator, name=name)
            recorders.append(recorder)
            code, summary = await record_command(db, list(command), recorder=recorder)
        finally:
            try:
                await db.close()
            except Exception as exc:
                click.echo(f"orchestrator: recording failed: {format_exception(exc)}", err=True)
        if summary.agent_id is None and summary.error is None:
            click.echo(f"Error: {command[0]}: {NoStreamJson(summary)}", err=True)
            return code or 1
        click.echo(f"orchestrator: {summary}", err=True)
        return code

    try:
        code = asyncio.run(run())
    except FileNotFoundError as exc:
        raise click.ClickException(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        exit_code = recorders[0].summary.exit_code if recorders else None
        code = 130 if exit_code is None else exit_code
    sys.exit(code)


@click.group(name="import")
def import_group() -> None:
    """Import Claude Code runs recorded elsewhere."""


@import_group.command(name="stream-json")
@db_option(postgres=True)
@_orchestrator_option
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--started-at",
    default=None,
    help="When the run started (ISO 8601, UTC unless an offset is given). "
    "Default: the file's modification time minus the run's duration_ms.",
)
def import_stream_json(
    db_path: Path | str, orchestrator: str, started_at: str | None, files: tuple[Path, ...]
) -> None:
    """Import FILES of `claude -p --output-format stream-json --verbose` output, a run each.

    Stream lines carry no time: each run is dated as --started-at says, else by its file's
    modification time minus its duration; the summary says which. A file that cannot be
    imported (one that holds no stream-json) is reported on stderr and the others are
    imported (exit code 1).
    """
    import asyncio
    import sqlite3

    from ..core.errors import OrchestratorError, WriteError, format_exception
    from ..core.ids import parse_timestamp
    from ..writer.db import DatabaseManager
    from .stream_json import record_stream

    try:
        start = None if started_at is None else parse_timestamp(started_at)
    except ValueError:
        raise click.BadParameter(
            f"not an ISO 8601 time: {started_at!r}", param_hint="--started-at"
        ) from None

    async def run() -> list[tuple[Path, StreamSummary | str]]:
        done: list[tuple[Path, StreamSummary | str]] = []
        async with DatabaseManager(db_path) as db:
            for path in files:
                try:
                    with path.open("rb") as handle:
                        summary = await record_stream(
                            db, handle, orchestrator=orchestrator, name=path.name, started_at=start
                        )
                except (sqlite3.Error, WriteError):
                    raise  # the database's failure, not the file's
                except db.backend.database_error as exc:
                    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                        done.append((path, format_exception(exc)))  # the file's
                        continue
                    raise  # the server's (PostgreSQL)
                except OrchestratorError as exc:
                    done.append((path, str(exc)))
                except Exception as exc:
                    done.append((path, format_exception(exc)))
                else:
                    done.append((path, summary))
        return done

    failed = False
    for path, outcome in asyncio.run(run()):
        if isinstance(outcome, str):
            click.echo(f"Error: {path}: {outcome}", err=True)
            failed = True
        else:
            click.echo(f"{path}: {outcome}")
    if failed:
        sys.exit(1)


@import_group.command(name="claude-code")
@db_option(postgres=True)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def import_claude_code(db_path: Path | str, paths: tuple[Path, ...]) -> None:
    """Import Claude Code transcripts from PATHS, files or folders (default: the projects
    folders under $CLAUDE_CONFIG_DIR, or ~/.config/claude and ~/.claude). Re-importing
    adds only what is new. A file that cannot be imported is rolled back and reported,
    the others are imported (exit code 1)."""
    from .transcripts import import_transcripts, transcript_files

    roots = paths or None
    try:
        if sys.stderr.isatty():
            total = sum(f.stat().st_size for f in transcript_files(roots) if f.exists())
            bar: Any = click.progressbar(length=total, label="Importing", file=sys.stderr)
            with bar:
                summary = import_transcripts(roots, db_path=db_path, progress=bar.update)
        else:
            summary = import_transcripts(roots, db_path=db_path)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(summary))
    if summary.errors:
        sys.exit(1)


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def hook(ctx: click.Context) -> None:
    """The command Claude Code runs as a hook: records the event on stdin (always exit 0).

    Takes --db PATH or URL (default: $ORCHESTRATOR_DB). `orchestrator hooks install`
    registers `python -m orchestrator.claude_code.hook --db ...`, the same without the
    console script's start-up.
    """
    from .hook import main

    sys.exit(main(ctx.args))


@click.group()
def hooks() -> None:
    """Install or remove `orchestrator hook` in Claude Code's settings."""


def _settings_file(user: bool, project: Path | None) -> Path:
    from .hook_settings import settings_path

    return settings_path("user" if user else "project", project)


_scope_options = [
    click.option(
        "--user/--project",
        "user",
        default=False,
        help="~/.claude/settings.json (every project of the user), or ./.claude/settings.json "
        "(this project; the default).",
    ),
    click.option("--dry-run", is_flag=True, help="Show the change as a diff; write nothing."),
]


def _scoped(function: Any) -> Any:
    for option in reversed(_scope_options):
        function = option(function)
    return function


def _report(path: Path, diff: str, dry_run: bool, done: str) -> None:
    if not diff:
        click.echo(f"{path}: unchanged")
    elif dry_run:
        click.echo(diff, nl=False)
    else:
        click.echo(f"{path}: {done}")


@hooks.command(name="install")
@_scoped
@click.option(
    "--db",
    "db",
    metavar="PATH",
    default=None,
    help="Database the hooks write (a file, made absolute, or a postgresql:// URL; "
    "default: $ORCHESTRATOR_DB, else $DATABASE_PATH, else ./orchestrator.db).",
)
def hooks_install(user: bool, dry_run: bool, db: str | None) -> None:
    """Add `orchestrator hook` for every Claude Code hook event to Claude Code's settings,
    keeping every hook and setting there; installing twice changes nothing."""
    from ..core.errors import InvalidInput
    from .hook import default_target, is_url
    from .hook_settings import install

    target = db or default_target()
    if not is_url(target):
        target = str(Path(target).expanduser().resolve())
    path = _settings_file(user, None)
    try:
        diff = install(path, target, dry_run=dry_run)
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    _report(path, diff, dry_run, f"hooks installed (database {target})")


@hooks.command(name="uninstall")
@_scoped
def hooks_uninstall(user: bool, dry_run: bool) -> None:
    """Remove the hooks `hooks install` added; every other hook and setting is kept."""
    from ..core.errors import InvalidInput
    from .hook_settings import uninstall

    path = _settings_file(user, None)
    try:
        diff = uninstall(path, dry_run=dry_run)
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    _report(path, diff, dry_run, "hooks removed")
