"""Derived copies of project files (translated SQL, report SQL for the status line,
snapshots), kept in ``$XDG_CACHE_HOME/adw-orchestrator``. Standard library only: both
:mod:`~orchestrator.reports.canned` and :mod:`~orchestrator.reports.postgres` use it, and
neither imports the other at import time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where derived copies of project files are kept: ``$XDG_CACHE_HOME/adw-orchestrator``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "adw-orchestrator"


def write_cache_file(cached: Path, data: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written (read-only home) only costs time."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(data), encoding="utf-8")
        os.replace(partial, cached)  # readers see the whole file or none
    except (OSError, TypeError, ValueError):
        pass
