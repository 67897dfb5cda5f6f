"""Options shared by the ``orchestrator`` commands, defined once.

Every command that opens a database takes ``--db PATH`` through :func:`db_option`,
which also resolves the default (``$ORCHESTRATOR_DB``, ``$DATABASE_PATH``, else
``./orchestrator.db``), so a command body always receives a ``Path`` (or, for the
commands that support PostgreSQL, a ``postgresql://`` URL as given). A module of
its own so that every command module can import it without importing the others.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .store.targets import default_target, is_url, shown

F = TypeVar("F", bound=Callable[..., Any])

#: ``ctx.meta`` keys: the database a command opens, as its errors name it (a URL without
#: its password; "SOURCE -> TARGET" for copy), and the exit
#: code of a command that failed (``budget check`` fails with 2: 1 means over budget).
TARGET_KEY = "orchestrator.target"
FAILURE_EXIT_KEY = "orchestrator.failure_exit_code"

DB_HELP = "Database file (default: $ORCHESTRATOR_DB, else $DATABASE_PATH, else ./orchestrator.db)."


class Failure(click.ClickException):
    """A command's failure: ``Error: MESSAGE`` on stderr, then exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click's is a class attribute


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
                raise Failure(
                    f"{click.get_current_context().command_path} reads an SQLite file; "
                    "give it a file (`orchestrator copy URL FILE` makes a file of a store)",
                    exit_code=2,  # a usage error, in one line
                )
            click.get_current_context().meta[TARGET_KEY] = shown(target)
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


def _is_postgres_error(exc: BaseException) -> bool:
    asyncpg = sys.modules.get("asyncpg")  # never imported just to ask
    return asyncpg is not None and isinstance(
        exc, (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
    )


def failure_message(exc: BaseException, target: str | None = None) -> str | None:
    """The one line an ``orchestrator`` command prints for ``exc``, or None for an
    exception that is not a failure of the input or the database (a bug: its traceback
    is worth more than a line).

    What fails on purpose (the package's errors, bad values), the database's errors
    (SQLite, PostgreSQL) and the system's (a file, a connection) become their message on
    one line, naming ``target`` (the database as :func:`shown`) when the database's own
    message does not.
    """
    from .core.errors import OrchestratorError, SchemaConflict

    database_error = isinstance(exc, (sqlite3.Error, SchemaConflict)) or _is_postgres_error(exc)
    if not (database_error or isinstance(exc, (OrchestratorError, OSError, ValueError))):
        return None
    text = " ".join(str(exc).split()) or type(exc).__name__
    if database_error and target is not None and target not in text:
        text = f"{target}: {text}"
    return text


class CommandGroup(click.Group):
    """A group whose commands fail in one line (``Error: ...`` on stderr, no traceback)
    for every error :func:`failure_message` knows, exit code 1 (or the command's
    ``ctx.meta[FAILURE_EXIT_KEY]``)."""

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def one_line_errors(ctx: click.Context) -> Iterator[None]:
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except BrokenPipeError:  # `orchestrator report | head`: the reader left
        raise
    except Exception as exc:
        message = failure_message(exc, ctx.meta.get(TARGET_KEY))
        if message is None:
            raise
        raise Failure(message, exit_code=ctx.meta.get(FAILURE_EXIT_KEY, 1)) from None
