"""Shared fixtures: every test gets its own database file and never the user's."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

#: Public Claude Code transcripts (MIT, see data/claude-code-transcripts/SOURCE.md and LICENSE).
FIXTURES = Path(__file__).resolve().parent / "data" / "claude-code-transcripts"


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "env-default.db"
    monkeypatch.setenv("ORCHESTRATOR_DB", str(path))
    monkeypatch.delenv("DATABASE_PATH", raising=False)
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


# -- one demo history for the whole session --------------------------------------------

#: The shared demo: a fixed seed and last day, so every run of the suite sees the same rows.
DEMO = {"prompts": 2000, "days": 42, "seed": 5, "end": datetime(2026, 11, 1, tzinfo=timezone.utc)}


def _fingerprint(path: Path) -> tuple[str, int]:
    """The database file's SHA-256 and its WAL's size: a write changes one or the other."""
    wal = Path(f"{path}-wal")
    return hashlib.sha256(path.read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A demo database built once per session (``orchestrator.db``, as Datasette names it).

    Shared: tests only read it. A test that writes copies it first; one that does not
    fails this fixture's teardown.
    """
    from orchestrator.demo import create_demo_database

    path = tmp_path_factory.mktemp("demo") / "orchestrator.db"
    asyncio.run(create_demo_database(path, **DEMO))
    before = _fingerprint(path)
    yield path
    assert _fingerprint(path) == before, f"a test wrote to the shared demo database {path}"


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with no rows, shared like :func:`demo_db` (read-only)."""
    from orchestrator import sqlite as backend

    path = tmp_path_factory.mktemp("empty") / "orchestrator.db"
    backend.connect(path).close()
    return path
