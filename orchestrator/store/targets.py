"""Which store a database target names: an SQLite file path or a ``postgresql://`` URL.

Kept apart from :mod:`orchestrator.store.backend` (the interface) so that the interface and
its implementations (:mod:`orchestrator.store.sqlite`, :mod:`orchestrator.store.postgres`) never
import each other: this module is the only one that knows them all. How a target is told
apart and shown (:func:`is_url`, :func:`redact_url`) lives in :mod:`orchestrator.store.urls`,
which the engines import too.
"""

from __future__ import annotations

import os
from pathlib import Path

from .backend import Backend
from .urls import SECRET_PARAMETERS, is_url, redact_url


def shown(target: str | os.PathLike[str]) -> str:
    """A database target for messages: a path as it is, a URL without its secrets."""
    return redact_url(target) if is_url(target) else os.fspath(target)  # type: ignore[arg-type]


def resolved(target: str | os.PathLike[str]) -> str:
    """A database target as any folder names it (for another process): a path made
    absolute, a URL as it is."""
    return str(target) if is_url(target) else os.fspath(Path(target).resolve())


def backend_for(
    target: str | os.PathLike[str], *, in_thread: bool = False, read_only: bool = False
) -> Backend:
    """The backend for a database path (SQLite) or URL. ``in_thread=True``: an SQLite
    file's driver runs in the caller's thread (:class:`~orchestrator.store.sqlite.SQLiteBackend`),
    for a bulk load; ``read_only=True`` too: for reading only, a file this process cannot
    write is read. A server's backend is the same either way (reads change nothing)."""
    if is_url(target):
        scheme = str(target).split("://", 1)[0]
        if scheme in ("postgresql", "postgres"):
            from .postgres import PostgresBackend

            return PostgresBackend(str(target))
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: give an SQLite file or a "
            "postgresql:// URL"
        )
    from .sqlite import SQLiteBackend

    return SQLiteBackend(target, in_thread=in_thread, read_only=read_only)


def default_target() -> str | Path:
    """The database the user means: ``$ORCHESTRATOR_DB`` (or the seed's ``$DATABASE_PATH``)
    as given when it is a URL, else :func:`orchestrator.store.sqlite.default_db_path`."""
    value = os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH")
    if value and is_url(value):
        return value
    from .sqlite import default_db_path

    return default_db_path()


__all__ = [
    "SECRET_PARAMETERS",
    "backend_for",
    "default_target",
    "is_url",
    "redact_url",
    "resolved",
    "shown",
]
