"""Which store a database target names: an SQLite file path or a ``postgresql://`` URL.

Kept apart from :mod:`orchestrator.backend` (the interface) so that the interface and
its implementations (:mod:`orchestrator.sqlite`, :mod:`orchestrator.postgres`) never
import each other: this module is the only one that knows them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from .backend import Backend

#: Query parameters of a PostgreSQL URL that hold a secret (libpq's and asyncpg's names).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def is_url(target: str | os.PathLike[str]) -> bool:
    return isinstance(target, str) and "://" in target


def redact_url(url: str) -> str:
    """``url`` as shown to people (messages, pages, ``/-/snapshot.json``): the password of
    ``user:password@`` and the values of ``?password=`` and ``?sslpassword=`` are ``***``;
    everything else is kept as written."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    if query:
        pairs = []
        for pair in query.split("&"):
            name, equals, _ = pair.partition("=")
            secret = equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS
            pairs.append(f"{name}=***" if secret else pair)
        query = "&".join(pairs)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def shown(target: str | os.PathLike[str]) -> str:
    """A database target for messages: a path as it is, a URL without its secrets."""
    return redact_url(target) if is_url(target) else os.fspath(target)  # type: ignore[arg-type]


def backend_for(target: str | os.PathLike[str], *, in_thread: bool = False) -> Backend:
    """The backend for a database path (SQLite) or URL. ``in_thread=True``: an SQLite
    file's driver runs in the caller's thread (:class:`~orchestrator.sqlite.SQLiteBackend`),
    for a bulk load; a server's backend is the same either way."""
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

    return SQLiteBackend(target, in_thread=in_thread)


def default_target() -> str | Path:
    """The database the user means: ``$ORCHESTRATOR_DB`` (or the seed's ``$DATABASE_PATH``)
    as given when it is a URL, else :func:`orchestrator.sqlite.default_db_path`."""
    value = os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH")
    if value and is_url(value):
        return value
    from .sqlite import default_db_path

    return default_db_path()
