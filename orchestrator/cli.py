"""The ``orchestrator`` command: a thin layer of argument parsing over the package."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from .cli_options import (
    FAILURE_EXIT_KEY,
    TARGET_KEY,
    CommandGroup,
    DatabaseTarget,
    db_option,
    format_option,
    shown,
)
from .store import sqlite as backend
from .store.targets import backend_for


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adw-orchestrator")
def cli() -> None:
    """Record what AI developer workflows do and cost; read it in Datasette.

    Every command that opens a database takes --db PATH (default: $ORCHESTRATOR_DB,
    else $DATABASE_PATH, else ./orchestrator.db); init, demo and serve also take it
    as their DB argument.

    A command that fails prints one line on stderr (Error: ...) and exits 1.
    """


@cli.command()
@db_option(positional=True, postgres=True)
@click.option(
    "--force",
    is_flag=True,
    help="Start an empty database, after backing up the existing one (refused while it is open).",
)
def init(db_path: Path | str, force: bool) -> None:
    """Create DB, or upgrade its schema to the latest migration and repair it.

    DB (or --db) is the database file, or a postgresql:// URL; an existing one keeps its
    data. Tables, indexes and triggers missing from an SQLite file are re-created and the
    totals they keep recomputed.
    """
    from .commands.maintenance import init_database

    result = init_database(db_path, force=force)
    if result.backup is not None:
        checked = f" ({result.backup_verified})" if result.backup_verified else ""
        click.echo(f"Backed up {result.path} to {result.backup}{checked}")
    if result.emptied:
        click.echo(f"Emptied {result.path}")
    if result.repaired:
        click.echo(
            f"Repaired {result.path}: re-created {', '.join(result.repaired)}, and recomputed "
            "from the recorded rows what they keep (run totals, summaries, search indexes)"
        )
    verb = {True: "Created", False: "Upgraded", None: "Up to date:"}[result.created]
    click.echo(
        f"{verb} {result.path} (schema: {len(result.migrations)} migrations, "
        f"latest {result.latest})"
    )


@cli.command()
@click.option(
    "--postgresql",
    "url",
    metavar="URL",
    default=None,
    help="Print the PostgreSQL schema instead, migrated into a throw-away schema at URL.",
)
def schema(url: str | None) -> None:
    """Print the schema's SQL (every table, index and trigger)."""
    if url is not None:
        from .store.postgres import schema_sql

        click.echo(schema_sql(url), nl=False)
        return
    click.echo(backend.schema_sql(), nl=False)


@cli.command()
@db_option(positional=True, postgres=True)
@click.option("--prompts", default=3000, show_default=True, help="About how many prompts.")
@click.option("--days", default=42, show_default=True, help="Spread over this many days.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same history.")
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last day of the history, included (default: yesterday, UTC).",
)
def demo(db_path: Path | str, prompts: int, days: int, seed: int, end: datetime | None) -> None:
    """Write a realistic demo run history into DB (through the writer library).

    DB (or --db) is the database file (or a postgresql:// URL), created if missing; an
    existing one is added to.
    """
    from .commands.demo import create_demo_database

    # The library's end is an instant, the first one left out: the day after the last day.
    end_at = (end + timedelta(days=1)).replace(tzinfo=timezone.utc) if end else None
    with stderr_progressbar(length=prompts, label="Writing demo history") as bar:
        done = [0]

        def progress(count: int) -> None:
            bar.update(min(count, prompts) - done[0])
            done[0] = min(count, prompts)

        import asyncio

        summary = asyncio.run(
            create_demo_database(
                db_path, prompts=prompts, days=days, seed=seed, end=end_at, progress=progress
            )
        )
    click.echo(
        f"Wrote {summary.sessions} sessions, {summary.runs} runs ({summary.failed_runs} "
        f"failed), {summary.prompts} prompts, {summary.agent_logs} agent logs and "
        f"{summary.system_logs} system logs to {shown(db_path)}"
    )


@cli.command()
@click.argument("name", required=False)
@db_option(postgres=True)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    type=(str, str),
    help="A report parameter: -p start 2026-11-01 (repeatable).",
)
@click.option(
    "--tz",
    help="Time zone of the days, weeks and months (an IANA name such as Europe/Madrid; "
    "default UTC), for the reports that take tz.",
)
@format_option()
@click.pass_context
def report(
    ctx: click.Context,
    name: str | None,
    db_path: Path | str,
    params: tuple[tuple[str, str], ...],
    tz: str | None,
    fmt: str,
) -> None:
    """Run canned report NAME (the SQL in metadata.yml); list reports without NAME.

    Parameters may also be given as --name value after NAME: orchestrator report
    spend_by_day --start 2026-11-01. Every report takes --start and --end (UTC days,
    both included); leave them out for all time. --db may be a postgresql:// URL.
    """
    from .reports.canned import reports, run_report_args

    if name is None:
        for item in reports().values():
            parameters = " ".join(f"--{p}" for p in item.parameters)
            click.echo(f"{item.name:<24}{item.title}  {parameters}".rstrip())
        return
    try:
        given = (*params, ("tz", tz)) if tz is not None else params
        result = run_report_args(name, ctx.args, params=given, db_path=db_path)
    except (KeyError, ValueError, FileNotFoundError, ConnectionError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    echo_result(result.columns, result.rows, fmt)


report.context_settings = {"ignore_unknown_options": True, "allow_extra_args": True}


@cli.command()
@db_option(postgres=True)
def statusline(db_path: Path | str) -> None:
    """One line for Claude Code's status bar: its statusLine command.

    Reads Claude Code's status JSON on stdin; prints this session's cost, today's, the
    active 5-hour block's cost, time left and burn rate, and the budget left. Never
    fails: a problem prints a short line. (The console script runs it without click.)
    """
    from .statusline import main as statusline_main

    sys.exit(statusline_main(["--db", str(db_path)]))


@contextlib.contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A copy's progress on stderr: one bar per table, with its rate and time left."""
    bars: dict[str, Any] = {}

    def progress(table: str, done: int, total: int) -> None:
        bar = bars.get(table)
        if bar is None:
            for other in bars.values():
                other.render_finish()
            bar = bars[table] = stderr_progressbar(
                length=total, label=f"{table:<20}", show_pos=True
            )
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.render_finish()


@cli.command("copy")
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True, type=DatabaseTarget())
@click.argument("target", type=DatabaseTarget())
@click.option(
    "--replace",
    is_flag=True,
    help="Empty TARGET first (an SQLite file is backed up; refused while it is open).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Go on copying what is new every --every seconds (Ctrl-C stops); a round the "
    "server is away for is tried again at the next.",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between rounds with --follow.",
)
def copy_command(
    sources: tuple[Path | str, ...],
    target: Path | str,
    replace: bool,
    follow: bool,
    every: float,
) -> None:
    """Copy every run, prompt and log of each SOURCE into TARGET, then verify it.

    Each is an SQLite file or a postgresql:// URL: `orchestrator copy orchestrator.db
    postgresql://host/db` moves a store to a server; the other way makes a snapshot;
    several sources (`copy laptop.db ci.db team.db`) are merged into TARGET one after
    the other. Ids are kept; running it again copies only what is new (and runs that
    have finished since); nothing TARGET holds is deleted or overwritten unless
    --replace. Workflows are matched by name, and a response TARGET holds already (the
    same message and request id, imported on another machine) is not copied again. The
    end compares row counts, token and cost sums and a digest of the ids on both sides,
    and fails on any difference.

    --follow keeps a machine's file flowing into the team's store: `orchestrator copy
    --follow ./orchestrator.db postgresql://hub/orchestrator` copies what is new every 30
    seconds, says each round that copied something in one line, and, while the server is
    away, says so on stderr and catches up once it is back. Killed at any point, it is
    started again: nothing is doubled or lost.
    """
    from .commands.copy import CopyMismatch, follow_copy, merge_databases
    from .core.ids import utc_now

    source = " + ".join(shown(one) for one in sources)
    click.get_current_context().meta[TARGET_KEY] = f"{source} -> {shown(target)}"

    def done(result: Any) -> None:
        rows = [
            (t.name, t.source_rows, t.target_rows, t.inserted, t.updated, t.source_digest)
            for t in result.tables
        ]
        columns = ["table", "source_rows", "target_rows", "copied", "caught_up", "id_digest"]
        click.echo(format_result(columns, rows, "table"), nl=False)
        click.echo(
            f"Copied {result.inserted} rows and caught up {result.updated} from "
            f"{result.source} to {result.target} in {result.seconds:.1f} s; verified: counts, "
            "sums and ids match"
            + (f" ({result.merged} rows merged into the target's own)" if result.merged else "")
            + ("; finished the copy interrupted before" if result.resumed else "")
        )

    def pushed(result: Any) -> None:
        if result.inserted or result.updated:
            click.echo(
                f"{utc_now()}  copied {result.inserted} rows and caught up {result.updated} "
                f"from {result.source} to {result.target} in {result.seconds:.1f} s; verified"
            )

    def failed(message: str) -> None:
        click.echo(f"{utc_now()}  {source} -> {shown(target)}: {message}", err=True)

    try:
        if follow:
            if replace:
                raise click.UsageError("--replace empties TARGET: not with --follow")
            with contextlib.suppress(KeyboardInterrupt):
                follow_copy(sources, target, every=every, done=pushed, failed=failed)
            return
        with progress_bars() as progress:
            merge_databases(sources, target, replace=replace, progress=progress, done=done)
    except (CopyMismatch, FileNotFoundError, ValueError, ConnectionError) as exc:
        raise click.ClickException(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{source} -> {shown(target)}: {exc}") from None
    except Exception as exc:
        # A server lost half way (stopped, restarted, network): asyncpg's errors.
        if not (isinstance(exc, OSError) or type(exc).__module__.startswith("asyncpg")):
            raise
        raise click.ClickException(
            f"{source} -> {shown(target)}: {str(exc) or type(exc).__name__}; "
            "run the same copy again to finish it"
        ) from None


def stderr_progressbar(**options: Any) -> Any:
    """A click progress bar on stderr, drawn only on a terminal (a log or a pipe gets no
    label line before the command's own output or its one-line error)."""
    return click.progressbar(file=sys.stderr, hidden=not sys.stderr.isatty(), **options)


def echo_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """Print :func:`format_result`; CSV as it is (click.echo would drop what looks like a
    colour code from stored text when stdout is no terminal)."""
    click.echo(format_result(columns, rows, fmt), nl=False, color=True if fmt == "csv" else None)


def format_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    """Rows as an aligned text table, CSV or JSON (a list of objects). CSV and JSON hold
    the values as they are; the table shows them for reading (:func:`display.cell`:
    floats rounded, control characters escaped, long text cut with a marker)."""
    from .core.display import CELL_WIDTH, cell

    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        # Lines end in \n, so the csv module would leave a \r inside a value unquoted,
        # where readers take it for the end of a line: a row holding one is quoted whole.
        quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(columns)
        for row in rows:
            carriage = any(isinstance(value, str) and "\r" in value for value in row)
            (quoted if carriage else writer).writerow(row)
        return buffer.getvalue()
    names = [cell(column) for column in columns]
    cells = [[cell(value) for value in row] for row in rows]
    widths = [
        min(CELL_WIDTH, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(names)
    ]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(names, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for shown_row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(shown_row, widths, strict=True)).rstrip())
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


@cli.command()
@db_option(positional=True, postgres=True)
@click.option(
    "--host", default=None, help="Interface to listen on (default 127.0.0.1; 0.0.0.0 with --share)."
)
@click.option("--port", default=8001, show_default=True, help="Port to listen on.")
@click.option(
    "--share",
    is_flag=True,
    help="Serve beyond localhost behind a password ($ORCHESTRATOR_PASSWORD).",
)
@click.option("--no-demo", is_flag=True, help="Do not create a demo database when DB is missing.")
@click.option(
    "--refresh",
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    type=click.FloatRange(min=0.5),
    help="For a postgresql:// DB: how often its snapshot is refreshed.",
)
@click.option(
    "--snapshot",
    "snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="For a postgresql:// DB: the SQLite snapshot file (default: in ~/.cache).",
)
def serve(
    db_path: Path | str,
    host: str | None,
    port: int,
    share: bool,
    no_demo: bool,
    refresh: float,
    snapshot: Path | None,
) -> None:
    """Open DB in Datasette: reports, dashboards and tables, live while ADWs write.

    DB (or --db) is the database file. While it does not exist, a demo database beside
    it (orchestrator-demo/orchestrator.db) is created and served instead. A
    postgresql:// DB is served from a local SQLite snapshot (Datasette reads SQLite),
    copied first and refreshed every --refresh seconds; each page says as of when. The
    command becomes the Datasette process: stopping it stops the server.
    """
    from .commands.serve import (
        check_port,
        database_to_serve,
        datasette_command,
        exec_datasette,
        make_snapshot,
        snapshot_path,
    )
    from .core.ids import utc_now

    host = host or ("0.0.0.0" if share else "127.0.0.1")
    check_port(host, port)  # before a snapshot or a demo is made, and Datasette started

    snapshot_of, as_of = None, None
    if not backend_for(db_path).served_directly:  # Datasette reads SQLite files
        source = str(db_path)  # a server's URL
        snapshot_of, served = source, snapshot or snapshot_path(source)
        as_of = utc_now()
        try:
            with progress_bars() as bars:
                said: list[bool] = []

                def progress(table: str, done: int, total: int) -> None:
                    if not said:  # once connected: a server that cannot be reached fails alone
                        said.append(True)
                        click.echo(f"Copying {shown(db_path)} into the snapshot {served}", err=True)
                    bars(table, done, total)

                make_snapshot(source, served, progress)
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"{served}: {exc}") from None
    else:

        def creating(demo_db: Path) -> None:
            click.echo(f"No database at {db_path} yet: creating a demo one at {demo_db}", err=True)

        try:
            target = database_to_serve(Path(db_path), demo=not no_demo, creating=creating)
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        if target.is_demo:
            click.echo(
                f"Serving the DEMO database {target.path}. Once your ADWs write {db_path}, "
                "run this command again to see their data.",
                err=True,
            )
        served = target.path
    try:
        command, env = datasette_command(
            served,
            host=host,
            port=port,
            share=share,
            snapshot_of=snapshot_of,
            refresh_s=refresh,
            as_of=as_of,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Reports and dashboards: http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  "
        f"(dashboard: /-/dashboards/overview, live runs and events: /-/live)",
        err=True,
    )
    exec_datasette(command, env)


@cli.command()
@db_option(postgres=True)
@click.option("--since", metavar="DAY", help="Only prompts created on or after DAY (YYYY-MM-DD).")
@click.option("--model", metavar="NAME", help="Only prompts of this model.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def reprice(db_path: Path | str, since: str | None, model: str | None, dry_run: bool) -> None:
    """Recompute computed costs with the installed price data (genai-prices).

    Reported costs stay as reported; unpriced prompts of a model that now has a price
    become priced; summaries and run totals follow.
    """
    from .commands.reprice import reprice as run_reprice

    try:
        result = run_reprice(db_path, since=since, model=model, dry_run=dry_run)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [
        (
            name,
            change.prompts,
            change.changed,
            change.newly_priced,
            round(change.old_usd, 4),
            round(change.new_usd, 4),
            round(change.difference_usd, 4),
        )
        for name, change in sorted(result.by_model.items())
    ]
    columns = ["model", "prompts", "changed", "newly_priced", "old_usd", "new_usd", "difference"]
    click.echo(format_result(columns, rows, "table"), nl=False)
    verb = "Would change" if dry_run else "Changed"
    click.echo(f"{verb} {result.changed} prompts, priced with {result.priced_with}")


@cli.command()
@db_option(postgres=True)
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
def redact(db_path: Path | str, dry_run: bool) -> None:
    """Redact secrets already stored, with today's patterns.

    Rows are redacted as they are written; a database keeps what the redaction of its
    day let through (before 2026-11: secrets inside a tool call's arguments, in
    metadata). Rewrites only what changes; on SQLite it then merges the search indexes
    and checkpoints the file so the old text is gone from it too (on PostgreSQL, VACUUM
    reclaims the old row versions). Safe to run while ADWs write, and again: a run that
    was stopped is finished by the next. --db may be a postgresql:// URL.
    """
    from .commands.redact_stored import redact_stored

    try:
        result = redact_stored(db_path, dry_run=dry_run)
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        raise click.ClickException(str(exc)) from None
    rows = [(table, column, count) for (table, column), count in result.changed.items()]
    if rows:
        click.echo(format_result(["table", "column", "values"], rows, "table"), nl=False)
    verb = "Would redact" if dry_run else "Redacted"
    click.echo(f"{verb} {result.values_changed} values in {result.rows_read} rows read.")
    if result.checkpointed is False:
        click.echo(
            "A reader kept the write-ahead log from being checkpointed whole: old text "
            "stays in the file until it is. Run this again once readers are gone.",
            err=True,
        )


@cli.command()
@db_option(postgres=True)
@click.option("--workflow", help="Only this workflow (orchestrator agent name).")
@click.option("--session", help="Only runs of this session (ADW id).")
@click.option("--run", "run_", metavar="RUN", help="Only this run (its id or its name).")
@click.option(
    "--level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    help="Only events at this level or above (failures are ERROR).",
)
@click.option("-n", "--lines", default=10, show_default=True, help="Show the last N events first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(
    db_path: Path | str,
    workflow: str | None,
    session: str | None,
    run_: str | None,
    level: str | None,
    lines: int,
    as_json: bool,
) -> None:
    """Follow new runs, prompts and logs as they land, like tail -f (Ctrl-C stops).

    One line per event: time (UTC), workflow, run, kind (start, end, prompt, log,
    system) and cost in USD, then what happened. Coloured on a terminal. A database
    file replaced or deleted meanwhile is said on stderr and followed, like tail -F.
    """
    from .reports.tail import EventFilter, follow

    filters = EventFilter(workflow=workflow, session=session, run=run_, level=level)
    try:
        for event in follow(
            db_path, filters, backlog=lines, notice=lambda line: click.echo(line, err=True)
        ):
            click.echo(json.dumps(event.as_dict()) if as_json else format_event(event))
    except (FileNotFoundError, sqlite3.Error, ConnectionError) as exc:  # a new file: not one
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `orchestrator tail | head`: the reader left
        sys.stderr.close()


_KIND_COLOURS = {"start": "blue", "end": "green", "prompt": "cyan", "log": None, "system": None}
_LEVEL_COLOURS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}


def format_event(event: Any) -> str:
    """One line for an :class:`orchestrator.reports.tail.Event`, with colours that click drops
    when the output is not a terminal; stored text shown printable (control characters
    escaped: :func:`display.printable`)."""
    from .core.display import printable

    run = printable(event.run or "")
    if event.run_id:
        run = f"{run}·{event.run_id[-8:]}" if run else event.run_id[-8:]
    cost = "" if event.cost_usd is None else f"${event.cost_usd:.4f}"
    colour = _LEVEL_COLOURS.get(event.level) or _KIND_COLOURS.get(event.kind)
    return "  ".join(
        [
            click.style(event.time[:19].replace("T", " "), dim=True),
            f"{printable(event.workflow or '-'):<14}",
            f"{run or '-':<22}",
            click.style(f"{event.kind:<6}", fg=colour, bold=event.kind == "end"),
            click.style(f"{cost:>9}", bold=bool(cost)),
            click.style(printable(event.text), fg=_LEVEL_COLOURS.get(event.level)),
        ]
    )


@cli.command()
@db_option(postgres=True)
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup(db_path: Path | str, dest: Path) -> None:
    """Copy the database to DEST consistently while ADWs keep writing, and verify the copy.

    DEST is the new SQLite file (never overwritten). A postgresql:// store is copied into
    it as `orchestrator copy` does, and verified the same way.
    """
    from .commands.maintenance import back_up

    saved = back_up(db_path, dest)
    size = saved.path.stat().st_size
    click.echo(f"Backed up {shown(db_path)} to {saved.path} ({size / 1e6:.1f} MB, {saved.checked})")


@cli.command()
@db_option(postgres=True)
@click.option("--before", metavar="DAY", required=True, help="Delete raw rows older than DAY.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def prune(db_path: Path | str, before: str, dry_run: bool) -> None:
    """Delete finished runs (with their prompts and logs) and system logs older than DAY.

    The daily summaries stay as they were: spend and token reports by day do not change.
    """
    from .commands.maintenance import prune as prune_database

    try:
        result = prune_database(db_path, before, dry_run=dry_run)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "Would delete" if dry_run else "Deleted"
    space = (
        "VACUUM makes their space reusable"
        if result.freed_bytes is None  # a server's store: its free space is not a file's
        else f"{result.freed_bytes / 1e6:.1f} MB {'would be ' if dry_run else ''}free for "
        "reuse (VACUUM returns it to the disk)"
    )
    click.echo(
        f"{verb} {result.runs} runs, {result.prompts} prompts, {result.agent_logs} agent logs "
        f"and {result.system_logs} system logs from before {before}; {space}"
    )


@cli.group()
def budget() -> None:
    """Spend budgets per UTC day and month, for a workflow, a model or a session."""


SCOPE_HELP = "What NAME is: a workflow (orchestrator agent), a model or a session id."
scope_option = click.option(
    "--scope",
    type=click.Choice(["workflow", "model", "session"]),
    default="workflow",
    show_default=True,
    help=SCOPE_HELP,
)


@budget.command("set")
@db_option(postgres=True)
@click.argument("name")
@scope_option
@click.option("--daily", type=float, metavar="USD", help="Spend allowed per UTC day.")
@click.option("--monthly", type=float, metavar="USD", help="Spend allowed per UTC month.")
def budget_set(
    db_path: Path | str, name: str, scope: str, daily: float | None, monthly: float | None
) -> None:
    """Set (or replace) the budget of NAME, a workflow unless --scope says otherwise.

    A limit is a finite amount of USD above 0; `budget remove` removes a budget.
    """
    from .core.errors import InvalidInput
    from .writer.budgets import set_budget

    try:
        set_budget(db_path, scope, name, daily_usd=daily, monthly_usd=monthly)
    except InvalidInput as exc:
        option = {"budgets.daily_usd": "--daily", "budgets.monthly_usd": "--monthly"}
        raise click.ClickException(f"{option.get(exc.field, exc.field)}: {exc.problem}") from None
    limits = ", ".join(
        f"${value:.2f} {label}"
        for value, label in ((daily, "a day"), (monthly, "a month"))
        if value is not None
    )
    click.echo(f"Budget of {scope} {name}: {limits}")


@budget.command("remove")
@db_option(postgres=True)
@click.argument("name")
@scope_option
def budget_remove(db_path: Path | str, name: str, scope: str) -> None:
    """Remove the budget of NAME (its past alerts stay in the logs); exit 1 if it has none."""
    from .writer.budgets import remove_budget

    if not remove_budget(db_path, scope, name):
        raise click.ClickException(f"no budget of {scope} {name} in {shown(db_path)}")
    click.echo(f"Removed the budget of {scope} {name}")


def _budget_rows(db_path: Path | str) -> tuple[list[str], list[tuple[Any, ...]], int]:
    from .writer.budgets import statuses

    found = statuses(db_path)
    rows = [
        (
            state.budget.scope,
            state.budget.name,
            state.budget.daily_usd,
            round(state.spent_today, 4),
            state.budget.monthly_usd,
            round(state.spent_month, 4),
            round(state.burn_usd_per_day, 4),
            round(state.month_forecast_usd, 2),
            ", ".join(state.over) or "ok",
        )
        for state in found
    ]
    columns = [
        "scope",
        "name",
        "daily_usd",
        "spent_today",
        "monthly_usd",
        "spent_month",
        "usd_per_day",
        "month_forecast",
        "over",
    ]
    return columns, rows, sum(1 for state in found if state.over)


@budget.command("list")
@db_option(postgres=True)
@format_option()
def budget_list(db_path: Path | str, fmt: str) -> None:
    """Every budget with today's and this month's spend and the burn rate."""
    columns, rows, _ = _budget_rows(db_path)
    echo_result(columns, rows, fmt)


@budget.command("check")
@db_option(postgres=True)
def budget_check(db_path: Path | str) -> None:
    """Exit 1 when any budget is exceeded (for CI gates and cron), 0 otherwise, and 2
    when the check itself failed (no database, not readable)."""
    click.get_current_context().meta[FAILURE_EXIT_KEY] = 2
    columns, rows, over = _budget_rows(db_path)
    click.echo(format_result(columns, rows, "table"), nl=False)
    if over:
        click.echo(f"{over} budget(s) exceeded", err=True)
        sys.exit(1)


@cli.command()
@db_option(positional=True, postgres=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=4318, show_default=True, help="Port (OTLP/HTTP's is 4318).")
@click.option(
    "--token",
    envvar="ORCHESTRATOR_COLLECT_TOKEN",
    default=None,
    help="Bearer token clients must send (required beyond 127.0.0.1; "
    "default $ORCHESTRATOR_COLLECT_TOKEN).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes receiving on the port, each writing in turn (more cores, more events/s).",
)
def collect(db_path: Path | str, host: str, port: int, token: str | None, workers: int) -> None:
    """Receive Claude Code's OpenTelemetry (OTLP/HTTP) and http hooks into DB.

    POST /v1/logs, /v1/metrics, /v1/traces (JSON or protobuf, gzip) and /hooks. Point
    Claude Code at it: CLAUDE_CODE_ENABLE_TELEMETRY=1 OTEL_LOGS_EXPORTER=otlp
    OTEL_METRICS_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
    """
    from .claude_code.collect import serve
    from .core.errors import InvalidInput

    def ready(server: Any) -> None:
        processes = f" ({workers} processes)" if workers > 1 else ""
        click.echo(
            f"Collecting into {shown(str(db_path))} on http://{host}:{port}{processes}", err=True
        )

    try:
        serve(
            str(db_path),
            host,
            port,
            token=token,
            workers=workers,
            ready=ready,
            log=lambda line: click.echo(line, err=True),
        )
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{host}:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass


from .claude_code.cli import hook, hooks, import_group, record  # noqa: E402

cli.add_command(record)
cli.add_command(import_group, name="import")
cli.add_command(hook)
cli.add_command(hooks)

from .export_cli import export  # noqa: E402

cli.add_command(export)


def main() -> None:
    """The ``orchestrator`` console script: :func:`cli`, then an exit without the
    collector's last passes over every object of the process.

    Garbage is collected first (its finalizers run), then what is still alive is frozen
    (:func:`gc.freeze`): the interpreter's shutdown then skips traversing it, ~8 ms of a
    command's CPU (a report's own work is a few ms). Shutdown still runs atexit hooks and
    flushes and closes files; Python never promised finalizers to objects alive at exit,
    and every command closes its databases itself.
    """
    try:
        cli()
    finally:
        gc.collect()
        gc.freeze()
