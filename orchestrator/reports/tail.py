"""Following the database as it is written: runs starting and ending, prompts and logs.

:class:`EventSource` watches one read-only connection. On SQLite, ``PRAGMA data_version``
says whether another connection committed anything since the last look (no table is
read), and a rowid watermark per table gives exactly the rows added since, through the
tables' rowid b-trees. Runs still going and prompts still pending are re-read by id after
each change, so a run's end and a prompt's cost show up too. An idle poll is that one
pragma, so following costs nothing measurable, and each look is one short read
transaction, which in WAL mode never makes the writer wait.

On PostgreSQL writers commit in any order, so no growing number marks what a follower
has seen; a snapshot does. Each followed row holds the transaction that inserted it
(``tx_id``, indexed); the rows new since the last look are those of the transactions
that look's snapshot saw running or that began after it, committed by now: index range
scans, whatever the tables' size. An idle poll compares the server's current snapshot
with the last one (one short query, no table read).

:func:`follow` yields :class:`Event` objects as they land, like ``tail -f``; the
``orchestrator tail`` command prints them and the Datasette live page (``/-/live``)
streams them to the browser.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core.ids import format_timestamp
from ..store.postgres import CURRENT_SNAPSHOT as _SNAPSHOT
from ..store.postgres import Snapshot as _Snapshot
from ..store.targets import is_url

if TYPE_CHECKING:
    from ..store.sqlite import OpenedFiles

#: Seconds between two looks at the database: an event shows within this of its commit.
POLL_INTERVAL_S = 0.25

#: Log levels, least severe first; every event has one.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Event kinds: a run started or ended, a prompt was answered (or failed), an agent log,
#: a system log.
KINDS = ("start", "end", "prompt", "log", "system")

#: Most rows read from one table in one look; the rest come at the next look.
BATCH = 500

#: Runs and pending prompts watched for their end at most (the oldest are dropped).
MAX_WATCHED = 10_000

#: Runs and pending prompts older than this are taken for abandoned and not watched.
RUNNING_WINDOW = timedelta(days=1)

TEXT_CHARS = 300  # longest event text; messages are clipped in SQL, never read whole

_TERMINAL = ("completed", "failed", "cancelled")
_TERMINAL_SQL = "('completed', 'failed', 'cancelled')"
_LOG_TYPE_LEVELS = {
    "debug": "DEBUG",
    "warning": "WARNING",
    "error": "ERROR",
    # Claude Code's hook events (orchestrator hook): a failed tool call, a turn ended by
    # an API error.
    "PostToolUseFailure": "WARNING",
    "StopFailure": "ERROR",
}


@dataclass(frozen=True)
class Event:
    """One thing that happened, as one line: when, which run, what, at what cost."""

    time: str  # UTC, YYYY-MM-DDTHH:MM:SS.mmmZ, from the row
    kind: str  # one of KINDS
    level: str  # one of LEVELS: failures are ERROR, cancelled runs WARNING
    text: str  # what happened, one line (model and tokens, the log message...)
    key: str  # unique to this event, e.g. "prompt:<prompt id>", "end:<run id>"
    workflow: str | None = None  # orchestrator agent name; None for system logs
    run: str | None = None  # the run's name
    run_id: str | None = None
    session: str | None = None
    cost_usd: float | None = None  # a prompt's cost; a run's total at its end

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunProgress:
    """A run in progress: what it has done and spent so far."""

    run_id: str
    run: str | None
    workflow: str
    session: str | None
    status: str  # pending | running
    started_at: str  # started_at, or created_at while pending (UTC)
    prompts: int
    cost_usd: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EventFilter:
    """Which events to keep; every field left None keeps all.

    ``run`` matches a run's id or its name. System logs belong to no run, so any of
    ``workflow``, ``session`` or ``run`` leaves them out. ``level`` keeps events at that
    level or above.
    """

    workflow: str | None = None
    session: str | None = None
    run: str | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        if self.level is not None:
            if self.level.upper() not in LEVELS:
                raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
            object.__setattr__(self, "level", self.level.upper())

    @property
    def runs_only(self) -> bool:
        return any(v is not None for v in (self.workflow, self.session, self.run))

    def where(self) -> tuple[str, list[str]]:
        """SQL conditions on ``a`` (agents) and ``o`` (orchestrator_agents), and the values
        of their ``?`` placeholders in order."""
        clauses, params = [], []
        if self.workflow is not None:
            clauses.append("o.name = ?")
            params.append(self.workflow)
        if self.session is not None:
            clauses.append("a.session_id = ?")
            params.append(self.session)
        if self.run is not None:
            clauses.append("(a.id = ? OR a.name = ?)")
            params += [self.run, self.run]
        return "".join(f" AND {c}" for c in clauses), params

    def keeps(self, event: Event) -> bool:
        return self.level is None or LEVELS.index(event.level) >= LEVELS.index(self.level)


def _one_line(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _seconds(ms: float | None) -> str:
    return "" if ms is None else f" after {ms / 1000:.1f} s"


# The columns every run-related query reads, in this order (see _run_fields).
_RUN_COLUMNS = (
    "a.id, a.name, o.name, a.session_id, a.status, a.created_at, a.started_at, "
    "a.completed_at, a.duration_ms, a.prompt_count, a.total_cost_usd, substr(a.error, 1, 400)"
)
_FROM_RUNS = "agents a JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id"


@dataclass(frozen=True)
class _Run:
    id: str
    name: str | None
    workflow: str
    session: str | None
    status: str
    created_at: str
    started_at: str | None
    completed_at: str | None
    duration_ms: float | None
    prompts: int
    cost_usd: float
    error: str | None

    def ids(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "run": self.name,
            "run_id": self.id,
            "session": self.session,
        }

    def start(self) -> Event:
        return Event(self.created_at, "start", "INFO", "started", f"start:{self.id}", **self.ids())

    def end(self) -> Event:
        level = {"failed": "ERROR", "cancelled": "WARNING"}.get(self.status, "INFO")
        plural = "" if self.prompts == 1 else "s"
        text = f"{self.status}{_seconds(self.duration_ms)}, {self.prompts} prompt{plural}"
        if self.error:
            text += f": {self.error}"
        time_ = self.completed_at or self.started_at or self.created_at
        return Event(
            time_,
            "end",
            level,
            _one_line(text),
            f"end:{self.id}",
            cost_usd=self.cost_usd,
            **self.ids(),
        )

    def progress(self) -> RunProgress:
        return RunProgress(
            self.id,
            self.name,
            self.workflow,
            self.session,
            self.status,
            self.started_at or self.created_at,
            self.prompts,
            self.cost_usd,
        )


class _SQLiteFeed:
    """What :class:`EventSource` reads an SQLite file through: a read-only connection,
    ``PRAGMA data_version`` for "anything committed?", a rowid watermark per table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.opened: OpenedFiles | None = None  # the file followed, when opened by path
        self._version: int | None = None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def changed(self) -> bool:
        """Whether anything was committed since the last look."""
        opened = self.opened
        if opened is not None and opened.moved():
            # The old file's log must not stay beside the new one (OpenedFiles.release).
            with opened.release():
                self.conn.close()
            raise opened.replaced()
        version = self.rows("PRAGMA data_version")[0][0]
        if version == self._version:
            return False
        self._version = version
        return True

    def again(self) -> None:
        """More rows wait than one look reads: the next poll looks whatever changed."""
        self._version = None

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def end(self) -> None:
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def mark(self, table: str) -> int:
        """The watermark of ``table`` now: every row up to it has been seen."""
        return int(self.rows(f"SELECT coalesce(max(rowid), 0) FROM {table}")[0][0])

    def range(
        self, alias: str, after: int | None, upto: int, limit: int
    ) -> tuple[str, str, list[Any], str]:
        """(the position column, the condition, its values, the order) of the next
        ``limit`` rows after ``after``, or the ``limit`` newest up to ``upto`` when
        ``after`` is None."""
        if after is None:  # newest first by the time index every table has
            order = f"{alias}.created_at DESC, {alias}.rowid DESC LIMIT {limit}"
            return f"{alias}.rowid", f"{alias}.rowid <= ?", [upto], order
        return f"{alias}.rowid", f"{alias}.rowid > ?", [after], f"{alias}.rowid LIMIT {limit}"

    def moved_past(self, table: str, after: int, rows: list[tuple[Any, ...]], limit: int) -> int:
        """The watermark after reading ``rows`` past ``after``: the last row's when a
        whole batch was read (more may wait), else the table's end in this snapshot."""
        if len(rows) >= limit:
            self.again()
            return int(rows[-1][0])
        return max(after, self.mark(table))


@dataclass(frozen=True)
class _Mark:
    """Where a PostgreSQL follower is in one table: every row of a transaction ``seen``
    shows as ended has been read; a round of reading the rows ``round`` shows as ended
    has reached ``cursor`` (tx_id, id) when a batch did not hold them all."""

    seen: _Snapshot
    round: _Snapshot | None = None
    cursor: tuple[str, str] | None = None


class _PostgresFeed:
    """What :class:`EventSource` reads a PostgreSQL store through: one connection (asyncpg,
    on an event loop in a thread of its own, so that it is called like sqlite3 from any
    thread, a running event loop's included), read-only REPEATABLE READ transactions, a
    snapshot per table as its watermark (:class:`_Mark`)."""

    def __init__(self, url: str) -> None:
        import asyncio
        import threading

        from ..store.postgres import connect

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="orchestrator-tail", daemon=True
        )
        self._thread.start()
        try:
            self.conn = self._run(connect(url))  # migrated first
        except BaseException:
            self._stop()
            raise
        self._last: str | None = None  # the snapshot of the last look
        self._current: _Snapshot | None = None  # the open read's

    def _run(self, call: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from ..store.postgres import to_dollar

        return [tuple(row) for row in self._run(self.conn.fetch(to_dollar(sql), *params))]

    def changed(self) -> bool:
        # Any transaction that began writing or ended since changes the snapshot.
        return bool(self._run(self.conn.fetchval(_SNAPSHOT)) != self._last)

    def again(self) -> None:
        self._last = None

    def begin(self) -> None:
        self._run(self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        self._current = _Snapshot(self._run(self.conn.fetchval(_SNAPSHOT)))
        self._last = self._current.text

    def end(self) -> None:
        self._run(self.conn.execute("COMMIT"))

    def close(self) -> None:
        try:
            self._run(self.conn.close())
        finally:
            self._stop()

    def mark(self, table: str) -> _Mark:
        assert self._current is not None
        return _Mark(self._current)

    def range(
        self, alias: str, after: _Mark | None, upto: _Mark, limit: int
    ) -> tuple[str, str, list[Any], str]:
        position = f"{alias}.tx_id::text || ' ' || {alias}.id"
        if after is None:  # the backlog, read with the marks: every row seen is up to them
            return position, "TRUE", [], f"{alias}.created_at DESC, {alias}.id DESC LIMIT {limit}"
        assert self._current is not None
        round_ = after.round or self._current
        # The transactions `seen` showed running or began after it (index range scans),
        # that had ended when `round_` was taken (committed: their rows are visible).
        condition, params = after.seen.written_after(alias)
        condition += (
            f" AND {alias}.tx_id < ?::text::xid8 "
            f"AND pg_visible_in_snapshot({alias}.tx_id, ?::text::pg_snapshot)"
        )
        params += [round_.xmax, round_.text]
        if after.cursor is not None:
            condition += f" AND ({alias}.tx_id, {alias}.id) > (?::text::xid8, ?)"
            params += list(after.cursor)
        return position, condition, params, f"{alias}.tx_id, {alias}.id LIMIT {limit}"

    def moved_past(
        self, table: str, after: _Mark, rows: list[tuple[Any, ...]], limit: int
    ) -> _Mark:
        assert self._current is not None
        round_ = after.round or self._current
        if len(rows) >= limit:
            self.again()
            tx_id, _, row_id = str(rows[-1][0]).partition(" ")
            return _Mark(after.seen, round_, (tx_id, row_id))
        return _Mark(round_)


class EventSource:
    """New events of one database, read on demand: call :meth:`poll` as often as you like.

    ``backlog`` events from before it opened are in :attr:`backlog`; :attr:`running`
    lists the runs in progress (started in the last day), kept current by :meth:`poll`.
    Not thread-safe: use it from one thread at a time.
    """

    def __init__(
        self,
        conn: sqlite3.Connection | _SQLiteFeed | _PostgresFeed,
        filters: EventFilter | None = None,
        *,
        backlog: int = 0,
    ) -> None:
        self._feed = _SQLiteFeed(conn) if isinstance(conn, sqlite3.Connection) else conn
        self.filters = filters or EventFilter()
        self._where, self._params = self.filters.where()
        self._marks: dict[str, Any] = {}
        self._runs: dict[str, _Run] = {}  # runs in progress, by id
        self._pending: dict[str, None] = {}  # pending prompt ids, oldest first
        self.backlog: list[Event] = []
        self._read(lambda: self._start(backlog))

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str],
        filters: EventFilter | None = None,
        *,
        backlog: int = 0,
    ) -> EventSource:
        """Watch the database file at ``target`` through a read-only connection of its
        own, or the PostgreSQL store at a ``postgresql://`` URL (its schema brought up to
        date first, as every opener does).

        Raises FileNotFoundError when there is no file, sqlite3.Error when it is not
        a database with the orchestrator schema, ConnectionError when the server cannot
        be reached. For a file, :meth:`poll` raises
        :class:`~orchestrator.store.sqlite.DatabaseReplaced` once the file at ``target`` is
        deleted or replaced, having closed the connection to the old one.
        """
        if is_url(target):
            feed = _PostgresFeed(str(target))
            try:
                return cls(feed, filters, backlog=backlog)
            except BaseException:
                feed.close()
                raise
        from ..store.sqlite import OpenedFiles

        path = Path(target)
        if not path.exists():
            raise FileNotFoundError(f"no database at {path}")
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro",
            uri=True,
            isolation_level=None,  # autocommit: no read transaction held between looks
            check_same_thread=False,  # the live page polls from worker threads, one at a time
        )
        try:
            source = cls(conn, filters, backlog=backlog)
        except BaseException:
            conn.close()
            raise
        assert isinstance(source._feed, _SQLiteFeed)
        source._feed.opened = OpenedFiles(path)  # after a first read: the -wal and -shm exist
        return source

    def close(self) -> None:
        self._feed.close()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> list[RunProgress]:
        """The runs in progress that pass the filters, oldest first."""
        return [run.progress() for run in sorted(self._runs.values(), key=lambda r: r.created_at)]

    def poll(self) -> list[Event]:
        """The events committed since the last call, oldest first ([] at once when none)."""
        if not self._feed.changed():
            return []
        return self._read(self._changes)

    # -- reading ------------------------------------------------------------------------

    def _read(self, reader: Any) -> list[Event]:
        """Run ``reader`` in one read transaction: one consistent snapshot."""
        self._feed.begin()
        try:
            events: list[Event] = reader()
        finally:
            self._feed.end()
        kept = [event for event in events if self.filters.keeps(event)]
        kept.sort(key=lambda event: event.time)
        return kept

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._feed.rows(sql, params)

    def _start(self, backlog: int) -> list[Event]:
        for table in ("agents", "prompts", "agent_logs", "system_logs"):
            self._marks[table] = self._feed.mark(table)
        since = format_timestamp(datetime.now(timezone.utc) - RUNNING_WINDOW)
        for row in self._rows(
            f"SELECT {_RUN_COLUMNS} FROM {_FROM_RUNS} WHERE a.created_at >= ? "
            f"AND a.status NOT IN {_TERMINAL_SQL}{self._where} ORDER BY a.created_at",
            [since, *self._params],
        ):
            self._watch_run(_Run(*row))
        for (prompt_id,) in self._rows(
            f"SELECT p.id FROM {self._FROM_PROMPTS} WHERE p.created_at >= ? "
            f"AND p.status = 'pending'{self._where} ORDER BY p.created_at",
            [since, *self._params],
        ):
            self._watch_prompt(prompt_id)
        if backlog > 0:
            self.backlog = self._last(backlog)
        return []

    def _last(self, count: int) -> list[Event]:
        """The last ``count`` events before the watermarks (rows as they are now), from the
        newest rows of each table (ten times as many with a level filter: most are INFO)."""
        events: list[Event] = []
        rows = count if self.filters.level is None else max(count, min(count * 10, BATCH))
        for run in self._new_runs(None, rows):
            events.append(run.start())
            if run.status in _TERMINAL:
                events.append(run.end())
        events += self._new_prompts(None, rows, pending=False)
        events += self._new_logs(None, rows)
        events += self._new_system_logs(None, rows)
        kept = sorted((e for e in events if self.filters.keeps(e)), key=lambda e: e.time)
        return kept[-count:]

    def _changes(self) -> list[Event]:
        events: list[Event] = []
        for run in self._new_runs(self._marks["agents"], BATCH):
            events.append(run.start())
            if run.status in _TERMINAL:
                events.append(run.end())
            else:
                self._watch_run(run)
        events += self._ended_runs()
        events += self._answered_prompts()
        events += self._new_prompts(self._marks["prompts"], BATCH, pending=True)
        events += self._new_logs(self._marks["agent_logs"], BATCH)
        events += self._new_system_logs(self._marks["system_logs"], BATCH)
        return events

    def _select(
        self, table: str, alias: str, after: Any, limit: int, sql: str, *, filtered: bool = True
    ) -> list[Any]:
        """Rows of ``sql`` with ``{position}`` (the row's place, first), ``{condition}``
        and ``{order}`` filled in for the next ``limit`` rows of ``table`` after ``after``,
        or its ``limit`` newest up to the watermark when ``after`` is None; the filters'
        conditions follow ``{condition}`` when ``filtered``. Moves the watermark past them."""
        position, condition, params, order = self._feed.range(
            alias, after, self._marks[table], limit
        )
        query = sql.format(position=position, condition=condition, order=order)
        rows = self._rows(query, [*params, *self._params] if filtered else params)
        self._after_read(table, after, rows, limit)
        return rows

    def _after_read(self, table: str, after: Any, rows: list[tuple[Any, ...]], limit: int) -> None:
        """Move ``table``'s watermark past the rows read, to the table's end when they were
        all there was (the same snapshot: rows committed since are for the next look).
        Backlog rows (``after`` None, read newest first) are put oldest first."""
        if after is None:
            rows.reverse()
            return
        self._marks[table] = self._feed.moved_past(table, after, rows, limit)

    def _new_runs(self, after: Any, limit: int) -> list[_Run]:
        rows = self._select(
            "agents",
            "a",
            after,
            limit,
            f"SELECT {{position}}, {_RUN_COLUMNS} FROM {_FROM_RUNS} "
            f"WHERE {{condition}}{self._where} ORDER BY {{order}}",
        )
        return [_Run(*row[1:]) for row in rows]

    def _watch_run(self, run: _Run) -> None:
        self._runs[run.id] = run
        while len(self._runs) > MAX_WATCHED:
            del self._runs[next(iter(self._runs))]

    def _ended_runs(self) -> list[Event]:
        events = []
        ids = list(self._runs)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ", ".join("?" * len(chunk))
            found = {
                row[0]: _Run(*row)
                for row in self._feed.rows(
                    f"SELECT {_RUN_COLUMNS} FROM {_FROM_RUNS} WHERE a.id IN ({marks})", chunk
                )
            }
            for run_id in chunk:
                run = found.get(run_id)
                if run is None:  # deleted
                    del self._runs[run_id]
                elif run.status in _TERMINAL:
                    del self._runs[run_id]
                    events.append(run.end())
                else:
                    self._runs[run_id] = run
        return events

    _PROMPT_COLUMNS = (
        "p.id, p.status, p.created_at, p.completed_at, p.model, p.tokens_input, "
        "p.tokens_output, p.tokens_cache_read, p.tokens_cache_write, p.cost_usd, "
        "substr(p.error, 1, 400), a.id, a.name, a.session_id, o.name"
    )
    _FROM_PROMPTS = (
        "prompts p JOIN agents a ON a.id = p.agent_id "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id"
    )

    def _new_prompts(self, after: Any, limit: int, *, pending: bool) -> list[Event]:
        rows = self._select(
            "prompts",
            "p",
            after,
            limit,
            f"SELECT {{position}}, {self._PROMPT_COLUMNS} FROM {self._FROM_PROMPTS} "
            f"WHERE {{condition}}{self._where} ORDER BY {{order}}",
        )
        events = []
        for row in rows:
            if row[2] == "pending":
                if pending:  # shown once answered, with its cost
                    self._watch_prompt(row[1])
                continue
            events.append(self._prompt_event(row[1:]))
        return events

    def _watch_prompt(self, prompt_id: str) -> None:
        self._pending[prompt_id] = None
        while len(self._pending) > MAX_WATCHED:
            del self._pending[next(iter(self._pending))]

    def _answered_prompts(self) -> list[Event]:
        events = []
        ids = list(self._pending)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ", ".join("?" * len(chunk))
            found = {
                row[0]: row
                for row in self._feed.rows(
                    f"SELECT {self._PROMPT_COLUMNS} FROM {self._FROM_PROMPTS} "
                    f"WHERE p.id IN ({marks})",
                    chunk,
                )
            }
            for prompt_id in chunk:
                row = found.get(prompt_id)
                if row is None or row[1] != "pending":
                    del self._pending[prompt_id]
                if row is not None and row[1] != "pending":
                    events.append(self._prompt_event(row))
        return events

    @staticmethod
    def _prompt_event(row: tuple[Any, ...]) -> Event:
        (_, status, created, completed, model, tin, tout, cread, cwrite, cost, error) = row[:11]
        text = f"{model or 'unknown model'} in {tin} out {tout} cache {cread}r {cwrite}w"
        if status == "failed":
            text = f"failed: {error} ({text})"
        elif cost is None:
            text += " (unpriced)"
        return Event(
            completed or created,
            "prompt",
            "ERROR" if status == "failed" else "INFO",
            _one_line(text),
            f"prompt:{row[0]}",
            workflow=row[14],
            run=row[12],
            run_id=row[11],
            session=row[13],
            cost_usd=cost,
        )

    def _new_logs(self, after: Any, limit: int) -> list[Event]:
        rows = self._select(
            "agent_logs",
            "l",
            after,
            limit,
            "SELECT {position}, l.id, l.created_at, l.log_type, l.step, "
            "substr(l.message, 1, 400), a.id, a.name, a.session_id, o.name FROM agent_logs l "
            "JOIN agents a ON a.id = l.agent_id "
            "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id "
            f"WHERE {{condition}}{self._where} ORDER BY {{order}}",
        )
        return [
            Event(
                created,
                "log",
                _LOG_TYPE_LEVELS.get(log_type, "INFO"),
                _one_line(f"{log_type}{f' [{step}]' if step else ''}: {message}"),
                f"log:{log_id}",
                workflow=workflow,
                run=name,
                run_id=run_id,
                session=session,
            )
            for _, log_id, created, log_type, step, message, run_id, name, session, workflow in rows
        ]

    def _new_system_logs(self, after: Any, limit: int) -> list[Event]:
        if self.filters.runs_only:
            self._after_read("system_logs", after, [], limit)
            return []
        rows = self._select(
            "system_logs",
            "s",
            after,
            limit,
            "SELECT {position}, s.id, s.created_at, s.log_level, s.source, "
            "substr(s.message, 1, 400) FROM system_logs s WHERE {condition} ORDER BY {order}",
            filtered=False,
        )
        return [
            Event(
                created,
                "system",
                level if level in LEVELS else "INFO",
                _one_line(f"{source}: {message}" if source else message),
                f"system:{log_id}",
            )
            for _, log_id, created, level, source, message in rows
        ]


def follow(
    path: str | os.PathLike[str],
    filters: EventFilter | None = None,
    *,
    backlog: int = 10,
    interval: float = POLL_INTERVAL_S,
    duration: float | None = None,
    notice: Callable[[str], None] | None = None,
) -> Iterator[Event]:
    """The last ``backlog`` events of the database at ``path`` (a file, or a
    ``postgresql://`` URL), then each new one as it is committed (within ``interval``
    seconds), for ``duration`` seconds or forever.

    Like ``tail -F``, it follows a file's path: when the file there is replaced (a backup
    restored, ``mv`` of another file) it goes on with the new file's events from its
    end, and when it is deleted, with the next file created there; ``notice`` is
    called with one line saying so. The database is brought up to date first, like
    every opener. Raises FileNotFoundError when there is no file at ``path``,
    ConnectionError when the server at a URL cannot be reached.
    """
    deadline = None if duration is None else time.monotonic() + duration

    def waiting() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        return True

    if is_url(path):
        with EventSource.open(path, filters, backlog=backlog) as source:
            yield from source.backlog
            while True:
                yield from source.poll()
                if not waiting():
                    return

    from ..store import sqlite as backend

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no database at {path}: run `orchestrator init` or `orchestrator demo` first"
        )
    while True:
        backend.connect(path).close()
        with EventSource.open(path, filters, backlog=backlog) as source:
            yield from source.backlog
            try:
                while True:
                    yield from source.poll()
                    if not waiting():
                        return
            except backend.DatabaseReplaced:
                deleted = not path.exists()
        if notice is not None:
            notice(
                f"{path} was deleted; following the next file created there"
                if deleted
                else f"{path} was replaced by another file; following the new one"
            )
        while not path.exists():
            if not waiting():
                return
        backlog = 0  # the new file's history is not news
