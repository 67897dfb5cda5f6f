"""Options shared by the ``orchestrator`` commands, defined once.

Every command that opens a database takes ``--db PATH`` through :func:`db_option`,
which also resolves the default (``$ORCHESTRATOR_DB``, ``$DATABASE_PATH``, else
``./orchestrator.db``), so a command body always receives a ``Path`` (or, for the
commands that support PostgreSQL, a ``postgresql://`` URL as given). A module of
its own so that every command module can import it without importing the others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .targets import default_target, is_url, shown

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = "Database file (default: $ORCHESTRATOR_DB, else $DATABASE_PATH, else ./orchestrator.db)."


class DatabaseTarget(click.ParamType):
    """A database file (a ``Path``) or a ``postgresql://`` URL (kept as text)."""

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and is_url(value):
            return value
        return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)


def db_option(*, positional: bool = False, postgres: bool = False) -> Callable[[F], F]:
    """Add ``--db PATH`` to a command and pass it, resolved, as ``db_path: Path``.

    With ``positional=True`` the database may also be given as an optional ``DB``
    argument (``orchestrator serve team.db``); giving both, naming different files,
    is a usage error. With ``postgres=True`` a ``postgresql://`` URL is passed on as
    text; other commands refuse one (they read an SQLite file).
    """
    path_type = DatabaseTarget()

    def decorator(function: F) -> F:
        @functools.wraps(function)
        def command(
            *args: Any, db_path: Path | None, db_argument: Path | None = None, **kwargs: Any
        ) -> Any:
            if db_argument is not None and db_path is not None and db_argument != db_path:
                raise click.UsageError(
                    f"two databases given: {shown(db_argument)} and --db {shown(db_path)}; give one"
                )
            chosen = db_argument if db_argument is not None else db_path
            target = chosen or default_target()
            if isinstance(target, str) and not postgres:
                raise click.UsageError(
                    f"{click.get_current_context().info_name} reads an SQLite file; "
                    "a postgresql:// URL is for the writer library, init, demo, report, serve, "
                    "redact and copy (`orchestrator copy URL FILE` makes a file of a store)"
                )
            return function(*args, db_path=target, **kwargs)

        wrapped = click.option(
            "--db",
            "db_path",
            metavar="PATH",
            type=path_type,
            default=None,
            help=DB_HELP,
        )(command)
        if positional:
            wrapped = click.argument(
                "db_argument", metavar="[DB]", required=False, type=path_type, default=None
            )(wrapped)
        return cast(F, wrapped)

    return decorator


def format_option() -> Callable[[F], F]:
    """``--format table|csv|json`` for commands that print rows, passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="Output format: an aligned table, CSV, or JSON (a list of objects).",
    )
