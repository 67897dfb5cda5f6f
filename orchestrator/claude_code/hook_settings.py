"""``orchestrator hooks install`` / ``uninstall``: our hook entries in Claude Code's settings.

Claude Code reads hooks from ``~/.claude/settings.json`` (every project of the user) and
``<project>/.claude/settings.json``::

    {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command",
                                                           "command": "..."}]}]}}

Installing adds one matcher group per event of :data:`~orchestrator.claude_code.hook.EVENTS`
whose command runs ``orchestrator.claude_code.hook`` with the database; every other key,
event, group and hook is kept as it was, and installing twice changes nothing (a group
of ours found already is replaced, so installing with another ``--db`` moves the hooks).
Ours are recognised by their command (it runs ``orchestrator.claude_code.hook``);
uninstalling removes those alone, and an event or ``hooks`` key left empty by it.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInput
from .hook import EVENTS

#: What marks a hook command as ours.
MARK = "orchestrator.claude_code.hook"


def hook_command(db: str, python: str | None = None) -> str:
    """The command Claude Code runs: this interpreter, the hook module, the database."""
    return " ".join(
        shlex.quote(part) for part in (python or sys.executable, "-m", MARK, "--db", db)
    )


def settings_path(scope: str, project: Path | None = None) -> Path:
    """``~/.claude/settings.json`` (``user``) or ``<project>/.claude/settings.json``
    (``project``, default the current folder)."""
    if scope == "user":
        return Path.home() / ".claude" / "settings.json"
    return (project or Path.cwd()) / ".claude" / "settings.json"


def _is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and MARK in str(hook.get("command", ""))


def read_settings(path: Path) -> dict[str, Any]:
    """The settings in ``path`` ({} when missing); InvalidInput when they are not a JSON
    object or their ``hooks`` is not one (nothing is then changed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(str(path), f"is not JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise InvalidInput(str(path), "is not a JSON object")
    hooks = settings.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise InvalidInput(f"{path}: hooks", "is not a JSON object")
    for event, groups in (hooks or {}).items():
        if not isinstance(groups, list):
            raise InvalidInput(f"{path}: hooks.{event}", "is not a list")
    return settings


def without_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without our hooks (a group left with no hook goes, an event left with
    no group goes, ``hooks`` left empty goes); everything else as it was."""
    result = dict(settings)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return result
    kept_hooks: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            kept_hooks[event] = groups
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [hook for hook in group["hooks"] if not _is_ours(hook)]
                if not inner and group["hooks"]:
                    continue  # only ours were there
                kept_groups.append({**group, "hooks": inner})
            else:
                kept_groups.append(group)
        if kept_groups or not groups:
            kept_hooks[event] = kept_groups
    if kept_hooks:
        result["hooks"] = kept_hooks
    else:
        result.pop("hooks", None)
    return result


def with_ours(settings: dict[str, Any], command: str) -> dict[str, Any]:
    """``settings`` with one group of ours per event running ``command`` (ours found
    already replaced), every other entry kept in its place."""
    result = without_ours(settings)
    hooks = dict(result.get("hooks") or {})
    for event in EVENTS:
        group: dict[str, Any] = {"hooks": [{"type": "command", "command": command}]}
        if event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
            group = {"matcher": "*", **group}
        hooks[event] = [*hooks.get(event, []), group]
    result["hooks"] = hooks
    return result


def render(settings: dict[str, Any]) -> str:
    return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"


def change(path: Path, new: dict[str, Any], *, dry_run: bool = False) -> str:
    """Write ``new`` to ``path`` unless it holds that already (or ``dry_run``); return the
    unified diff ("" when nothing changes). The file is replaced atomically."""
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = ""
    after = render(new)
    if before.strip() and json.loads(before) == new:
        return ""
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (before)" if before else "/dev/null",
            tofile=str(path),
        )
    )
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.orchestrator-{os.getpid()}")
        temporary.write_text(after, encoding="utf-8")
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    return diff


def install(path: Path, db: str, *, dry_run: bool = False, python: str | None = None) -> str:
    """Add our hooks (database ``db``) to the settings file ``path``; the diff."""
    return change(path, with_ours(read_settings(path), hook_command(db, python)), dry_run=dry_run)


def uninstall(path: Path, *, dry_run: bool = False) -> str:
    """Remove our hooks from the settings file ``path``; the diff ("" when none)."""
    if not path.exists():
        return ""
    return change(path, without_ours(read_settings(path)), dry_run=dry_run)
