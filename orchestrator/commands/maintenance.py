"""Looking after a store: create or upgrade it, back it up, prune old rows.

What ``orchestrator init`` does, callable from an ADW or a notebook with one import:
:func:`init_database` creates the store or brings its schema up to date, re-creating
any table, index or trigger that was dropped by hand and recomputing the totals they
keep (never deleting data unless asked, and then only after a verified backup, and
never while another process has the file open), and :func:`back_up` copies a live
store into an SQLite file consistently, so a copy taken while ADWs write is never torn.
One function each for both engines: what differs is asked of the backend
(:meth:`~orchestrator.store.backend.Backend.initialise`, ``back_up_whole``, ``missing``,
``free_bytes``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..store.backend import Backend, InitResult, run_blocking
from ..store.targets import backend_for

#: What a backup copied row by row (:func:`orchestrator.commands.copy.backup_store`) was
#: checked for, beyond SQLite's integrity check.
COPY_VERIFIED = "verified: counts, sums and ids"


@dataclass(frozen=True)
class BackupResult:
    """What :func:`back_up` made, and how it was checked."""

    path: Path
    checked: str  # for messages: "integrity check ok", and what else was compared


def back_up(
    target: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None
) -> BackupResult:
    """Copy the store at ``target`` into the new SQLite file ``dest``, consistently while
    ADWs write, and check the copy: by the engine's own means where it has them
    (:meth:`~orchestrator.store.backend.Backend.back_up_whole`: SQLite's online backup API,
    default ``dest`` ``<path>.<UTC timestamp>.bak``), else copied row by row and verified as
    ``orchestrator copy`` does (:func:`orchestrator.commands.copy.backup_store`). Raises
    FileNotFoundError when there is no database at ``target``, FileExistsError when
    ``dest`` exists, and sqlite3.DatabaseError (after deleting the copy) when the copy
    is not intact."""
    store = _existing(target)
    saved = store.back_up_whole(dest)
    if saved is not None:
        return BackupResult(saved, "integrity check ok")
    from .copy import backup_store

    saved, _ = backup_store(os.fspath(target), dest)
    return BackupResult(saved, f"{COPY_VERIFIED} match; integrity check ok")


def backup(path: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None) -> Path:
    """:func:`back_up`, returning the copy's path."""
    return back_up(path, dest).path


def init_database(target: str | os.PathLike[str], *, force: bool = False) -> InitResult:
    """Create the store at ``target`` (a path or a ``postgresql://`` URL), or upgrade its
    schema to the latest migration and repair it
    (:meth:`~orchestrator.store.backend.Backend.initialise`).

    An existing store is upgraded in place and keeps its data. With ``force`` it is first
    backed up (verified) and emptied, with writers kept out: an SQLite file by SQLite's
    backup API and in place under an exclusive lock (DatabaseInUse, and nothing changed,
    while any other connection has it open; sqlite3.DatabaseError, and nothing deleted,
    when the backup is not intact), a server's store copied into an SQLite file here
    (:func:`orchestrator.commands.copy.backup_store`) with its tables locked. Raises
    NotADatabase, SchemaTooNew, or sqlite3.OperationalError when a file cannot be opened.
    """
    from . import copy

    async def copy_backup() -> tuple[Path, str]:
        saved, _ = await copy._backup_store(os.fspath(target), None)
        return saved, COPY_VERIFIED

    store = backend_for(target, in_thread=True)
    tables = [t.name for t in (*copy.TABLES, *copy.SUMMARIES, copy.PROGRESS, copy.WATERMARKS)]
    return run_blocking(
        store, store.initialise(force=force, copy_backup=copy_backup, tables=tables)
    )


def _existing(target: str | os.PathLike[str], hint: str = "") -> Backend:
    """The backend of ``target``; FileNotFoundError (with ``hint`` after its message) when
    it is known there is no store there."""
    store = backend_for(target, in_thread=True)
    missing = store.missing()
    if missing is not None:
        raise FileNotFoundError(missing + hint)
    return store


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
    # Bytes of pages the file can reuse (``VACUUM`` gives them back to the disk); None for a
    # server's store, whose free space is not a file's (reused after ``VACUUM``).
    freed_bytes: int | None
    dry_run: bool


def prune(target: str | os.PathLike[str], before: str, *, dry_run: bool = False) -> PruneResult:
    """Delete the raw rows older than the UTC day ``before`` (``YYYY-MM-DD``): finished runs
    created before it with their prompts and logs, and system logs. The daily summaries
    (and the sessions summary) are kept as they were, so spend and token reports by day
    do not change. One transaction, waiting for writers like any writer; raises
    ValueError for a bad day, FileNotFoundError when there is no database at ``target``.
    """
    try:
        if len(before) != 10:
            raise ValueError
        date.fromisoformat(before)
    except ValueError:
        raise ValueError(f"before must be a UTC day (YYYY-MM-DD), not {before!r}") from None
    store = _existing(target, ": `orchestrator init` creates one")
    return run_blocking(store, _prune(store, before, dry_run))


async def _prune(store: Backend, before: str, dry_run: bool) -> PruneResult:
    finished = "status IN ('completed', 'failed', 'cancelled') AND created_at < ?"
    await store.open()
    try:
        async with store.transaction():
            free_before = await store.free_bytes()
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
            for table in SUMMARIES:  # the delete triggers would take the rows out of them
                await store.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT * FROM {table}")
            await store.execute(f"DELETE FROM agents WHERE {finished}", (before,))  # cascades
            await store.execute("DELETE FROM system_logs WHERE created_at < ?", (before,))
            for table in SUMMARIES:
                await store.execute(f"DELETE FROM {table}")
                await store.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
                await store.execute(f"DROP TABLE keep_{table}")
            free_after = await store.free_bytes()
            freed = (
                None
                if free_before is None or free_after is None
                else max(0, free_after - free_before)
            )
            result = PruneResult(
                before,
                int(counts["runs"]),
                int(counts["prompts"]),
                int(counts["logs"]),
                int(system["n"]),
                freed,
                dry_run,
            )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        await store.close()
    return result


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""
