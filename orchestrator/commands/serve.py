"""Serving the database with Datasette and the project's plugin.

``orchestrator serve`` picks the database (:func:`database_to_serve`: the one asked
for, or a demo stand-in while it does not exist), then becomes ``datasette serve``
on the live file (``--immutable`` only when it cannot be written), bound
to 127.0.0.1. The reports, dashboard and live page come from the plugin
(:mod:`orchestrator.datasette_plugin`), exactly as with plain ``datasette serve``; the
command adds only Datasette settings and, with ``share=True``, a metadata file that
binds every interface and requires a password: the whole instance, and arbitrary SQL,
only for the logged-in (datasette-auth-passwords).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..store import sqlite as backend

DEMO_DIR = "orchestrator-demo"

#: Shortest ``$ORCHESTRATOR_PASSWORD`` that ``--share`` accepts: it guards the whole
#: instance and arbitrary SQL on every interface.
MIN_PASSWORD_LENGTH = 12

#: The Datasette settings ``orchestrator serve`` runs with (scripts/bench_datasette.py
#: times pages with them too).
DATASETTE_SETTINGS: dict[str, int | bool] = {
    "sql_time_limit_ms": 1000,
    "facet_time_limit_ms": 300,
    # Suggesting facets costs seconds on tables of millions of rows; the useful ones
    # are configured in metadata.yml.
    "suggest_facets": False,
}


def demo_path_for(db_path: Path) -> Path:
    """Where the demo database lives when ``db_path`` does not exist yet."""
    return db_path.resolve().parent / DEMO_DIR / "orchestrator.db"


@dataclass(frozen=True)
class ServeTarget:
    """The database to serve for the one asked for."""

    path: Path  # what Datasette opens
    requested: Path  # what the user named

    @property
    def is_demo(self) -> bool:
        """True when the demo database stands in for a missing ``requested``."""
        return self.path != self.requested


def database_to_serve(
    requested: Path,
    *,
    demo: bool = True,
    prompts: int = 3000,
    creating: Callable[[Path], None] | None = None,
) -> ServeTarget:
    """Which database to serve for ``requested``, ready: created or upgraded first.

    ``requested`` when it exists. Otherwise, with ``demo``, the demo database beside it
    (:func:`demo_path_for`), written with ``prompts`` prompts if missing; ``creating``
    is called with its path first, as that takes a while. Raises FileNotFoundError when
    ``requested`` is missing and ``demo`` is False.
    """
    if requested.exists():
        path = requested
    elif not demo:
        raise FileNotFoundError(f"no database at {requested}: run `orchestrator init` first")
    else:
        path = demo_path_for(requested)
        if not path.exists():
            from .demo import create_demo_database

            if creating is not None:
                creating(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            asyncio.run(create_demo_database(path, prompts=prompts))
    # Bring the schema up to date before Datasette reads it; a file that cannot be
    # written (a read-only filesystem) is only checked, and Datasette opens it immutable.
    backend.open_for_reading(path).close()
    return ServeTarget(path, requested)


def snapshot_path(url: str) -> Path:
    """Where the SQLite snapshot of the PostgreSQL store at ``url`` is kept: one folder per
    store (its URL without the password) in the user's cache, the file named
    ``orchestrator.db`` so that Datasette's pages are ``/orchestrator/...`` as for a file."""
    import hashlib

    from ..reports.canned import cache_dir
    from ..store.targets import redact_url

    digest = hashlib.sha256(redact_url(url).encode()).hexdigest()[:16]
    return cache_dir() / "snapshots" / digest / "orchestrator.db"


def make_snapshot(url: str, path: Path, progress: Any = None) -> Any:
    """Bring the snapshot at ``path`` up to date with the store at ``url`` (a whole,
    verified copy pass; the first one copies everything). Returns the copy's
    :class:`~orchestrator.commands.copy.CopyResult`.

    A snapshot is a cache, never a place where data is kept: a new one is built beside
    ``path`` and renamed onto it only once complete and verified, so a serve stopped
    during its first copy (SIGKILL, SIGTERM, a server gone) leaves no snapshot rather than
    half of one; one that no longer matches the store (rows changed or deleted there, not
    only added) or that is broken (not SQLite, objects missing: a refresh cut short) is
    built anew the same way, as is one of another store at the same URL (a database
    dropped and created again, a new server on the same port: the source's
    :meth:`~orchestrator.store.backend.Backend.identity` is recorded beside the snapshot,
    :func:`~orchestrator.datasette_plugin.snapshot.snapshot_source`)."""
    import asyncio
    import sqlite3

    from ..datasette_plugin.snapshot import record_source, snapshot_source
    from ..store.targets import backend_for
    from .copy import AnotherStore, CopyMismatch, copy_database

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(path)
    identity = asyncio.run(backend_for(url).identity())
    if path.exists() and identity is not None and snapshot_source(path) == identity:
        try:
            result = copy_database(url, path, progress=progress, expect=identity)
            if not result.holds_more:
                return result
        except (AnotherStore, CopyMismatch, sqlite3.DatabaseError):
            pass
    building = path.with_name(f"{path.name}{_BUILDING}{os.getpid()}")
    _remove_database(building)
    try:
        result = copy_database(url, building, progress=progress, expect=identity)
        # Everything into the main file, so that renaming it moves the whole snapshot.
        with contextlib.closing(sqlite3.connect(building)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _remove_database(path)  # the old file and its -wal/-shm, which must not meet the new
        os.replace(building, path)
    finally:
        _remove_database(building)
    if identity is not None:
        record_source(path, identity)
    return result


#: A snapshot being built is ``<name>.building-<pid>`` beside the snapshot.
_BUILDING = ".building-"


def _remove_database(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal", ""):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _remove_abandoned_builds(path: Path) -> None:
    """Remove snapshots whose build was cut short (their process is gone)."""
    for found in path.parent.glob(f"{path.name}{_BUILDING}*"):
        pid = found.name[len(path.name) + len(_BUILDING) :]
        if not pid.isdigit():
            continue  # a -wal/-shm beside one: removed with it
        try:
            os.kill(int(pid), 0)
            continue  # still building (another serve of the same store)
        except ProcessLookupError:
            _remove_database(found)
        except PermissionError:
            continue  # another user's process


def share_metadata(metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Require a login for everything, arbitrary SQL included (added to ``metadata``)."""
    metadata = {} if metadata is None else metadata
    metadata["allow"] = {"id": "*"}
    metadata["allow_sql"] = {"id": "*"}
    metadata.setdefault("plugins", {})["datasette-auth-passwords"] = {
        "admin_password_hash": {"$env": "ORCHESTRATOR_PASSWORD_HASH"}
    }
    return metadata


def password_hash_from_env() -> str:
    """``$ORCHESTRATOR_PASSWORD_HASH``, or the hash of ``$ORCHESTRATOR_PASSWORD``.

    Raises ValueError when neither is set or the password is shorter than
    :data:`MIN_PASSWORD_LENGTH` characters.
    """
    if os.environ.get("ORCHESTRATOR_PASSWORD_HASH"):
        return os.environ["ORCHESTRATOR_PASSWORD_HASH"]
    password = os.environ.get("ORCHESTRATOR_PASSWORD")
    if not password:
        raise ValueError(
            "sharing needs a password: set ORCHESTRATOR_PASSWORD (or ORCHESTRATOR_PASSWORD_HASH "
            "from `datasette hash-password`)"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"ORCHESTRATOR_PASSWORD is {len(password)} characters long; sharing needs at "
            f"least {MIN_PASSWORD_LENGTH}"
        )
    from datasette_auth_passwords.utils import hash_password

    return str(hash_password(password))


def datasette_command(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    share: bool = False,
    metadata_dir: Path | None = None,
    snapshot_of: str | None = None,
    refresh_s: float = 5.0,
    as_of: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The ``datasette serve`` command line and environment for ``db_path``.

    Datasette runs with the project's plugin registered once, installed or not
    (``python -m orchestrator.datasette_plugin``); the plugin supplies metadata.yml, so
    the command passes ``--metadata`` only to share. Raises ValueError (from
    :func:`password_hash_from_env`) when sharing without a good password. With
    ``snapshot_of`` (a PostgreSQL URL), ``db_path`` is that store's snapshot, which the
    plugin refreshes every ``refresh_s`` seconds (made ``as_of`` that UTC time).
    """
    env = dict(os.environ)
    if snapshot_of is not None:
        from ..datasette_plugin import snapshot

        env[snapshot.SOURCE_ENV] = snapshot_of
        env[snapshot.PATH_ENV] = os.fspath(db_path)
        env[snapshot.INTERVAL_ENV] = str(refresh_s)
        env[snapshot.AS_OF_ENV] = as_of or ""
    # A file that cannot be written cannot change under Datasette: open it immutable.
    immutable = [] if backend.is_writable(db_path) else ["--immutable"]
    command = [
        sys.executable,
        "-m",
        "orchestrator.datasette_plugin",
        "serve",
        *immutable,
        os.fspath(db_path),
    ]
    if share:
        env["ORCHESTRATOR_PASSWORD_HASH"] = password_hash_from_env()
        folder = metadata_dir or Path(tempfile.mkdtemp(prefix="orchestrator-serve-"))
        metadata_file = folder / "metadata.yml"
        metadata_file.write_text(yaml.safe_dump(share_metadata()), encoding="utf-8")
        command += ["--metadata", os.fspath(metadata_file)]
    command += ["--host", host, "--port", str(port)]
    for name, value in DATASETTE_SETTINGS.items():
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        command += ["--setting", name, text]
    return command, env


def check_port(host: str, port: int) -> None:
    """Raise OSError naming ``host``:``port`` when the server could not listen there (another
    server has it, or it is not an address of this machine), before anything is started.
    Bound as uvicorn binds (SO_REUSEADDR: a port in TIME_WAIT is free), then released."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(
            f"cannot listen on {host}:{port}: {reason}; choose another with --port"
        ) from None


def exec_datasette(command: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with ``command`` (from :func:`datasette_command`).

    Datasette then has this process's id, so a signal meant for ``orchestrator serve``
    (SIGTERM from a supervisor, Ctrl-C) stops Datasette and frees the port; a child
    process would outlive a killed parent. Windows has no exec: there the command runs
    as a child and this process exits with its code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "posix":  # pragma: no cover - exec on Windows spawns and detaches
        sys.exit(subprocess.call(command, env=env))
    os.execvpe(command[0], command, env)
