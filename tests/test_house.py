"""The package's shape: layers that import one way, no import cycle, one list of public
names, and a blocking facade that takes what the async API takes."""

from __future__ import annotations

import ast
import inspect
import sqlite3
from pathlib import Path

import pytest

import orchestrator
from orchestrator import DatabaseManager, SyncDatabaseManager
from orchestrator.writer.runs import AgentRun
from orchestrator.writer.sync import SyncAgentRun

PACKAGE = Path(orchestrator.__file__).resolve().parent

#: Each folder's layer: a module may import its own layer and those below, never above
#: (README, "Architecture"). The top level (cli, entry, statusline...) is the CLI.
LAYERS = {
    "_lazy": 0,
    "core": 0,
    "store": 1,
    "writer": 2,
    "reports": 3,
    "commands": 4,
    "claude_code": 4,
    "datasette_plugin": 4,
}
CLI_LAYER = 5
#: Modules inside a folder that are the CLI over it.
CLI_MODULES = {"orchestrator.claude_code.cli"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(dotted: str) -> bool:
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    """Every orchestrator module and the orchestrator modules it imports, at import time or
    in a function (both run)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    module = ".".join([*base, node.module] if node.module else base)
                else:
                    module = node.module or ""
                if module.split(".")[0] != "orchestrator":
                    continue
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    imported.add(sub if _exists(sub) else module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.split(".")[0] == "orchestrator"}
        graph[name] = imported - {name}
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    if module in CLI_MODULES or len(parts) == 1:
        return CLI_LAYER
    return LAYERS.get(parts[1], CLI_LAYER)


def test_the_graph_is_read() -> None:
    """The graph the next tests judge: relative, absolute, in-function imports are seen."""
    graph = import_graph()
    assert "orchestrator.store.backend" in graph["orchestrator.writer.db"]  # from ..store.backend
    assert "orchestrator.writer.budgets" in graph["orchestrator.writer.db"]  # from . import budgets
    assert "orchestrator.store.postgres" in graph["orchestrator.store.targets"]  # in a function


def test_layers_import_downwards_only() -> None:
    upward = sorted(
        f"{module} imports {imported}"
        for module, imports in import_graph().items()
        for imported in imports
        if layer(imported) > layer(module)
    )
    assert upward == []


def test_no_import_cycle() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in graph:  # a package without __init__ imports, or a name
                continue
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


#: The concrete engine modules: code outside ``orchestrator/store/`` asks the seam
#: (``store.backend``, ``store.targets``) instead.
ENGINE_MODULES = {
    "orchestrator.store.sqlite",
    "orchestrator.store.postgres",
    "orchestrator.store.migrations",
    "orchestrator.store.postgres_migrations",
}
#: Names a database target goes by; ``isinstance(<one of them>, str)`` means "a URL".
#: (``path`` is left out: the importers test JSON fields of that name.)
TARGET_NAMES = {"db_path", "target", "database", "db", "source", "dest", "url", "store"}

#: Where code outside the backends still tells the engines apart, each with why. Exact:
#: a branch added elsewhere fails, and so does an entry here no longer true.
ENGINE_BRANCHES_ALLOWED = {
    # Told apart where a target is parsed or named, not behaved on.
    ("orchestrator.cli_options", "is_url"): "the CLI's DatabaseTarget keeps a URL as text",
    ("orchestrator.cli_options", "isinstance(target, str)"): (
        "db_option refuses a URL for a command that reads an SQLite file"
    ),
    ("orchestrator.writer.db", "is_url"): "DatabaseManager.db_path: the seed's Path for a file",
    ("orchestrator.claude_code.cli", "is_url"): "hooks install resolves a path, keeps a URL",
    ("orchestrator", "imports orchestrator.store.sqlite"): (
        "the seed's public names default_db_path, open_database, schema_sql are SQLite's"
    ),
    ("orchestrator.cli", "imports orchestrator.store.sqlite"): "`schema` prints SQLite's DDL",
    ("orchestrator.cli", "imports orchestrator.store.postgres"): (
        "`schema --postgresql URL`: the engine is the user's explicit choice"
    ),
    # What is SQLite whatever the store: Datasette reads SQLite files, a backup is one.
    ("orchestrator.commands.copy", "imports orchestrator.store.sqlite"): (
        "a backup is a new SQLite file: its integrity check, its removal on failure"
    ),
    ("orchestrator.commands.serve", "imports orchestrator.store.sqlite"): (
        "Datasette serves an SQLite file (a server's store: a snapshot of it)"
    ),
    ("orchestrator.datasette_plugin.live", "imports orchestrator.store.sqlite"): (
        "Datasette's file replaced under it (DatabaseReplaced)"
    ),
    ("orchestrator.datasette_plugin.metadata", "imports orchestrator.store.migrations"): (
        "the migrations ledger's table name, hidden from Datasette's table list"
    ),
    ("orchestrator.reports.pg_sql", "imports orchestrator.store.sqlite"): (
        "the PostgreSQL translation of report SQL reads SQLite's schema"
    ),
    # Start-up cost: the hook runs before every tool call of Claude Code.
    ("orchestrator.claude_code.hook", "defines is_url"): "no import of the store's targets",
    ("orchestrator.claude_code.hook", "is_url"): "opens the one engine it writes to",
    ("orchestrator.claude_code.hook", "imports orchestrator.store.sqlite"): "its write path",
    ("orchestrator.claude_code.hook", "imports orchestrator.store.postgres"): "its write path",
}


def engine_branches(package: Path = PACKAGE) -> set[tuple[str, str]]:
    """(module, what) for each way code outside ``store/`` tells the engines apart: calls
    or defines ``is_url``, tests ``isinstance(<target>, str)``, imports an engine module."""
    found: set[tuple[str, str]] = set()
    for path in sorted(package.rglob("*.py")):
        name = _module_name(path, package)
        if name.startswith("orchestrator.store"):
            continue
        package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package_parts[: len(package_parts) - node.level + 1]
                module = (
                    ".".join([*base, node.module] if node.module else base)
                    if node.level
                    else node.module or ""
                )
                for alias in node.names:
                    for imported in (module, f"{module}.{alias.name}"):
                        if imported in ENGINE_MODULES:
                            found.add((name, f"imports {imported}"))
            elif isinstance(node, ast.Import):
                found |= {
                    (name, f"imports {a.name}") for a in node.names if a.name in ENGINE_MODULES
                }
            elif isinstance(node, ast.FunctionDef) and node.name == "is_url":
                found.add((name, "defines is_url"))
            elif isinstance(node, ast.Call):
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if called == "is_url":
                    found.add((name, "is_url"))
                elif (
                    called == "isinstance"
                    and len(node.args) == 2
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id in TARGET_NAMES
                    and getattr(node.args[1], "id", None) == "str"
                ):
                    found.add((name, f"isinstance({node.args[0].id}, str)"))
    return found


def test_engine_branches_are_found(tmp_path: Path) -> None:
    """The scan sees each kind of branch, relative and absolute imports alike."""
    package = tmp_path / "orchestrator"
    (package / "commands").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "commands" / "__init__.py").write_text("")
    (package / "commands" / "x.py").write_text(
        "from ..store import sqlite as backend\n"
        "import orchestrator.store.postgres\n"
        "from ..store.targets import is_url\n"
        "def f(db_path, value):\n"
        "    if isinstance(db_path, str) or isinstance(value, str):\n"
        "        return is_url(db_path)\n"
    )
    assert engine_branches(package) == {
        ("orchestrator.commands.x", "imports orchestrator.store.sqlite"),
        ("orchestrator.commands.x", "imports orchestrator.store.postgres"),
        ("orchestrator.commands.x", "is_url"),
        ("orchestrator.commands.x", "isinstance(db_path, str)"),
    }


def test_no_engine_branch_outside_the_backends() -> None:
    """Code above ``orchestrator/store/`` asks the backend what differs between engines
    (``Backend.initialise``, ``served_directly``, ``back_up_whole``, ``missing``...), never
    tests which engine a target names, but where :data:`ENGINE_BRANCHES_ALLOWED` says why."""
    found = engine_branches()
    assert sorted(found - set(ENGINE_BRANCHES_ALLOWED)) == []  # a new branch: ask the backend
    assert sorted(set(ENGINE_BRANCHES_ALLOWED) - found) == []  # gone: drop it from the list


@pytest.mark.parametrize("package", ["orchestrator", "orchestrator.claude_code"])
def test_one_list_of_public_names(package: str) -> None:
    """``__all__`` is derived from the lazy table, and the names imported for type checkers
    are the same names from the same modules (the one place a third copy could drift)."""
    module = __import__(package, fromlist=["_PUBLIC"])
    public: dict[str, str] = module._PUBLIC
    eager = set(module.__all__) - set(public)
    for name in eager:  # imported at once (orchestrator: redact, redact_text)
        assert name in vars(module)
    assert module.__all__ == sorted(module.__all__)
    source = Path(module.__file__).read_text(encoding="utf-8")
    checked: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                for alias in statement.names:
                    checked[alias.name] = statement.module or ""
    assert checked == public
    for name in public:
        assert getattr(module, name) is not None


def _parameters(function: object) -> list[tuple[str, object, object, object]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.name != "self"
    ]


@pytest.mark.parametrize(
    ("blocking", "awaited"), [(SyncDatabaseManager, DatabaseManager), (SyncAgentRun, AgentRun)]
)
def test_the_sync_facade_takes_what_the_async_api_takes(blocking: type, awaited: type) -> None:
    """Each method the facade spells out takes the async one's parameters (names, kinds,
    defaults, types); one that forwards ``**options`` spells out a prefix of them."""
    compared = []
    for name, member in vars(blocking).items():
        if name.startswith("_") or not callable(member) or not hasattr(awaited, name):
            continue
        mine, theirs = _parameters(member), _parameters(getattr(awaited, name))
        if mine and mine[-1][1] is inspect.Parameter.VAR_KEYWORD:
            mine = mine[:-1]
            theirs = theirs[: len(mine)]
        assert mine == theirs, name
        compared.append(name)
    assert compared  # log_agent_event, log_system_event, agent_run; log, step, prompt


def test_sync_logs_keep_the_time_given(tmp_path: Path) -> None:
    db_path = tmp_path / "orchestrator.db"
    with SyncDatabaseManager(db_path) as db:
        with db.agent_run("plan_build", session_id="adw-1") as run:
            agent_id = run.id
        db.log_agent_event(agent_id, "event", "past", created_at="2026-01-02T03:04:05.678Z")
        db.log_system_event("INFO", "past", created_at="2026-01-02T03:04:06.000Z")
    with sqlite3.connect(db_path) as conn:
        agent = conn.execute("SELECT created_at FROM agent_logs WHERE message = 'past'")
        system = conn.execute("SELECT created_at FROM system_logs WHERE message = 'past'")
        assert agent.fetchall() == [("2026-01-02T03:04:05.678Z",)]
        assert system.fetchall() == [("2026-01-02T03:04:06.000Z",)]
