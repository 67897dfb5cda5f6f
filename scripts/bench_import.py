"""Time importing Claude Code transcripts and the daily report, side by side with ccusage.

    python scripts/bench_import.py [TRANSCRIPTS_DIR] [--repeat N]

Copies the transcripts (default: the shared fixtures) into a temporary
``projects/<name>/`` folder, then times, in the same run:

* a first import into a fresh database plus the daily tokens report from it,
  against one ``ccusage daily --offline -z UTC --json`` on the same files;
* the daily report repeated (the data is already imported), against ccusage repeated;
* the import alone repeated, each time into a fresh database (the steadier figure to
  compare one version of the importer with another).

Prints the figures and the ratios (ccusage time / ours: above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.claude_code import daily_tokens, import_transcripts  # noqa: E402

CCUSAGE = ROOT / ".cache" / "ccusage" / "node_modules" / ".bin" / "ccusage"
DEFAULT = ROOT.parent / "shared" / "fixtures" / "claude-code-transcripts"


def ccusage(config: Path) -> float:
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(config)}
    started = time.perf_counter()
    subprocess.run(
        [str(CCUSAGE), "daily", "--offline", "-z", "UTC", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if not CCUSAGE.exists():
        sys.exit(
            f"ccusage not found at {CCUSAGE}: npm install --prefix .cache/ccusage ccusage@17.2.1"
        )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "claude"
        shutil.copytree(
            args.source,
            config / "projects" / "bench",
            ignore=shutil.ignore_patterns("*.md", "LICENSE"),
        )
        db_path = Path(tmp) / "bench.db"
        size = sum(p.stat().st_size for p in config.rglob("*.jsonl"))

        started = time.perf_counter()
        summary = import_transcripts([config], db_path=db_path)
        imported = time.perf_counter() - started
        started = time.perf_counter()
        report = daily_tokens(db_path)
        reported = time.perf_counter() - started
        first_ours = imported + reported
        first_ccusage = ccusage(config)

        ours = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            daily_tokens(db_path)
            ours.append(time.perf_counter() - started)
        theirs = [ccusage(config) for _ in range(args.repeat)]

        imports = []
        for index in range(args.repeat):
            started = time.perf_counter()
            import_transcripts([config], db_path=Path(tmp) / f"fresh-{index}.db")
            imports.append(time.perf_counter() - started)

    print(f"transcripts: {size / 1e6:.1f} MB; {summary}")
    for row in report:
        print(
            f"  {row['day']}: {row['input_tokens']} in, {row['output_tokens']} out, "
            f"{row['cache_creation_tokens']} cache write, {row['cache_read_tokens']} cache read"
        )
    print(
        f"first:    import {imported * 1000:.0f} ms + report {reported * 1000:.1f} ms = "
        f"{first_ours * 1000:.0f} ms; ccusage daily {first_ccusage * 1000:.0f} ms; "
        f"ratio {first_ccusage / first_ours:.2f}x"
    )
    median_ours, median_theirs = statistics.median(ours), statistics.median(theirs)
    print(
        f"repeated: report {median_ours * 1000:.2f} ms; "
        f"ccusage daily {median_theirs * 1000:.0f} ms "
        f"(medians of {args.repeat}); ratio {median_theirs / median_ours:.0f}x"
    )
    print(
        f"import:   {statistics.median(imports) * 1000:.0f} ms into a fresh database "
        f"(median of {args.repeat}; fastest {min(imports) * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
