"""Shared fixtures: every test gets its own database file and never the user's."""

from __future__ import annotations

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
