"""The SQL functions the reports use beyond SQLite's own: days in a named time zone, weeks.

SQLite has no time-zone database, so a report that counts days, weeks or months in the
user's time zone calls functions defined here, in Python (:mod:`zoneinfo`), on each
SQLite connection that runs reports: :func:`register` (the report runner and the
Datasette plugin's ``prepare_connection`` call it). On PostgreSQL, which has a time-zone
database, :mod:`orchestrator.reports.pg_sql` writes the same functions as native SQL
(:data:`POSTGRES`); both engines give the same answers, which the reports' parity test
checks. Each function's meaning is written once, here.

* ``tz_day(timestamp, tz)``: the day (``YYYY-MM-DD``) a UTC timestamp of the project's
  format falls on in time zone ``tz`` (an IANA name such as ``Europe/Madrid``; empty or
  NULL is UTC). An offset written in the timestamp is ignored, as everywhere in the
  reports: stored timestamps are UTC.
* ``week_beginning(day, first_weekday)``: the first day of the week holding ``day``, weeks
  starting on ``first_weekday`` (``sunday`` ... ``saturday``; empty is ``sunday``, as
  ``ccusage weekly`` counts).
* ``json_attribute(json, key)``: the value of ``key`` in a JSON object (stored text such
  as ``otel_metrics_daily.attributes``), as text: a string as it is, another value as
  JSON (``true``, ``3``); NULL when the key is missing, the value null or the text not an
  object.

Cheap to import (no third-party module): the status line uses it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

#: Week days by name, numbered as SQLite's ``%w`` and PostgreSQL's ``dow`` (Sunday = 0).
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


@lru_cache(maxsize=64)
def zone(name: str | None) -> Any:
    """The time zone named ``name`` (empty: UTC); ValueError naming it when unknown."""
    if not name or name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Madrid, or UTC"
        ) from None


def weekday_number(name: str | None) -> int:
    """0 (Sunday) to 6 for a week day's name (empty: Sunday); ValueError otherwise."""
    if not name:
        return 0
    try:
        return WEEKDAYS.index(name.lower())
    except ValueError:
        raise ValueError(f"unknown week day {name!r}: one of {', '.join(WEEKDAYS)}") from None


def _utc(timestamp: str) -> datetime:
    text = timestamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1]
    parsed = datetime.fromisoformat(text.replace(" ", "T"))
    return parsed.replace(tzinfo=timezone.utc)  # stored timestamps are UTC; offsets ignored


def tz_day(timestamp: str | None, tz: str | None) -> str | None:
    if timestamp is None:
        return None
    return _utc(timestamp).astimezone(zone(tz)).date().isoformat()


def week_beginning(day: str | None, first_weekday: str | None) -> str | None:
    if day is None:
        return None
    value = date.fromisoformat(day[:10])
    sunday_based = (value.weekday() + 1) % 7  # Python's Monday = 0 to Sunday = 0
    return (value - timedelta(days=(sunday_based - weekday_number(first_weekday)) % 7)).isoformat()


def json_attribute(text: str | None, key: str | None) -> str | None:
    """``text``'s (a JSON object) value of ``key``, as text; None for none."""
    if text is None or key is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    found = value.get(key)
    if found is None or isinstance(found, str):
        return found
    return json.dumps(found, separators=(",", ":"))


def register(conn: sqlite3.Connection) -> None:
    """Define the functions on an SQLite connection (deterministic: usable in indexes'
    expressions and cached by SQLite within a statement)."""
    conn.create_function("tz_day", 2, tz_day, deterministic=True)
    conn.create_function("week_beginning", 2, week_beginning, deterministic=True)
    conn.create_function("json_attribute", 2, json_attribute, deterministic=True)


#: The functions in PostgreSQL, ``{0}``, ``{1}``: the arguments (already PostgreSQL).
#: ``CAST(x AS TIMESTAMP)`` reads the stored text ignoring its ``Z``; ``AT TIME ZONE
#: 'UTC'`` makes it that instant, and the second ``AT TIME ZONE`` its wall time in ``tz``.
POSTGRES = {
    "TZ_DAY": (
        "TO_CHAR(CAST(NULLIF({0}, '') AS TIMESTAMP) AT TIME ZONE 'UTC' "
        "AT TIME ZONE COALESCE(NULLIF({1}, ''), 'UTC'), 'YYYY-MM-DD')"
    ),
    "WEEK_BEGINNING": (
        "TO_CHAR(CAST({0} AS DATE) - CAST((CAST(EXTRACT(DOW FROM CAST({0} AS DATE)) AS INT) "
        "- COALESCE(ARRAY_POSITION(ARRAY['monday', 'tuesday', 'wednesday', 'thursday', "
        "'friday', 'saturday'], LOWER({1})), 0) + 7) % 7 AS INT), 'YYYY-MM-DD')"
    ),
    "JSON_ATTRIBUTE": (
        "CASE WHEN JSONB_TYPEOF(CAST({0} AS JSONB)) = 'object' THEN CAST({0} AS JSONB) ->> {1} END"
    ),
}
