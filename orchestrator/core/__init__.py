"""Core: the values the rest is made of, with no database and no I/O.

ids and timestamps (``ids``), errors (``errors``), column rules and enums (``columns``),
the pydantic models (``models``), the one place a row is built, validated, redacted and
priced (``rows``, ``redact``, ``pricing``), and how a cell is shown (``display``).

May import: the standard library, third-party packages, and ``orchestrator.core`` only.
Kept free of imports itself: the hook and the status line import parts of it.
"""
