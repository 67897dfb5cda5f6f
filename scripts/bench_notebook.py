"""Time executing a notebook (default: run_history) on a database, against an empty one.

    python scripts/bench_notebook.py --db PATH [--copy-to COPY] [--notebook NB] [--repeat N]

In one process: executes the notebook top to bottom (nbclient, the ``python3`` kernel)
on a freshly migrated empty database (the baseline: kernel start, imports, no data),
then on ``--db`` (e.g. a 1,000,000-prompt ``orchestrator demo`` database), and prints
both wall times side by side, with the slowest cells of the run on ``--db``. The
database is only read: the script refuses one with migrations pending, which opening
it would apply, unless given ``--copy-to COPY``: then it copies the database there
(SQLite's backup API, reading the original read-only), migrates the copy, untimed,
and times the copy.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlite_utils import Database  # noqa: E402

from orchestrator.reports.analysis import report_frame  # noqa: E402
from orchestrator.reports.notebooks import NOTEBOOKS_DIR, execute_notebook  # noqa: E402
from orchestrator.store import migrations  # noqa: E402
from orchestrator.store.sqlite import connect  # noqa: E402


def pending_migrations(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [m.name for m in migrations.migrations.pending(Database(conn))]
    finally:
        conn.close()


def copy_database(source: Path, target: Path) -> float:
    """Copy ``source`` to ``target`` reading it read-only, then migrate the copy; seconds."""
    started = time.perf_counter()
    if target.exists():
        raise SystemExit(f"{target} exists: give a new path to --copy-to")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    connect(target).close()  # applies the pending migrations to the copy only
    return time.perf_counter() - started


def timed(notebook: Path, db: Path) -> tuple[float, Any]:
    started = time.perf_counter()
    nb = execute_notebook(notebook, db)
    return time.perf_counter() - started, nb


def cell_seconds(nb: Any) -> list[tuple[float, str]]:
    """(seconds, first line) of each code cell, from nbclient's timing metadata."""
    cells = []
    for number, cell in enumerate(nb.cells, 1):
        timing = cell.metadata.get("execution", {})
        if cell.cell_type != "code" or "iopub.status.idle" not in timing:
            continue
        busy, idle = (
            datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
            for key in ("iopub.status.busy", "iopub.status.idle")
        )
        lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
        # "if HAS_DATA:" says nothing: show the first line that does something.
        first = next((line for line in lines if not line.startswith("if ")), "")
        cells.append(((idle - busy).total_seconds(), f"cell {number}: {first[:64]}"))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=os.environ.get("ORCHESTRATOR_DB"))
    parser.add_argument("--notebook", type=Path, default=NOTEBOOKS_DIR / "run_history.ipynb")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--copy-to", type=Path, help="time a migrated copy of --db made here (a new path)"
    )
    args = parser.parse_args()
    if args.db is None or not Path(args.db).exists():
        sys.exit("give --db PATH of an existing database (e.g. `orchestrator demo`'s)")
    db = Path(args.db)
    pending = pending_migrations(db)
    if args.copy_to is not None:
        seconds = copy_database(db, args.copy_to)
        print(
            f"copied {db} to {args.copy_to} and migrated the copy "
            f"({', '.join(pending) or 'nothing pending'}) in {seconds:.0f} s (untimed)"
        )
        db = args.copy_to
    elif pending:
        sys.exit(
            f"{db} has migrations pending ({', '.join(pending)}) that opening it would "
            "apply: not writing to it. Use --copy-to to time a migrated copy."
        )

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.db"
        connect(empty).close()
        baseline, data = [], []
        nb: Any = None
        for _ in range(args.repeat):
            baseline.append(timed(args.notebook, empty)[0])
            seconds, nb = timed(args.notebook, db)
            data.append(seconds)

    days = report_frame("spend_by_day", db)  # no start or end: all time
    prompts = int(days["prompts"].sum()) if len(days) else 0
    size = db.stat().st_size + sum(
        p.stat().st_size for p in db.parent.glob(db.name + "-wal") if p.exists()
    )
    print(
        f"notebook: {args.notebook.name}; database: {db} ({size / 1e9:.2f} GB, "
        f"{prompts:,} prompts over {len(days)} days)"
    )
    print(f"{'':28}{'empty database':>16}{'this database':>16}{'difference':>14}")
    b, d = statistics.median(baseline), statistics.median(data)
    label = f"wall time (median of {args.repeat})" if args.repeat > 1 else "wall time"
    print(f"{label:28}{b:>15.1f}s{d:>15.1f}s{d - b:>13.1f}s")
    print("slowest cells on this database:")
    for seconds, first in sorted(cell_seconds(nb), reverse=True)[:6]:
        print(f"  {seconds:7.2f}s  {first}")


if __name__ == "__main__":
    main()
