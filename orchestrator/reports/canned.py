"""The canned reports, read from ``metadata.yml``: the one home of their SQL.

Datasette serves them from the same file; the ``orchestrator report`` command
(through :func:`run_report_args`) and the notebooks run them through
:func:`run_report`. A parameter left out is passed as an empty string, exactly
as Datasette does, so the defaults written into each query's SQL apply everywhere.

Every report takes the same date window: ``start`` and ``end``, days
(``YYYY-MM-DD``) that are both included: UTC days, or days in time zone ``tz`` for the
reports that take one. An empty or missing one is no bound, so leaving both out means
all time. SQLite connections get :mod:`orchestrator.reports.sql_functions`' functions first.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from . import sql_functions
from .cache import cache_dir, write_cache_file

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # orchestrator/
DATABASE_NAME = "orchestrator"  # the key under ``databases:`` in metadata.yml
#: The date window every report takes (UTC days, both included; empty: no bound).
DATE_PARAMETERS = ("start", "end")
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOW = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def project_file(name: str) -> Path:
    """A file shipped with the project: beside the package in a checkout, inside it in a wheel."""
    for candidate in (PACKAGE_DIR.parent / name, PACKAGE_DIR / "_data" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found beside or inside the orchestrator package")


def metadata_path() -> Path:
    """``$ORCHESTRATOR_METADATA`` or the project's ``metadata.yml``."""
    override = os.environ.get("ORCHESTRATOR_METADATA")
    return Path(override) if override else project_file("metadata.yml")


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    key = f"{path.resolve()}:{mtime_ns}:{size}"  # any change to the file: a new key
    cached = cache_dir() / f"metadata-{zlib.crc32(key.encode()):08x}.json"
    try:
        with cached.open(encoding="utf-8") as handle:
            kept = json.load(handle)  # parsing JSON costs a command ~15 ms less than YAML
    except (OSError, ValueError):
        kept = None
    # The file names the key it was made for: a stale copy (or one whose key shares the
    # 32-bit name) is never read.
    if isinstance(kept, dict) and kept.get("key") == key and isinstance(kept.get("data"), dict):
        return kept["data"]
    data = _parse_yaml(path)
    write_cache_file(cached, {"key": key, "data": data})
    return data


def _parse_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster, same result
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return data


def load_metadata(path: Path | None = None) -> dict[str, Any]:
    """The parsed metadata.yml (a fresh copy: callers may change it)."""
    path = path or metadata_path()
    stat = path.stat()
    return copy.deepcopy(_load(path, stat.st_mtime_ns, stat.st_size))


def metadata_for(database_name: str, path: Path | None = None) -> dict[str, Any]:
    """metadata.yml with its database key and the dashboards' ``db`` renamed to
    ``database_name`` (Datasette names a database after its file), and a dashboard chart
    that names a report given the report's SQL (what datasette-dashboards runs)."""
    metadata = fill_report_queries(load_metadata(path))
    if database_name == DATABASE_NAME:
        return metadata
    databases = metadata.get("databases", {})
    if DATABASE_NAME in databases:
        databases[database_name] = databases.pop(DATABASE_NAME)
    dashboards = metadata.get("plugins", {}).get("datasette-dashboards", {})
    for dashboard in dashboards.values():
        for item in [*dashboard.get("charts", {}).values(), *dashboard.get("filters", {}).values()]:
            if item.get("db") == DATABASE_NAME:
                item["db"] = database_name
    return metadata


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    sql: str

    @property
    def parameters(self) -> list[str]:
        """Named parameters of the SQL, in order of first use."""
        return list(dict.fromkeys(_PARAMETER.findall(_strip_strings(self.sql))))


def _strip_strings(sql: str) -> str:
    """``sql`` without its string literals and ``--`` comments (an apostrophe in a comment
    must not hide the parameters after it)."""
    return re.sub(r"'(?:[^']|'')*'|--[^\n]*", lambda m: "''" if m[0][0] == "'" else "", sql)


def reports(path: Path | None = None) -> dict[str, Report]:
    """Every canned report, by name, in the order metadata.yml lists them."""
    queries = load_metadata(path).get("databases", {}).get(DATABASE_NAME, {}).get("queries", {})
    return {
        name: Report(
            name,
            query.get("title", name),
            " ".join(query.get("description", "").split()),
            query["sql"],
        )
        for name, query in queries.items()
    }


def get_report(name: str) -> Report:
    available = reports()
    if name not in available:
        raise KeyError(f"no report {name!r}; reports: {', '.join(available)}")
    return available[name]


@dataclass
class ReportResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_report(
    name: str,
    db_path: str | os.PathLike[str] | None = None,
    params: dict[str, Any] | None = None,
    *,
    conn: sqlite3.Connection | None = None,
) -> ReportResult:
    """Run the canned report ``name`` read-only; missing parameters (and None) are ``''``.

    ``db_path`` is an SQLite file or a ``postgresql://`` URL (default:
    ``$ORCHESTRATOR_DB``, see :func:`orchestrator.store.targets.default_target`), where the
    report's SQL runs translated
    (:mod:`orchestrator.reports.postgres`). Raises KeyError for an unknown report and ValueError
    for a parameter the report does not take, or a ``start`` or ``end`` that is not a
    ``YYYY-MM-DD`` day; on PostgreSQL, ConnectionError when the server cannot be reached.
    """
    report = get_report(name)
    given = {key: "" if value is None else str(value) for key, value in (params or {}).items()}
    unknown = set(given) - set(report.parameters)
    if unknown:
        raise ValueError(
            f"report {name!r} takes {report.parameters or 'no parameters'}, not {sorted(unknown)}"
        )
    check_date_window(given)
    values = {key: given.get(key, "") for key in report.parameters}
    if conn is None:
        # Imported here: the status line reads report SQL without the schema's modules.
        from ..store.targets import backend_for, default_target

        store = backend_for(db_path if db_path is not None else default_target())
        absent = store.missing()
        if absent:
            raise FileNotFoundError(
                f"{absent}: run `orchestrator init` or `orchestrator demo` first"
            )
        sql, args = IN_DIALECT[store.dialect](report.sql, values)
        return ReportResult(*store.read(sql, args, functions=sql_functions.register))
    sql_functions.register(conn)
    cursor = conn.execute(report.sql, values)
    columns = [description[0] for description in cursor.description or []]
    return ReportResult(columns, [tuple(row) for row in cursor.fetchall()])


def _as_written(sql: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    return sql, values


def _in_postgres(sql: str, values: dict[str, str]) -> tuple[str, list[str]]:
    from .postgres import in_postgres

    return in_postgres(sql, values)


#: Report SQL (metadata.yml's, written for SQLite) and its values by parameter name, as a
#: store of each dialect (:attr:`orchestrator.store.backend.Backend.dialect`) runs them.
#: Translating is the reports' business (sqlglot): the store says which SQL it speaks.
IN_DIALECT: dict[str, Callable[[str, dict[str, str]], tuple[str, Any]]] = {
    "sqlite": _as_written,
    "postgres": _in_postgres,
}


def check_date_window(params: Mapping[str, Any]) -> None:
    """Raise ValueError naming the parameter unless ``params``' ``start`` and ``end`` (when
    given and not empty) are days, ``YYYY-MM-DD`` (``2026-13-01`` would select nothing,
    silently), ``tz`` a time zone, ``week_starts_on`` a week day and ``now`` a UTC time.

    The one check of a report's window: :func:`run_report` (the CLI, the notebooks) and
    the Datasette plugin's report and dashboard pages call it.
    """
    for key in DATE_PARAMETERS:
        value = params.get(key)
        if value and not _is_day(str(value)):
            kind = f"day in {params['tz']}" if params.get("tz") else "UTC day"
            raise ValueError(f"{key} must be a {kind} (YYYY-MM-DD) or empty, not {value!r}")
    _check_calendar(params)


def _check_calendar(given: Mapping[str, Any]) -> None:
    """ValueError naming the parameter for an unknown time zone (``tz``) or week day
    (``week_starts_on``), or a ``now`` that is not a UTC time."""
    try:
        sql_functions.zone(given.get("tz"))
    except ValueError as exc:
        raise ValueError(f"tz: {exc}") from None
    try:
        sql_functions.weekday_number(given.get("week_starts_on"))
    except ValueError as exc:
        raise ValueError(f"week_starts_on: {exc}") from None
    if given.get("now") and not _NOW.fullmatch(given["now"]):
        raise ValueError(
            f"now must be a UTC time (YYYY-MM-DDTHH:MM:SS.SSSZ) or empty, not {given['now']!r}"
        )


def _is_day(value: str) -> bool:
    if not _DAY.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def run_report_args(
    name: str,
    args: Sequence[str] = (),
    *,
    params: Iterable[tuple[str, str]] = (),
    db_path: str | os.PathLike[str] | None = None,
) -> ReportResult:
    """Run report ``name`` with parameters given as command-line words.

    ``args`` holds ``--name value`` or ``--name=value`` words (``--start 2026-11-01
    --end=2026-11-30``); ``params`` holds ``(name, value)`` pairs (``-p name value``),
    which the words override. Raises ValueError for words that are not such pairs,
    else as :func:`run_report`.
    """
    values = dict(params)
    words = list(args)
    while words:
        word = words.pop(0)
        if not word.startswith("--") or len(word) == 2:
            raise ValueError(f"expected --parameter value, got {word!r}")
        key, equals, value = word[2:].partition("=")
        if not equals:
            if not words:
                raise ValueError(f"expected --parameter value, got {word!r}")
            value = words.pop(0)
        values[key] = value
    return run_report(name, db_path, values)


#: The keys of a chart's ``query`` when it names a report (see the module docstring).
REPORT_QUERY_KEYS = {"report", "select"}


def report_query(sql: str, name: str, select: str | None = None) -> str:
    """The SQL of a panel showing the report ``name`` (whose SQL is ``sql``): the report
    itself, or ``select`` over its rows, the report a common table expression ``name``."""
    if select is None:
        return sql
    return f"WITH {name} AS (\n{sql}\n)\n{select}"


def fill_report_queries(metadata: dict[str, Any]) -> dict[str, Any]:
    """Replace each dashboard chart's ``query: {report: NAME[, select: SQL]}`` in
    ``metadata`` (changed in place, and returned) by :func:`report_query` of the report
    ``NAME`` of the chart's database (its canned query in ``databases``). Raises ValueError
    naming the dashboard and chart for a report that does not exist or other keys."""
    databases = metadata.get("databases") or {}
    dashboards = (metadata.get("plugins") or {}).get("datasette-dashboards") or {}
    for slug, dashboard in dashboards.items():
        for name, chart in (dashboard.get("charts") or {}).items():
            query = chart.get("query")
            if not isinstance(query, dict):
                continue
            where = f"dashboard {slug!r}, chart {name!r}"
            if "report" not in query or set(query) - REPORT_QUERY_KEYS:
                raise ValueError(f"{where}: query takes report and select, not {sorted(query)}")
            queries = (databases.get(chart.get("db")) or {}).get("queries") or {}
            report = queries.get(query["report"])
            if not isinstance(report, dict) or "sql" not in report:
                raise ValueError(f"{where}: no report {query['report']!r} in {chart.get('db')!r}")
            chart["query"] = report_query(report["sql"], query["report"], query.get("select"))
    return metadata
