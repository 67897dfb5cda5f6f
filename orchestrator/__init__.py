"""Observability for AI developer workflows: record agent runs, prompts, tokens,
cost and logs in one SQLite file, and read them in Datasette and notebooks."""

from .db import DatabaseManager, WriterStats
from .errors import InvalidInput, OrchestratorError, WriteError
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
from .redact import redact, redact_text
from .rows import PromptFields
from .runs import AgentRun
from .sqlite import default_db_path, open_database, schema_sql
from .sync import SyncDatabaseManager

__all__ = [
    "Agent",
    "AgentLog",
    "AgentRun",
    "AgentStatus",
    "CostSource",
    "DatabaseManager",
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
