"""Shared fixtures: every test gets its own database and never the user's.

``db_target`` is the database a writer test runs on, once per backend: an SQLite file in
``tmp_path``, and a fresh schema on the PostgreSQL server named by
``$ORCHESTRATOR_TEST_POSTGRES`` (a ``postgresql://`` URL). Without that variable the
PostgreSQL runs skip, unless ``$ORCHESTRATOR_REQUIRE_POSTGRES=1`` (CI) makes them fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from backends import Target, postgres_admin, with_search_path

#: Public Claude Code transcripts (MIT, see data/claude-code-transcripts/SOURCE.md and LICENSE).
FIXTURES = Path(__file__).resolve().parent / "data" / "claude-code-transcripts"

BACKENDS = ["sqlite", "postgresql"]

# -- test lanes (markers registered in pyproject.toml) ----------------------------------------

#: The lanes that are not unit tests: each of their tests is also ``slow``.
LANES = ("browser", "postgres", "notebooks", "claude_cli", "phoenix")


#: Whole files of integration tests (subprocesses killed, servers, scale, other tools):
#: slow, though each needs nothing the unit tests lack.
SLOW_FILES = {
    "test_ccusage_views.py",
    "test_cli_errors.py",
    "test_collect.py",
    "test_concurrency.py",
    "test_copy.py",
    "test_datasette.py",
    "test_datasette_scale.py",
    "test_maintenance.py",
    "test_merge.py",
    "test_plugin.py",
    "test_prune.py",
    "test_quality.py",
    "test_readme.py",
    "test_serve.py",
    "test_tail.py",
}

#: A test that asks for one of these fixtures (or for a fixture that does) is in its lane.
FIXTURE_LANES = {"postgres_database": "postgres", "own_server": "postgres", "phoenix": "phoenix"}


def _lanes(item: pytest.Item) -> set[str]:
    """The lanes a test's fixtures put it in. A test on the ``postgresql`` backend is one
    (``new_db_target`` asks for the server while the test runs: only the parameter shows)."""
    lanes = {FIXTURE_LANES[f] for f in getattr(item, "fixturenames", ()) if f in FIXTURE_LANES}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgresql":
        lanes.add("postgres")
    return lanes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for lane in _lanes(item):
            item.add_marker(getattr(pytest.mark, lane))
        if item.path.name in SLOW_FILES or any(item.get_closest_marker(lane) for lane in LANES):
            item.add_marker(pytest.mark.slow)


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
    from orchestrator.commands.demo import create_demo_database

    path = tmp_path_factory.mktemp("demo") / "orchestrator.db"
    asyncio.run(create_demo_database(path, **DEMO))
    before = _fingerprint(path)
    yield path
    assert _fingerprint(path) == before, f"a test wrote to the shared demo database {path}"


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with no rows, shared like :func:`demo_db` (read-only)."""
    from orchestrator.store import sqlite as backend

    path = tmp_path_factory.mktemp("empty") / "orchestrator.db"
    backend.connect(path).close()
    return path


# -- backends: every writer test runs on SQLite and on PostgreSQL --------------------------


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away database on the test server for this session (dropped at its end)."""
    url = os.environ.get("ORCHESTRATOR_TEST_POSTGRES")
    if not url:
        message = "no PostgreSQL server: set ORCHESTRATOR_TEST_POSTGRES=postgresql://..."
        if os.environ.get("ORCHESTRATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (ORCHESTRATOR_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    name = f"orchestrator_tests_{uuid.uuid4().hex[:10]}"
    postgres_admin(url, f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        postgres_admin(url, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def new_db_target(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Target]]:
    """Makes fresh, empty databases on ``backend``: SQLite files in ``tmp_path``, or
    PostgreSQL URLs whose search_path is a new schema of the session's test database
    (dropped after the test)."""
    schemas: list[str] = []
    files: list[Path] = []
    database = request.getfixturevalue("postgres_database") if backend == "postgresql" else ""

    def make() -> Target:
        if backend == "sqlite":
            files.append(tmp_path / ("orchestrator.db" if not files else f"db{len(files)}.db"))
            return files[-1]
        schema = f"t_{uuid.uuid4().hex[:12]}"
        postgres_admin(database, f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return with_search_path(database, schema)

    yield make
    for schema in schemas:
        drop = f"SET lock_timeout = '5s'; DROP SCHEMA {schema} CASCADE"
        postgres_admin(database, drop, check=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a test runs on: every writer test runs once on each."""
    return str(request.param)


@pytest.fixture
def db_target(new_db_target: Callable[[], Target]) -> Target:
    """A fresh database on ``backend``: an SQLite path, or a PostgreSQL URL."""
    return new_db_target()


@pytest.fixture
def registered_plugin() -> Iterator[None]:
    """The orchestrator Datasette plugin registered with Datasette's plugin manager, as its
    entry point does once the package is installed (and unregistered after, if it was not)."""
    from datasette.plugins import pm

    from orchestrator import datasette_plugin as plugin

    added = not pm.is_registered(plugin)
    if added:
        pm.register(plugin, name="orchestrator")
    yield
    if added:
        pm.unregister(plugin)
