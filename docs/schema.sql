CREATE TABLE orchestrator_agents (
    id TEXT PRIMARY KEY,                -- UUID
    name TEXT NOT NULL UNIQUE,          -- workflow type, e.g. 'plan_build'
    description TEXT,
    status TEXT NOT NULL DEFAULT 'active',  -- active | inactive | archived
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,                -- UUID: one agent run
    orchestrator_agent_id TEXT NOT NULL
        REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    session_id TEXT,                    -- ADW id or Claude Code session id
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | running | completed | failed | cancelled
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
, cache_savings_usd REAL, tokens_cache_write_1h INTEGER NOT NULL DEFAULT 0);

CREATE TABLE agent_logs (
    id TEXT PRIMARY KEY,                -- UUID
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    log_type TEXT NOT NULL,             -- step_start | step_end | tool_use | tool_result | ...
    message TEXT NOT NULL,              -- secrets redacted
    metadata TEXT,                      -- JSON object
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    step TEXT,                          -- the step this event belongs to, if any
    duration_ms REAL                    -- on step_end: how long the step took
);

CREATE TABLE system_logs (
    id TEXT PRIMARY KEY,                -- UUID
    log_level TEXT NOT NULL,            -- DEBUG | INFO | WARNING | ERROR | CRITICAL
    message TEXT NOT NULL,              -- secrets redacted
    source TEXT,                        -- logger or component name
    metadata TEXT,                      -- JSON object
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE VIRTUAL TABLE prompts_fts USING fts5(content, response, content=prompts);

CREATE VIRTUAL TABLE agent_logs_fts USING fts5(message, content=agent_logs);

CREATE VIRTUAL TABLE system_logs_fts USING fts5(message, content=system_logs);

CREATE TABLE usage_daily (
    day TEXT NOT NULL,                   -- UTC day of the prompts, YYYY-MM-DD
    orchestrator_agent_id TEXT NOT NULL REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    model TEXT NOT NULL,                 -- 'unknown' when the prompt named none
    prompts INTEGER NOT NULL DEFAULT 0,
    failed_prompts INTEGER NOT NULL DEFAULT 0,
    tokens_input INTEGER NOT NULL DEFAULT 0,        -- uncached input tokens
    tokens_output INTEGER NOT NULL DEFAULT 0,
    tokens_cache_read INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,               -- USD over priced prompts
    unpriced_prompts INTEGER NOT NULL DEFAULT 0,    -- prompts whose cost is unknown
    cache_savings_usd REAL NOT NULL DEFAULT 0, tokens_cache_write_1h INTEGER NOT NULL DEFAULT 0,      -- USD saved by prompt caching
    PRIMARY KEY (day, orchestrator_agent_id, model)
);

CREATE TABLE runs_daily (
    day TEXT NOT NULL,                   -- UTC day the runs were created, YYYY-MM-DD
    orchestrator_agent_id TEXT NOT NULL REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    runs INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, orchestrator_agent_id)
);

CREATE TABLE duration_buckets (
    bucket_ms REAL PRIMARY KEY,          -- lower bound of a step-duration bucket, ms
    width_ms REAL NOT NULL               -- its width: durations in [bucket, bucket + width)
);

CREATE TABLE step_histogram_daily (
    day TEXT NOT NULL,                   -- UTC day the step ended, YYYY-MM-DD
    orchestrator_agent_id TEXT NOT NULL REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    step TEXT NOT NULL,
    bucket_ms REAL NOT NULL,             -- lower bound of the duration bucket (duration_buckets)
    width_ms REAL NOT NULL,              -- bucket width: durations in [bucket, bucket + width)
    steps INTEGER NOT NULL DEFAULT 0,    -- step_end logs in the bucket
    sum_ms REAL NOT NULL DEFAULT 0,      -- their total duration (exact means)
    max_ms REAL,                         -- the longest (an upper bound after deletions)
    PRIMARY KEY (day, orchestrator_agent_id, step, bucket_ms)
);

CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,          -- ADW id or Claude Code session id
    runs INTEGER NOT NULL DEFAULT 0,
    failed_runs INTEGER NOT NULL DEFAULT 0,
    prompts INTEGER NOT NULL DEFAULT 0,
    tokens_input INTEGER NOT NULL DEFAULT 0,
    tokens_output INTEGER NOT NULL DEFAULT 0,
    tokens_cache_read INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    unpriced_prompts INTEGER NOT NULL DEFAULT 0,
    first_run_at TEXT,                    -- when its first run was created (UTC)
    last_completed_at TEXT                -- when its last run ended (UTC)
);

CREATE TABLE prompt_responses (
    prompt_id TEXT PRIMARY KEY REFERENCES prompts(id) ON DELETE CASCADE,  -- the prompt row
    message_id TEXT NOT NULL,           -- the provider's response id (Anthropic message.id)
    request_id TEXT,                    -- the API request id (transcripts' requestId), if known
    tokens_output_final INTEGER         -- output tokens on the response's LAST line: Claude
        -- Code writes one line per content block and the first can carry a partial count;
        -- prompts.tokens_output keeps the first line's (what ccusage counts), this the last
, effort TEXT, thinking TEXT, thinking_budget_tokens INTEGER, max_tokens INTEGER);

CREATE TABLE claude_code_runs (
    agent_id TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,  -- the run
    reported_cost_usd REAL,             -- result.total_cost_usd: Claude Code's cost of the run
    result_subtype TEXT,                -- result.subtype: success | error_max_turns | ...
    is_error INTEGER,                   -- result.is_error (1 also on usage-limit errors)
    num_turns INTEGER,                  -- result.num_turns
    duration_ms REAL,                   -- result.duration_ms
    duration_api_ms REAL                -- result.duration_api_ms
, total_duration_ms REAL, tool_duration_ms REAL, lines_added INTEGER, lines_removed INTEGER, has_unknown_model_cost INTEGER, cwd TEXT, git_branch TEXT, is_git_repo INTEGER, is_worktree INTEGER, updated_at TEXT);

CREATE TABLE agent_model_usage (
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- the run
    model TEXT NOT NULL,                -- model id as Claude Code names it
    tokens_input INTEGER NOT NULL DEFAULT 0,        -- modelUsage.inputTokens (uncached)
    tokens_output INTEGER NOT NULL DEFAULT 0,       -- modelUsage.outputTokens
    tokens_cache_read INTEGER NOT NULL DEFAULT 0,   -- modelUsage.cacheReadInputTokens
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,  -- modelUsage.cacheCreationInputTokens
    cost_usd REAL,                      -- modelUsage.costUSD, as reported
    cost_computed_usd REAL,             -- the same tokens priced by genai-prices; NULL if unpriced
    web_search_requests INTEGER,        -- modelUsage.webSearchRequests
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (agent_id, model)
);

CREATE TABLE claude_code_files (
    path TEXT PRIMARY KEY,              -- absolute path of a transcript (.jsonl)
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- the run it became
    kind TEXT NOT NULL,                 -- session | subagent
    size INTEGER NOT NULL DEFAULT 0,    -- file size in bytes when last imported
    byte_offset INTEGER NOT NULL DEFAULT 0,  -- just past the last complete line imported
    lines INTEGER NOT NULL DEFAULT 0,   -- lines read so far
    imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))  -- when it was last imported
);

CREATE TABLE budgets (
    scope TEXT NOT NULL,                -- workflow | model | session
    name TEXT NOT NULL,                 -- the workflow (orchestrator agent), model or session id
    daily_usd REAL,                     -- spend allowed per UTC day; NULL: no daily budget
    monthly_usd REAL,                   -- spend allowed per UTC month; NULL: none
    updated_at TEXT NOT NULL,
    PRIMARY KEY (scope, name)
);

CREATE TABLE budget_alerts (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    period TEXT NOT NULL,               -- the window crossed: a day YYYY-MM-DD or a month YYYY-MM
    spent_usd REAL NOT NULL,            -- the spend when it was first seen over budget
    budget_usd REAL NOT NULL,
    alerted_at TEXT NOT NULL,
    PRIMARY KEY (scope, name, period)   -- one warning per budget and window, across writers
);

CREATE TABLE copy_progress (
    source TEXT PRIMARY KEY,            -- the store copied from, as it resolves (Backend.identity)
    location TEXT NOT NULL,             -- how it was named, for messages (no password)
    quiet INTEGER NOT NULL,             -- 1: its rows go in with the triggers paused
    started_at TEXT NOT NULL            -- when the first copy began (UTC)
);

CREATE TABLE otel_requests (
    request_id TEXT PRIMARY KEY,        -- claude_code.api_request's request_id (Anthropic's)
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,  -- the prompt row
    otel_prompt_id TEXT,                -- its prompt.id: the user prompt it answers
    reported_cost_usd REAL,             -- cost_usd as Claude Code reported it
    ttft_ms REAL,                       -- time to first token
    query_source TEXT                   -- sdk | repl_main_thread | a background call's name
);

CREATE TABLE otel_user_prompts (
    otel_prompt_id TEXT PRIMARY KEY,    -- claude_code.user_prompt's prompt.id
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- the session's run
    text TEXT,                          -- the prompt (with OTEL_LOG_USER_PROMPTS=1), redacted
    created_at TEXT NOT NULL
);

CREATE TABLE agent_attributes (
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- the run
    key TEXT NOT NULL,                  -- an OpenTelemetry resource attribute (team, user.id...)
    value TEXT,                         -- its value as text (JSON for arrays and maps)
    PRIMARY KEY (agent_id, key)
);

CREATE TABLE otel_metrics_daily (
    day TEXT NOT NULL,                  -- UTC day of the data point's end time, YYYY-MM-DD
    name TEXT NOT NULL,                 -- claude_code.cost.usage, claude_code.commit.count...
    attributes TEXT NOT NULL,           -- the point's and resource's attributes, JSON, keys sorted
    unit TEXT,
    value REAL NOT NULL DEFAULT 0,      -- delta sums added up; cumulative sums and gauges: last
    points INTEGER NOT NULL DEFAULT 0,  -- data points received
    updated_at TEXT NOT NULL,
    PRIMARY KEY (day, name, attributes)
);

CREATE TABLE otlp_exports (
    endpoint TEXT NOT NULL,             -- where the traces went: the OTLP URL as given
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- a top-level run
    trace_id TEXT NOT NULL,             -- its trace id (32 hex digits, derived from agent_id)
    spans INTEGER NOT NULL,             -- spans sent: the run's, its subagents', prompts', tools'
    exported_at TEXT NOT NULL,          -- when the endpoint acknowledged them (UTC)
    PRIMARY KEY (endpoint, agent_id)
);

CREATE TABLE copy_watermarks (
    source TEXT NOT NULL,               -- the store copied from, as it resolves (Backend.identity)
    table_name TEXT NOT NULL,           -- a table the copy moves
    -- what the last verified round read: PostgreSQL, the snapshot of its read
    -- (pg_snapshot text); SQLite, the rowid and key of the table's last row
    mark TEXT NOT NULL,
    copied_at REAL NOT NULL,            -- UNIX time that round's read began
    PRIMARY KEY (source, table_name)
);

CREATE INDEX idx_agents_orchestrator ON agents(orchestrator_agent_id);

CREATE INDEX idx_agents_session ON agents(session_id);

CREATE INDEX idx_agents_created ON agents(created_at);

CREATE INDEX idx_agents_parent ON agents(parent_agent_id);

CREATE INDEX idx_prompts_agent ON prompts(agent_id);

CREATE INDEX idx_prompts_created ON prompts(created_at);

CREATE INDEX idx_prompts_model ON prompts(model);

CREATE INDEX idx_agent_logs_agent ON agent_logs(agent_id, created_at);

CREATE INDEX idx_agent_logs_created ON agent_logs(created_at);

CREATE INDEX idx_system_logs_created ON system_logs(created_at);

CREATE INDEX idx_prompts_cost ON prompts(cost_usd);

CREATE INDEX idx_agents_cost ON agents(total_cost_usd);

CREATE INDEX idx_agents_duration ON agents(duration_ms);

CREATE INDEX idx_agents_failed ON agents(completed_at) WHERE status = 'failed';

CREATE INDEX idx_agent_logs_steps ON agent_logs(step, duration_ms) WHERE log_type = 'step_end';

CREATE INDEX idx_system_logs_level_source ON system_logs(log_level, source, created_at);

CREATE INDEX idx_usage_daily_orchestrator ON usage_daily(orchestrator_agent_id, day);

CREATE INDEX idx_usage_daily_model ON usage_daily(model, day);

CREATE INDEX idx_sessions_first_run ON sessions(first_run_at);

CREATE INDEX idx_sessions_cost ON sessions(cost_usd);

CREATE INDEX idx_prompts_reported ON prompts(created_at) WHERE cost_source = 'reported';

CREATE INDEX idx_agents_failed_orchestrator ON agents(orchestrator_agent_id, completed_at)
    WHERE status = 'failed';

CREATE UNIQUE INDEX idx_prompt_responses_key ON prompt_responses(message_id, request_id)
    WHERE request_id IS NOT NULL;

CREATE INDEX idx_prompt_responses_message ON prompt_responses(message_id);

CREATE INDEX idx_claude_code_files_agent ON claude_code_files(agent_id);

CREATE INDEX idx_otel_requests_prompt ON otel_requests(prompt_id);

CREATE INDEX idx_prompt_responses_request ON prompt_responses(request_id);

CREATE INDEX idx_agent_attributes_key ON agent_attributes(key, value);

CREATE INDEX idx_otel_metrics_daily_name ON otel_metrics_daily(name, day);

CREATE INDEX idx_agents_unfinished ON agents(id) WHERE status IN ('pending', 'running');

CREATE INDEX idx_prompts_pending ON prompts(id) WHERE status = 'pending';

CREATE INDEX idx_claude_code_runs_updated ON claude_code_runs(updated_at);

CREATE INDEX idx_claude_code_files_imported ON claude_code_files(imported_at);

CREATE INDEX idx_otel_metrics_daily_updated ON otel_metrics_daily(updated_at);

CREATE INDEX idx_agent_logs_tool_use ON agent_logs(json_extract(metadata, '$.tool_use_id'))
    WHERE log_type IN ('tool_use', 'tool_result', 'PreToolUse', 'PostToolUse', 'PostToolUseFailure');

CREATE INDEX idx_otel_requests_otel_prompt ON otel_requests(otel_prompt_id);

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

CREATE TRIGGER prompts_ai AFTER INSERT ON prompts BEGIN
    INSERT INTO prompts_fts (rowid, content, response) VALUES (new.rowid, new.content, new.response);
END;

CREATE TRIGGER prompts_ad AFTER DELETE ON prompts BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, content, response) VALUES ('delete', old.rowid, old.content, old.response);
END;

CREATE TRIGGER prompts_au AFTER UPDATE OF content, response ON prompts BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, content, response) VALUES ('delete', old.rowid, old.content, old.response);
    INSERT INTO prompts_fts (rowid, content, response) VALUES (new.rowid, new.content, new.response);
END;

CREATE TRIGGER agent_logs_ai AFTER INSERT ON agent_logs BEGIN
    INSERT INTO agent_logs_fts (rowid, message) VALUES (new.rowid, new.message);
END;

CREATE TRIGGER agent_logs_ad AFTER DELETE ON agent_logs BEGIN
    INSERT INTO agent_logs_fts (agent_logs_fts, rowid, message) VALUES ('delete', old.rowid, old.message);
END;

CREATE TRIGGER agent_logs_au AFTER UPDATE OF message ON agent_logs BEGIN
    INSERT INTO agent_logs_fts (agent_logs_fts, rowid, message) VALUES ('delete', old.rowid, old.message);
    INSERT INTO agent_logs_fts (rowid, message) VALUES (new.rowid, new.message);
END;

CREATE TRIGGER system_logs_ai AFTER INSERT ON system_logs BEGIN
    INSERT INTO system_logs_fts (rowid, message) VALUES (new.rowid, new.message);
END;

CREATE TRIGGER system_logs_ad AFTER DELETE ON system_logs BEGIN
    INSERT INTO system_logs_fts (system_logs_fts, rowid, message) VALUES ('delete', old.rowid, old.message);
END;

CREATE TRIGGER system_logs_au AFTER UPDATE OF message ON system_logs BEGIN
    INSERT INTO system_logs_fts (system_logs_fts, rowid, message) VALUES ('delete', old.rowid, old.message);
    INSERT INTO system_logs_fts (rowid, message) VALUES (new.rowid, new.message);
END;

CREATE TRIGGER agents_runs_insert AFTER INSERT ON agents BEGIN
    
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    VALUES (substr(NEW.created_at, 1, 10), NEW.orchestrator_agent_id, +1,
        +(CASE WHEN NEW.status = 'completed' THEN 1 ELSE 0 END),
        +(CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
        +(CASE WHEN NEW.status = 'cancelled' THEN 1 ELSE 0 END))
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs + excluded.runs,
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
END;

CREATE TRIGGER agents_runs_delete AFTER DELETE ON agents BEGIN
    
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    VALUES (substr(OLD.created_at, 1, 10), OLD.orchestrator_agent_id, -1,
        -(CASE WHEN OLD.status = 'completed' THEN 1 ELSE 0 END),
        -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
        -(CASE WHEN OLD.status = 'cancelled' THEN 1 ELSE 0 END))
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs + excluded.runs,
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
END;

CREATE TRIGGER agents_runs_update AFTER UPDATE OF status, created_at, orchestrator_agent_id
ON agents BEGIN
    
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    VALUES (substr(OLD.created_at, 1, 10), OLD.orchestrator_agent_id, -1,
        -(CASE WHEN OLD.status = 'completed' THEN 1 ELSE 0 END),
        -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
        -(CASE WHEN OLD.status = 'cancelled' THEN 1 ELSE 0 END))
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs + excluded.runs,
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
    
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    VALUES (substr(NEW.created_at, 1, 10), NEW.orchestrator_agent_id, +1,
        +(CASE WHEN NEW.status = 'completed' THEN 1 ELSE 0 END),
        +(CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
        +(CASE WHEN NEW.status = 'cancelled' THEN 1 ELSE 0 END))
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs + excluded.runs,
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;
END;

CREATE TRIGGER agent_logs_steps_insert AFTER INSERT ON agent_logs
WHEN NEW.log_type = 'step_end' AND NEW.step IS NOT NULL AND NEW.duration_ms IS NOT NULL
BEGIN
    
    INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
        steps, sum_ms, max_ms)
    SELECT substr(NEW.created_at, 1, 10), a.orchestrator_agent_id, NEW.step,
        b.bucket_ms, b.width_ms, +1, +NEW.duration_ms, NEW.duration_ms
    FROM agents a, duration_buckets b
    WHERE a.id = NEW.agent_id AND b.bucket_ms = (SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= NEW.duration_ms)
    ON CONFLICT (day, orchestrator_agent_id, step, bucket_ms) DO UPDATE SET
        steps = steps + excluded.steps,
        sum_ms = sum_ms + excluded.sum_ms,
        max_ms = max(max_ms, excluded.max_ms);
END;

CREATE TRIGGER agent_logs_steps_delete AFTER DELETE ON agent_logs
WHEN OLD.log_type = 'step_end' AND OLD.step IS NOT NULL AND OLD.duration_ms IS NOT NULL
BEGIN
    
    INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
        steps, sum_ms, max_ms)
    SELECT substr(OLD.created_at, 1, 10), a.orchestrator_agent_id, OLD.step,
        b.bucket_ms, b.width_ms, -1, -OLD.duration_ms, OLD.duration_ms
    FROM agents a, duration_buckets b
    WHERE a.id = OLD.agent_id AND b.bucket_ms = (SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= OLD.duration_ms)
    ON CONFLICT (day, orchestrator_agent_id, step, bucket_ms) DO UPDATE SET
        steps = steps + excluded.steps,
        sum_ms = sum_ms + excluded.sum_ms,
        max_ms = max(max_ms, excluded.max_ms);
END;

CREATE TRIGGER agents_sessions_insert AFTER INSERT ON agents BEGIN
    
    INSERT INTO sessions (session_id, runs, failed_runs, prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, first_run_at,
        last_completed_at)
    SELECT NEW.session_id, 1, CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END, NEW.prompt_count, NEW.total_tokens_input, NEW.total_tokens_output, NEW.total_tokens_cache_read, NEW.total_tokens_cache_write, NEW.total_cost_usd, NEW.unpriced_prompt_count, NEW.created_at, NEW.completed_at
    WHERE NEW.session_id IS NOT NULL
    ON CONFLICT (session_id) DO UPDATE SET
        runs = runs + excluded.runs,
        failed_runs = failed_runs + excluded.failed_runs,
        prompts = prompts + excluded.prompts,
        tokens_input = tokens_input + excluded.tokens_input,
        tokens_output = tokens_output + excluded.tokens_output,
        tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        first_run_at = coalesce(min(first_run_at, excluded.first_run_at), first_run_at,
            excluded.first_run_at),
        last_completed_at = coalesce(max(last_completed_at, excluded.last_completed_at),
            last_completed_at, excluded.last_completed_at);
END;

CREATE TRIGGER agents_sessions_delete AFTER DELETE ON agents BEGIN
    
    UPDATE sessions SET runs = runs - 1, failed_runs = failed_runs - (CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END), prompts = prompts - OLD.prompt_count, tokens_input = tokens_input - OLD.total_tokens_input, tokens_output = tokens_output - OLD.total_tokens_output, tokens_cache_read = tokens_cache_read - OLD.total_tokens_cache_read, tokens_cache_write = tokens_cache_write - OLD.total_tokens_cache_write, cost_usd = cost_usd - OLD.total_cost_usd, unpriced_prompts = unpriced_prompts - OLD.unpriced_prompt_count WHERE session_id = OLD.session_id;
END;

CREATE TRIGGER agents_sessions_update AFTER UPDATE OF
    session_id, status, created_at, completed_at, prompt_count, total_tokens_input,
    total_tokens_output, total_tokens_cache_read, total_tokens_cache_write, total_cost_usd,
    unpriced_prompt_count
ON agents BEGIN
    
    UPDATE sessions SET runs = runs - 1, failed_runs = failed_runs - (CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END), prompts = prompts - OLD.prompt_count, tokens_input = tokens_input - OLD.total_tokens_input, tokens_output = tokens_output - OLD.total_tokens_output, tokens_cache_read = tokens_cache_read - OLD.total_tokens_cache_read, tokens_cache_write = tokens_cache_write - OLD.total_tokens_cache_write, cost_usd = cost_usd - OLD.total_cost_usd, unpriced_prompts = unpriced_prompts - OLD.unpriced_prompt_count WHERE session_id = OLD.session_id;
    
    INSERT INTO sessions (session_id, runs, failed_runs, prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, first_run_at,
        last_completed_at)
    SELECT NEW.session_id, 1, CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END, NEW.prompt_count, NEW.total_tokens_input, NEW.total_tokens_output, NEW.total_tokens_cache_read, NEW.total_tokens_cache_write, NEW.total_cost_usd, NEW.unpriced_prompt_count, NEW.created_at, NEW.completed_at
    WHERE NEW.session_id IS NOT NULL
    ON CONFLICT (session_id) DO UPDATE SET
        runs = runs + excluded.runs,
        failed_runs = failed_runs + excluded.failed_runs,
        prompts = prompts + excluded.prompts,
        tokens_input = tokens_input + excluded.tokens_input,
        tokens_output = tokens_output + excluded.tokens_output,
        tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        first_run_at = coalesce(min(first_run_at, excluded.first_run_at), first_run_at,
            excluded.first_run_at),
        last_completed_at = coalesce(max(last_completed_at, excluded.last_completed_at),
            last_completed_at, excluded.last_completed_at);
END;

CREATE TRIGGER prompts_usage_insert AFTER INSERT ON prompts BEGIN
    
    INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
        tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd,
        unpriced_prompts, cache_savings_usd)
    SELECT substr(NEW.created_at, 1, 10), a.orchestrator_agent_id,
        coalesce(NEW.model, 'unknown'), +1,
        +(CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
        +NEW.tokens_input, +NEW.tokens_output, +NEW.tokens_cache_read, +NEW.tokens_cache_write, +NEW.tokens_cache_write_1h,
        +coalesce(NEW.cost_usd, 0),
        +(CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END),
        +coalesce(NEW.cache_savings_usd, 0)
    FROM agents a WHERE a.id = NEW.agent_id
    ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        failed_prompts = failed_prompts + excluded.failed_prompts,
        tokens_input = tokens_input + excluded.tokens_input, tokens_output = tokens_output + excluded.tokens_output, tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read, tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write, tokens_cache_write_1h = tokens_cache_write_1h + excluded.tokens_cache_write_1h,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd;
END;

CREATE TRIGGER prompts_usage_delete AFTER DELETE ON prompts BEGIN
    
    INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
        tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd,
        unpriced_prompts, cache_savings_usd)
    SELECT substr(OLD.created_at, 1, 10), a.orchestrator_agent_id,
        coalesce(OLD.model, 'unknown'), -1,
        -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
        -OLD.tokens_input, -OLD.tokens_output, -OLD.tokens_cache_read, -OLD.tokens_cache_write, -OLD.tokens_cache_write_1h,
        -coalesce(OLD.cost_usd, 0),
        -(CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END),
        -coalesce(OLD.cache_savings_usd, 0)
    FROM agents a WHERE a.id = OLD.agent_id
    ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        failed_prompts = failed_prompts + excluded.failed_prompts,
        tokens_input = tokens_input + excluded.tokens_input, tokens_output = tokens_output + excluded.tokens_output, tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read, tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write, tokens_cache_write_1h = tokens_cache_write_1h + excluded.tokens_cache_write_1h,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd;
END;

CREATE TRIGGER prompts_usage_update AFTER UPDATE OF
    agent_id, created_at, model, status, tokens_input, tokens_output, tokens_cache_read,
    tokens_cache_write, tokens_cache_write_1h, cost_usd, cost_source, cache_savings_usd
ON prompts BEGIN
    
    INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
        tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd,
        unpriced_prompts, cache_savings_usd)
    SELECT substr(OLD.created_at, 1, 10), a.orchestrator_agent_id,
        coalesce(OLD.model, 'unknown'), -1,
        -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
        -OLD.tokens_input, -OLD.tokens_output, -OLD.tokens_cache_read, -OLD.tokens_cache_write, -OLD.tokens_cache_write_1h,
        -coalesce(OLD.cost_usd, 0),
        -(CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END),
        -coalesce(OLD.cache_savings_usd, 0)
    FROM agents a WHERE a.id = OLD.agent_id
    ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        failed_prompts = failed_prompts + excluded.failed_prompts,
        tokens_input = tokens_input + excluded.tokens_input, tokens_output = tokens_output + excluded.tokens_output, tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read, tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write, tokens_cache_write_1h = tokens_cache_write_1h + excluded.tokens_cache_write_1h,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd;
    
    INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
        tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd,
        unpriced_prompts, cache_savings_usd)
    SELECT substr(NEW.created_at, 1, 10), a.orchestrator_agent_id,
        coalesce(NEW.model, 'unknown'), +1,
        +(CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
        +NEW.tokens_input, +NEW.tokens_output, +NEW.tokens_cache_read, +NEW.tokens_cache_write, +NEW.tokens_cache_write_1h,
        +coalesce(NEW.cost_usd, 0),
        +(CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END),
        +coalesce(NEW.cache_savings_usd, 0)
    FROM agents a WHERE a.id = NEW.agent_id
    ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        failed_prompts = failed_prompts + excluded.failed_prompts,
        tokens_input = tokens_input + excluded.tokens_input, tokens_output = tokens_output + excluded.tokens_output, tokens_cache_read = tokens_cache_read + excluded.tokens_cache_read, tokens_cache_write = tokens_cache_write + excluded.tokens_cache_write, tokens_cache_write_1h = tokens_cache_write_1h + excluded.tokens_cache_write_1h,
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd;
END;

CREATE TRIGGER agents_delete_summaries BEFORE DELETE ON agents BEGIN
    UPDATE usage_daily SET
        prompts = usage_daily.prompts - d.prompts,
        failed_prompts = usage_daily.failed_prompts - d.failed_prompts,
        tokens_input = usage_daily.tokens_input - d.tokens_input, tokens_output = usage_daily.tokens_output - d.tokens_output, tokens_cache_read = usage_daily.tokens_cache_read - d.tokens_cache_read, tokens_cache_write = usage_daily.tokens_cache_write - d.tokens_cache_write, tokens_cache_write_1h = usage_daily.tokens_cache_write_1h - d.tokens_cache_write_1h,
        cost_usd = usage_daily.cost_usd - d.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts - d.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd - d.cache_savings_usd
    FROM (
        SELECT substr(created_at, 1, 10) AS day, coalesce(model, 'unknown') AS model,
            count(*) AS prompts, sum(status = 'failed') AS failed_prompts,
            sum(tokens_input) AS tokens_input, sum(tokens_output) AS tokens_output, sum(tokens_cache_read) AS tokens_cache_read, sum(tokens_cache_write) AS tokens_cache_write, sum(tokens_cache_write_1h) AS tokens_cache_write_1h,
            coalesce(sum(cost_usd), 0) AS cost_usd,
            sum(cost_source = 'unpriced') AS unpriced_prompts,
            coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd
        FROM prompts WHERE agent_id = OLD.id GROUP BY 1, 2
    ) AS d
    WHERE usage_daily.day = d.day AND usage_daily.model = d.model
        AND usage_daily.orchestrator_agent_id = OLD.orchestrator_agent_id;
    UPDATE step_histogram_daily SET
        steps = step_histogram_daily.steps - d.steps,
        sum_ms = step_histogram_daily.sum_ms - d.sum_ms
    FROM (
        SELECT substr(created_at, 1, 10) AS day, step,
            (SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= agent_logs.duration_ms) AS bucket_ms,
            count(*) AS steps, sum(duration_ms) AS sum_ms
        FROM agent_logs
        WHERE agent_id = OLD.id AND log_type = 'step_end' AND step IS NOT NULL
            AND duration_ms IS NOT NULL
        GROUP BY 1, 2, 3
    ) AS d
    WHERE step_histogram_daily.day = d.day AND step_histogram_daily.step = d.step
        AND step_histogram_daily.bucket_ms = d.bucket_ms
        AND step_histogram_daily.orchestrator_agent_id = OLD.orchestrator_agent_id;
END;

CREATE TRIGGER claude_code_runs_updated_at AFTER UPDATE ON claude_code_runs
WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE claude_code_runs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE agent_id = NEW.agent_id;
END;
