"""Commands: whole operations behind the CLI, each usable from Python.

``maintenance`` (init, backup, prune), ``copy`` (one store into another), ``redact_stored``,
``reprice``, ``demo``, ``serve`` (Datasette on a store or a snapshot of it), ``export``
(runs as OpenTelemetry traces).

May import: ``orchestrator.core``, ``store``, ``writer``, ``reports``, each other and
``orchestrator.datasette_plugin`` (``serve`` starts Datasette with it); never the CLI.
Kept free of imports itself.
"""
