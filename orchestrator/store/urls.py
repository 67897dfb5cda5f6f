"""A database target that is a URL: told apart from a path, and shown without its secrets.

Imported by :mod:`orchestrator.store.targets` and by the engines (an error names its URL),
so that neither imports the other."""

from __future__ import annotations

import os
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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
