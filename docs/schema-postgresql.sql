CREATE TABLE orchestrator_agents (
    id text NOT NULL,
    name text NOT NULL,
    description text,
    status text DEFAULT 'active'::text NOT NULL,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    updated_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT orchestrator_agents_name_key UNIQUE (name),
    CONSTRAINT orchestrator_agents_pkey PRIMARY KEY (id)
);

CREATE TABLE agents (
    id text NOT NULL,
    orchestrator_agent_id text NOT NULL,
    session_id text,
    status text DEFAULT 'pending'::text NOT NULL,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    started_at text,
    completed_at text,
    name text,
    error text,
    parent_agent_id text,
    duration_ms double precision,
    prompt_count bigint DEFAULT 0 NOT NULL,
    total_tokens_input bigint DEFAULT 0 NOT NULL,
    total_tokens_output bigint DEFAULT 0 NOT NULL,
    total_tokens_cache_read bigint DEFAULT 0 NOT NULL,
    total_tokens_cache_write bigint DEFAULT 0 NOT NULL,
    total_cost_usd double precision DEFAULT 0 NOT NULL,
    unpriced_prompt_count bigint DEFAULT 0 NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT agents_pkey PRIMARY KEY (id),
    CONSTRAINT agents_orchestrator_agent_id_fkey FOREIGN KEY (orchestrator_agent_id) REFERENCES orchestrator_agents(id) ON DELETE CASCADE,
    CONSTRAINT agents_parent_agent_id_fkey FOREIGN KEY (parent_agent_id) REFERENCES agents(id) ON DELETE SET NULL
);

CREATE TABLE prompts (
    id text NOT NULL,
    agent_id text NOT NULL,
    content text NOT NULL,
    response text,
    status text DEFAULT 'pending'::text NOT NULL,
    tokens_input bigint DEFAULT 0 NOT NULL,
    tokens_output bigint DEFAULT 0 NOT NULL,
    cost_usd double precision,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    completed_at text,
    model text,
    tokens_cache_read bigint DEFAULT 0 NOT NULL,
    tokens_cache_write bigint DEFAULT 0 NOT NULL,
    cost_source text,
    cost_computed_usd double precision,
    priced_with text,
    duration_ms double precision,
    error text,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, ((COALESCE("left"(content, 100000), ''::text) || ' '::text) || COALESCE("left"(response, 100000), ''::text)))) STORED,
    cache_savings_usd double precision,
    tokens_cache_write_1h bigint DEFAULT 0 NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT prompts_pkey PRIMARY KEY (id),
    CONSTRAINT prompts_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE,
    CONSTRAINT prompts_cost_usd_check CHECK (((cost_usd IS NULL) OR (cost_usd >= (0)::double precision))),
    CONSTRAINT prompts_tokens_cache_read_check CHECK ((tokens_cache_read >= 0)),
    CONSTRAINT prompts_tokens_cache_write_1h_check CHECK ((tokens_cache_write_1h >= 0)),
    CONSTRAINT prompts_tokens_cache_write_check CHECK ((tokens_cache_write >= 0)),
    CONSTRAINT prompts_tokens_input_check CHECK ((tokens_input >= 0)),
    CONSTRAINT prompts_tokens_output_check CHECK ((tokens_output >= 0))
);

CREATE TABLE agent_logs (
    id text NOT NULL,
    agent_id text NOT NULL,
    log_type text NOT NULL,
    message text NOT NULL,
    metadata text,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    step text,
    duration_ms double precision,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, COALESCE("left"(message, 100000), ''::text))) STORED,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT agent_logs_pkey PRIMARY KEY (id),
    CONSTRAINT agent_logs_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE system_logs (
    id text NOT NULL,
    log_level text NOT NULL,
    message text NOT NULL,
    source text,
    metadata text,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, COALESCE("left"(message, 100000), ''::text))) STORED,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT system_logs_pkey PRIMARY KEY (id)
);

CREATE TABLE usage_daily (
    day text NOT NULL,
    orchestrator_agent_id text NOT NULL,
    model text NOT NULL,
    prompts bigint DEFAULT 0 NOT NULL,
    failed_prompts bigint DEFAULT 0 NOT NULL,
    tokens_input bigint DEFAULT 0 NOT NULL,
    tokens_output bigint DEFAULT 0 NOT NULL,
    tokens_cache_read bigint DEFAULT 0 NOT NULL,
    tokens_cache_write bigint DEFAULT 0 NOT NULL,
    cost_usd double precision DEFAULT 0 NOT NULL,
    unpriced_prompts bigint DEFAULT 0 NOT NULL,
    cache_savings_usd double precision DEFAULT 0 NOT NULL,
    tokens_cache_write_1h bigint DEFAULT 0 NOT NULL,
    CONSTRAINT usage_daily_pkey PRIMARY KEY (day, orchestrator_agent_id, model),
    CONSTRAINT usage_daily_orchestrator_agent_id_fkey FOREIGN KEY (orchestrator_agent_id) REFERENCES orchestrator_agents(id) ON DELETE CASCADE
);

CREATE TABLE runs_daily (
    day text NOT NULL,
    orchestrator_agent_id text NOT NULL,
    runs bigint DEFAULT 0 NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    cancelled bigint DEFAULT 0 NOT NULL,
    CONSTRAINT runs_daily_pkey PRIMARY KEY (day, orchestrator_agent_id),
    CONSTRAINT runs_daily_orchestrator_agent_id_fkey FOREIGN KEY (orchestrator_agent_id) REFERENCES orchestrator_agents(id) ON DELETE CASCADE
);

CREATE TABLE duration_buckets (
    bucket_ms double precision NOT NULL,
    width_ms double precision NOT NULL,
    CONSTRAINT duration_buckets_pkey PRIMARY KEY (bucket_ms)
);

CREATE TABLE step_histogram_daily (
    day text NOT NULL,
    orchestrator_agent_id text NOT NULL,
    step text NOT NULL,
    bucket_ms double precision NOT NULL,
    width_ms double precision NOT NULL,
    steps bigint DEFAULT 0 NOT NULL,
    sum_ms double precision DEFAULT 0 NOT NULL,
    max_ms double precision,
    CONSTRAINT step_histogram_daily_pkey PRIMARY KEY (day, orchestrator_agent_id, step, bucket_ms),
    CONSTRAINT step_histogram_daily_orchestrator_agent_id_fkey FOREIGN KEY (orchestrator_agent_id) REFERENCES orchestrator_agents(id) ON DELETE CASCADE
);

CREATE TABLE sessions (
    session_id text NOT NULL,
    runs bigint DEFAULT 0 NOT NULL,
    failed_runs bigint DEFAULT 0 NOT NULL,
    prompts bigint DEFAULT 0 NOT NULL,
    tokens_input bigint DEFAULT 0 NOT NULL,
    tokens_output bigint DEFAULT 0 NOT NULL,
    tokens_cache_read bigint DEFAULT 0 NOT NULL,
    tokens_cache_write bigint DEFAULT 0 NOT NULL,
    cost_usd double precision DEFAULT 0 NOT NULL,
    unpriced_prompts bigint DEFAULT 0 NOT NULL,
    first_run_at text,
    last_completed_at text,
    CONSTRAINT sessions_pkey PRIMARY KEY (session_id)
);

CREATE TABLE prompt_responses (
    prompt_id text NOT NULL,
    message_id text NOT NULL,
    request_id text,
    tokens_output_final bigint,
    effort text,
    thinking text,
    thinking_budget_tokens bigint,
    max_tokens bigint,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT prompt_responses_pkey PRIMARY KEY (prompt_id),
    CONSTRAINT prompt_responses_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts(id) ON DELETE CASCADE
);

CREATE TABLE claude_code_runs (
    agent_id text NOT NULL,
    reported_cost_usd double precision,
    result_subtype text,
    is_error bigint,
    num_turns bigint,
    duration_ms double precision,
    duration_api_ms double precision,
    total_duration_ms double precision,
    tool_duration_ms double precision,
    lines_added bigint,
    lines_removed bigint,
    has_unknown_model_cost bigint,
    cwd text,
    git_branch text,
    is_git_repo bigint,
    is_worktree bigint,
    updated_at text,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT claude_code_runs_pkey PRIMARY KEY (agent_id),
    CONSTRAINT claude_code_runs_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE agent_model_usage (
    agent_id text NOT NULL,
    model text NOT NULL,
    tokens_input bigint DEFAULT 0 NOT NULL,
    tokens_output bigint DEFAULT 0 NOT NULL,
    tokens_cache_read bigint DEFAULT 0 NOT NULL,
    tokens_cache_write bigint DEFAULT 0 NOT NULL,
    cost_usd double precision,
    cost_computed_usd double precision,
    web_search_requests bigint,
    created_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT agent_model_usage_pkey PRIMARY KEY (agent_id, model),
    CONSTRAINT agent_model_usage_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE claude_code_files (
    path text NOT NULL,
    agent_id text NOT NULL,
    kind text NOT NULL,
    size bigint DEFAULT 0 NOT NULL,
    byte_offset bigint DEFAULT 0 NOT NULL,
    lines bigint DEFAULT 0 NOT NULL,
    imported_at text DEFAULT to_char((statement_timestamp() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'::text) NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT claude_code_files_pkey PRIMARY KEY (path),
    CONSTRAINT claude_code_files_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE budgets (
    scope text NOT NULL,
    name text NOT NULL,
    daily_usd double precision,
    monthly_usd double precision,
    updated_at text NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT budgets_pkey PRIMARY KEY (scope, name)
);

CREATE TABLE budget_alerts (
    scope text NOT NULL,
    name text NOT NULL,
    period text NOT NULL,
    spent_usd double precision NOT NULL,
    budget_usd double precision NOT NULL,
    alerted_at text NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT budget_alerts_pkey PRIMARY KEY (scope, name, period)
);

CREATE TABLE copy_progress (
    source text NOT NULL,
    location text NOT NULL,
    quiet bigint NOT NULL,
    started_at text NOT NULL,
    CONSTRAINT copy_progress_pkey PRIMARY KEY (source)
);

CREATE TABLE otel_requests (
    request_id text NOT NULL,
    prompt_id text NOT NULL,
    otel_prompt_id text,
    reported_cost_usd double precision,
    ttft_ms double precision,
    query_source text,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT otel_requests_pkey PRIMARY KEY (request_id),
    CONSTRAINT otel_requests_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts(id) ON DELETE CASCADE
);

CREATE TABLE otel_user_prompts (
    otel_prompt_id text NOT NULL,
    agent_id text NOT NULL,
    text text,
    created_at text NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT otel_user_prompts_pkey PRIMARY KEY (otel_prompt_id),
    CONSTRAINT otel_user_prompts_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE agent_attributes (
    agent_id text NOT NULL,
    key text NOT NULL,
    value text,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT agent_attributes_pkey PRIMARY KEY (agent_id, key),
    CONSTRAINT agent_attributes_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE otel_metrics_daily (
    day text NOT NULL,
    name text NOT NULL,
    attributes text NOT NULL,
    unit text,
    value double precision DEFAULT 0 NOT NULL,
    points bigint DEFAULT 0 NOT NULL,
    updated_at text NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT otel_metrics_daily_pkey PRIMARY KEY (day, name, attributes)
);

CREATE TABLE otlp_exports (
    endpoint text NOT NULL,
    agent_id text NOT NULL,
    trace_id text NOT NULL,
    spans bigint NOT NULL,
    exported_at text NOT NULL,
    tx_id xid8 DEFAULT pg_current_xact_id(),
    CONSTRAINT otlp_exports_pkey PRIMARY KEY (endpoint, agent_id),
    CONSTRAINT otlp_exports_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);

CREATE TABLE copy_watermarks (
    source text NOT NULL,
    table_name text NOT NULL,
    mark text NOT NULL,
    copied_at double precision NOT NULL,
    CONSTRAINT copy_watermarks_pkey PRIMARY KEY (source, table_name)
);

CREATE INDEX idx_agents_orchestrator ON agents USING btree (orchestrator_agent_id);

CREATE INDEX idx_agents_session ON agents USING btree (session_id);

CREATE INDEX idx_agents_created ON agents USING btree (created_at);

CREATE INDEX idx_agents_parent ON agents USING btree (parent_agent_id);

CREATE INDEX idx_prompts_agent ON prompts USING btree (agent_id);

CREATE INDEX idx_prompts_created ON prompts USING btree (created_at);

CREATE INDEX idx_prompts_model ON prompts USING btree (model);

CREATE INDEX idx_agent_logs_agent ON agent_logs USING btree (agent_id, created_at);

CREATE INDEX idx_agent_logs_created ON agent_logs USING btree (created_at);

CREATE INDEX idx_system_logs_created ON system_logs USING btree (created_at);

CREATE INDEX prompts_fts ON prompts USING gin (search);

CREATE INDEX agent_logs_fts ON agent_logs USING gin (search);

CREATE INDEX system_logs_fts ON system_logs USING gin (search);

CREATE INDEX idx_prompts_cost ON prompts USING btree (cost_usd);

CREATE INDEX idx_agents_cost ON agents USING btree (total_cost_usd);

CREATE INDEX idx_agents_duration ON agents USING btree (duration_ms);

CREATE INDEX idx_agents_failed ON agents USING btree (completed_at) WHERE (status = 'failed'::text);

CREATE INDEX idx_agent_logs_steps ON agent_logs USING btree (step, duration_ms) WHERE (log_type = 'step_end'::text);

CREATE INDEX idx_system_logs_level_source ON system_logs USING btree (log_level, source, created_at);

CREATE INDEX idx_usage_daily_orchestrator ON usage_daily USING btree (orchestrator_agent_id, day);

CREATE INDEX idx_usage_daily_model ON usage_daily USING btree (model, day);

CREATE INDEX idx_sessions_first_run ON sessions USING btree (first_run_at);

CREATE INDEX idx_sessions_cost ON sessions USING btree (cost_usd);

CREATE INDEX idx_prompts_reported ON prompts USING btree (created_at) WHERE (cost_source = 'reported'::text);

CREATE INDEX idx_agents_failed_orchestrator ON agents USING btree (orchestrator_agent_id, completed_at) WHERE (status = 'failed'::text);

CREATE UNIQUE INDEX idx_prompt_responses_key ON prompt_responses USING btree (message_id, request_id) WHERE (request_id IS NOT NULL);

CREATE INDEX idx_prompt_responses_message ON prompt_responses USING btree (message_id);

CREATE INDEX idx_claude_code_files_agent ON claude_code_files USING btree (agent_id);

CREATE INDEX idx_otel_requests_prompt ON otel_requests USING btree (prompt_id);

CREATE INDEX idx_prompt_responses_request ON prompt_responses USING btree (request_id);

CREATE INDEX idx_agent_attributes_key ON agent_attributes USING btree (key, value);

CREATE INDEX idx_otel_metrics_daily_name ON otel_metrics_daily USING btree (name, day);

CREATE INDEX idx_agents_tx_id ON agents USING btree (tx_id);

CREATE INDEX idx_prompts_tx_id ON prompts USING btree (tx_id);

CREATE INDEX idx_agent_logs_tx_id ON agent_logs USING btree (tx_id);

CREATE INDEX idx_system_logs_tx_id ON system_logs USING btree (tx_id);

CREATE INDEX idx_agents_unfinished ON agents USING btree (id) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]));

CREATE INDEX idx_prompts_pending ON prompts USING btree (id) WHERE (status = 'pending'::text);

CREATE INDEX idx_claude_code_runs_updated ON claude_code_runs USING btree (updated_at);

CREATE INDEX idx_claude_code_files_imported ON claude_code_files USING btree (imported_at);

CREATE INDEX idx_otel_metrics_daily_updated ON otel_metrics_daily USING btree (updated_at);

CREATE INDEX idx_orchestrator_agents_tx_id ON orchestrator_agents USING btree (tx_id);

CREATE INDEX idx_prompt_responses_tx_id ON prompt_responses USING btree (tx_id);

CREATE INDEX idx_claude_code_runs_tx_id ON claude_code_runs USING btree (tx_id);

CREATE INDEX idx_agent_model_usage_tx_id ON agent_model_usage USING btree (tx_id);

CREATE INDEX idx_claude_code_files_tx_id ON claude_code_files USING btree (tx_id);

CREATE INDEX idx_budgets_tx_id ON budgets USING btree (tx_id);

CREATE INDEX idx_budget_alerts_tx_id ON budget_alerts USING btree (tx_id);

CREATE INDEX idx_otel_requests_tx_id ON otel_requests USING btree (tx_id);

CREATE INDEX idx_otel_user_prompts_tx_id ON otel_user_prompts USING btree (tx_id);

CREATE INDEX idx_agent_attributes_tx_id ON agent_attributes USING btree (tx_id);

CREATE INDEX idx_otel_metrics_daily_tx_id ON otel_metrics_daily USING btree (tx_id);

CREATE INDEX idx_otlp_exports_tx_id ON otlp_exports USING btree (tx_id);

CREATE INDEX idx_agent_logs_tool_use ON agent_logs USING btree ((((metadata)::jsonb ->> 'tool_use_id'::text))) WHERE (log_type = ANY (ARRAY['tool_use'::text, 'tool_result'::text, 'PreToolUse'::text, 'PostToolUse'::text, 'PostToolUseFailure'::text]));

CREATE INDEX idx_otel_requests_otel_prompt ON otel_requests USING btree (otel_prompt_id);

CREATE OR REPLACE FUNCTION prompts_totals()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE agents SET
            prompt_count = prompt_count - 1,
            total_tokens_input = total_tokens_input - OLD.tokens_input,
            total_tokens_output = total_tokens_output - OLD.tokens_output,
            total_tokens_cache_read = total_tokens_cache_read - OLD.tokens_cache_read,
            total_tokens_cache_write = total_tokens_cache_write - OLD.tokens_cache_write,
            total_cost_usd = total_cost_usd - coalesce(OLD.cost_usd, 0),
            unpriced_prompt_count = unpriced_prompt_count
                - (CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END)
        WHERE id = OLD.agent_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE agents SET
            prompt_count = prompt_count + 1,
            total_tokens_input = total_tokens_input + NEW.tokens_input,
            total_tokens_output = total_tokens_output + NEW.tokens_output,
            total_tokens_cache_read = total_tokens_cache_read + NEW.tokens_cache_read,
            total_tokens_cache_write = total_tokens_cache_write + NEW.tokens_cache_write,
            total_cost_usd = total_cost_usd + coalesce(NEW.cost_usd, 0),
            unpriced_prompt_count = unpriced_prompt_count
                + (CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END)
        WHERE id = NEW.agent_id;
    END IF;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION prompts_usage()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, cache_savings_usd, tokens_cache_write_1h)
        SELECT substr(OLD.created_at, 1, 10), a.orchestrator_agent_id,
            coalesce(OLD.model, 'unknown'), -1,
            -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
            -OLD.tokens_input, -OLD.tokens_output, -OLD.tokens_cache_read,
            -OLD.tokens_cache_write, -coalesce(OLD.cost_usd, 0),
            -(CASE WHEN OLD.cost_source = 'unpriced' THEN 1 ELSE 0 END),
            -coalesce(OLD.cache_savings_usd, 0), -OLD.tokens_cache_write_1h
        FROM agents a WHERE a.id = OLD.agent_id
        ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = usage_daily.prompts + excluded.prompts,
        failed_prompts = usage_daily.failed_prompts + excluded.failed_prompts,
        tokens_input = usage_daily.tokens_input + excluded.tokens_input,
        tokens_output = usage_daily.tokens_output + excluded.tokens_output,
        tokens_cache_read = usage_daily.tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = usage_daily.tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = usage_daily.cost_usd + excluded.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd + excluded.cache_savings_usd,
        tokens_cache_write_1h = usage_daily.tokens_cache_write_1h + excluded.tokens_cache_write_1h;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, cache_savings_usd, tokens_cache_write_1h)
        SELECT substr(NEW.created_at, 1, 10), a.orchestrator_agent_id,
            coalesce(NEW.model, 'unknown'), 1,
            (CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
            NEW.tokens_input, NEW.tokens_output, NEW.tokens_cache_read,
            NEW.tokens_cache_write, coalesce(NEW.cost_usd, 0),
            (CASE WHEN NEW.cost_source = 'unpriced' THEN 1 ELSE 0 END),
            coalesce(NEW.cache_savings_usd, 0), NEW.tokens_cache_write_1h
        FROM agents a WHERE a.id = NEW.agent_id
        ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = usage_daily.prompts + excluded.prompts,
        failed_prompts = usage_daily.failed_prompts + excluded.failed_prompts,
        tokens_input = usage_daily.tokens_input + excluded.tokens_input,
        tokens_output = usage_daily.tokens_output + excluded.tokens_output,
        tokens_cache_read = usage_daily.tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = usage_daily.tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = usage_daily.cost_usd + excluded.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd + excluded.cache_savings_usd,
        tokens_cache_write_1h = usage_daily.tokens_cache_write_1h + excluded.tokens_cache_write_1h;
    END IF;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agents_runs()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
        VALUES (substr(OLD.created_at, 1, 10), OLD.orchestrator_agent_id, -1,
            -(CASE WHEN OLD.status = 'completed' THEN 1 ELSE 0 END),
            -(CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
            -(CASE WHEN OLD.status = 'cancelled' THEN 1 ELSE 0 END))
        ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs_daily.runs + excluded.runs,
        completed = runs_daily.completed + excluded.completed,
        failed = runs_daily.failed + excluded.failed,
        cancelled = runs_daily.cancelled + excluded.cancelled;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
        VALUES (substr(NEW.created_at, 1, 10), NEW.orchestrator_agent_id, 1,
            (CASE WHEN NEW.status = 'completed' THEN 1 ELSE 0 END),
            (CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
            (CASE WHEN NEW.status = 'cancelled' THEN 1 ELSE 0 END))
        ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs_daily.runs + excluded.runs,
        completed = runs_daily.completed + excluded.completed,
        failed = runs_daily.failed + excluded.failed,
        cancelled = runs_daily.cancelled + excluded.cancelled;
    END IF;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agent_logs_steps_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    
    INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
        steps, sum_ms, max_ms)
    SELECT substr(l.created_at, 1, 10), a.orchestrator_agent_id, l.step, b.bucket_ms,
        b.width_ms, count(*), sum(l.duration_ms), max(l.duration_ms)
    FROM new_rows l
    JOIN agents a ON a.id = l.agent_id
    JOIN duration_buckets b ON b.bucket_ms = (SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= l.duration_ms)
    WHERE l.log_type = 'step_end' AND l.step IS NOT NULL AND l.duration_ms IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, orchestrator_agent_id, step, bucket_ms) DO UPDATE SET
        steps = step_histogram_daily.steps + excluded.steps,
        sum_ms = step_histogram_daily.sum_ms + excluded.sum_ms,
        max_ms = greatest(step_histogram_daily.max_ms, excluded.max_ms);
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agent_logs_steps_delete()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    
    INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
        steps, sum_ms, max_ms)
    SELECT substr(l.created_at, 1, 10), a.orchestrator_agent_id, l.step, b.bucket_ms,
        b.width_ms, -count(*), -sum(l.duration_ms), max(l.duration_ms)
    FROM old_rows l
    JOIN agents a ON a.id = l.agent_id
    JOIN duration_buckets b ON b.bucket_ms = (SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= l.duration_ms)
    WHERE l.log_type = 'step_end' AND l.step IS NOT NULL AND l.duration_ms IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, orchestrator_agent_id, step, bucket_ms) DO UPDATE SET
        steps = step_histogram_daily.steps + excluded.steps,
        sum_ms = step_histogram_daily.sum_ms + excluded.sum_ms,
        max_ms = greatest(step_histogram_daily.max_ms, excluded.max_ms);
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agents_sessions()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE sessions SET
            runs = runs - 1,
            failed_runs = failed_runs - (CASE WHEN OLD.status = 'failed' THEN 1 ELSE 0 END),
            prompts = prompts - OLD.prompt_count,
            tokens_input = tokens_input - OLD.total_tokens_input,
            tokens_output = tokens_output - OLD.total_tokens_output,
            tokens_cache_read = tokens_cache_read - OLD.total_tokens_cache_read,
            tokens_cache_write = tokens_cache_write - OLD.total_tokens_cache_write,
            cost_usd = cost_usd - OLD.total_cost_usd,
            unpriced_prompts = unpriced_prompts - OLD.unpriced_prompt_count
        WHERE session_id = OLD.session_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF NEW.session_id IS NOT NULL THEN
            INSERT INTO sessions (session_id, runs, failed_runs, prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, first_run_at,
                last_completed_at)
            VALUES (NEW.session_id, 1, (CASE WHEN NEW.status = 'failed' THEN 1 ELSE 0 END),
                NEW.prompt_count, NEW.total_tokens_input, NEW.total_tokens_output,
                NEW.total_tokens_cache_read, NEW.total_tokens_cache_write,
                NEW.total_cost_usd, NEW.unpriced_prompt_count, NEW.created_at,
                NEW.completed_at)
            ON CONFLICT (session_id) DO UPDATE SET
        runs = sessions.runs + excluded.runs,
        failed_runs = sessions.failed_runs + excluded.failed_runs,
        prompts = sessions.prompts + excluded.prompts,
        tokens_input = sessions.tokens_input + excluded.tokens_input,
        tokens_output = sessions.tokens_output + excluded.tokens_output,
        tokens_cache_read = sessions.tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = sessions.tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = sessions.cost_usd + excluded.cost_usd,
        unpriced_prompts = sessions.unpriced_prompts + excluded.unpriced_prompts,
                first_run_at = least(sessions.first_run_at, excluded.first_run_at),
                last_completed_at = greatest(sessions.last_completed_at,
                    excluded.last_completed_at);
        END IF;
    END IF;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agents_delete_summaries()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    UPDATE usage_daily SET
        prompts = usage_daily.prompts - d.prompts,
        failed_prompts = usage_daily.failed_prompts - d.failed_prompts,
        tokens_input = usage_daily.tokens_input - d.tokens_input,
        tokens_output = usage_daily.tokens_output - d.tokens_output,
        tokens_cache_read = usage_daily.tokens_cache_read - d.tokens_cache_read,
        tokens_cache_write = usage_daily.tokens_cache_write - d.tokens_cache_write,
        cost_usd = usage_daily.cost_usd - d.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts - d.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd - d.cache_savings_usd,
        tokens_cache_write_1h = usage_daily.tokens_cache_write_1h - d.tokens_cache_write_1h
    FROM (
        SELECT substr(created_at, 1, 10) AS day, coalesce(model, 'unknown') AS model,
            count(*) AS prompts, count(*) FILTER (WHERE status = 'failed') AS failed_prompts,
            sum(tokens_input) AS tokens_input, sum(tokens_output) AS tokens_output,
            sum(tokens_cache_read) AS tokens_cache_read,
            sum(tokens_cache_write) AS tokens_cache_write,
            coalesce(sum(cost_usd), 0) AS cost_usd,
            count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_prompts,
            coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
            sum(tokens_cache_write_1h) AS tokens_cache_write_1h
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
    RETURN OLD;
END $function$;

CREATE OR REPLACE FUNCTION orchestrator_row_changed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    NEW.tx_id := pg_current_xact_id();
    RETURN NEW;
END $function$;

CREATE OR REPLACE FUNCTION claude_code_runs_changed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    NEW.tx_id := pg_current_xact_id();
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    END IF;
    RETURN NEW;
END $function$;

CREATE OR REPLACE FUNCTION prompts_totals_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM 1 FROM agents WHERE id IN (SELECT agent_id FROM new_rows) ORDER BY id
        FOR NO KEY UPDATE;
    UPDATE agents SET
        prompt_count = agents.prompt_count + d.prompts,
        total_tokens_input = agents.total_tokens_input + d.tokens_input,
        total_tokens_output = agents.total_tokens_output + d.tokens_output,
        total_tokens_cache_read = agents.total_tokens_cache_read + d.tokens_cache_read,
        total_tokens_cache_write = agents.total_tokens_cache_write + d.tokens_cache_write,
        total_cost_usd = agents.total_cost_usd + d.cost_usd,
        unpriced_prompt_count = agents.unpriced_prompt_count + d.unpriced
    FROM (
        SELECT p.agent_id, count(*) AS prompts,
            sum(p.tokens_input)::bigint AS tokens_input,
            sum(p.tokens_output)::bigint AS tokens_output,
            sum(p.tokens_cache_read)::bigint AS tokens_cache_read,
            sum(p.tokens_cache_write)::bigint AS tokens_cache_write,
            coalesce(sum(p.cost_usd), 0) AS cost_usd,
            count(*) FILTER (WHERE p.cost_source = 'unpriced') AS unpriced
        FROM new_rows p GROUP BY p.agent_id
    ) AS d
    WHERE agents.id = d.agent_id;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION prompts_usage_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO usage_daily (day, orchestrator_agent_id, model,
        prompts, failed_prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts, cache_savings_usd, tokens_cache_write_1h)
    SELECT substr(p.created_at, 1, 10), a.orchestrator_agent_id, coalesce(p.model, 'unknown'),
        count(*),
        count(*) FILTER (WHERE p.status = 'failed'),
        sum(p.tokens_input)::bigint,
        sum(p.tokens_output)::bigint,
        sum(p.tokens_cache_read)::bigint,
        sum(p.tokens_cache_write)::bigint,
        coalesce(sum(p.cost_usd), 0),
        count(*) FILTER (WHERE p.cost_source = 'unpriced'),
        coalesce(sum(p.cache_savings_usd), 0),
        sum(p.tokens_cache_write_1h)::bigint
    FROM new_rows p JOIN agents a ON a.id = p.agent_id
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = usage_daily.prompts + excluded.prompts,
        failed_prompts = usage_daily.failed_prompts + excluded.failed_prompts,
        tokens_input = usage_daily.tokens_input + excluded.tokens_input,
        tokens_output = usage_daily.tokens_output + excluded.tokens_output,
        tokens_cache_read = usage_daily.tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = usage_daily.tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = usage_daily.cost_usd + excluded.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd + excluded.cache_savings_usd,
        tokens_cache_write_1h = usage_daily.tokens_cache_write_1h + excluded.tokens_cache_write_1h;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agents_runs_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    SELECT substr(created_at, 1, 10), orchestrator_agent_id, count(*),
        count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
        count(*) FILTER (WHERE status = 'cancelled')
    FROM new_rows
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs_daily.runs + excluded.runs,
        completed = runs_daily.completed + excluded.completed,
        failed = runs_daily.failed + excluded.failed,
        cancelled = runs_daily.cancelled + excluded.cancelled;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION agents_sessions_insert()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO sessions (session_id,
        runs, failed_runs, prompts, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, unpriced_prompts,
        first_run_at, last_completed_at)
    SELECT session_id, count(*), count(*) FILTER (WHERE status = 'failed'),
        sum(prompt_count)::bigint,
        sum(total_tokens_input)::bigint,
        sum(total_tokens_output)::bigint,
        sum(total_tokens_cache_read)::bigint,
        sum(total_tokens_cache_write)::bigint,
        sum(total_cost_usd),
        sum(unpriced_prompt_count)::bigint,
        min(created_at), max(completed_at)
    FROM new_rows
    WHERE session_id IS NOT NULL
    GROUP BY session_id
    ORDER BY session_id
    ON CONFLICT (session_id) DO UPDATE SET
        runs = sessions.runs + excluded.runs,
        failed_runs = sessions.failed_runs + excluded.failed_runs,
        prompts = sessions.prompts + excluded.prompts,
        tokens_input = sessions.tokens_input + excluded.tokens_input,
        tokens_output = sessions.tokens_output + excluded.tokens_output,
        tokens_cache_read = sessions.tokens_cache_read + excluded.tokens_cache_read,
        tokens_cache_write = sessions.tokens_cache_write + excluded.tokens_cache_write,
        cost_usd = sessions.cost_usd + excluded.cost_usd,
        unpriced_prompts = sessions.unpriced_prompts + excluded.unpriced_prompts,
        first_run_at = least(sessions.first_run_at, excluded.first_run_at),
        last_completed_at = greatest(sessions.last_completed_at, excluded.last_completed_at);
    RETURN NULL;
END $function$;

CREATE TRIGGER prompts_totals_delete AFTER DELETE ON prompts FOR EACH ROW EXECUTE FUNCTION prompts_totals();

CREATE TRIGGER prompts_totals_update AFTER UPDATE OF agent_id, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd, cost_source ON prompts FOR EACH ROW EXECUTE FUNCTION prompts_totals();

CREATE TRIGGER prompts_usage_delete AFTER DELETE ON prompts FOR EACH ROW EXECUTE FUNCTION prompts_usage();

CREATE TRIGGER agents_runs_delete AFTER DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_runs();

CREATE TRIGGER agents_runs_update AFTER UPDATE OF status, created_at, orchestrator_agent_id ON agents FOR EACH ROW EXECUTE FUNCTION agents_runs();

CREATE TRIGGER agent_logs_steps_insert AFTER INSERT ON agent_logs REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agent_logs_steps_insert();

CREATE TRIGGER agent_logs_steps_delete AFTER DELETE ON agent_logs REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agent_logs_steps_delete();

CREATE TRIGGER agents_sessions_delete AFTER DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_sessions();

CREATE TRIGGER agents_sessions_update AFTER UPDATE OF session_id, status, created_at, completed_at, prompt_count, total_tokens_input, total_tokens_output, total_tokens_cache_read, total_tokens_cache_write, total_cost_usd, unpriced_prompt_count ON agents FOR EACH ROW EXECUTE FUNCTION agents_sessions();

CREATE TRIGGER agents_delete_summaries BEFORE DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_delete_summaries();

CREATE TRIGGER prompts_usage_update AFTER UPDATE OF agent_id, created_at, model, status, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, tokens_cache_write_1h, cost_usd, cost_source, cache_savings_usd ON prompts FOR EACH ROW EXECUTE FUNCTION prompts_usage();

CREATE TRIGGER orchestrator_agents_changed BEFORE UPDATE ON orchestrator_agents FOR EACH ROW EXECUTE FUNCTION orchestrator_row_changed();

CREATE TRIGGER claude_code_runs_changed BEFORE UPDATE ON claude_code_runs FOR EACH ROW EXECUTE FUNCTION claude_code_runs_changed();

CREATE TRIGGER claude_code_files_changed BEFORE UPDATE ON claude_code_files FOR EACH ROW EXECUTE FUNCTION orchestrator_row_changed();

CREATE TRIGGER budgets_changed BEFORE UPDATE ON budgets FOR EACH ROW EXECUTE FUNCTION orchestrator_row_changed();

CREATE TRIGGER otel_metrics_daily_changed BEFORE UPDATE ON otel_metrics_daily FOR EACH ROW EXECUTE FUNCTION orchestrator_row_changed();

CREATE TRIGGER prompts_totals_insert AFTER INSERT ON prompts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prompts_totals_insert();

CREATE TRIGGER prompts_usage_insert AFTER INSERT ON prompts REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prompts_usage_insert();

CREATE TRIGGER agents_runs_insert AFTER INSERT ON agents REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_runs_insert();

CREATE TRIGGER agents_sessions_insert AFTER INSERT ON agents REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agents_sessions_insert();
