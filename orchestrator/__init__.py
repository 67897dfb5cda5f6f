"""Observability for AI developer workflows: record agent runs, prompts, tokens,
cost and logs in one SQLite file, and read them in Datasette and notebooks."""

# The public names are imported on first use (PEP 562), so ``import orchestrator`` costs
# next to nothing and a command pays only for what it uses.
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

# Imported now: the function ``redact`` shares its name with its module, which would
# otherwise shadow it once any module imports ``orchestrator.redact`` (and it is cheap).
from .redact import redact, redact_text

_PUBLIC = {
    "Agent": "models",
    "AgentLog": "models",
    "AgentRun": "runs",
    "AgentStatus": "models",
    "CostSource": "models",
    "DatabaseTimeout": "errors",
    "DatabaseManager": "db",
    "InvalidInput": "errors",
    "LogLevel": "models",
    "LogType": "models",
    "OrchestratorAgent": "models",
    "OrchestratorError": "errors",
    "OrchestratorStatus": "models",
    "Prompt": "models",
    "PromptFields": "rows",
    "PromptStatus": "models",
    "SyncDatabaseManager": "sync",
    "SystemLog": "models",
    "SystemLogHandler": "logging_handler",
    "Usage": "models",
    "WriteError": "errors",
    "WriterStats": "db",
    "compute_cost": "pricing",
    "default_db_path": "sqlite",
    "open_database": "sqlite",
    "resolve_cost": "pricing",
    "schema_sql": "sqlite",
}

if TYPE_CHECKING:
    from .db import DatabaseManager, WriterStats
    from .errors import DatabaseTimeout, InvalidInput, OrchestratorError, WriteError
    from .logging_handler import SystemLogHandler
    from .models import (
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
    from .pricing import compute_cost, resolve_cost
    from .rows import PromptFields
    from .runs import AgentRun
    from .sqlite import default_db_path, open_database, schema_sql
    from .sync import SyncDatabaseManager


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())


__all__ = [
    "Agent",
    "AgentLog",
    "AgentRun",
    "AgentStatus",
    "CostSource",
    "DatabaseManager",
    "DatabaseTimeout",
    "InvalidInput",
    "LogLevel",
    "LogType",
    "OrchestratorAgent",
    "OrchestratorError",
    "OrchestratorStatus",
    "Prompt",
    "PromptFields",
    "PromptStatus",
    "SyncDatabaseManager",
    "SystemLog",
    "SystemLogHandler",
    "Usage",
    "WriteError",
    "WriterStats",
    "compute_cost",
    "default_db_path",
    "open_database",
    "redact",
    "redact_text",
    "resolve_cost",
    "schema_sql",
]
