"""Table counts that stop at their time limit, for the database page of a big history.

Datasette's database page counts every table (``Database.table_counts(5)``: 5 ms each,
"many rows" past that). Its time limit is a progress handler, which SQLite calls between
VM instructions; ``select count(*) from t`` is one instruction that walks a whole index,
so the count of 10M agent logs ran 230 ms before it was stopped, and thrown away. The
plugin gives each orchestrator database a ``table_counts`` that asks the same counts, all
in one trip to the database's thread, and stops each at the limit with
``sqlite3_interrupt`` from a timer, which the walk heeds page by page. The page shows
what it showed, sooner.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from typing import Any

_INSTALLED = "_orchestrator_table_counts"


def install(database: Any) -> None:
    """Give the Datasette ``database`` :func:`table_counts` (once)."""
    if not getattr(database, _INSTALLED, False):
        database.table_counts = functools.partial(table_counts, database)
        setattr(database, _INSTALLED, True)


async def table_counts(database: Any, limit: float = 10) -> dict[str, int | None]:
    """Each table's ``count(*)``, or None when it takes more than ``limit`` ms (what
    Datasette's ``Database.table_counts`` answers; an immutable file's are kept)."""
    if not database.is_mutable and database.cached_table_counts is not None:
        return dict(database.cached_table_counts)
    names = await database.table_names()

    def count_all(conn: sqlite3.Connection) -> dict[str, int | None]:
        counts: dict[str, int | None] = {}
        for name in names:
            timer = threading.Timer(limit / 1000, conn.interrupt)
            timer.start()
            try:
                counts[name] = conn.execute(f"select count(*) from [{name}]").fetchall()[0][0]
            except sqlite3.DatabaseError:  # interrupted (or unreadable: "many rows" too)
                counts[name] = None
            finally:
                timer.cancel()
                timer.join()  # fired or not, never after the next count has begun
        return counts

    counts = await database.execute_fn(count_all)
    if not database.is_mutable:
        database._cached_table_counts = counts
    return dict(counts)
