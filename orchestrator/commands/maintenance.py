"""Looking after the database file: create or upgrade it, back it up, prune old rows.

What ``orchestrator init`` does, callable from an ADW or a notebook with one import:
:func:`init_database` creates the file or brings its schema up to date, re-creating
any table, index or trigger that was dropped by hand and recomputing the totals they
keep (never deleting data unless asked, and then only after a verified backup, and
never while another process has the file open), and :func:`backup` copies a live
database consistently with SQLite's online backup API, so a copy taken while ADWs
write is never torn.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..store import migrations
from ..store import sqlite as backend
from ..store.sqlite import backup_connection as _backup
from ..store.sqlite import start_afresh as _start_afresh
from ..store.targets import backend_for, is_url


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
    source = sqlite3.connect(os.fspath(source_path), timeout=backend.BUSY_TIMEOUT_S)
    try:
        return _backup(source, source_path, dest)
    finally:
        source.close()


def init_database(path: str | os.PathLike[str], *, force: bool = False) -> InitResult:
    """Create the database at ``path``, or upgrade its schema to the latest migration and
    repair it.

    An existing database is upgraded in place and keeps its data; every table, index and
    trigger the migrations create is checked, and any missing one is re-created and the
    totals and summaries it keeps are recomputed from the recorded rows (``repaired``).
    With ``force`` it is first copied by :func:`backup` (verified), then emptied in place,
    all under an exclusive lock: DatabaseInUse is raised, and nothing changed, while any
    other connection (a writer, Datasette, a notebook) has it open. When the backup is not
    intact, sqlite3.DatabaseError is raised and nothing is deleted. Raises NotADatabase,
    SchemaTooNew, or sqlite3.OperationalError when the file cannot be opened.
    """
    path = Path(path)
    saved = None
    created = not path.exists()
    if force and not created:
        saved = _start_afresh(path)
        created = True
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


#: The summary tables the triggers keep, which prune() leaves as they were.
SUMMARIES = ("usage_daily", "runs_daily", "step_histogram_daily", "sessions")


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` deleted (or would delete, with ``dry_run``)."""

    before: str
    runs: int
    prompts: int
    agent_logs: int
    system_logs: int
    freed_bytes: int  # pages the file can reuse (``VACUUM`` gives them back to the disk)
    dry_run: bool


def prune(path: str | os.PathLike[str], before: str, *, dry_run: bool = False) -> PruneResult:
    """Delete the raw rows older than the UTC day ``before`` (``YYYY-MM-DD``): finished runs
    created before it with their prompts and logs, and system logs. The daily summaries
    (and the sessions summary) are kept as they were, so spend and token reports by day
    do not change. One transaction, waiting for writers like any writer; raises
    ValueError for a bad day.
    """
    try:
        if len(before) != 10:
            raise ValueError
        date.fromisoformat(before)
    except ValueError:
        raise ValueError(f"before must be a UTC day (YYYY-MM-DD), not {before!r}") from None
    finished = "status IN ('completed', 'failed', 'cancelled') AND created_at < ?"
    if is_url(path):
        return asyncio.run(_prune_server(str(path), before, finished, dry_run))
    conn = backend.connect_existing(Path(path))
    try:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        with migrations.write_transaction(conn, keep=not dry_run):
            (free_before,) = conn.execute("PRAGMA freelist_count").fetchone()
            runs, prompts, logs = conn.execute(
                f"SELECT count(*), coalesce(sum(prompt_count), 0), (SELECT count(*) FROM "
                f"agent_logs WHERE agent_id IN (SELECT id FROM agents WHERE {finished})) "
                f"FROM agents WHERE {finished}",
                (before, before),
            ).fetchone()
            (system_logs,) = conn.execute(
                "SELECT count(*) FROM system_logs WHERE created_at < ?", (before,)
            ).fetchone()
            for table in SUMMARIES:  # the delete triggers would take the rows out of them
                conn.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT * FROM {table}")
            conn.execute(f"DELETE FROM agents WHERE {finished}", (before,))  # cascades
            conn.execute("DELETE FROM system_logs WHERE created_at < ?", (before,))
            for table in SUMMARIES:
                conn.execute(f"DELETE FROM {table}")
                conn.execute(f"INSERT INTO {table} SELECT * FROM temp.keep_{table}")
                conn.execute(f"DROP TABLE temp.keep_{table}")
            (free_after,) = conn.execute("PRAGMA freelist_count").fetchone()
    finally:
        conn.close()
    freed = max(0, free_after - free_before) * page_size
    return PruneResult(before, runs, prompts, logs, system_logs, freed, dry_run)


async def _prune_server(url: str, before: str, finished: str, dry_run: bool) -> PruneResult:
    """:func:`prune` of a server's store: the same statements in one transaction (its
    space is reused after VACUUM: ``freed_bytes`` is 0)."""
    store = backend_for(url)
    await store.open()
    try:
        async with store.transaction():
            counts = await store.fetchone(
                f"SELECT count(*) AS runs, coalesce(sum(prompt_count), 0) AS prompts, "
                f"(SELECT count(*) FROM agent_logs WHERE agent_id IN "
                f"(SELECT id FROM agents WHERE {finished})) AS logs FROM agents WHERE {finished}",
                (before, before),
            )
            system = await store.fetchone(
                "SELECT count(*) AS n FROM system_logs WHERE created_at < ?", (before,)
            )
            assert counts is not None and system is not None
            result = PruneResult(
                before,
                int(counts["runs"]),
                int(counts["prompts"]),
                int(counts["logs"]),
                int(system["n"]),
                0,
                dry_run,
            )
            for table in SUMMARIES:  # the delete triggers would take the rows out of them
                await store.execute(
                    f"CREATE TEMP TABLE keep_{table} ON COMMIT DROP AS SELECT * FROM {table}"
                )
            await store.execute(f"DELETE FROM agents WHERE {finished}", (before,))  # cascades
            await store.execute("DELETE FROM system_logs WHERE created_at < ?", (before,))
            for table in SUMMARIES:
                await store.execute(f"DELETE FROM {table}")
                await store.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        await store.close()
    return result


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""
