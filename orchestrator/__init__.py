"""Observability for AI developer workflows: record agent runs, prompts, tokens,
cost and logs in one SQLite file (or PostgreSQL), and read them in Datasette and notebooks.

The package in layers, each importing only those before it: ``core`` (rows, models,
pricing, redaction), ``store`` (the backend seam, SQLite, PostgreSQL, the schema), ``writer``
(:class:`DatabaseManager` and its sync facade), ``reports`` (what reads the store), then
``commands``, ``claude_code`` and ``datasette_plugin``; the CLI (``cli``, ``entry``,
``statusline``) on top. This module only names the public API, imported on first use."""

# The public names are imported on first use (PEP 562), so ``import orchestrator`` costs
# next to nothing and a command pays only for what it uses.
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

# Imported now: the function ``redact`` shares its name with its module, which would
# otherwise shadow it once any module imports ``orchestrator.core.redact`` (and it is cheap).
from .core.redact import redact, redact_text

_PUBLIC = {
    "Agent": "core.models",
    "AgentLog": "core.models",
    "AgentRun": "writer.runs",
    "AgentStatus": "core.models",
    "CostSource": "core.models",
    "DatabaseTimeout": "core.errors",
    "DatabaseManager": "writer.db",
    "InvalidInput": "core.errors",
    "LogLevel": "core.models",
    "LogType": "core.models",
    "OrchestratorAgent": "core.models",
    "OrchestratorError": "core.errors",
    "OrchestratorStatus": "core.models",
    "Prompt": "core.models",
    "PromptFields": "core.rows",
    "PromptStatus": "core.models",
    "SyncDatabaseManager": "writer.sync",
    "SystemLog": "core.models",
    "SystemLogHandler": "writer.logging_handler",
    "Usage": "core.models",
    "WriteError": "core.errors",
    "WriterStats": "writer.db",
    "compute_cost": "core.pricing",
    "default_db_path": "store.sqlite",
    "open_database": "store.sqlite",
    "resolve_cost": "core.pricing",
    "schema_sql": "store.sqlite",
}

if TYPE_CHECKING:
    from .core.errors import DatabaseTimeout, InvalidInput, OrchestratorError, WriteError
    from .core.models import (
        Agent,
        AgentLog,
        AgentStatus,
        CostSource,
        LogLevel,
        LogType,
        OrchestratorAgent,
        OrchestratorStatus,
        Prompt,
        PromptStatus,
        SystemLog,
        Usage,
    )
    from .core.pricing import compute_cost, resolve_cost
    from .core.rows import PromptFields
    from .store.sqlite import default_db_path, open_database, schema_sql
    from .writer.db import DatabaseManager, WriterStats
    from .writer.logging_handler import SystemLogHandler
    from .writer.runs import AgentRun
    from .writer.sync import SyncDatabaseManager


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())


__all__ = sorted([*_PUBLIC, "redact", "redact_text"])
