"""The ``orchestrator`` console script: ``statusline`` before anything else is imported.

Claude Code runs ``orchestrator statusline`` after every message, so that command skips
the command-line framework (click) and every module it would import; any other command
goes to :func:`orchestrator.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["statusline"]:
        from .statusline import main as statusline

        sys.exit(statusline(sys.argv[2:]))
    from .cli import main as cli_main

    cli_main()
