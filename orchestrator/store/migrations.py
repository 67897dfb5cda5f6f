"""The schema of ``orchestrator.db``, as append-only sqlite-utils migrations.

This module is the single definition of the schema and the one home of the
SQLite dialect's DDL (triggers, FTS5, ``strftime`` defaults). A migration that
has shipped is never edited: a change is a new function at the end.

Conventions every migration follows:

* ids are UUID text (``orchestrator.core.ids.new_id``);
* timestamps are UTC text ``YYYY-MM-DDTHH:MM:SS.mmmZ``, defaults included;
* tokens follow **Anthropic's convention**: ``tokens_input`` counts only the
  input tokens that were neither read from nor written to the prompt cache
  (Anthropic's ``input_tokens``); ``tokens_cache_read`` and
  ``tokens_cache_write`` count the cached ones
  (``cache_read_input_tokens`` / ``cache_creation_input_tokens``). The whole
  prompt is the sum of the three. (genai-prices and OpenAI count cache tokens
  inside input tokens; ``orchestrator.core.pricing`` converts.)
* money is US dollars as REAL; NULL means "not known", never 0.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.ids import SQL_NOW

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

#: The name of this project's migration set in sqlite-utils' ``_sqlite_migrations`` ledger.
SET_NAME = "orchestrator"
LEDGER = "_sqlite_migrations"

_STEPS: list[Callable[[Database], None]] = []


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection, *, keep: bool = True) -> Iterator[None]:
    """``with write_transaction(conn):`` one ``BEGIN IMMEDIATE`` transaction (the write
    lock taken at once, so two writers never deadlock upgrading), committed at the end
    (rolled back instead when ``keep`` is false) and rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT" if keep else "ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migration(function: Callable[[Database], None]) -> Callable[[Database], None]:
    """Register a migration, in order (sqlite-utils' set is built on first use, so
    opening an up-to-date database never imports sqlite-utils)."""
    _STEPS.append(function)
    return function


def names() -> list[str]:
    """Every migration's name, in the order they apply."""
    return [step.__name__ for step in _STEPS]


@functools.cache
def migration_set() -> Migrations:
    """The sqlite-utils ``Migrations("orchestrator")`` holding every migration."""
    from sqlite_utils import Migrations

    steps = Migrations(SET_NAME)
    for step in _STEPS:
        steps()(step)
    return steps


def __getattr__(name: str) -> Any:
    if name == "migrations":  # the sqlite-utils set, as ``migrations.migrations``
        return migration_set()
    raise AttributeError(name)


def applied_names(conn: sqlite3.Connection) -> list[str] | None:
    """The migrations recorded in ``conn``'s ledger, or ``None`` when it has none."""
    try:
        rows = conn.execute(
            f"SELECT name FROM {LEDGER} WHERE migration_set = ? ORDER BY rowid", (SET_NAME,)
        ).fetchall()
    except sqlite3.OperationalError:  # no ledger table: a new (or foreign) file
        return None
    return [row[0] for row in rows]


def is_current(conn: sqlite3.Connection) -> bool:
    """Whether every migration is applied (one indexed read, no sqlite-utils)."""
    applied = applied_names(conn)
    return applied is not None and set(names()) <= set(applied)


def pending_and_unknown(applied: list[str] | None) -> tuple[list[str], list[str]]:
    """(migrations not yet in the ledger ``applied``, ledger names this code does not know).

    An unknown name means a newer version of orchestrator migrated the file.
    """
    done = set(applied or ())
    known = set(names())
    return [n for n in names() if n not in done], [n for n in applied or () if n not in known]


# --- a new database at once ---------------------------------------------------------

#: The SQL that gives an empty database every migration's result at once (generated from
#: the migrations by :func:`fresh_script`, never edited; the tests check it is current).
FRESH_SCRIPT = Path(__file__).with_name("fresh_schema.sql")


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Bring ``conn``'s database up to date; return the names of the migrations applied.

    An empty database gets :data:`FRESH_SCRIPT` (the same objects, rows and ledger as
    running every migration, without importing sqlite-utils, which imports pandas: about
    0.3 s of a first run); any other one runs its pending migrations (:func:`apply`).
    One transaction either way (``BEGIN IMMEDIATE``).
    """
    created = _create_from_script(conn)
    if created is not None:
        return created
    from sqlite_utils import Database

    return apply(Database(conn))


class _NotFresh(Exception):
    """The database is not empty, or the script is not current: migrate instead."""


def _create_from_script(conn: sqlite3.Connection) -> list[str] | None:
    """Run :data:`FRESH_SCRIPT` on ``conn`` when its database is empty; the migrations it
    recorded, or None (nothing done) when the database is not empty or the script does not
    record every migration (a stale script is only slower, never wrong)."""
    try:
        script = FRESH_SCRIPT.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        with write_transaction(conn):
            # Checked under the write lock: a process that created the file a moment
            # earlier has finished, and this one then finds its schema.
            if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
                raise _NotFresh
            _run(conn, script)
            if applied_names(conn) != names():
                raise _NotFresh
    except _NotFresh:
        return None
    return names()


def fresh_script() -> str:
    """The text of :data:`FRESH_SCRIPT`, read from a database every migration was applied
    to (imports sqlite-utils): its tables, indexes and triggers in creation order (FTS5
    tables make their own shadow tables), each table's rows just after it (before any
    trigger on it exists), the ledger's rows dated when the script runs."""
    from sqlite_utils import Database

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        apply(Database(conn))
        shadow = {row[1] for row in conn.execute("PRAGMA table_list") if row[2] == "shadow"}
        parts = [
            "-- Generated from the migrations by "
            "`python -m orchestrator.store.migrations`: do not\n"
            "-- edit. What an empty database gets instead of each migration (migrate())."
        ]
        for type_, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        ).fetchall():
            if name in shadow:
                continue
            parts.append(f"{sql};")
            if type_ == "table" and not sql.upper().startswith("CREATE VIRTUAL TABLE"):
                parts.extend(_insert_rows(conn, name))
    finally:
        conn.close()
    return "\n\n".join(parts) + "\n"


def _insert_rows(conn: sqlite3.Connection, table: str) -> list[str]:
    """INSERT statements of ``table``'s rows (the ledger's dated when they run)."""
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    if table == LEDGER:
        columns.remove("id")
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid").fetchall()
    if not rows:
        return []
    values = []
    for row in rows:
        literals = [_literal(value) for value in row]
        if table == LEDGER:  # sqlite-utils' format: str(datetime.now(timezone.utc))
            literals[columns.index("applied_at")] = (
                "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00'"
            )
        values.append(f"({', '.join(literals)})")
    return [f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n" + ",\n".join(values) + ";"]


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, float)):
        return repr(value)  # the shortest text that reads back as the same float
    raise TypeError(f"no SQL literal for {type(value).__name__}")


# --- checking a file's schema against the migrations, and repairing it ---------------


@functools.cache
def expected_objects() -> dict[tuple[str, str], tuple[str, str]]:
    """Every table, index and trigger the migrations create (FTS5 tables and their shadow
    tables included), as ``(type, name) -> (table it belongs to, SQL)`` in creation order.

    Read from a freshly migrated in-memory database (:func:`migrate`; cached), so the
    migrations stay the one definition. SQLite's own ``sqlite_*`` objects and the
    migration ledger are left out.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn)
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name != ? ORDER BY rowid",
            (LEDGER,),
        ).fetchall()
    finally:
        conn.close()
    return {(type_, name): (table, sql) for type_, name, table, sql in rows}


def missing_objects(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """The ``(type, name)`` of each object of :func:`expected_objects` that ``conn``'s
    database lacks, in creation order (one read of ``sqlite_master``)."""
    present = set(conn.execute("SELECT type, name FROM sqlite_master").fetchall())
    return [key for key in expected_objects() if key not in present]


def _fts_tables() -> dict[str, set[tuple[str, str]]]:
    """Each FTS5 table and the objects it needs: its shadow tables and the triggers that
    keep it in step with its content table."""
    expected = expected_objects()
    virtual = [
        name
        for (type_, name), (_, sql) in expected.items()
        if type_ == "table" and sql.upper().startswith("CREATE VIRTUAL TABLE")
    ]
    parts: dict[str, set[tuple[str, str]]] = {}
    for fts in virtual:
        mention = re.compile(rf"\b{re.escape(fts)}\b")
        parts[fts] = {
            (type_, name)
            for (type_, name), (_, sql) in expected.items()
            if (type_ == "table" and name.startswith(f"{fts}_"))
            or (type_ == "trigger" and mention.search(sql))
        } | {("table", fts)}
    return parts


def repair(conn: sqlite3.Connection) -> list[str]:
    """Re-create what the migrations made that the database lacks, then make what those
    objects keep true again; returns the names re-created (empty: nothing was missing).

    Missing tables, indexes and triggers are created from the migrations' SQL. When a
    table or trigger was missing, every summary is recomputed from the base tables
    (:func:`rebuild_summaries`); an FTS5 index missing any part (its table, a shadow
    table, a trigger) is dropped, re-created and rebuilt from its content table. A
    re-created base table is empty: its rows are not recoverable here. One transaction
    (``BEGIN IMMEDIATE``): on error nothing changes.
    """
    expected = expected_objects()
    fts_parts = _fts_tables()
    with write_transaction(conn):
        missing = missing_objects(conn)
        broken = [fts for fts, parts in fts_parts.items() if parts & set(missing)]
        rebuilt_by_fts = set().union(*(fts_parts[fts] for fts in broken))
        for fts in broken:
            conn.execute(f"DROP TABLE IF EXISTS {fts}")  # and its shadow tables with it
        for key, (_, sql) in expected.items():
            if key in rebuilt_by_fts:
                # the FTS table brings its shadow tables; triggers still there still work
                if key[1] in broken or (key[0] == "trigger" and key in missing):
                    conn.execute(sql)
            elif key in missing:
                conn.execute(sql)
        if ("table", "duration_buckets") in missing:
            conn.executemany(
                "INSERT INTO duration_buckets (bucket_ms, width_ms) VALUES (?, ?)",
                duration_buckets(),
            )
        if any(key[0] != "index" and key not in rebuilt_by_fts for key in missing):
            rebuild_summaries(conn)
        for fts in broken:
            conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')")
    return [name for _, name in missing]


def rebuild_summaries(conn: sqlite3.Connection) -> None:
    """Recompute every total the triggers keep from the base tables: each run's prompt
    totals on ``agents``, ``usage_daily``, ``runs_daily``, ``step_histogram_daily`` and
    ``sessions``. The same sums the triggers add up (and m003-m005 backfilled); a
    migration that adds a summary adds its recomputation here. Runs inside the caller's
    transaction.
    """
    script = f"""
UPDATE agents SET (prompt_count, total_tokens_input, total_tokens_output,
    total_tokens_cache_read, total_tokens_cache_write, total_cost_usd,
    unpriced_prompt_count) = (
    SELECT count(*), coalesce(sum(tokens_input), 0), coalesce(sum(tokens_output), 0),
        coalesce(sum(tokens_cache_read), 0), coalesce(sum(tokens_cache_write), 0),
        coalesce(sum(cost_usd), 0), coalesce(sum(cost_source = 'unpriced'), 0)
    FROM prompts WHERE prompts.agent_id = agents.id);

DELETE FROM usage_daily;
INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
    {", ".join(_USAGE_TOKENS_1H)}, cost_usd, unpriced_prompts, cache_savings_usd)
SELECT substr(p.created_at, 1, 10), a.orchestrator_agent_id, coalesce(p.model, 'unknown'),
    count(*), sum(p.status = 'failed'),
    {", ".join(f"sum(p.{column})" for column in _USAGE_TOKENS_1H)},
    coalesce(sum(p.cost_usd), 0),
    sum(p.cost_source = 'unpriced'), coalesce(sum(p.cache_savings_usd), 0)
FROM prompts p JOIN agents a ON a.id = p.agent_id GROUP BY 1, 2, 3;

DELETE FROM runs_daily;
{_RUNS_DAILY_FILL}

DELETE FROM step_histogram_daily;
{_step_histogram_fill()}

DELETE FROM sessions;
{_SESSIONS_FILL}
"""
    _run(conn, script)


@functools.cache
def prompt_summary_triggers() -> dict[str, tuple[str, str]]:
    """The prompts' insert triggers that keep summaries, which a bulk load inside one
    write transaction may drop and replace by one statement over the rows it inserted:
    ``name -> (its SQL as the migrations create it, the statement adding at once, for
    the prompts past a rowid (its one parameter), what it adds row by row)``.

    A database whose trigger differs from this SQL (a later migration changed it) keeps
    its trigger: the statement here would no longer be the same sums.
    """
    unpriced = "CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END"
    totals = f"""UPDATE agents SET
    prompt_count = prompt_count + d.prompts,
    {", ".join(f"total_{c} = total_{c} + d.{c}" for c in _USAGE_TOKENS)},
    total_cost_usd = total_cost_usd + d.cost_usd,
    unpriced_prompt_count = unpriced_prompt_count + d.unpriced
FROM (
    SELECT agent_id, count(*) AS prompts, {", ".join(f"sum({c}) AS {c}" for c in _USAGE_TOKENS)},
        sum(coalesce(cost_usd, 0)) AS cost_usd, sum({unpriced}) AS unpriced
    FROM prompts WHERE rowid > ? GROUP BY agent_id
) AS d
WHERE agents.id = d.agent_id"""
    usage = f"""INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
    {", ".join(_USAGE_TOKENS_1H)}, cost_usd, unpriced_prompts, cache_savings_usd)
SELECT substr(p.created_at, 1, 10), a.orchestrator_agent_id, coalesce(p.model, 'unknown'),
    count(*), sum(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END),
    {", ".join(f"sum(p.{c})" for c in _USAGE_TOKENS_1H)},
    sum(coalesce(p.cost_usd, 0)), sum(CASE WHEN p.cost_source = 'unpriced' THEN 1 ELSE 0 END),
    sum(coalesce(p.cache_savings_usd, 0))
FROM prompts p JOIN agents a ON a.id = p.agent_id WHERE p.rowid > ? GROUP BY 1, 2, 3
{_usage_daily_adds(_USAGE_TOKENS_1H)}"""
    return {
        "prompts_totals_insert": (
            "CREATE TRIGGER prompts_totals_insert AFTER INSERT ON prompts BEGIN\n    "
            f"{_totals_delta('NEW', '+')}\nEND",
            totals,
        ),
        "prompts_usage_insert": (
            "CREATE TRIGGER prompts_usage_insert AFTER INSERT ON prompts BEGIN\n    "
            f"{_usage_daily_delta('NEW', '+', _USAGE_TOKENS_1H)}\nEND",
            usage,
        ),
    }


def _run(db: Database | sqlite3.Connection, script: str) -> None:
    """Execute a script statement by statement, inside the caller's transaction.

    ``executescript`` would COMMIT first and break the migration's atomicity.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        # A statement can only end on a line with a semicolon: asking only there keeps
        # this linear in the script's length.
        if ";" in line and sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


def _totals_delta(row: str, sign: str) -> str:
    """UPDATE adding (sign '+') or removing (sign '-') one prompt row to its run's totals."""
    return f"""
    UPDATE agents SET
        prompt_count = prompt_count {sign} 1,
        total_tokens_input = total_tokens_input {sign} {row}.tokens_input,
        total_tokens_output = total_tokens_output {sign} {row}.tokens_output,
        total_tokens_cache_read = total_tokens_cache_read {sign} {row}.tokens_cache_read,
        total_tokens_cache_write = total_tokens_cache_write {sign} {row}.tokens_cache_write,
        total_cost_usd = total_cost_usd {sign} coalesce({row}.cost_usd, 0),
        unpriced_prompt_count = unpriced_prompt_count
            {sign} CASE WHEN {row}.cost_source = 'unpriced' THEN 1 ELSE 0 END
    WHERE id = {row}.agent_id;"""


@migration
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
CREATE INDEX idx_agents_created ON agents(created_at);
CREATE INDEX idx_agents_parent ON agents(parent_agent_id);
CREATE INDEX idx_prompts_agent ON prompts(agent_id);
CREATE INDEX idx_prompts_created ON prompts(created_at);
CREATE INDEX idx_prompts_model ON prompts(model);
CREATE INDEX idx_agent_logs_agent ON agent_logs(agent_id, created_at);
CREATE INDEX idx_agent_logs_created ON agent_logs(created_at);
CREATE INDEX idx_system_logs_created ON system_logs(created_at);

-- Keep the run totals on agents true whatever writes prompts.
CREATE TRIGGER prompts_totals_insert AFTER INSERT ON prompts BEGIN
    {_totals_delta("NEW", "+")}
END;

CREATE TRIGGER prompts_totals_delete AFTER DELETE ON prompts BEGIN
    {_totals_delta("OLD", "-")}
END;

CREATE TRIGGER prompts_totals_update AFTER UPDATE OF
    agent_id, tokens_input, tokens_output, tokens_cache_read, tokens_cache_write,
    cost_usd, cost_source
ON prompts BEGIN
    {_totals_delta("OLD", "-")}
    {_totals_delta("NEW", "+")}
END;
""",
    )


def apply(db: Database) -> list[str]:
    """Bring ``db`` up to date; return the names of the migrations applied.

    Runs under ``BEGIN IMMEDIATE`` so two processes opening a new file at the
    same moment cannot both apply a migration: the second waits for the
    first, then finds nothing pending.
    """
    steps = migration_set()
    if not steps.pending(db):
        return []
    with write_transaction(db.conn):
        pending = [m.name for m in steps.pending(db)]
        steps.apply(db)  # each migration runs in a savepoint of ours
    return pending


def _fts(table: str, columns: list[str]) -> str:
    """FTS5 index of ``columns`` of ``table``, kept in sync by triggers.

    Named and shaped as sqlite-utils' ``enable_fts`` does (``<table>_fts``,
    external content), so Datasette finds it and gives the table a search box.
    Written out because ``enable_fts`` runs ``executescript``, which would
    commit the migration's transaction half-way.
    """
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    return f"""
CREATE VIRTUAL TABLE {table}_fts USING fts5({cols}, content={table});
INSERT INTO {table}_fts (rowid, {cols}) SELECT rowid, {cols} FROM {table};
CREATE TRIGGER {table}_ai AFTER INSERT ON {table} BEGIN
    INSERT INTO {table}_fts (rowid, {cols}) VALUES (new.rowid, {new});
END;
CREATE TRIGGER {table}_ad AFTER DELETE ON {table} BEGIN
    INSERT INTO {table}_fts ({table}_fts, rowid, {cols}) VALUES ('delete', old.rowid, {old});
END;
CREATE TRIGGER {table}_au AFTER UPDATE OF {cols} ON {table} BEGIN
    INSERT INTO {table}_fts ({table}_fts, rowid, {cols}) VALUES ('delete', old.rowid, {old});
    INSERT INTO {table}_fts (rowid, {cols}) VALUES (new.rowid, {new});
END;
"""


@migration
def m002_full_text_search(db: Database) -> None:
    """Full-text search on prompt content and response and on log messages."""
    _run(db, _fts("prompts", ["content", "response"]))
    _run(db, _fts("agent_logs", ["message"]))
    _run(db, _fts("system_logs", ["message"]))


#: The token columns usage_daily sums, as m003 made it; m007 adds the 1-hour cache writes.
_USAGE_TOKENS = ("tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write")
_USAGE_TOKENS_1H = (*_USAGE_TOKENS, "tokens_cache_write_1h")


def _usage_daily_delta(row: str, sign: str, tokens: tuple[str, ...] = _USAGE_TOKENS) -> str:
    """UPSERT adding (sign '+') or removing (sign '-') one prompt row to usage_daily."""
    return f"""
    INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
        {", ".join(tokens)}, cost_usd,
        unpriced_prompts, cache_savings_usd)
    SELECT substr({row}.created_at, 1, 10), a.orchestrator_agent_id,
        coalesce({row}.model, 'unknown'), {sign}1,
        {sign}(CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END),
        {", ".join(f"{sign}{row}.{column}" for column in tokens)},
        {sign}coalesce({row}.cost_usd, 0),
        {sign}(CASE WHEN {row}.cost_source = 'unpriced' THEN 1 ELSE 0 END),
        {sign}coalesce({row}.cache_savings_usd, 0)
    FROM agents a WHERE a.id = {row}.agent_id
    {_usage_daily_adds(tokens)};"""


def _usage_daily_adds(tokens: tuple[str, ...]) -> str:
    """The ON CONFLICT clause by which an upsert into usage_daily adds to a day's row."""
    return f"""ON CONFLICT (day, orchestrator_agent_id, model) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        failed_prompts = failed_prompts + excluded.failed_prompts,
        {", ".join(f"{column} = {column} + excluded.{column}" for column in tokens)},
        cost_usd = cost_usd + excluded.cost_usd,
        unpriced_prompts = unpriced_prompts + excluded.unpriced_prompts,
        cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd"""


def _runs_daily_delta(row: str, sign: str) -> str:
    """UPSERT adding or removing one agent run (by its status) to runs_daily."""
    return f"""
    INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)
    VALUES (substr({row}.created_at, 1, 10), {row}.orchestrator_agent_id, {sign}1,
        {sign}(CASE WHEN {row}.status = 'completed' THEN 1 ELSE 0 END),
        {sign}(CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END),
        {sign}(CASE WHEN {row}.status = 'cancelled' THEN 1 ELSE 0 END))
    ON CONFLICT (day, orchestrator_agent_id) DO UPDATE SET
        runs = runs + excluded.runs,
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled;"""


@migration
def m003_report_summaries(db: Database) -> None:
    """What the reports need to answer in milliseconds on millions of rows.

    usage_daily and runs_daily are sums kept by triggers, so they are true
    whatever writes the base tables; the indexes serve the reports that read
    the base tables (top-N lists, percentiles, one run's timeline).
    """
    _run(
        db,
        f"""
ALTER TABLE prompts ADD COLUMN cache_savings_usd REAL;
    -- what the call would have cost with no prompt caching (every cached token priced as
    -- input) minus what it cost, from prices; negative when cache writes outweigh reads;
    -- NULL when the model is unpriced

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
    cache_savings_usd REAL NOT NULL DEFAULT 0,      -- USD saved by prompt caching
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

INSERT INTO usage_daily (day, orchestrator_agent_id, model, prompts, failed_prompts,
    tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost_usd,
    unpriced_prompts, cache_savings_usd)
SELECT substr(p.created_at, 1, 10), a.orchestrator_agent_id, coalesce(p.model, 'unknown'),
    count(*), sum(p.status = 'failed'), sum(p.tokens_input), sum(p.tokens_output),
    sum(p.tokens_cache_read), sum(p.tokens_cache_write), coalesce(sum(p.cost_usd), 0),
    sum(p.cost_source = 'unpriced'), 0
FROM prompts p JOIN agents a ON a.id = p.agent_id GROUP BY 1, 2, 3;

{_RUNS_DAILY_FILL}

CREATE TRIGGER prompts_usage_insert AFTER INSERT ON prompts BEGIN
    {_usage_daily_delta("NEW", "+")}
END;

CREATE TRIGGER prompts_usage_delete AFTER DELETE ON prompts BEGIN
    {_usage_daily_delta("OLD", "-")}
END;

CREATE TRIGGER prompts_usage_update AFTER UPDATE OF
    agent_id, created_at, model, status, tokens_input, tokens_output, tokens_cache_read,
    tokens_cache_write, cost_usd, cost_source, cache_savings_usd
ON prompts BEGIN
    {_usage_daily_delta("OLD", "-")}
    {_usage_daily_delta("NEW", "+")}
END;

CREATE TRIGGER agents_runs_insert AFTER INSERT ON agents BEGIN
    {_runs_daily_delta("NEW", "+")}
END;

CREATE TRIGGER agents_runs_delete AFTER DELETE ON agents BEGIN
    {_runs_daily_delta("OLD", "-")}
END;

CREATE TRIGGER agents_runs_update AFTER UPDATE OF status, created_at, orchestrator_agent_id
ON agents BEGIN
    {_runs_daily_delta("OLD", "-")}
    {_runs_daily_delta("NEW", "+")}
END;

CREATE INDEX idx_prompts_cost ON prompts(cost_usd);
CREATE INDEX idx_agents_cost ON agents(total_cost_usd);
CREATE INDEX idx_agents_duration ON agents(duration_ms);
CREATE INDEX idx_agents_failed ON agents(completed_at) WHERE status = 'failed';
CREATE INDEX idx_agent_logs_steps ON agent_logs(step, duration_ms) WHERE log_type = 'step_end';
CREATE INDEX idx_system_logs_level_source ON system_logs(log_level, source, created_at);
CREATE INDEX idx_usage_daily_orchestrator ON usage_daily(orchestrator_agent_id, day);
CREATE INDEX idx_usage_daily_model ON usage_daily(model, day);
""",
    )


BUCKET_RATIO = 1.1  # each step-duration bucket is 10% wider than the one before


def duration_buckets() -> list[tuple[float, float]]:
    """(lower bound, width) of every step-duration bucket, in milliseconds: [0, 1) then
    geometric from 1 ms up to about 40 days. A bucket's midpoint is within 5% of any
    duration in it."""
    buckets, lower = [(0.0, 1.0)], 1.0
    while lower < 3.5e9:
        upper = lower * BUCKET_RATIO
        buckets.append((lower, upper - lower))
        lower = upper
    return buckets


def _geometric_bucket(duration: str) -> str:
    return f"(SELECT max(bucket_ms) FROM duration_buckets WHERE bucket_ms <= {duration})"


def _step_histogram_geometric_delta(row: str, sign: str) -> str:
    return f"""
    INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
        steps, sum_ms, max_ms)
    SELECT substr({row}.created_at, 1, 10), a.orchestrator_agent_id, {row}.step,
        b.bucket_ms, b.width_ms, {sign}1, {sign}{row}.duration_ms, {row}.duration_ms
    FROM agents a, duration_buckets b
    WHERE a.id = {row}.agent_id AND b.bucket_ms = {_geometric_bucket(f"{row}.duration_ms")}
    ON CONFLICT (day, orchestrator_agent_id, step, bucket_ms) DO UPDATE SET
        steps = steps + excluded.steps,
        sum_ms = sum_ms + excluded.sum_ms,
        max_ms = max(max_ms, excluded.max_ms);"""


@migration
def m004_step_histogram(db: Database) -> None:
    """Step durations as daily histograms, so p50/p95 over millions of steps are instant.

    Exact percentiles need a sort of every step in the window (half a second for
    75,000 steps here). Buckets 10% wide give them within 5% (the report shows each
    bucket's midpoint), with exact counts and means; the bucket is looked up in a
    table of bounds, so no math extension is needed.
    """
    _run(
        db,
        """
CREATE TABLE duration_buckets (
    bucket_ms REAL PRIMARY KEY,          -- lower bound of a step-duration bucket, ms
    width_ms REAL NOT NULL               -- its width: durations in [bucket, bucket + width)
);
""",
    )
    db.conn.executemany(
        "INSERT INTO duration_buckets (bucket_ms, width_ms) VALUES (?, ?)", duration_buckets()
    )
    _run(
        db,
        f"""
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

{_step_histogram_fill()}

CREATE TRIGGER agent_logs_steps_insert AFTER INSERT ON agent_logs
WHEN NEW.log_type = 'step_end' AND NEW.step IS NOT NULL AND NEW.duration_ms IS NOT NULL
BEGIN
    {_step_histogram_geometric_delta("NEW", "+")}
END;

CREATE TRIGGER agent_logs_steps_delete AFTER DELETE ON agent_logs
WHEN OLD.log_type = 'step_end' AND OLD.step IS NOT NULL AND OLD.duration_ms IS NOT NULL
BEGIN
    {_step_histogram_geometric_delta("OLD", "-")}
END;
""",
    )


_SESSION_SUMS = (
    "runs",
    "failed_runs",
    "prompts",
    "tokens_input",
    "tokens_output",
    "tokens_cache_read",
    "tokens_cache_write",
    "cost_usd",
    "unpriced_prompts",
)

# What each summary holds, computed from the base tables: the migrations that create a
# summary fill it with these, and rebuild_summaries() recomputes it with the same SQL.
_RUNS_DAILY_FILL = (
    "INSERT INTO runs_daily (day, orchestrator_agent_id, runs, completed, failed, cancelled)\n"
    """SELECT substr(created_at, 1, 10), orchestrator_agent_id, count(*), sum(status = 'completed'),
    sum(status = 'failed'), sum(status = 'cancelled')
FROM agents GROUP BY 1, 2;"""
)

_SESSIONS_FILL = (
    f"INSERT INTO sessions (session_id, {', '.join(_SESSION_SUMS)}, first_run_at, "
    "last_completed_at)\n"
    """SELECT session_id, count(*), sum(status = 'failed'), sum(prompt_count),
    sum(total_tokens_input), sum(total_tokens_output), sum(total_tokens_cache_read),
    sum(total_tokens_cache_write), sum(total_cost_usd), sum(unpriced_prompt_count),
    min(created_at), max(completed_at)
FROM agents WHERE session_id IS NOT NULL GROUP BY session_id;"""
)


def _step_histogram_fill() -> str:
    return f"""\
INSERT INTO step_histogram_daily (day, orchestrator_agent_id, step, bucket_ms, width_ms,
    steps, sum_ms, max_ms)
SELECT substr(l.created_at, 1, 10), a.orchestrator_agent_id, l.step, b.bucket_ms, b.width_ms,
    count(*), sum(l.duration_ms), max(l.duration_ms)
FROM agent_logs l
JOIN agents a ON a.id = l.agent_id
JOIN duration_buckets b ON b.bucket_ms = {_geometric_bucket("l.duration_ms")}
WHERE l.log_type = 'step_end' AND l.step IS NOT NULL AND l.duration_ms IS NOT NULL
GROUP BY 1, 2, 3, 4;"""


def _session_values(row: str) -> str:
    """One agent run's contribution to its session, in _SESSION_SUMS order."""
    return (
        f"1, CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END, {row}.prompt_count, "
        f"{row}.total_tokens_input, {row}.total_tokens_output, "
        f"{row}.total_tokens_cache_read, {row}.total_tokens_cache_write, "
        f"{row}.total_cost_usd, {row}.unpriced_prompt_count"
    )


def _session_add(row: str) -> str:
    updates = ",\n        ".join(f"{c} = {c} + excluded.{c}" for c in _SESSION_SUMS)
    return f"""
    INSERT INTO sessions (session_id, {", ".join(_SESSION_SUMS)}, first_run_at,
        last_completed_at)
    SELECT {row}.session_id, {_session_values(row)}, {row}.created_at, {row}.completed_at
    WHERE {row}.session_id IS NOT NULL
    ON CONFLICT (session_id) DO UPDATE SET
        {updates},
        first_run_at = coalesce(min(first_run_at, excluded.first_run_at), first_run_at,
            excluded.first_run_at),
        last_completed_at = coalesce(max(last_completed_at, excluded.last_completed_at),
            last_completed_at, excluded.last_completed_at);"""


def _session_subtract(row: str) -> str:
    parts = [
        "runs = runs - 1",
        f"failed_runs = failed_runs - (CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END)",
        f"prompts = prompts - {row}.prompt_count",
        f"tokens_input = tokens_input - {row}.total_tokens_input",
        f"tokens_output = tokens_output - {row}.total_tokens_output",
        f"tokens_cache_read = tokens_cache_read - {row}.total_tokens_cache_read",
        f"tokens_cache_write = tokens_cache_write - {row}.total_tokens_cache_write",
        f"cost_usd = cost_usd - {row}.total_cost_usd",
        f"unpriced_prompts = unpriced_prompts - {row}.unpriced_prompt_count",
    ]
    return f"""
    UPDATE sessions SET {", ".join(parts)} WHERE session_id = {row}.session_id;"""


def _delete_summaries_trigger(bucket_sql: str, tokens: tuple[str, ...] = _USAGE_TOKENS) -> str:
    """The trigger that takes a deleted run's prompts and step logs out of the daily
    summaries; ``bucket_sql`` gives a step_end log's histogram bucket from duration_ms."""
    return f"""CREATE TRIGGER agents_delete_summaries BEFORE DELETE ON agents BEGIN
    UPDATE usage_daily SET
        prompts = usage_daily.prompts - d.prompts,
        failed_prompts = usage_daily.failed_prompts - d.failed_prompts,
        {", ".join(f"{column} = usage_daily.{column} - d.{column}" for column in tokens)},
        cost_usd = usage_daily.cost_usd - d.cost_usd,
        unpriced_prompts = usage_daily.unpriced_prompts - d.unpriced_prompts,
        cache_savings_usd = usage_daily.cache_savings_usd - d.cache_savings_usd
    FROM (
        SELECT substr(created_at, 1, 10) AS day, coalesce(model, 'unknown') AS model,
            count(*) AS prompts, sum(status = 'failed') AS failed_prompts,
            {", ".join(f"sum({column}) AS {column}" for column in tokens)},
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
            {bucket_sql} AS bucket_ms,
            count(*) AS steps, sum(duration_ms) AS sum_ms
        FROM agent_logs
        WHERE agent_id = OLD.id AND log_type = 'step_end' AND step IS NOT NULL
            AND duration_ms IS NOT NULL
        GROUP BY 1, 2, 3
    ) AS d
    WHERE step_histogram_daily.day = d.day AND step_histogram_daily.step = d.step
        AND step_histogram_daily.bucket_ms = d.bucket_ms
        AND step_histogram_daily.orchestrator_agent_id = OLD.orchestrator_agent_id;
END;"""


@migration
def m005_sessions_and_report_indexes(db: Database) -> None:
    """Per-session totals kept by triggers (the session report groups 100,000s of runs
    otherwise) and an index for the reported-vs-computed cost report."""
    sums = ",\n    ".join(
        f"{c} {'REAL' if c == 'cost_usd' else 'INTEGER'} NOT NULL DEFAULT 0" for c in _SESSION_SUMS
    )
    _run(
        db,
        f"""
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,          -- ADW id or Claude Code session id
    {sums},
    first_run_at TEXT,                    -- when its first run was created (UTC)
    last_completed_at TEXT                -- when its last run ended (UTC)
);
-- runs, failed_runs: its agent runs; prompts and tokens_*: over their prompts (tokens,
-- input excluding cache); cost_usd: USD of priced prompts; unpriced_prompts: the others

{_SESSIONS_FILL}

CREATE INDEX idx_sessions_first_run ON sessions(first_run_at);
CREATE INDEX idx_sessions_cost ON sessions(cost_usd);

CREATE TRIGGER agents_sessions_insert AFTER INSERT ON agents BEGIN
    {_session_add("NEW")}
END;

CREATE TRIGGER agents_sessions_delete AFTER DELETE ON agents BEGIN
    {_session_subtract("OLD")}
END;

CREATE TRIGGER agents_sessions_update AFTER UPDATE OF
    session_id, status, created_at, completed_at, prompt_count, total_tokens_input,
    total_tokens_output, total_tokens_cache_read, total_tokens_cache_write, total_cost_usd,
    unpriced_prompt_count
ON agents BEGIN
    {_session_subtract("OLD")}
    {_session_add("NEW")}
END;

CREATE INDEX idx_prompts_reported ON prompts(created_at) WHERE cost_source = 'reported';

-- ON DELETE CASCADE removes a run's prompts and logs after the run is gone, when their
-- delete triggers can no longer find its workflow: take them out of the daily summaries
-- here, while the run is still there (the cascaded deletes then change nothing more).
{_delete_summaries_trigger(_geometric_bucket("agent_logs.duration_ms"))}""",
    )


@migration
def m006_failed_run_indexes(db: Database) -> None:
    """Failed runs newest first, per workflow too, straight from an index.

    A partial index holds only failed runs, in order; an index on status (five
    values over every run) would make the planner read all failed runs and sort them.
    """
    _run(
        db,
        """
CREATE INDEX idx_agents_failed_orchestrator ON agents(orchestrator_agent_id, completed_at)
    WHERE status = 'failed';
""",
    )


# --- migrations of the Claude Code importers (orchestrator.claude_code) go below this line ---


@migration
def m100_claude_code(db: Database) -> None:
    """What recording Claude Code runs needs: response ids, reported usage, import state.

    New tables only, beside prompts and agents, whose columns the row models fix.
    """
    now = SQL_NOW
    _run(
        db,
        f"""
CREATE TABLE prompt_responses (
    prompt_id TEXT PRIMARY KEY REFERENCES prompts(id) ON DELETE CASCADE,  -- the prompt row
    message_id TEXT NOT NULL,           -- the provider's response id (Anthropic message.id)
    request_id TEXT,                    -- the API request id (transcripts' requestId), if known
    tokens_output_final INTEGER         -- output tokens on the response's LAST line: Claude
        -- Code writes one line per content block and the first can carry a partial count;
        -- prompts.tokens_output keeps the first line's (what ccusage counts), this the last
);
-- One response is one prompt, whatever file it was read from: duplicates are impossible.
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
);

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
    created_at TEXT NOT NULL DEFAULT {now},
    PRIMARY KEY (agent_id, model)
);

CREATE TABLE claude_code_files (
    path TEXT PRIMARY KEY,              -- absolute path of a transcript (.jsonl)
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- the run it became
    kind TEXT NOT NULL,                 -- session | subagent
    size INTEGER NOT NULL DEFAULT 0,    -- file size in bytes when last imported
    byte_offset INTEGER NOT NULL DEFAULT 0,  -- just past the last complete line imported
    lines INTEGER NOT NULL DEFAULT 0,   -- lines read so far
    imported_at TEXT NOT NULL DEFAULT {now}  -- when it was last imported
);
CREATE INDEX idx_claude_code_files_agent ON claude_code_files(agent_id);
""",
    )


@migration
def m007_cache_write_1h(db: Database) -> None:
    """Cache writes with a 1-hour lifetime, which cost twice the base input rate (the
    5-minute ones cost 1.25x): counted apart so they are priced right and reported."""
    _run(
        db,
        f"""
ALTER TABLE prompts ADD COLUMN tokens_cache_write_1h INTEGER NOT NULL DEFAULT 0;
    -- the part of tokens_cache_write written with a 1-hour lifetime (Anthropic's
    -- usage.cache_creation.ephemeral_1h_input_tokens); the rest lives 5 minutes
ALTER TABLE usage_daily ADD COLUMN tokens_cache_write_1h INTEGER NOT NULL DEFAULT 0;
    -- the 1-hour part of tokens_cache_write

DROP TRIGGER prompts_usage_insert;
DROP TRIGGER prompts_usage_delete;
DROP TRIGGER prompts_usage_update;
DROP TRIGGER agents_delete_summaries;

CREATE TRIGGER prompts_usage_insert AFTER INSERT ON prompts BEGIN
    {_usage_daily_delta("NEW", "+", _USAGE_TOKENS_1H)}
END;

CREATE TRIGGER prompts_usage_delete AFTER DELETE ON prompts BEGIN
    {_usage_daily_delta("OLD", "-", _USAGE_TOKENS_1H)}
END;

CREATE TRIGGER prompts_usage_update AFTER UPDATE OF
    agent_id, created_at, model, status, tokens_input, tokens_output, tokens_cache_read,
    tokens_cache_write, tokens_cache_write_1h, cost_usd, cost_source, cache_savings_usd
ON prompts BEGIN
    {_usage_daily_delta("OLD", "-", _USAGE_TOKENS_1H)}
    {_usage_daily_delta("NEW", "+", _USAGE_TOKENS_1H)}
END;

{_delete_summaries_trigger(_geometric_bucket("agent_logs.duration_ms"), _USAGE_TOKENS_1H)}""",
    )


#: The budgets tables, the same in SQLite and PostgreSQL (pg_migrations maps REAL).
BUDGETS_DDL = """
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
"""


@migration
def m008_budgets(db: Database) -> None:
    """Budgets per workflow, model or session, and the windows already reported crossed."""
    _run(db, BUDGETS_DDL)


#: Copies into this store not finished yet, the same in SQLite and PostgreSQL.
COPY_PROGRESS_DDL = """
CREATE TABLE copy_progress (
    source TEXT PRIMARY KEY,            -- the store copied from, as it resolves (Backend.identity)
    location TEXT NOT NULL,             -- how it was named, for messages (no password)
    quiet INTEGER NOT NULL,             -- 1: its rows go in with the triggers paused
    started_at TEXT NOT NULL            -- when the first copy began (UTC)
);
"""


#: The tables of ``orchestrator collect`` (Claude Code's OpenTelemetry export), the same
#: in SQLite and PostgreSQL (pg_migrations maps REAL and INTEGER).
COLLECT_DDL = """
CREATE TABLE otel_requests (
    request_id TEXT PRIMARY KEY,        -- claude_code.api_request's request_id (Anthropic's)
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,  -- the prompt row
    otel_prompt_id TEXT,                -- its prompt.id: the user prompt it answers
    reported_cost_usd REAL,             -- cost_usd as Claude Code reported it
    ttft_ms REAL,                       -- time to first token
    query_source TEXT                   -- sdk | repl_main_thread | a background call's name
);
CREATE INDEX idx_otel_requests_prompt ON otel_requests(prompt_id);
-- A transcript's or stream's response meets the request collect stored by its request id.
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
"""


@migration
def m009_copy_progress(db: Database) -> None:
    """A first copy into an empty store, begun and not finished: a row from its start
    until the transaction that carries the source's summaries, so a copy killed half way
    is finished the same way by the next one (``orchestrator.commands.copy``)."""
    _run(db, COPY_PROGRESS_DDL)


#: m010's columns, for both engines (PostgreSQL's types through
#: :func:`orchestrator.store.postgres_migrations.postgres_ddl`).
CLAUDE_CODE_SESSION_STATE_DDL = """
-- cost-state.totalDuration: the session's time as Claude Code
-- counts it, over all its invocations (a resumed session's included)
ALTER TABLE claude_code_runs ADD COLUMN total_duration_ms REAL;
-- cost-state.totalToolDuration: time spent running tools
ALTER TABLE claude_code_runs ADD COLUMN tool_duration_ms REAL;
-- cost-state.totalLinesAdded: lines of code the session added
ALTER TABLE claude_code_runs ADD COLUMN lines_added INTEGER;
-- cost-state.totalLinesRemoved
ALTER TABLE claude_code_runs ADD COLUMN lines_removed INTEGER;
-- cost-state.hasUnknownModelCost: 1 when Claude Code met a
-- model it has no price for (its reported cost then leaves that model out)
ALTER TABLE claude_code_runs ADD COLUMN has_unknown_model_cost INTEGER;
-- the working directory (the transcript's environment snapshot)
ALTER TABLE claude_code_runs ADD COLUMN cwd TEXT;
-- the git branch checked out there (the lines' gitBranch)
ALTER TABLE claude_code_runs ADD COLUMN git_branch TEXT;
-- 1 when cwd is in a git repository
ALTER TABLE claude_code_runs ADD COLUMN is_git_repo INTEGER;
-- 1 when cwd is a git worktree (not the main checkout)
ALTER TABLE claude_code_runs ADD COLUMN is_worktree INTEGER;
-- the request's effort (api-request params.output_config.effort):
-- low | medium | high | ...; NULL when not sent
ALTER TABLE prompt_responses ADD COLUMN effort TEXT;
-- the request's extended thinking (params.thinking.type): enabled |
-- adaptive | disabled; NULL when not sent
ALTER TABLE prompt_responses ADD COLUMN thinking TEXT;
-- params.thinking.budget_tokens
ALTER TABLE prompt_responses ADD COLUMN thinking_budget_tokens INTEGER;
-- params.max_tokens: the output cap asked for
ALTER TABLE prompt_responses ADD COLUMN max_tokens INTEGER;
"""


@migration
def m010_claude_code_session_state(db: Database) -> None:
    """What today's Claude Code transcripts say beside the responses: the session's own cost
    (``cost-state``: durations, lines changed, models it could not price), the working
    directory and git worktree of the run, and each request's effort and thinking
    (``api-request``)."""
    _run(db, CLAUDE_CODE_SESSION_STATE_DDL)


@migration
def m011_otel_collect(db: Database) -> None:
    """What ``orchestrator collect`` stores beside prompts and logs: the request ids
    Claude Code's OpenTelemetry events carry (so a call is counted once whichever way it
    arrived), user prompts, a run's resource attributes and daily metric sums."""
    _run(db, COLLECT_DDL)


#: What ``orchestrator export otlp`` has sent, the same in SQLite and PostgreSQL.
OTLP_EXPORTS_DDL = """
CREATE TABLE otlp_exports (
    endpoint TEXT NOT NULL,             -- where the traces went: the OTLP URL as given
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,  -- a top-level run
    trace_id TEXT NOT NULL,             -- its trace id (32 hex digits, derived from agent_id)
    spans INTEGER NOT NULL,             -- spans sent: the run's, its subagents', prompts', tools'
    exported_at TEXT NOT NULL,          -- when the endpoint acknowledged them (UTC)
    PRIMARY KEY (endpoint, agent_id)
);
"""


@migration
def m012_otlp_exports(db: Database) -> None:
    """The runs ``orchestrator export otlp`` has sent to each endpoint, so that a restart
    sends nothing twice (a set of runs rather than a time: runs finish out of order, and
    an import stores runs finished long ago)."""
    _run(db, OTLP_EXPORTS_DDL)


@migration
def m013_tail_watermark(db: Database) -> None:
    """Nothing on SQLite: ``orchestrator tail`` reads the rows added since its last look
    by rowid (one writer at a time: a later commit's rows have larger rowids). A
    PostgreSQL store gets the column its tail reads them by (``tx_id``: writers commit
    in any order there)."""


#: m014, for both engines: where each source's copy rounds have reached, and what lets a
#: round find the rows changed since without reading whole tables.
COPY_WATERMARKS_DDL = """
CREATE TABLE copy_watermarks (
    source TEXT NOT NULL,               -- the store copied from, as it resolves (Backend.identity)
    table_name TEXT NOT NULL,           -- a table the copy moves
    -- what the last verified round read: PostgreSQL, the snapshot of its read
    -- (pg_snapshot text); SQLite, the rowid and key of the table's last row
    mark TEXT NOT NULL,
    copied_at REAL NOT NULL,            -- UNIX time that round's read began
    PRIMARY KEY (source, table_name)
);
-- the rows a round catches up with the source's state, found without a scan
CREATE INDEX idx_agents_unfinished ON agents(id) WHERE status IN ('pending', 'running');
CREATE INDEX idx_prompts_pending ON prompts(id) WHERE status = 'pending';
-- when the row was last changed (set on every update that does not set it)
ALTER TABLE claude_code_runs ADD COLUMN updated_at TEXT;
CREATE INDEX idx_claude_code_runs_updated ON claude_code_runs(updated_at);
CREATE INDEX idx_claude_code_files_imported ON claude_code_files(imported_at);
CREATE INDEX idx_otel_metrics_daily_updated ON otel_metrics_daily(updated_at);
"""


@migration
def m014_copy_watermarks(db: Database) -> None:
    """``copy_watermarks`` (:data:`COPY_WATERMARKS_DDL`): a copy's next round reads only
    the rows added since (by rowid here: one writer at a time, a later commit's rows have
    larger rowids) and those whose ``updated_at`` says they changed; ``claude_code_runs``
    gets one, kept by a trigger (its cost-state is rewritten as a session goes on)."""
    _run(db, COPY_WATERMARKS_DDL)
    _run(
        db,
        """
CREATE TRIGGER claude_code_runs_updated_at AFTER UPDATE ON claude_code_runs
WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE claude_code_runs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE agent_id = NEW.agent_id;
END;
""",
    )


#: The log types that log a tool call or its result (importers' and hooks'), each
#: carrying the call's ``tool_use_id`` in its metadata: the partial index's predicate,
#: which a query must repeat word for word for SQLite to use the index.
TOOL_LOG_TYPES = "'tool_use', 'tool_result', 'PreToolUse', 'PostToolUse', 'PostToolUseFailure'"
#: The tool call's id in a tool log, as SQL (SQLite; PostgreSQL's in postgres_migrations).
TOOL_USE_ID_SQL = "json_extract(metadata, '$.tool_use_id')"
TOOL_USE_ID_DDL = """
-- the tool logs by their call's tool_use_id: a writer meeting a call another logged
-- (an import, a stream, hooks, collect) finds it however long ago it was logged
CREATE INDEX idx_agent_logs_tool_use ON agent_logs({tool_use_id})
    WHERE log_type IN ({types});
-- the API requests answering a user prompt (its text, when it arrives after them)
CREATE INDEX idx_otel_requests_otel_prompt ON otel_requests(otel_prompt_id);
"""


@migration
def m015_tool_use_index(db: Database) -> None:
    """Tool logs indexed by their ``tool_use_id`` (``orchestrator collect`` looks for a
    result another writer logged by it) and ``otel_requests`` by ``otel_prompt_id``
    (a user prompt's text put into the prompts already stored)."""
    _run(db, TOOL_USE_ID_DDL.format(tool_use_id=TOOL_USE_ID_SQL, types=TOOL_LOG_TYPES))


if __name__ == "__main__":  # regenerate FRESH_SCRIPT after adding a migration
    FRESH_SCRIPT.write_text(fresh_script(), encoding="utf-8")
