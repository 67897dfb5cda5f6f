"""Time ``orchestrator copy`` as users meet it, beside a raw COPY of the same rows.

    pg_virtualenv sh -c 'python scripts/bench_copy.py --db big.db \\
        --url "postgresql://$PGUSER@$PGHOST:$PGPORT/$PGDATABASE"'

Three figures, each beside its baseline of the same run:

1. SQLite -> PostgreSQL: ``orchestrator copy DB URL`` as a whole process under
   ``/usr/bin/time`` (start-up, verification included) into a fresh schema, in rows per
   second; beside it, one process that reads the same tables with ``sqlite3`` and sends
   them with asyncpg's ``COPY`` into another fresh schema migrated the same way, its
   triggers off (the same indexes and constraints): what moving the rows costs at least.
2. PostgreSQL -> SQLite: the snapshot ``serve`` makes (a whole process, the same way).
3. A snapshot's refresh after ``--events`` new events written to the store by the
   writer: ``copy(since=...)`` in-process (what ``serve`` runs every few seconds: the
   rows past the snapshot's watermarks) and as a
   whole process of the full incremental pass (``orchestrator copy URL SNAPSHOT``),
   beside the baseline of selecting just those new rows from the server.
4. Refreshes by watermarks (``copy_watermarks``), in-process CPU: with nothing new (the
   median of 5) beside today's path of a refresh (the window of ids, then whole-table
   counts: the watermarks ignored); with ``--events`` new events beside the bare SELECT
   of those rows; and ``orchestrator serve URL`` idle (its process's CPU over
   ``--idle`` seconds, from /proc) beside ``orchestrator serve`` of the snapshot file
   alone (Datasette without refreshes); a round of ``copy --follow DB URL`` with nothing
   new beside today's round (a whole verified copy).

``--refresh-only`` skips 1-3: ``--url`` is then the (writable) store refreshed from, and
``--snapshot`` an SQLite snapshot of it (made first when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from orchestrator import SyncDatabaseManager
from orchestrator.commands import copy as copy_module
from orchestrator.commands.copy import TABLES, copy_database
from orchestrator.store import postgres_migrations as pg_migrations

ORCHESTRATOR = [sys.executable, "-c", "from orchestrator.cli import cli; cli()"]


def timed(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (MB) of a whole process."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", "-o", report.name, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        user, system, rss = report.read().split()[-3:]
    return wall, float(user) + float(system), int(rss) // 1024


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


async def new_schema(url: str) -> str:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    return with_schema(url, schema)


async def raw_copy(db: Path, url: str) -> int:
    """Every row of the copied tables, read with sqlite3 and sent by COPY: the baseline."""
    conn = await asyncpg.connect(url)
    await pg_migrations.apply(conn)
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    total = 0
    try:
        for table in TABLES:
            generated = {"search"}
            columns = [
                row[1]
                for row in source.execute(f"PRAGMA table_info({table.name})")
                if row[1] not in generated
            ]
            cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table.name}")
            await conn.execute(f"ALTER TABLE {table.name} DISABLE TRIGGER USER")
            while rows := cursor.fetchmany(5000):
                await conn.copy_records_to_table(table.name, records=rows, columns=columns)
                total += len(rows)
            await conn.execute(f"ALTER TABLE {table.name} ENABLE TRIGGER USER")
    finally:
        source.close()
        await conn.close()
    return total


def rows_in(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sum(conn.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0] for t in TABLES)
    finally:
        conn.close()


def write_events(url: str, events: int) -> None:
    with SyncDatabaseManager(url) as db, db.agent_run("bench-refresh") as run:
        for index in range(events):
            run.log("event", f"refresh event {index}")


async def select_new(url: str, since: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch("SELECT * FROM agent_logs WHERE id >= $1", since)
    finally:
        await conn.close()
    return len(found)


def cpu_of(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """CPU and wall seconds of one call in this process, and what it returned."""
    wall, before = time.perf_counter(), time.process_time()
    result = call()
    return time.process_time() - before, time.perf_counter() - wall, result


@contextlib.contextmanager
def today_s_refresh() -> Iterator[None]:
    """A refresh as before the watermarks: the ids' window, then whole-table counts."""
    kept = copy_module._Copier._marks_then

    async def none(self: Any, now: Any) -> tuple[None, bool]:
        return None, False

    copy_module._Copier._marks_then = none  # type: ignore[method-assign]
    try:
        yield
    finally:
        copy_module._Copier._marks_then = kept  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def idle_percent(arguments: list[str], seconds: float) -> float:
    """Percent of one core a served process uses over ``seconds`` once it answers."""
    import urllib.request

    port = free_port()
    process = subprocess.Popen(
        [*ORCHESTRATOR, "serve", *arguments, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=5)
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"serve {arguments} exited") from None
                time.sleep(0.5)
        time.sleep(2)  # its start-up done

        def ticks() -> int:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime

        before, started = ticks(), time.monotonic()
        time.sleep(seconds)
        used = (ticks() - before) / os.sysconf("SC_CLK_TCK")
        return 100 * used / (time.monotonic() - started)
    finally:
        process.terminate()
        process.wait(timeout=30)


def refresh_figures(url: str, snapshot: Path, events: int, idle: float) -> None:
    """Section 4: refreshes by watermarks beside their baselines."""
    print(f"{'refresh by watermarks':<52} {'CPU s':>8} {'wall s':>8} {'baseline':>9} {'ratio':>7}")

    def line(what: str, ours: float, wall: float, base: float) -> None:
        print(f"{what:<52} {ours:8.3f} {wall:8.3f} {base:9.3f} {ours / base:7.3f}", flush=True)

    last = [time.time()]

    def refresh() -> Any:
        """What serve runs every few seconds: since the last refresh began."""
        began = time.time()
        result = copy_database(url, snapshot, since=last[0])
        last[0] = began
        return result

    refresh()  # marks recorded by a verified round, if they were not yet
    runs = [cpu_of(refresh) for _ in range(5)]
    assert all(result.inserted == result.updated == 0 for _, _, result in runs)
    with today_s_refresh():
        old = [cpu_of(refresh) for _ in range(3)]
    line(
        "nothing new (median of 5) / today's path (CPU)",
        statistics.median(c for c, _, _ in runs),
        statistics.median(w for _, w, _ in runs),
        statistics.median(c for c, _, _ in old),
    )
    ours_wall = statistics.median(w for _, w, _ in runs)
    old_wall = statistics.median(w for _, w, _ in old)  # the server's counting is not our CPU
    what = "  the same: wall s / today's path (wall)"
    print(
        f"{what:<52} {'':>8} {ours_wall:8.3f} {old_wall:9.3f} {ours_wall / old_wall:7.3f}",
        flush=True,
    )
    from orchestrator.core.ids import new_id

    since = new_id()
    write_events(url, events)
    used, wall, result = cpu_of(refresh)
    assert result.inserted >= events, result.inserted
    base, _, selected = cpu_of(lambda: asyncio.run(select_new(url, since)))
    assert selected >= events
    line(f"{events:,} new events / bare SELECT of them (CPU)", used, wall, base)
    if idle:
        ours = idle_percent([url, "--snapshot", str(snapshot), "--refresh", "5"], idle)
        alone = idle_percent([str(snapshot)], idle)
        print(
            f"{'serve URL idle, % of a core / serve of the file':<52} {ours:8.2f} {'':>8} "
            f"{alone:9.2f} {ours / max(alone, 0.01):7.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--skip-raw", action="store_true", help="Leave out the raw COPY.")
    parser.add_argument("--refresh-only", action="store_true", help="Only section 4.")
    parser.add_argument("--snapshot", type=Path, help="With --refresh-only: its snapshot.")
    parser.add_argument("--idle", type=float, default=60.0, help="Seconds of serve idling.")
    args = parser.parse_args()
    if args.refresh_only:
        snapshot = args.snapshot or args.db.with_name("bench-snapshot.db")
        if not snapshot.exists():  # as serve makes it (the store's identity beside it)
            from orchestrator.commands.serve import make_snapshot

            started = time.perf_counter()
            make_snapshot(args.url, snapshot)
            print(f"snapshot {snapshot} made in {time.perf_counter() - started:.0f} s")
        refresh_figures(args.url, snapshot, args.events, args.idle)
        return
    rows = rows_in(args.db)
    print(f"{args.db}: {rows:,} rows in the copied tables")
    print(f"{'what':<52} {'wall s':>8} {'CPU s':>8} {'MB':>6} {'rows/s':>9}")

    def line(what: str, wall: float, cpu: float, mb: int, count: int) -> None:
        print(f"{what:<52} {wall:8.1f} {cpu:8.1f} {mb:6d} {count / wall:9,.0f}", flush=True)

    target = asyncio.run(new_schema(args.url))
    print(f"copying into {target} (kept)", flush=True)
    wall, cpu, mb = timed([*ORCHESTRATOR, "copy", str(args.db), target])
    line("orchestrator copy SQLite -> PostgreSQL", wall, cpu, mb, rows)
    ours = wall
    if not args.skip_raw:
        raw_target = asyncio.run(new_schema(args.url))
        started = time.perf_counter()
        cpu_before = time.process_time()
        asyncio.run(raw_copy(args.db, raw_target))
        raw = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        line("baseline: sqlite3 rows + asyncpg COPY (in-process)", raw, cpu, 0, rows)
        print(f"{'ratio copy / raw COPY (wall)':<52} {ours / raw:8.2f}")

    with tempfile.TemporaryDirectory(dir=args.db.parent) as folder:
        snapshot = Path(folder) / "orchestrator.db"
        began = time.time()
        wall, cpu, mb = timed([*ORCHESTRATOR, "copy", target, str(snapshot)])
        line("orchestrator copy PostgreSQL -> SQLite (snapshot)", wall, cpu, mb, rows)

        from orchestrator.core.ids import new_id

        since = new_id()
        write_events(target, args.events)
        started = time.perf_counter()
        result = copy_database(target, snapshot, since=began)  # as serve refreshes
        refresh = time.perf_counter() - started
        assert result.inserted >= args.events, result.inserted
        what = f"refresh (recent) after {args.events:,} events, in-process"
        line(what, refresh, 0, 0, result.inserted)
        started = time.perf_counter()
        selected = asyncio.run(select_new(target, since))
        baseline = time.perf_counter() - started
        line("baseline: SELECT those rows from the server", baseline, 0, 0, selected)
        print(f"{'ratio refresh / SELECT':<52} {refresh / baseline:8.2f}")
        write_events(target, args.events)
        wall, cpu, mb = timed([*ORCHESTRATOR, "copy", target, str(snapshot)])
        line(f"copy (full incremental pass) after {args.events:,} more", wall, cpu, mb, args.events)
        refresh_figures(target, snapshot, args.events, args.idle)
    # A round of `copy --follow DB URL` with nothing new, beside today's (a whole copy).
    copy_database(args.db, target)  # verified: the file's marks recorded in the store
    used, wall, _ = cpu_of(lambda: copy_database(args.db, target, recent=True))
    base, _, _ = cpu_of(lambda: copy_database(args.db, target))
    print(
        f"{'copy --follow round, nothing new / whole copy (CPU)':<52} {used:8.3f} {wall:8.3f} "
        f"{base:9.3f} {used / base:7.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
