"""Writer: what an ADW calls to record its work.

``db`` (:class:`DatabaseManager`), ``log_writer`` (the batched log queue), ``runs``
(``agent_run`` / ``step`` / ``prompt``), ``sync`` (:class:`SyncDatabaseManager`, the blocking
twin), ``logging_handler`` (a :mod:`logging` handler into ``system_logs``), ``budgets``.

May import: ``orchestrator.core``, ``orchestrator.store`` and ``orchestrator.writer``.
Kept free of imports itself.
"""
