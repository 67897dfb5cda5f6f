"""Reports: what reads the store.

``canned`` (metadata.yml's report SQL, run by the store's backend in its dialect),
``cache`` (derived files), ``postgres`` and ``pg_sql`` (the same SQL translated for
PostgreSQL with sqlglot), ``sql_functions`` (the SQL functions reports use, for both
engines), ``analysis`` and ``notebooks`` (pandas frames and helpers for the notebooks),
``tail`` (events as they are written, from the backend's feed). None tells the engines
apart: what differs is asked of :class:`orchestrator.store.backend.Backend`.

May import: ``orchestrator.core``, ``orchestrator.store`` and ``orchestrator.reports``.
Kept free of imports itself: the status line imports ``canned``.
"""
