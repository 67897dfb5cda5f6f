"""Redacting what is already stored: ``orchestrator redact``.

Rows are redacted as they are written (:mod:`orchestrator.core.redact`), so a database keeps
whatever the redaction of its day let through: rows written before a pattern was added,
or before a leak was fixed (until 2026-11, a secret inside a tool call's arguments, or
in a writer's metadata holding JSON text, was stored in clear in the ``metadata``
column). :func:`redact_stored` applies today's redaction to every column the row
builders redact (:mod:`orchestrator.core.rows`), metadata value by value as
:func:`orchestrator.core.rows.json_text` does, and rewrites only the values that change, on
an SQLite file or a PostgreSQL store alike.

Then, on SQLite, it makes sure the old text is gone from the file, not only from the
tables: the connection overwrites what it deletes with zeros (``secure_delete``), the
full-text search indexes are merged (``optimize``: a deleted row's words stay in the
index's older segments until they are merged), and the write-ahead log is checkpointed
and truncated (the pages' old versions). Both are decided by the file, not by what this
run changed: an index of more than one segment is merged (one of a run stopped before
its merge, or of rows written since), and the log is checkpointed on every run. So a
run killed before it finished, or a checkpoint a reader held back (the result says so),
is finished by running the command again. On PostgreSQL the search
column follows the row, and the replaced row versions stay in the table's files until
VACUUM reclaims their space (``VACUUM FULL`` rewrites the table), and in WAL archives
and backups taken before.

Rows are changed in batches (by id), each its own transaction, so ADWs writing
meanwhile wait at most a batch, and a run that is stopped leaves whole batches behind
(running it again redacts the rest: redacting twice changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidInput
from ..core.redact import redact, redact_text
from ..core.rows import json_text
from ..store.backend import Backend
from ..store.targets import backend_for

#: The columns the row builders redact, by table (``orchestrator.core.rows``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "orchestrator_agents": ("name", "description"),
    "agents": ("session_id", "name", "error"),
    "prompts": ("model", "content", "response", "error"),
    "agent_logs": ("message", "step", "metadata"),
    "system_logs": ("message", "source", "metadata"),
}
#: Tables keyed by their columns, not an id (small: read whole), and the key column the
#: writers redact (a budget's name: the workflow, model or session it is matched against).
KEYED: dict[str, tuple[tuple[str, ...], str]] = {
    "budgets": (("scope", "name"), "name"),
    "budget_alerts": (("scope", "name", "period"), "name"),
}
#: Columns holding a JSON object, redacted value by value.
JSON_COLUMNS = frozenset({"metadata"})
BATCH = 2_000


@dataclass
class RedactResult:
    """What :func:`redact_stored` changed (or would change, with ``dry_run``)."""

    dry_run: bool
    rows_read: int = 0
    changed: dict[tuple[str, str], int] = field(default_factory=dict)  # values, by column
    search_indexes_merged: list[str] = field(default_factory=list)
    #: Whether the SQLite write-ahead log was checkpointed whole and truncated (None:
    #: PostgreSQL, or a dry run).
    checkpointed: bool | None = None

    @property
    def values_changed(self) -> int:
        return sum(self.changed.values())


def redact_stored(target: str | os.PathLike[str], *, dry_run: bool = False) -> RedactResult:
    """Redact the secrets stored in ``target`` (an SQLite file or a ``postgresql://``
    URL) with today's patterns; with ``dry_run``, count what would change and write
    nothing. Raises FileNotFoundError when there is no SQLite file at ``target``, and
    ValueError when two rows' unique names would become the same (that batch is rolled
    back, earlier ones stay redacted)."""
    return asyncio.run(redact_stored_async(target, dry_run=dry_run))


async def redact_stored_async(
    target: str | os.PathLike[str], *, dry_run: bool = False
) -> RedactResult:
    """:func:`redact_stored`, from a running event loop (an ADW, a notebook)."""
    backend = backend_for(target)
    if (missing := backend.missing()) is not None:
        raise FileNotFoundError(missing)
    result = RedactResult(dry_run)
    await backend.open()
    try:
        await backend.secure_delete()
        for table, columns in COLUMNS.items():
            changed = await _redact_table(backend, table, columns, result)
            if not dry_run:
                merged = await backend.merge_search_index(table, changed=changed)
                if merged is not None:
                    result.search_indexes_merged.append(merged)
        for table, (key, column) in KEYED.items():
            await _redact_keyed(backend, table, key, column, result)
        if not dry_run:
            result.checkpointed = await backend.checkpoint()
    finally:
        await backend.close()
    return result


async def _redact_table(
    backend: Backend, table: str, columns: tuple[str, ...], result: RedactResult
) -> bool:
    """Redact ``columns`` of ``table`` batch by batch; whether any value changed."""
    changed_any = False
    after = ""
    select = f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
    while True:
        # Read and written in one transaction: a row another process changes meanwhile (a
        # run's error as it ends) is not written back as it was.
        async with contextlib.nullcontext() if result.dry_run else backend.transaction():
            batch = [tuple(row.values()) for row in await backend.fetchall(select, (after, BATCH))]
            if not batch:
                return changed_any
            after = batch[-1][0]
            result.rows_read += len(batch)
            updates = _updates(table, columns, batch, result)
            changed_any = changed_any or bool(updates)
            if result.dry_run:
                continue
            # Only the changed columns are set: a trigger of another column (a run's
            # totals by model) does not fire for nothing.
            for changed_columns, rows in updates.items():
                assignments = ", ".join(f"{column} = ?" for column in changed_columns)
                try:
                    await backend.executemany(
                        f"UPDATE {table} SET {assignments} WHERE id = ?", rows
                    )
                except backend.integrity_error as exc:
                    raise ValueError(
                        f"{table}: two rows' {', '.join(changed_columns)} would be the same "
                        f"once redacted ({exc}); rename one and run this again"
                    ) from None


async def _redact_keyed(
    backend: Backend, table: str, key: tuple[str, ...], column: str, result: RedactResult
) -> None:
    """Redact ``column``, part of ``table``'s key, in every row (read and written in one
    transaction: a few rows, budgets and their alerts)."""
    at = key.index(column)
    async with contextlib.nullcontext() if result.dry_run else backend.transaction():
        found = [
            tuple(row.values())
            for row in await backend.fetchall(f"SELECT {', '.join(key)} FROM {table}")
        ]
        result.rows_read += len(found)
        rows = [(new, *old) for old in found if (new := _redacted(column, old[at])) is not old[at]]
        if rows:
            result.changed[(table, column)] = result.changed.get((table, column), 0) + len(rows)
        if result.dry_run or not rows:
            return
        where = " AND ".join(f"{name} = ?" for name in key)
        try:
            await backend.executemany(f"UPDATE {table} SET {column} = ? WHERE {where}", rows)
        except backend.integrity_error as exc:
            raise ValueError(
                f"{table}: two rows' {column} would be the same once redacted ({exc}); "
                "rename one and run this again"
            ) from None


def _updates(
    table: str, columns: tuple[str, ...], batch: list[tuple[Any, ...]], result: RedactResult
) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
    """The batch's changed values, grouped by the columns that change (values, then id),
    counted into ``result``."""
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for row_id, *values in batch:
        changes = {
            column: new
            for column, value in zip(columns, values, strict=True)
            if (new := _redacted(column, value)) is not value
        }
        for column in changes:
            result.changed[(table, column)] = result.changed.get((table, column), 0) + 1
        if changes:
            updates.setdefault(tuple(changes), []).append((*changes.values(), row_id))
    return updates


def _redacted(column: str, value: Any) -> Any:
    """``value`` redacted, or ``value`` itself (the same object) when nothing changes."""
    if not isinstance(value, str):
        return value
    if column in JSON_COLUMNS:
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None  # not JSON (stored by hand?): redacted as text
        if isinstance(decoded, dict):
            cleaned = redact(decoded)
            if cleaned == decoded:
                return value  # kept as stored, however it was encoded
            with contextlib.suppress(InvalidInput):  # (NaN, by hand): redacted as text
                return json_text(cleaned, column, False)  # encoded as on write
    new = redact_text(value)
    return value if new == value else new
