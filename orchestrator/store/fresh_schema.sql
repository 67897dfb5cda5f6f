-- Generated from the migrations by `python -m orchestrator.store.migrations`: do not
-- edit. What an empty database gets instead of each migration (migrate()).

CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);

INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES
('orchestrator', 'm001_initial', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm002_full_text_search', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm003_report_summaries', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm004_step_histogram', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm005_sessions_and_report_indexes', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm006_failed_run_indexes', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm100_claude_code', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm007_cache_write_1h', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm008_budgets', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm009_copy_progress', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm010_claude_code_session_state', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm011_otel_collect', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm012_otlp_exports', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm013_tail_watermark', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm014_copy_watermarks', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'),
('orchestrator', 'm015_tool_use_index', strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00');

CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");

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

CREATE VIRTUAL TABLE prompts_fts USING fts5(content, response, content=prompts);

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

CREATE VIRTUAL TABLE agent_logs_fts USING fts5(message, content=agent_logs);

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

CREATE VIRTUAL TABLE system_logs_fts USING fts5(message, content=system_logs);

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

CREATE INDEX idx_prompts_cost ON prompts(cost_usd);

CREATE INDEX idx_agents_cost ON agents(total_cost_usd);

CREATE INDEX idx_agents_duration ON agents(duration_ms);

CREATE INDEX idx_agents_failed ON agents(completed_at) WHERE status = 'failed';

CREATE INDEX idx_agent_logs_steps ON agent_logs(step, duration_ms) WHERE log_type = 'step_end';

CREATE INDEX idx_system_logs_level_source ON system_logs(log_level, source, created_at);

CREATE INDEX idx_usage_daily_orchestrator ON usage_daily(orchestrator_agent_id, day);

CREATE INDEX idx_usage_daily_model ON usage_daily(model, day);

CREATE TABLE duration_buckets (
    bucket_ms REAL PRIMARY KEY,          -- lower bound of a step-duration bucket, ms
    width_ms REAL NOT NULL               -- its width: durations in [bucket, bucket + width)
);

INSERT INTO duration_buckets (bucket_ms, width_ms) VALUES
(0.0, 1.0),
(1.0, 0.10000000000000009),
(1.1, 0.1100000000000001),
(1.2100000000000002, 0.12100000000000022),
(1.3310000000000004, 0.13310000000000022),
(1.4641000000000006, 0.14641000000000015),
(1.6105100000000008, 0.16105100000000028),
(1.771561000000001, 0.17715610000000037),
(1.9487171000000014, 0.19487171000000014),
(2.1435888100000016, 0.21435888100000033),
(2.357947691000002, 0.2357947691000004),
(2.5937424601000023, 0.2593742460100006),
(2.853116706110003, 0.2853116706110006),
(3.1384283767210035, 0.31384283767210075),
(3.4522712143931042, 0.34522712143931056),
(3.797498335832415, 0.37974983358324144),
(4.177248169415656, 0.4177248169415657),
(4.594972986357222, 0.4594972986357222),
(5.054470284992944, 0.5054470284992947),
(5.559917313492239, 0.5559917313492244),
(6.115909044841463, 0.6115909044841468),
(6.72749994932561, 0.6727499949325617),
(7.400249944258172, 0.7400249944258173),
(8.140274938683989, 0.8140274938683998),
(8.954302432552389, 0.8954302432552392),
(9.849732675807628, 0.984973267580763),
(10.834705943388391, 1.0834705943388396),
(11.91817653772723, 1.1918176537727234),
(13.109994191499954, 1.3109994191499972),
(14.420993610649951, 1.4420993610649973),
(15.863092971714948, 1.5863092971714963),
(17.449402268886445, 1.7449402268886445),
(19.19434249577509, 1.9194342495775096),
(21.1137767453526, 2.1113776745352624),
(23.22515441988786, 2.322515441988788),
(25.54766986187665, 2.5547669861876656),
(28.102436848064315, 2.8102436848064336),
(30.91268053287075, 3.0912680532870773),
(34.003948586157826, 3.4003948586157833),
(37.40434344477361, 3.7404343444773644),
(41.14477778925097, 4.1144777789250995),
(45.25925556817607, 4.5259255568176116),
(49.785181124993684, 4.978518112499373),
(54.76369923749306, 5.47636992374931),
(60.24006916124237, 6.024006916124243),
(66.26407607736661, 6.626407607736667),
(72.89048368510328, 7.289048368510336),
(80.17953205361361, 8.017953205361366),
(88.19748525897498, 8.81974852589751),
(97.01723378487249, 9.701723378487259),
(106.71895716335975, 10.671895716335982),
(117.39085287969573, 11.739085287969573),
(129.1299381676653, 12.912993816766544),
(142.04293198443185, 14.204293198443196),
(156.24722518287504, 15.624722518287513),
(171.87194770116255, 17.187194770116264),
(189.05914247127882, 18.905914247127896),
(207.96505671840671, 20.79650567184069),
(228.7615623902474, 22.876156239024766),
(251.63771862927217, 25.163771862927263),
(276.80149049219943, 27.68014904921995),
(304.4816395414194, 30.44816395414199),
(334.9298034955614, 33.49298034955615),
(368.4227838451175, 36.84227838451176),
(405.2650622296293, 40.52650622296295),
(445.79156845259223, 44.57915684525926),
(490.3707252978515, 49.037072529785235),
(539.4077978276367, 53.940779782763684),
(593.3485776104004, 59.3348577610401),
(652.6834353714405, 65.26834353714412),
(717.9517789085846, 71.79517789085855),
(789.7469567994432, 78.97469567994438),
(868.7216524793876, 86.87216524793882),
(955.5938177273264, 95.55938177273276),
(1051.1531995000591, 105.1153199500061),
(1156.2685194500652, 115.62685194500659),
(1271.8953713950718, 127.18953713950737),
(1399.0849085345792, 139.90849085345803),
(1538.9933993880372, 153.8993399388039),
(1692.8927393268411, 169.28927393268418),
(1862.1820132595253, 186.21820132595258),
(2048.400214585478, 204.8400214585481),
(2253.240236044026, 225.324023604403),
(2478.564259648429, 247.8564259648433),
(2726.4206856132723, 272.6420685613275),
(2999.0627541746, 299.90627541746017),
(3298.96902959206, 329.8969029592063),
(3628.8659325512663, 362.8865932551271),
(3991.7525258063934, 399.1752525806396),
(4390.927778387033, 439.092777838704),
(4830.020556225737, 483.0020556225745),
(5313.0226118483115, 531.3022611848319),
(5844.324873033143, 584.4324873033147),
(6428.757360336458, 642.8757360336467),
(7071.633096370105, 707.1633096370115),
(7778.796406007116, 777.8796406007123),
(8556.676046607829, 855.6676046607845),
(9412.343651268613, 941.234365126862),
(10353.578016395475, 1035.3578016395477),
(11388.935818035023, 1138.8935818035025),
(12527.829399838525, 1252.7829399838538),
(13780.612339822379, 1378.0612339822383),
(15158.673573804617, 1515.8673573804645),
(16674.54093118508, 1667.454093118511),
(18341.995024303593, 1834.1995024303615),
(20176.194526733954, 2017.6194526733962),
(22193.81397940735, 2219.3813979407387),
(24413.19537734809, 2441.3195377348093),
(26854.5149150829, 2685.451491508291),
(29539.96640659119, 2953.996640659123),
(32493.963047250312, 3249.3963047250363),
(35743.35935197535, 3574.3359351975378),
(39317.695287172886, 3931.76952871729),
(43249.46481589018, 4324.946481589024),
(47574.4112974792, 4757.441129747924),
(52331.852427227124, 5233.18524272272),
(57565.037669949845, 5756.503766994989),
(63321.54143694483, 6332.15414369449),
(69653.69558063932, 6965.369558063932),
(76619.06513870326, 7661.90651387033),
(84280.97165257359, 8428.097165257364),
(92709.06881783095, 9270.9068817831),
(101979.97569961405, 10197.997569961415),
(112177.97326957546, 11217.79732695756),
(123395.77059653302, 12339.577059653326),
(135735.34765618635, 13573.53476561865),
(149308.882421805, 14930.888242180517),
(164239.77066398552, 16423.97706639857),
(180663.7477303841, 18066.374773038435),
(198730.12250342252, 19873.01225034226),
(218603.13475376478, 21860.31347537649),
(240463.44822914127, 24046.344822914136),
(264509.7930520554, 26450.979305205576),
(290960.772357261, 29096.077235726116),
(320056.8495929871, 32005.684959298756),
(352062.53455228586, 35206.25345522864),
(387268.7880075145, 38726.87880075147),
(425995.66680826596, 42599.566680826654),
(468595.2334890926, 46859.52334890928),
(515454.7568380019, 51545.47568380018),
(567000.2325218021, 56700.02325218031),
(623700.2557739824, 62370.02557739825),
(686070.2813513806, 68607.0281351381),
(754677.3094865187, 75467.73094865191),
(830145.0404351706, 83014.50404351717),
(913159.5444786878, 91315.95444786886),
(1004475.4989265567, 100447.5498926558),
(1104923.0488192125, 110492.30488192127),
(1215415.3537011337, 121541.53537011356),
(1336956.8890712473, 133695.6889071248),
(1470652.577978372, 147065.25779783726),
(1617717.8357762094, 161771.78357762098),
(1779489.6193538303, 177948.96193538327),
(1957438.5812892136, 195743.8581289216),
(2153182.439418135, 215318.2439418137),
(2368500.683359949, 236850.06833599508),
(2605350.751695944, 260535.0751695945),
(2865885.8268655385, 286588.5826865542),
(3152474.4095520927, 315247.44095520955),
(3467721.850507302, 346772.1850507306),
(3814494.035558033, 381449.40355580393),
(4195943.439113837, 419594.34391138423),
(4615537.783025221, 461553.7783025224),
(5077091.561327743, 507709.1561327744),
(5584800.717460518, 558480.0717460522),
(6143280.78920657, 614328.0789206577),
(6757608.868127228, 675760.8868127232),
(7433369.754939951, 743336.9754939955),
(8176706.7304339465, 817670.6730433945),
(8994377.403477341, 899437.7403477356),
(9893815.143825077, 989381.5143825077),
(10883196.658207584, 1088319.6658207588),
(11971516.324028343, 1197151.6324028354),
(13168667.956431178, 1316866.7956431191),
(14485534.752074298, 1448553.4752074312),
(15934088.227281729, 1593408.8227281738),
(17527497.050009903, 1752749.7050009929),
(19280246.755010895, 1928024.6755010895),
(21208271.430511985, 2120827.1430511996),
(23329098.573563185, 2332909.857356321),
(25662008.430919506, 2566200.8430919535),
(28228209.27401146, 2822820.927401148),
(31051030.201412607, 3105103.0201412626),
(34156133.22155387, 3415613.3221553937),
(37571746.54370926, 3757174.6543709263),
(41328921.19808019, 4132892.1198080257),
(45461813.317888215, 4546181.331788823),
(50007994.64967704, 5000799.464967705),
(55008794.11464474, 5500879.411464483),
(60509673.526109226, 6050967.352610931),
(66560640.87872016, 6656064.087872021),
(73216704.96659218, 7321670.496659219),
(80538375.4632514, 8053837.546325147),
(88592213.00957654, 8859221.300957665),
(97451434.31053421, 9745143.43105343),
(107196577.74158764, 10719657.774158776),
(117916235.51574641, 11791623.551574647),
(129707859.06732106, 12970785.906732112),
(142678644.97405317, 14267864.49740532),
(156946509.4714585, 15694650.94714585),
(172641160.41860434, 17264116.04186046),
(189905276.4604648, 18990527.64604649),
(208895804.1065113, 20889580.410651147),
(229785384.51716244, 22978538.451716274),
(252763922.96887872, 25276392.296887904),
(278040315.2657666, 27804031.526576698),
(305844346.7923433, 30584434.679234385),
(336428781.4715777, 33642878.14715779),
(370071659.6187355, 37007165.96187359),
(407078825.5806091, 40707882.558060944),
(447786708.13867, 44778670.81386703),
(492565378.95253706, 49256537.89525378),
(541821916.8477908, 54182191.68477917),
(596004108.53257, 59600410.85325706),
(655604519.3858271, 65560451.93858278),
(721164971.3244098, 72116497.13244104),
(793281468.4568509, 79328146.84568512),
(872609615.302536, 87260961.53025365),
(959870576.8327897, 95987057.68327904),
(1055857634.5160687, 105585763.45160699),
(1161443397.9676757, 116144339.79676771),
(1277587737.7644434, 127758773.77644444),
(1405346511.5408878, 140534651.15408897),
(1545881162.6949768, 154588116.26949787),
(1700469278.9644747, 170046927.89644766),
(1870516206.8609223, 187051620.68609238),
(2057567827.5470147, 205756782.7547016),
(2263324610.3017163, 226332461.03017187),
(2489657071.331888, 248965707.1331892),
(2738622778.4650774, 273862277.846508),
(3012485056.3115854, 301248505.6311588),
(3313733561.9427443, 331373356.1942749);

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

CREATE INDEX idx_sessions_first_run ON sessions(first_run_at);

CREATE INDEX idx_sessions_cost ON sessions(cost_usd);

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

CREATE INDEX idx_prompts_reported ON prompts(created_at) WHERE cost_source = 'reported';

CREATE INDEX idx_agents_failed_orchestrator ON agents(orchestrator_agent_id, completed_at)
    WHERE status = 'failed';

CREATE TABLE prompt_responses (
    prompt_id TEXT PRIMARY KEY REFERENCES prompts(id) ON DELETE CASCADE,  -- the prompt row
    message_id TEXT NOT NULL,           -- the provider's response id (Anthropic message.id)
    request_id TEXT,                    -- the API request id (transcripts' requestId), if known
    tokens_output_final INTEGER         -- output tokens on the response's LAST line: Claude
        -- Code writes one line per content block and the first can carry a partial count;
        -- prompts.tokens_output keeps the first line's (what ccusage counts), this the last
, effort TEXT, thinking TEXT, thinking_budget_tokens INTEGER, max_tokens INTEGER);

CREATE UNIQUE INDEX idx_prompt_responses_key ON prompt_responses(message_id, request_id)
    WHERE request_id IS NOT NULL;

CREATE INDEX idx_prompt_responses_message ON prompt_responses(message_id);

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

CREATE INDEX idx_claude_code_files_agent ON claude_code_files(agent_id);

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

CREATE INDEX idx_otel_requests_prompt ON otel_requests(prompt_id);

CREATE INDEX idx_prompt_responses_request ON prompt_responses(request_id);

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

CREATE INDEX idx_agent_attributes_key ON agent_attributes(key, value);

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

CREATE INDEX idx_otel_metrics_daily_name ON otel_metrics_daily(name, day);

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

CREATE INDEX idx_agents_unfinished ON agents(id) WHERE status IN ('pending', 'running');

CREATE INDEX idx_prompts_pending ON prompts(id) WHERE status = 'pending';

CREATE INDEX idx_claude_code_runs_updated ON claude_code_runs(updated_at);

CREATE INDEX idx_claude_code_files_imported ON claude_code_files(imported_at);

CREATE INDEX idx_otel_metrics_daily_updated ON otel_metrics_daily(updated_at);

CREATE TRIGGER claude_code_runs_updated_at AFTER UPDATE ON claude_code_runs
WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE claude_code_runs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE agent_id = NEW.agent_id;
END;

CREATE INDEX idx_agent_logs_tool_use ON agent_logs(json_extract(metadata, '$.tool_use_id'))
    WHERE log_type IN ('tool_use', 'tool_result', 'PreToolUse', 'PostToolUse', 'PostToolUseFailure');

CREATE INDEX idx_otel_requests_otel_prompt ON otel_requests(otel_prompt_id);
