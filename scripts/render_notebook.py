"""Render a notebook as one static, offline HTML page, for people without Jupyter.

    python scripts/render_notebook.py NOTEBOOK [--db DB] [--output OUT.html]
        [-p NAME VALUE ...]

Executes NOTEBOOK top to bottom (nbclient) against DB, a file or a postgresql:// URL
(default: $ORCHESTRATOR_DB, else ./orchestrator.db), and exports it with nbconvert;
plotly.js is inlined and no script is loaded from the network. ``-p SESSION_ID
adw-1234abcd`` overrides a value of the cell tagged ``parameters``. All the work is
:func:`orchestrator.reports.notebooks.render_notebook`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.reports.notebooks import render_notebook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument(
        "--db", help="database file or postgresql:// URL (default: $ORCHESTRATOR_DB)"
    )
    parser.add_argument("--output", "-o", type=Path, help="HTML file (default: beside it)")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set NAME to the string VALUE after the parameters cell",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args()
    written = render_notebook(
        args.notebook,
        args.db,
        args.output,
        parameters=dict(args.parameter),
        timeout=args.timeout,
    )
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
