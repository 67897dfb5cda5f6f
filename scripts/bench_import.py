"""Time importing Claude Code transcripts as users meet it, side by side with ccusage.

    python scripts/bench_import.py [--mb 17] [--runs 5] [--big-mb 200] [--big-ccusage]

Everything is measured as whole processes under ``/usr/bin/time`` (CPU = user + system
seconds, RSS = the largest resident set), start-up included, ours and ccusage 17.2.1
alternating in the same run; figures are medians of ``--runs`` rounds.

* Corpus: about ``--mb`` MB of real transcripts, made by copying the public fixtures
  (``tests/data/claude-code-transcripts``) under distinct project folders, session ids,
  message ids and request ids into a temporary ``CLAUDE_CONFIG_DIR``. The per-day
  tokens of our report and of ``ccusage daily`` are checked equal first.
* First: ``orchestrator import claude-code`` into a fresh database, then
  ``orchestrator report daily_tokens --format json`` (the two processes' CPU summed),
  against ``ccusage daily --offline -z UTC --json``. The prices genai-prices gave for the
  corpus's models are cached on disk (``orchestrator.core.pricing``), as after any earlier
  import on the machine; "rates cache cold" runs the import with an empty
  ``$XDG_CACHE_HOME`` instead (the very first import after installing, or after a
  genai-prices upgrade).
* Repeated: the same import again on the unchanged files (wall ms; target < 100 ms), and
  with the report after it (what a daily ``import && report`` costs) beside ccusage, which
  reads every file every time.
* ``orchestrator --help`` and ``python -c "import orchestrator"``: start-up alone.
* Big: one generated ``--big-mb`` MB transcript (the fixture session's lines repeated
  under fresh message ids) imported into a fresh database, and into one created by an
  earlier ``orchestrator init`` (no migration in the importing process): peak RSS
  (target < 150 MB), and ccusage on the same file with ``--big-ccusage``.

The copies repeat the fixtures' text, so caches keyed on text would look better here than
on real transcripts. The one there is (redaction remembers its last 256 texts, for a turn's
prompt repeated on each of its responses) finds 41% of the texts here against 34% inside
one copy: copies lie further apart than it remembers.

The package's bytecode is compiled first, as pip does when it installs it: with
``PYTHONDONTWRITEBYTECODE`` set, every timed process would compile each module edited since
its last compile again.

Prints each figure beside ccusage's and the ratio ccusage / ours (above 1: we use less).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CCUSAGE = ROOT / ".cache" / "ccusage" / "node_modules" / ".bin" / "ccusage"
FIXTURES = ROOT / "tests" / "data" / "claude-code-transcripts"
ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"
TIME = "/usr/bin/time"
SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"


@dataclass
class Timing:
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set, MB
    wall: float  # seconds

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.cpu + other.cpu, max(self.rss_mb, other.rss_mb), self.wall + other.wall)


def timed(argv: list[str], env: dict[str, str]) -> tuple[Timing, bytes]:
    """Run ``argv`` under /usr/bin/time; its timing and stdout. Fails loudly on an error."""
    with tempfile.NamedTemporaryFile("r") as out:
        run = subprocess.run(
            [TIME, "-o", out.name, "-f", "%e %U %S %M", *argv],
            env=env,
            capture_output=True,
            check=False,
        )
        figures = out.read().split()[-4:]
    if run.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({run.returncode}):\n{run.stderr.decode()}")
    wall, user, system, rss_kb = (float(value) for value in figures)
    return Timing(user + system, rss_kb / 1024, wall), run.stdout


def copy_corpus(projects: Path, megabytes: float) -> int:
    """Copies of the fixtures under ``projects/copy-N/`` until ``megabytes``: each copy
    with its own session, message and request ids. Returns the bytes written."""
    sources = sorted(FIXTURES.rglob("*.jsonl"))
    sessions = {
        line["sessionId"]
        for path in sources
        for line in map(json.loads, path.read_text().splitlines())
        if "sessionId" in line
    }
    written, copy = 0, 0
    while written < megabytes * 1e6:
        copy += 1
        for path in sources:
            data = path.read_bytes()
            data = data.replace(b'"msg_', b'"msg_c%d' % copy)
            data = data.replace(b'"req_', b'"req_c%d' % copy)
            for session in sessions:
                fresh = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session}/{copy}"))
                data = data.replace(session.encode(), fresh.encode())
            relative = path.relative_to(FIXTURES)
            target = (
                projects
                / f"copy-{copy}"
                / str(relative).replace(
                    SESSION, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SESSION}/{copy}"))
                )
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += len(data)
    return written


def make_big(target: Path, megabytes: float) -> int:
    """One transcript of ``megabytes``: the fixture session's lines, round after round,
    each round under fresh message and request ids. Returns its size."""
    lines = (FIXTURES / f"{SESSION}.jsonl").read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    written, round_ = 0, 0
    with target.open("wb") as out:
        while written < megabytes * 1e6:
            round_ += 1
            data = lines.replace(b'"msg_', b'"msg_r%d' % round_).replace(
                b'"req_', b'"req_r%d' % round_
            )
            out.write(data)
            written += len(data)
    return written


def ccusage_days(stdout: bytes) -> dict[str, list[int]]:
    return {
        day["date"]: [
            day["inputTokens"],
            day["outputTokens"],
            day["cacheCreationTokens"],
            day["cacheReadTokens"],
        ]
        for day in json.loads(stdout)["daily"]
    }


def our_days(stdout: bytes) -> dict[str, list[int]]:
    keys = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
    return {row["day"]: [row[key] for key in keys] for row in json.loads(stdout)}


def line(label: str, ours: float, theirs: float | None, unit: str, digits: int = 2) -> str:
    text = f"{label:<34}{ours:>10.{digits}f} {unit:<3}"
    if theirs is not None:
        text += f"  ccusage {theirs:>8.{digits}f} {unit:<3}  {ratio(theirs / ours)}"
    return text


def ratio(value: float) -> str:
    return f"ratio {value:5.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=17, help="corpus size (MB)")
    parser.add_argument("--runs", type=int, default=5, help="rounds (medians are printed)")
    parser.add_argument("--big-mb", type=float, default=200, help="0 skips the big file")
    parser.add_argument("--big-ccusage", action="store_true", help="ccusage on the big file")
    args = parser.parse_args()
    if not CCUSAGE.exists():
        sys.exit(f"no ccusage at {CCUSAGE}: npm install --prefix .cache/ccusage ccusage@17.2.1")
    compileall.compile_dir(ROOT / "orchestrator", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "claude"
        size = copy_corpus(config / "projects", args.mb)
        env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config), "PYTHONPATH": str(ROOT)}
        env.pop("ORCHESTRATOR_DB", None)
        # JSON out of both (the baseline is ``ccusage daily --offline --json``; its
        # table costs ccusage a few % more CPU).
        ccusage = [str(CCUSAGE), "daily", "--offline", "-z", "UTC", "--json"]
        ours_import = [str(ORCHESTRATOR), "import", "claude-code"]
        ours_report = [str(ORCHESTRATOR), "report", "daily_tokens", "--format", "json"]

        # The figures first: both must give the same days.
        check_db = str(Path(tmp) / "check.db")
        timed([*ours_import, "--db", check_db], env)
        _, ours_out = timed([*ours_report, "--db", check_db], env)
        _, theirs_out = timed(ccusage, env)
        same = our_days(ours_out) == ccusage_days(theirs_out)

        first, cold, repeated, report, again, theirs, helps = [], [], [], [], [], [], []
        imports = []
        for index in range(args.runs):
            theirs.append(timed(ccusage, env)[0])
            db = str(Path(tmp) / f"run-{index}.db")
            imported = timed([*ours_import, "--db", db], env)[0]
            reported = timed([*ours_report, "--db", db], env)[0]
            first.append(imported + reported)
            report.append(reported)
            repeated.append(timed([*ours_import, "--db", db], env)[0])
            again.append(repeated[-1] + timed([*ours_report, "--db", db], env)[0])
            helps.append(timed([str(ORCHESTRATOR), "--help"], env)[0])
            imports.append(timed([sys.executable, "-c", "import orchestrator"], env)[0])
            Path(db).unlink()
            with tempfile.TemporaryDirectory() as empty_cache:
                cold_env = {**env, "XDG_CACHE_HOME": empty_cache}
                imported = timed([*ours_import, "--db", db], cold_env)[0]
            cold.append(imported + timed([*ours_report, "--db", db], env)[0])
            Path(db).unlink()

        def median(values: list[Timing], attribute: str) -> float:
            return statistics.median(getattr(value, attribute) for value in values)

        print(
            f"corpus: {size / 1e6:.1f} MB of transcripts; per-day tokens equal to ccusage's: {same}"
        )
        print(f"medians of {args.runs} alternating runs (ours, then ccusage beside it):")
        print(line("first import + report, CPU", median(first, "cpu"), median(theirs, "cpu"), "s"))
        # The machine's speed drifts (the median ratio moves by 15% between runs of this
        # script): each side's fastest round is its cost with the least interference.
        print(
            line(
                "  the same, fastest of the runs",
                min(t.cpu for t in first),
                min(t.cpu for t in theirs),
                "s",
            )
        )
        ratios = [t.cpu / o.cpu for o, t in zip(first, theirs, strict=True)]
        at = len(line("", 1, 1, "s")) - len(ratio(1))  # where the ratios above start
        label = "  the same, median of round ratios"
        print(f"{label:<{at}}{ratio(statistics.median(ratios))}")
        print(
            line("first import + report, wall", median(first, "wall"), median(theirs, "wall"), "s")
        )
        print(
            line(
                "  the same, rates cache cold, CPU", median(cold, "cpu"), median(theirs, "cpu"), "s"
            )
        )
        print(
            line(
                "first import + report, max RSS",
                median(first, "rss_mb"),
                median(theirs, "rss_mb"),
                "MB",
                0,
            )
        )
        print(line("  of which report daily_tokens CPU", median(report, "cpu"), None, "s"))
        print(
            line(
                "repeated import (unchanged), wall", median(repeated, "wall") * 1000, None, "ms", 0
            )
        )
        print(
            line("repeated import (unchanged), CPU", median(repeated, "cpu") * 1000, None, "ms", 0)
        )
        print(
            line("repeated import + report, CPU", median(again, "cpu"), median(theirs, "cpu"), "s")
        )
        print(line("orchestrator --help, CPU", median(helps, "cpu") * 1000, None, "ms", 0))
        print(
            line(
                'python -c "import orchestrator", CPU', median(imports, "cpu") * 1000, None, "ms", 0
            )
        )

        if args.big_mb:
            big_config = Path(tmp) / "big"
            big = big_config / "projects" / "big" / f"{uuid.uuid4()}.jsonl"
            big_size = make_big(big, args.big_mb)
            shutil.rmtree(config)
            big_env = {**env, "CLAUDE_CONFIG_DIR": str(big_config)}
            fresh_db = str(Path(tmp) / "big.db")
            ours_big = timed([*ours_import, "--db", fresh_db], big_env)[0]
            existing_db = str(Path(tmp) / "big-existing.db")
            timed([str(ORCHESTRATOR), "init", "--db", existing_db], big_env)
            ours_existing = timed([*ours_import, "--db", existing_db], big_env)[0]
            theirs_big = timed(ccusage, big_env)[0] if args.big_ccusage else None
            print(f"big transcript: {big_size / 1e6:.0f} MB, one file, one run each:")
            print(
                line(
                    "import, max RSS",
                    ours_big.rss_mb,
                    theirs_big.rss_mb if theirs_big else None,
                    "MB",
                    0,
                )
            )
            print(line("  into an existing database", ours_existing.rss_mb, None, "MB", 0))
            print(line("import, CPU", ours_big.cpu, theirs_big.cpu if theirs_big else None, "s"))


if __name__ == "__main__":
    main()
