#!/usr/bin/env bash
# Create or upgrade the orchestrator database (default: $ORCHESTRATOR_DB or ./orchestrator.db).
#   scripts/setup_database.sh [DB] [--force]
# An existing database is only ever upgraded in place (tables, indexes or triggers dropped
# from it are re-created). --force starts an empty one, after copying the old one to
# DB.<timestamp>.bak, and is refused while any process (an ADW, Datasette) has it open.
# This is `orchestrator init`: it runs the repository's .venv/bin/orchestrator if there is
# one, else `orchestrator` on PATH, else it creates .venv first (scripts/setup.sh).
set -euo pipefail
repo="$(CDPATH= cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$repo/.venv/bin/orchestrator" ]; then
    exec "$repo/.venv/bin/orchestrator" init "$@"
elif command -v orchestrator >/dev/null 2>&1; then
    exec orchestrator init "$@"
elif [ -x "$repo/scripts/setup.sh" ]; then
    echo "setup_database.sh: a fresh clone: creating $repo/.venv first (scripts/setup.sh)" >&2
    "$repo/scripts/setup.sh"
    exec "$repo/.venv/bin/orchestrator" init "$@"
fi
echo "setup_database.sh: the orchestrator command is not installed:" \
    "run scripts/setup.sh (it creates $repo/.venv), or pip install the project" >&2
exit 127
