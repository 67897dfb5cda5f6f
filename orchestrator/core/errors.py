"""Exceptions the writer raises to its caller, and how an exception is recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: importing pydantic costs a CLI ~80 ms
    from pydantic import ValidationError


class OrchestratorError(Exception):
    """Base class of the errors this package raises on purpose."""


class InvalidInput(OrchestratorError, ValueError):
    """A value given to the writer was rejected; nothing was written.

    ``field`` names the offending field (``"prompts.tokens_input"``) and the
    message says what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    @classmethod
    def from_validation(cls, table: str, error: ValidationError) -> InvalidInput:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "?"
        problem = first["msg"]
        if "input" in first and not isinstance(first["input"], (dict, list)):
            problem += f" (got {first['input']!r:.80})"
        more = len(error.errors()) - 1
        if more:
            problem += f"; and {more} more error(s)"
        return cls(f"{table}.{location}", problem)


class WriteError(OrchestratorError):
    """Rows the caller handed over could not be stored (disk full, I/O error...).

    They are kept in memory and retried; ``pending`` says how many wait.
    """

    def __init__(self, message: str, pending: int) -> None:
        self.pending = pending
        super().__init__(message)


class DatabaseTimeout(WriteError, TimeoutError):
    """The database did not answer an awaited call within the manager's ``timeout``
    (a server stopped or cut off). Queued log rows are kept and retried; a direct write
    that was cut off may or may not have been committed."""


class SchemaConflict(OrchestratorError):
    """A migration could not be applied to a PostgreSQL database (``migration`` names it):
    most often the database holds tables of another application by the same names.
    Migrations run in one transaction: nothing was changed."""

    #: SQLSTATEs of "already exists": duplicate table, object, function, schema.
    DUPLICATE = ("42P07", "42710", "42723", "42P06")

    def __init__(self, migration: str, error: Exception) -> None:
        self.migration = migration
        problem = " ".join(str(error).split())
        if getattr(error, "sqlstate", None) in self.DUPLICATE:
            problem += (
                " (another application's? orchestrator needs a database or a schema of "
                "its own: a new one, or ?search_path=SCHEMA in the URL)"
            )
        super().__init__(f"cannot apply migration {migration}: {problem}; nothing was changed")


def format_exception(exc: BaseException) -> str:
    """``Type: message`` for an agent's ``error`` column."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def exception_metadata(exc: BaseException) -> dict[str, str]:
    """The exception's type and traceback, for a log row's metadata."""
    import traceback

    return {
        "exception": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
