"""A stdlib ``logging.Handler`` that sends log records to ``system_logs``.

``emit`` only enqueues (the record reaches the database with the next batch),
so logging from an ADW never waits for the disk; it is safe from any thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import DatabaseManager

_FORMATTER = logging.Formatter()
_LEVELS = (
    (logging.CRITICAL, "CRITICAL"),
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARNING"),
    (logging.INFO, "INFO"),
)


def level_name(levelno: int) -> str:
    """The system_logs level for any numeric level (custom levels round down)."""
    for threshold, name in _LEVELS:
        if levelno >= threshold:
            return name
    return "DEBUG"


class SystemLogHandler(logging.Handler):
    """Send records to ``system_logs``: level, formatted message, logger name as source."""

    def __init__(self, db: DatabaseManager, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.db = db

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name.startswith("orchestrator") and record.levelno < logging.ERROR:
                return  # the writer's own warnings about the database stay out of it
            metadata: dict[str, Any] = {
                "module": record.module,
                "function": record.funcName,
                "line": record.lineno,
                "process": record.process,
                "thread": record.threadName,
            }
            if record.exc_info:
                metadata["exception"] = _FORMATTER.formatException(record.exc_info)
            message = record.getMessage()
            row = self.db.system_log_row(level_name(record.levelno), message, record.name, metadata)
            self.db.enqueue_system_log(row)
        except Exception:
            self.handleError(record)
