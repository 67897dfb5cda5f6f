"""Reports: what reads the store.

``canned`` (metadata.yml's report SQL, run on SQLite), ``cache`` (derived files),
``postgres`` and ``pg_sql`` (the same SQL translated for PostgreSQL with sqlglot),
``sql_functions`` (the SQL functions reports use, for both engines), ``analysis`` and
``notebooks`` (pandas frames and helpers for the notebooks), ``tail`` (events as they are
written).

May import: ``orchestrator.core``, ``orchestrator.store`` and ``orchestrator.reports``.
Kept free of imports itself: the status line imports ``canned``.
"""
