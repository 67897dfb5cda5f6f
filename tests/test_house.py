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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
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
