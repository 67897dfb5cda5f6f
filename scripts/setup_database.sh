#!/usr/bin/env bash
# Create or upgrade the orchestrator database (default: $ORCHESTRATOR_DB or ./orchestrator.db).
#   scripts/setup_database.sh [DB] [--force]
# An existing database is only ever upgraded in place. --force starts an empty one,
# after copying the old one to DB.<timestamp>.bak.
set -euo pipefail
exec orchestrator init "$@"
