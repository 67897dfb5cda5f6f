"""Store: the seam between the writer and a database engine, each engine, its schema.

``backend`` (the abstract :class:`Backend` and what differs between engines, reading
included: a query read-only, a :class:`Feed` of what is committed), ``targets``
(a path or a ``postgresql://`` URL to a backend; ``urls``: a URL told apart and shown
without secrets), ``sqlite`` and ``migrations`` (SQLite, its migrations and
``fresh_schema.sql``), ``postgres`` and ``postgres_migrations`` (PostgreSQL; the tables,
indexes and columns of a migration come from the SQLite migration's DDL text, with
PostgreSQL's types through ``postgres_migrations.postgres_ddl``).

May import: ``orchestrator.core`` and ``orchestrator.store``. Kept free of imports itself.
"""
