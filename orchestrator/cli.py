"""The ``orchestrator`` command: a thin layer of argument parsing over the package."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from . import sqlite as backend
from .ids import utc_now

F = TypeVar("F", bound=Callable[..., Any])


def _db_argument(required: bool = False) -> Callable[[F], F]:
    return click.argument(
        "db_path",
        metavar="DB",
        required=required,
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
    )


def resolve_db(db_path: Path | None) -> Path:
    return db_path if db_path is not None else backend.default_db_path()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adw-orchestrator")
def cli() -> None:
    """Record what AI developer workflows do and cost; read it in Datasette.

    DB defaults to $ORCHESTRATOR_DB (or $DATABASE_PATH), else ./orchestrator.db.
    """


@cli.command()
@_db_argument()
@click.option(
    "--force",
    is_flag=True,
    help="Start an empty database, moving an existing one to a timestamped backup.",
)
def init(db_path: Path | None, force: bool) -> None:
    """Create DB, or upgrade its schema to the latest migration."""
    path = resolve_db(db_path)
    if force and path.exists():
        backup = backup_database(path)
        click.echo(f"Backed up {path} to {backup}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    existed = path.exists()
    conn = backend.connect(path)
    from sqlite_utils import Database

    from .migrations import migrations

    applied = [m.name for m in migrations.applied(Database(conn))]
    conn.close()
    verb = "Upgraded" if existed else "Created"
    click.echo(f"{verb} {path} (schema: {len(applied)} migrations, latest {applied[-1]})")


def backup_database(path: Path) -> Path:
    """Copy ``path`` (WAL included, consistently) to ``<path>.<timestamp>.bak``; return it."""
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    target = path.with_name(f"{path.name}.{stamp}.bak")
    import sqlite3

    source = sqlite3.connect(os.fspath(path))
    destination = sqlite3.connect(os.fspath(target))
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()
    if not target.exists() or target.stat().st_size == 0:  # pragma: no cover - defensive
        shutil.copy2(path, target)
    return target


@cli.command()
def schema() -> None:
    """Print the schema's SQL (every table, index and trigger)."""
    click.echo(backend.schema_sql(), nl=False)


@cli.command()
@_db_argument()
@click.option("--prompts", default=3000, show_default=True, help="About how many prompts.")
@click.option("--days", default=42, show_default=True, help="Spread over this many days.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same history.")
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last day of the history (default: today, UTC).",
)
def demo(db_path: Path | None, prompts: int, days: int, seed: int, end: datetime | None) -> None:
    """Write a realistic demo run history into DB (through the writer library)."""
    from .demo import create_demo_database

    path = resolve_db(db_path)
    end_at = end.replace(tzinfo=timezone.utc) if end else None
    with click.progressbar(length=prompts, label="Writing demo history", file=sys.stderr) as bar:
        done = [0]

        def progress(count: int) -> None:
            bar.update(min(count, prompts) - done[0])
            done[0] = min(count, prompts)

        summary = asyncio.run(
            create_demo_database(
                path, prompts=prompts, days=days, seed=seed, end=end_at, progress=progress
            )
        )
    click.echo(
        f"Wrote {summary.sessions} sessions, {summary.runs} runs ({summary.failed_runs} "
        f"failed), {summary.prompts} prompts, {summary.agent_logs} agent logs and "
        f"{summary.system_logs} system logs to {path}"
    )


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Database (default: $ORCHESTRATOR_DB or ./orchestrator.db).",
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    type=(str, str),
    help="A report parameter: -p start 2026-11-01 (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def report(
    ctx: click.Context,
    name: str | None,
    db_path: Path | None,
    params: tuple[tuple[str, str], ...],
    fmt: str,
) -> None:
    """Run canned report NAME (the SQL in metadata.yml); list reports without NAME.

    Parameters may also be given as --name value after NAME: orchestrator report
    spend_by_day --start 2026-11-01. Every report takes --start and --end (UTC days,
    both included); leave them out for all time.
    """
    from .reports import reports, run_report_args

    if name is None:
        for item in reports().values():
            parameters = " ".join(f"--{p}" for p in item.parameters)
            click.echo(f"{item.name:<24}{item.title}  {parameters}".rstrip())
        return
    try:
        result = run_report_args(name, ctx.args, params=params, db_path=db_path)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    click.echo(format_result(result.columns, result.rows, fmt), nl=False)


report.context_settings = {"ignore_unknown_options": True, "allow_extra_args": True}


def format_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    """Rows as an aligned text table, CSV or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue()
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        lines.append("  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


@cli.command()
@_db_argument()
@click.option("--host", default=None, help="Default 127.0.0.1 (0.0.0.0 with --share).")
@click.option("--port", default=8001, show_default=True)
@click.option(
    "--share",
    is_flag=True,
    help="Serve beyond localhost behind a password ($ORCHESTRATOR_PASSWORD).",
)
@click.option("--no-demo", is_flag=True, help="Do not create a demo database when DB is missing.")
def serve(db_path: Path | None, host: str | None, port: int, share: bool, no_demo: bool) -> None:
    """Open DB in Datasette: reports, dashboards and tables, live while ADWs write."""
    from .serve import datasette_command, demo_path_for, ensure_demo

    path = resolve_db(db_path)
    if not path.exists():
        if no_demo:
            raise click.ClickException(f"no database at {path}: run `orchestrator init` first")
        demo_db = demo_path_for(path)
        if not demo_db.exists():
            click.echo(f"No database at {path} yet: creating a demo one at {demo_db}", err=True)
        path = ensure_demo(path)
        click.echo(
            f"Serving the DEMO database {path}. Once your ADWs write {resolve_db(db_path)}, "
            "run this command again to see their data.",
            err=True,
        )
    else:
        backend.connect(path).close()  # create or upgrade the schema first
    try:
        command, env = datasette_command(
            path, host=host or ("0.0.0.0" if share else "127.0.0.1"), port=port, share=share
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Reports and dashboards: http://{host or '127.0.0.1'}:{port}/  "
        f"(dashboard: /-/dashboards/overview)",
        err=True,
    )
    sys.exit(subprocess.call(command, env=env))


def main() -> None:  # pragma: no cover
    cli()


from .cli_claude import import_group, record  # noqa: E402

cli.add_command(record)
cli.add_command(import_group, name="import")
