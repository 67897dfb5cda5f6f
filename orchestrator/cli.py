"""The ``orchestrator`` command: a thin layer of argument parsing over the package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
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


def main() -> None:  # pragma: no cover
    cli()
