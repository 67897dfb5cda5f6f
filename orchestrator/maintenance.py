"""Looking after the database file: create or upgrade it, and back it up.

What ``orchestrator init`` does, callable from an ADW or a notebook with one import:
:func:`init_database` creates the file or brings its schema up to date, re-creating
any table, index or trigger that was dropped by hand and recomputing the totals they
keep (never deleting data unless asked, and then only after a verified backup), and
:func:`backup` copies a live database consistently with SQLite's online backup API, so
a copy taken while ADWs write is never torn.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import migrations
from . import sqlite as backend
from .ids import utc_now


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_database` did."""

    path: Path
    created: bool  # True: a new file; False: an existing one, upgraded in place
    migrations: list[str]  # every migration the schema now has, oldest first
    backup: Path | None = None  # where ``force`` copied the previous database
    applied: list[str] = field(default_factory=list)  # migrations applied by this call
    repaired: list[str] = field(default_factory=list)  # missing objects it re-created

    @property
    def latest(self) -> str:
        """The newest migration applied: the schema's version."""
        return self.migrations[-1]


def backup(path: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None) -> Path:
    """Copy the database at ``path`` to ``dest`` (default ``<path>.<UTC timestamp>.bak``).

    Uses SQLite's online backup API, so the copy is consistent (committed WAL content
    included) even while other processes write. The copy is checked with
    ``PRAGMA integrity_check``. Returns the copy's path. Raises FileNotFoundError when
    ``path`` does not exist, FileExistsError when ``dest`` does, and
    sqlite3.DatabaseError (after deleting the copy) when the copy is not intact.
    """
    source_path = Path(path)
    if not source_path.is_file():
        raise FileNotFoundError(f"no database at {source_path}")
    if dest is None:
        stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
        target = source_path.with_name(f"{source_path.name}.{stamp}.bak")
    else:
        target = Path(dest)
    if target.exists():
        raise FileExistsError(f"{target} exists: not overwriting it with a backup")
    source = sqlite3.connect(os.fspath(source_path), timeout=backend.BUSY_TIMEOUT_S)
    try:
        copy = sqlite3.connect(os.fspath(target))
        try:
            source.backup(copy)
            problems = _integrity_problems(copy)
        finally:
            copy.close()
    except BaseException:
        _remove(target)
        raise
    finally:
        source.close()
    if problems:
        _remove(target)
        raise sqlite3.DatabaseError(
            f"the backup of {source_path} failed its integrity check: {'; '.join(problems)}"
        )
    return target


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong; empty when the database is intact."""
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:  # damage bad enough that the check cannot run
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def init_database(path: str | os.PathLike[str], *, force: bool = False) -> InitResult:
    """Create the database at ``path``, or upgrade its schema to the latest migration and
    repair it.

    An existing database is upgraded in place and keeps its data; every table, index and
    trigger the migrations create is checked, and any missing one is re-created and the
    totals and summaries it keeps are recomputed from the recorded rows (``repaired``).
    With ``force`` it is first copied by :func:`backup` (verified), then deleted with its
    WAL, and an empty one is created; when the backup is not intact, sqlite3.DatabaseError
    is raised and nothing is deleted. Raises NotADatabase, SchemaTooNew, or
    sqlite3.OperationalError when the file cannot be opened.
    """
    path = Path(path)
    saved = None
    if force and path.exists():
        saved = backup(path)
        _remove(path)
    created = not path.exists()
    conn = backend.connect(path, migrate=False)
    try:
        check = backend.ensure_schema(conn, path, verify=True, repair=True)
        names = migrations.applied_names(conn) or []
    finally:
        conn.close()
    return InitResult(
        path=path,
        created=created,
        migrations=names,
        backup=saved,
        applied=check.applied,
        repaired=check.repaired,
    )
