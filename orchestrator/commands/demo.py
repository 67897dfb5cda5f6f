"""A realistic, deterministic run history, written through the writer library.

``orchestrator demo`` fills a database with what a team running ADWs for a
few weeks would have: sessions (one ADW invocation each) that run workflows
(plan_build, test, review, patch, document), agent runs with steps, prompts
with real model names and token mixes dominated by cache reads, tool calls,
failures with their errors, and system logs. Costs come from the pricing code
(one model is deliberately unknown to it, to show unpriced prompts).

The same ``seed`` and ``end`` give the same history: every figure, name and
timestamp (ids are fresh UUIDs). ``prompts`` scales it (1,000,000 for the
benchmarks); everything is written in ``bulk()`` transactions.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..core import rows
from ..core.ids import new_id
from ..core.models import Agent
from ..core.rows import PromptFields
from ..store.backend import insert_sql
from ..writer.db import DatabaseManager

# (workflow, description, runs: [(run name, model weights, steps)])
WORKFLOWS: dict[str, tuple[str, list[tuple[str, dict[str, float], list[str]]]]] = {
    "plan_build": (
        "Plans an issue with a strong model, then implements it",
        [
            (
                "plan",
                {"claude-opus-4-5": 0.7, "claude-sonnet-4-5": 0.3},
                ["load_context", "plan", "write_spec"],
            ),
            (
                "build",
                {"claude-sonnet-4-5": 0.85, "claude-opus-4-5": 0.15},
                ["implement", "lint", "commit"],
            ),
        ],
    ),
    "test": (
        "Runs the test suite and fixes what fails",
        [
            (
                "test",
                {"claude-sonnet-4-5": 0.6, "claude-haiku-4-5": 0.4},
                ["run_tests", "fix", "rerun"],
            )
        ],
    ),
    "review": (
        "Reviews a pull request against its spec",
        [
            (
                "review",
                {"claude-haiku-4-5": 0.5, "gpt-4o": 0.3, "claude-sonnet-4-5": 0.2},
                ["read_diff", "review", "report"],
            )
        ],
    ),
    "patch": (
        "Applies a small fix from a review comment",
        [("patch", {"claude-sonnet-4-5": 0.7, "acme-coder-1": 0.3}, ["locate", "patch", "verify"])],
    ),
    "document": (
        "Updates the docs after a change",
        [("document", {"claude-haiku-4-5": 0.8, "gemini-2.5-pro": 0.2}, ["collect", "write_docs"])],
    ),
}
WORKFLOW_WEIGHTS = {"plan_build": 0.45, "test": 0.2, "review": 0.2, "patch": 0.1, "document": 0.05}
TOOLS = ["Read", "Edit", "Bash", "Grep", "Glob", "Write", "TodoWrite"]
TOOL_INPUTS = {
    "Read": "src/app/models.py",
    "Edit": "src/app/views.py",
    "Bash": "pytest -x -q",
    "Grep": "def handle_request",
    "Glob": "**/*.py",
    "Write": "docs/CHANGES.md",
    "TodoWrite": "3 items",
}
ERRORS = [
    "RateLimitError: 429 rate_limit_error: Number of request tokens has exceeded your "
    "per-minute rate limit",
    "TimeoutError: claude -p did not answer within 600 s",
    "AssertionError: 3 tests failed after 2 fix attempts",
    "CalledProcessError: git push exited with status 1 (non-fast-forward)",
    "OverloadedError: 529 overloaded_error",
]
SYSTEM_EVENTS = [
    ("INFO", "adw.scheduler", "picked up issue #{n} from the queue"),
    ("INFO", "adw.git", "created branch feat/issue-{n}"),
    ("WARNING", "adw.api", "rate limited, retrying in {s} s"),
    ("WARNING", "adw.git", "working tree not clean, stashing {n} files"),
    ("ERROR", "adw.git", "git push failed for feat/issue-{n}"),
    ("ERROR", "adw.api", "API error 529 overloaded after {s} s"),
    ("INFO", "adw.worktree", "removed worktree trees/adw-{n}"),
]


@dataclass
class DemoSummary:
    sessions: int = 0
    runs: int = 0
    prompts: int = 0
    agent_logs: int = 0
    system_logs: int = 0
    failed_runs: int = 0


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _Chunk:
    """Rows of a few sessions, built by :mod:`orchestrator.core.rows`, written together."""

    def __init__(self) -> None:
        self.agents: list[Agent] = []
        self.prompts: list[PromptFields] = []
        self.agent_logs: list[tuple[Any, ...]] = []
        self.system_logs: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.prompts) + len(self.agent_logs)

    def log(self, *args: Any, **options: Any) -> None:
        self.agent_logs.append(rows.agent_log_row(*args, **options))

    async def write(self, db: DatabaseManager) -> None:
        """Runs first (the prompts' totals triggers update them), then prompts and logs."""
        await db.executemany(
            insert_sql("agents", rows.AGENT_COLUMNS),
            [rows.row_values(agent, rows.AGENT_COLUMNS) for agent in self.agents],
        )
        await db.record_prompts(self.prompts)
        await db.executemany(insert_sql("agent_logs", rows.AGENT_LOG_COLUMNS), self.agent_logs)
        await db.executemany(insert_sql("system_logs", rows.SYSTEM_LOG_COLUMNS), self.system_logs)


CHUNK_ROWS = 20_000  # rows built while the previous chunk is being written


async def generate(
    db: DatabaseManager,
    *,
    prompts: int = 3000,
    days: int = 42,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write a demo history of about ``prompts`` prompts over ``days`` days up to ``end``.

    ``end`` defaults to the start of today (UTC), so dashboards filtered on
    recent weeks show it. ``progress`` is called with the prompts written so far.
    Rows are built by the library's row builders (validated, redacted, priced) and
    written in large batches while the next batch is built.
    """
    rng = random.Random(seed)
    if end is None:
        end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    summary = DemoSummary()
    orchestrators = {
        name: await db.ensure_orchestrator_agent(name, description)
        for name, (description, _) in WORKFLOWS.items()
    }
    starts: list[datetime] = []
    chunk = _Chunk()
    writing: asyncio.Task[None] | None = None
    async with db.bulk(defer_search_index=True):
        while summary.prompts < prompts:
            if not starts:
                # Session start times come in time order, as real history is written: rows
                # then land at the end of the time indexes instead of all over them.
                # As many as the prompts left need (a few too few rather than too many,
                # which would leave the end of the period empty); the rest in a second draw.
                count = (prompts - summary.prompts) // PROMPTS_PER_SESSION + 1
                starts = sorted(
                    (_session_start(rng, start, span) for _ in range(count)), reverse=True
                )
            _session(rng, summary, chunk, orchestrators, starts.pop())
            if len(chunk) >= CHUNK_ROWS or summary.prompts >= prompts:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(chunk.write(db))
                chunk = _Chunk()
                if progress is not None:
                    progress(summary.prompts)
        if writing is not None:
            await writing
    return summary


PROMPTS_PER_SESSION = 9  # about how many prompts a demo session has (8.85 measured)


def _session_start(rng: random.Random, start: datetime, span: float) -> datetime:
    """When a session starts: busier on weekdays and in working hours."""
    clock = start + timedelta(seconds=rng.random() * span)
    if clock.weekday() >= 5 and rng.random() < 0.6:
        clock -= timedelta(days=2)
    clock = clock.replace(hour=rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 17, 21]))
    if clock >= start + timedelta(seconds=span):  # an end within the day: not after it
        clock -= timedelta(days=1)
    return max(clock, start)


def _session(
    rng: random.Random,
    summary: DemoSummary,
    chunk: _Chunk,
    orchestrators: dict[str, str],
    clock: datetime,
) -> None:
    """One ADW session: its runs one after another, a few system events."""
    summary.sessions += 1
    session_id = f"adw-{rng.getrandbits(32):08x}"
    workflow = _pick(rng, WORKFLOW_WEIGHTS)
    if rng.random() < 0.03:
        chunk.system_logs.append(
            rows.system_log_row(
                "INFO",
                f"session {session_id} started",
                "adw.scheduler",
                {"workflow": workflow},
                clock,
            )
        )
        summary.system_logs += 1
    for run_name, models, steps in WORKFLOWS[workflow][1]:
        clock, failed = _run(
            rng, summary, chunk, orchestrators[workflow], session_id, run_name, models, steps, clock
        )
        if failed:
            break  # a failed plan stops the session before the build
    for _ in range(rng.choice([0, 0, 1, 2])):
        level, source, text = rng.choice(SYSTEM_EVENTS)
        chunk.system_logs.append(
            rows.system_log_row(
                level,
                text.format(n=rng.randint(1, 400), s=rng.randint(5, 90)),
                source,
                {"session_id": session_id},
                clock,
            )
        )
        summary.system_logs += 1


def _run(
    rng: random.Random,
    summary: DemoSummary,
    chunk: _Chunk,
    orchestrator_id: str,
    session_id: str,
    run_name: str,
    models: dict[str, float],
    steps: list[str],
    clock: datetime,
) -> tuple[datetime, bool]:
    """One agent run: steps, each with prompts and tool calls. Returns (end, failed)."""
    started = clock
    agent_id = new_id()
    summary.runs += 1
    fails_at = rng.randrange(len(steps)) if rng.random() < 0.07 else None
    error = None
    for index, step in enumerate(steps):
        step_start = clock
        chunk.log(agent_id, "step_start", f"step {step} started", None, step, None, clock)
        summary.agent_logs += 1
        for call in range(rng.choice([1, 1, 2, 2, 3, 4])):
            model = _pick(rng, models)
            context = rng.randint(8_000, 120_000)
            cache_write = rng.randint(500, 12_000) if call == 0 else rng.randint(0, 2_500)
            usage: dict[str, Any] = {
                "input_tokens": rng.randint(3, 1_500),
                "cache_read_input_tokens": context if call else context // 3,
                "cache_creation_input_tokens": cache_write,
                "output_tokens": int(rng.lognormvariate(6.3, 0.8)),
                # Claude Code caches most for an hour (the system prompt and tools on a
                # run's first call): derived, not drawn, so the random sequence is unchanged.
                "cache_creation": {
                    "ephemeral_1h_input_tokens": cache_write * (4 if call == 0 else 1) // 5,
                    "ephemeral_5m_input_tokens": cache_write
                    - cache_write * (4 if call == 0 else 1) // 5,
                },
            }
            duration_ms = usage["output_tokens"] * rng.uniform(8, 25) + rng.uniform(400, 3_000)
            sent = clock
            clock += timedelta(milliseconds=duration_ms)
            failing = fails_at == index and call == 0
            error = rng.choice(ERRORS) if failing else None
            chunk.prompts.append(
                {
                    "agent_id": agent_id,
                    "content": f"/{run_name} step {step}: {rng.choice(TOOL_INPUTS_TEXT)}",
                    "response": None
                    if failing
                    else f"Done: {step} ({usage['output_tokens']} tokens of work)",
                    "model": model,
                    "usage": usage,
                    "duration_ms": round(duration_ms, 1),
                    "status": "failed" if failing else "completed",
                    "error": error,
                    "created_at": sent,
                    "completed_at": clock,
                }
            )
            summary.prompts += 1
            if failing:
                break
            for _ in range(rng.choice([3, 4, 5, 6, 5])):
                tool = rng.choice(TOOLS)
                chunk.log(
                    agent_id,
                    "tool_use",
                    f"{tool}: {TOOL_INPUTS[tool]}",
                    {"tool": tool, "input": TOOL_INPUTS[tool]},
                    step,
                    None,
                    clock,
                )
                clock += timedelta(milliseconds=rng.uniform(50, 4_000))
                ok = rng.random() > 0.05
                chunk.log(
                    agent_id,
                    "tool_result",
                    f"{tool} {'ok' if ok else 'error'}",
                    {"tool": tool, "is_error": not ok},
                    step,
                    None,
                    clock,
                )
                summary.agent_logs += 2
        step_ms = (clock - step_start).total_seconds() * 1000
        status = "failed" if error else "completed"
        chunk.log(
            agent_id,
            "step_end",
            f"step {step} {status} in {step_ms:.0f} ms",
            {"status": status, **({"error": error} if error else {})},
            step,
            round(step_ms, 1),
            clock,
        )
        summary.agent_logs += 1
        if error:
            chunk.log(
                agent_id,
                "error",
                f"run ended: {error}",
                {"exception": error.split(":")[0]},
                None,
                None,
                clock,
            )
            summary.agent_logs += 1
            break
    agent = rows.agent_row(
        orchestrator_id,
        session_id,
        name=run_name,
        status="failed" if error else "completed",
        created_at=started,
        started_at=started,
        completed_at=clock,
        error=error,
    )
    chunk.agents.append(agent.model_copy(update={"id": agent_id}))
    summary.failed_runs += bool(error)
    return clock + timedelta(seconds=rng.uniform(5, 120)), error is not None


TOOL_INPUTS_TEXT = [
    "implement issue #{} as specified".replace("{}", str(n)) for n in range(12, 30)
] + [
    "fix the failing test in tests/test_api.py",
    "review the diff for security issues",
    "update the README for the new flag",
    "summarise the spec in specs/issue.md",
]


async def create_demo_database(
    path: str | Path,
    *,
    prompts: int = 3000,
    days: int = 42,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create (or add to) the database at ``path`` with a demo history."""
    async with DatabaseManager(path) as db:
        summary = await generate(
            db, prompts=prompts, days=days, seed=seed, end=end, progress=progress
        )
    return summary


__all__ = ["DemoSummary", "create_demo_database", "generate"]
