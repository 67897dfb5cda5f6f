"""Identifiers and timestamps: the two values every row carries.

Ids are UUIDs in their canonical text form (the seed's contract). New ids are
version 7 (RFC 9562): a millisecond timestamp followed by random bits, so rows
inserted later get larger ids and the primary-key index grows at its end
instead of splitting pages at random.

Timestamps are one format everywhere, Python and SQL defaults alike:
``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC. Text in this format sorts in time order,
SQLite's date functions read it, and so does PostgreSQL's ``timestamptz``.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

#: The SQL expression that yields the current time in :data:`TIMESTAMP_FORMAT`
#: (SQLite dialect; used for column defaults in the migrations).
SQL_NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

_second_cache: tuple[int, str] = (-1, "")

# Monotonic state (RFC 9562 method 1: a 12-bit counter in rand_a, started at
# a random value below 2048 each new millisecond).
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A new UUID version 7 as text: time-ordered, unique across processes.

    Within one process ids also increase strictly, so rows made in the same
    millisecond still sort in the order they were made.
    """
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    with _lock:
        rand = _random_bits()
        if ms > _last_ms:
            _last_ms, _counter = ms, rand >> 53  # 11 random bits
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter spent: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
            ms = _last_ms
        counter = _counter
    # unix_ts_ms (48 bits), version 7, rand_a (the counter), variant 0b10, rand_b
    value = (ms << 80) | (0x7000 | counter) << 64 | (rand & _RAND_B) | _VARIANT
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_RAND_B = 0x3FFF_FFFF_FFFF_FFFF
_VARIANT = 0x8000_0000_0000_0000


#: Random bytes drawn from the OS a page at a time (one system call per 512 ids instead
#: of one per id), used up 8 bytes per id; a forked child draws its own.
_RANDOM_PAGE = 4096
_random = b""
_random_at = _RANDOM_PAGE


def _random_bits() -> int:
    """64 random bits from os.urandom (called under _lock)."""
    global _random, _random_at
    if _random_at >= len(_random):
        _random, _random_at = os.urandom(_RANDOM_PAGE), 0
    _random_at += 8
    return int.from_bytes(_random[_random_at - 8 : _random_at], "big")


def _forget_random() -> None:
    global _random, _random_at
    _random, _random_at = b"", _RANDOM_PAGE


if hasattr(os, "register_at_fork"):  # a child must not reuse its parent's random bytes
    os.register_at_fork(after_in_child=_forget_random)


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    global _second_cache
    ns = time.time_ns()
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, prefix = _second_cache
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{rest // 1_000_000:03d}Z"


def format_timestamp(value: datetime) -> str:
    """Format a datetime in the project's timestamp format (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    # Not strftime: its %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def parse_timestamp(value: str) -> datetime:
    """Read a timestamp in the project's format (or any ISO 8601 form) as aware UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
