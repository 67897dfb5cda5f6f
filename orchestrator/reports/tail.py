"""Following the database as it is written: runs starting and ending, prompts and logs.

:class:`EventSource` watches one read-only connection: the store's
:class:`~orchestrator.store.backend.Feed` (:meth:`~orchestrator.store.backend.Backend.feed`),
which says whether anything was committed since the last look without reading a table, and
marks where the reader is in each table. On SQLite that is ``PRAGMA data_version`` and a
rowid per table, which gives exactly the rows added since through the tables' rowid
b-trees; on PostgreSQL, where writers commit in any order, a snapshot and the transaction
id each followed row holds (``tx_id``, indexed): index range scans, whatever the tables'
size. Runs still going and prompts still pending are re-read by id after each change, so a
run's end and a prompt's cost show up too. An idle poll is one short query, so following
costs nothing measurable, and each look is one short read transaction, which never makes
the writer wait.

:func:`follow` yields :class:`Event` objects as they land, like ``tail -f``; the
``orchestrator tail`` command prints them and the Datasette live page (``/-/live``)
streams them to the browser.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core.ids import format_timestamp

if TYPE_CHECKING:
    from ..store.backend import Feed

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


class EventSource:
    """New events of one database, read on demand: call :meth:`poll` as often as you like.

    ``backlog`` events from before it opened are in :attr:`backlog`; :attr:`running`
    lists the runs in progress (started in the last day), kept current by :meth:`poll`.
    Not thread-safe: use it from one thread at a time.
    """

    def __init__(self, feed: Feed, filters: EventFilter | None = None, *, backlog: int = 0) -> None:
        """Follow ``feed`` (:meth:`orchestrator.store.backend.Backend.feed`), closed with this."""
        self._feed = feed
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
        from ..store.targets import backend_for

        return cls._over(backend_for(target).feed(), filters, backlog)

    @classmethod
    def _over(cls, feed: Feed, filters: EventFilter | None, backlog: int) -> EventSource:
        try:
            return cls(feed, filters, backlog=backlog)
        except BaseException:
            feed.close()
            raise

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

    from ..store.targets import backend_for

    store = backend_for(path)
    absent = store.missing()
    if absent:
        raise FileNotFoundError(f"{absent}: run `orchestrator init` or `orchestrator demo` first")
    while True:
        with EventSource._over(store.feed(upgrade=True), filters, backlog) as source:
            yield from source.backlog
            try:
                while True:
                    yield from source.poll()
                    if not waiting():
                        return
            except store.replaced_error:  # a file deleted or replaced (none on a server)
                deleted = store.missing() is not None
        if notice is not None:
            notice(
                f"{store.location} was deleted; following the next file created there"
                if deleted
                else f"{store.location} was replaced by another file; following the new one"
            )
        while store.missing():
            if not waiting():
                return
        backlog = 0  # the new file's history is not news
