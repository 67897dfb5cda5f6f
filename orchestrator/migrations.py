"""The schema of ``orchestrator.db``, as append-only sqlite-utils migrations.

This module is the single definition of the schema and the one home of the
SQLite dialect's DDL (triggers, FTS5, ``strftime`` defaults). A migration that
has shipped is never edited: a change is a new function at the end.

Conventions every migration follows:

* ids are UUID text (``orchestrator.ids.new_id``);
* timestamps are UTC text ``YYYY-MM-DDTHH:MM:SS.mmmZ``, defaults included;
* tokens follow **Anthropic's convention**: ``tokens_input`` counts only the
  input tokens that were neither read from nor written to the prompt cache
  (Anthropic's ``input_tokens``); ``tokens_cache_read`` and
  ``tokens_cache_write`` count the cached ones
  (``cache_read_input_tokens`` / ``cache_creation_input_tokens``). The whole
  prompt is the sum of the three. (genai-prices and OpenAI count cache tokens
  inside input tokens; ``orchestrator.pricing`` converts.)
* money is US dollars as REAL; NULL means "not known", never 0.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database, Migrations

from .ids import SQL_NOW

migrations = Migrations("orchestrator")


def _run(db: Database, script: str) -> None:
    """Execute a script statement by statement, inside the migration's transaction.

    ``executescript`` would COMMIT first and break the migration's atomicity.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


@migrations()
def m001_initial(db: Database) -> None:
    """The seed's five tables, with what real cost tracking needs."""
    now = SQL_NOW
    _run(
        db,
        f"""
CREATE TABLE orchestrator_agents (
    id TEXT PRIMARY KEY,                -- UUID
    name TEXT NOT NULL UNIQUE,          -- workflow type, e.g. 'plan_build'
    description TEXT,
    status TEXT NOT NULL DEFAULT 'active',  -- active | inactive | archived
    created_at TEXT NOT NULL DEFAULT {now},
    updated_at TEXT NOT NULL DEFAULT {now}
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,                -- UUID: one agent run
    orchestrator_agent_id TEXT NOT NULL
        REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    session_id TEXT,                    -- ADW id or Claude Code session id
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | running | completed | failed | cancelled
    created_at TEXT NOT NULL DEFAULT {now},
    started_at TEXT,
    completed_at TEXT,                  -- set when the run completed, failed or was cancelled
    name TEXT,                          -- what this run is, e.g. 'plan' or 'issue-42'
    error TEXT,                         -- why the run failed (exception type and message)
    parent_agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL,  -- subagent's parent run
    duration_ms REAL,                   -- completed_at - started_at, in milliseconds
    -- Totals over this run's prompts, kept true by the triggers below:
    prompt_count INTEGER NOT NULL DEFAULT 0,
    total_tokens_input INTEGER NOT NULL DEFAULT 0,        -- uncached input tokens
    total_tokens_output INTEGER NOT NULL DEFAULT 0,
    total_tokens_cache_read INTEGER NOT NULL DEFAULT 0,
    total_tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    total_cost_usd REAL NOT NULL DEFAULT 0,               -- USD over priced prompts only
    unpriced_prompt_count INTEGER NOT NULL DEFAULT 0      -- prompts whose cost is unknown
);

CREATE TABLE prompts (
    id TEXT PRIMARY KEY,                -- UUID
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    content TEXT NOT NULL,              -- the prompt sent (secrets redacted)
    response TEXT,                      -- the model's answer (secrets redacted)
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | completed | failed
    tokens_input INTEGER NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
        -- uncached input tokens (Anthropic input_tokens)
    tokens_output INTEGER NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
    cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
        -- the cost counted: as reported when cost_source = 'reported',
        -- from prices when 'computed', NULL when 'unpriced' or pending
    created_at TEXT NOT NULL DEFAULT {now},
    completed_at TEXT,
    model TEXT,                         -- model id as the provider names it
    tokens_cache_read INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cache_read >= 0),
        -- input tokens read from the prompt cache (cache_read_input_tokens)
    tokens_cache_write INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cache_write >= 0),
        -- input tokens written to the prompt cache (cache_creation_input_tokens)
    cost_source TEXT,                   -- reported | computed | unpriced (NULL while pending)
    cost_computed_usd REAL,             -- cost from prices, kept beside a reported cost
    priced_with TEXT,                   -- price data used, e.g. 'genai-prices 0.2.3'
    duration_ms REAL,                   -- wall time of the model call, in milliseconds
    error TEXT                          -- why the prompt failed
);

CREATE TABLE agent_logs (
    id TEXT PRIMARY KEY,                -- UUID
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    log_type TEXT NOT NULL,             -- step_start | step_end | tool_use | tool_result | ...
    message TEXT NOT NULL,              -- secrets redacted
    metadata TEXT,                      -- JSON object
    created_at TEXT NOT NULL DEFAULT {now},
    step TEXT,                          -- the step this event belongs to, if any
    duration_ms REAL                    -- on step_end: how long the step took
);

CREATE TABLE system_logs (
    id TEXT PRIMARY KEY,                -- UUID
    log_level TEXT NOT NULL,            -- DEBUG | INFO | WARNING | ERROR | CRITICAL
    message TEXT NOT NULL,              -- secrets redacted
    source TEXT,                        -- logger or component name
    metadata TEXT,                      -- JSON object
    created_at TEXT NOT NULL DEFAULT {now}
);

CREATE INDEX idx_agents_orchestrator ON agents(orchestrator_agent_id);
CREATE INDEX idx_agents_session ON agents(session_id);
CREATE INDEX idx_agents_status ON agents(status);
CREATE INDEX idx_agents_created ON agents(created_at);
CREATE INDEX idx_agents_parent ON agents(parent_agent_id);
CREATE INDEX idx_prompts_agent ON prompts(agent_id);
CREATE INDEX idx_prompts_created ON prompts(created_at);
CREATE INDEX idx_prompts_model ON prompts(model);
CREATE INDEX idx_agent_logs_agent ON agent_logs(agent_id, created_at);
CREATE INDEX idx_agent_logs_type ON agent_logs(log_type);
CREATE INDEX idx_agent_logs_created ON agent_logs(created_at);
CREATE INDEX idx_system_logs_level ON system_logs(log_level);
CREATE INDEX idx_system_logs_created ON system_logs(created_at);

-- Keep the run totals on agents true whatever writes prompts.
CREATE TRIGGER prompts_totals_insert AFTER INSERT ON prompts BEGIN
    UPDATE agents SET
        prompt_count = prompt_count + 1,
        total_tokens_input = total_tokens_input + NEW.tokens_input,
        total_tokens_output = total_tokens_output + NEW.tokens_output,
        total_tokens_cache_read = total_tokens_cache_read + NEW.tokens_cache_read,
        total_tokens_cache_write = total_tokens_cache_write + NEW.tokens_cache_write,
        total_cost_usd = total_cost_usd + coalesce(NEW.cost_usd, 0),
        unpriced_prompt_count = unpriced_prompt_count
            + CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END
    WHERE id = NEW.agent_id;
END;

CREATE TRIGGER prompts_totals_delete AFTER DELETE ON prompts BEGIN
    UPDATE agents SET
        prompt_count = prompt_count - 1,
        total_tokens_input = total_tokens_input - OLD.tokens_input,
        total_tokens_output = total_tokens_output - OLD.tokens_output,
        total_tokens_cache_read = total_tokens_cache_read - OLD.tokens_cache_read,
        total_tokens_cache_write = total_tokens_cache_write - OLD.tokens_cache_write,
        total_cost_usd = total_cost_usd - coalesce(OLD.cost_usd, 0),
        unpriced_prompt_count = unpriced_prompt_count
            - CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END
    WHERE id = OLD.agent_id;
END;

CREATE TRIGGER prompts_totals_update AFTER UPDATE OF
    agent_id, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write,
    cost_usd, cost_source
ON prompts BEGIN
    UPDATE agents SET
        prompt_count = prompt_count - 1,
        total_tokens_input = total_tokens_input - OLD.tokens_input,
        total_tokens_output = total_tokens_output - OLD.tokens_output,
        total_tokens_cache_read = total_tokens_cache_read - OLD.tokens_cache_read,
        total_tokens_cache_write = total_tokens_cache_write - OLD.tokens_cache_write,
        total_cost_usd = total_cost_usd - coalesce(OLD.cost_usd, 0),
        unpriced_prompt_count = unpriced_prompt_count
            - CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END
    WHERE id = OLD.agent_id;
    UPDATE agents SET
        prompt_count = prompt_count + 1,
        total_tokens_input = total_tokens_input + NEW.tokens_input,
        total_tokens_output = total_tokens_output + NEW.tokens_output,
        total_tokens_cache_read = total_tokens_cache_read + NEW.tokens_cache_read,
        total_tokens_cache_write = total_tokens_cache_write + NEW.tokens_cache_write,
        total_cost_usd = total_cost_usd + coalesce(NEW.cost_usd, 0),
        unpriced_prompt_count = unpriced_prompt_count
            + CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END
    WHERE id = NEW.agent_id;
END;
""",
    )


def apply(db: Database) -> list[str]:
    """Bring ``db`` up to date; return the names of the migrations applied.

    Runs under ``BEGIN IMMEDIATE`` so two processes opening a new file at the
    same moment cannot both apply a migration: the second waits for the
    first, then finds nothing pending.
    """
    if not migrations.pending(db):
        return []
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        pending = [m.name for m in migrations.pending(db)]
        migrations.apply(db)  # each migration runs in a savepoint of ours
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return pending
