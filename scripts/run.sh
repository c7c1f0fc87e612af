#!/usr/bin/env bash
# Start (or reuse) the database, migrate, load the demo data when empty, and serve the map.
# With DATABASE_URL set, that PostGIS is used and no local cluster is started; otherwise the
# local cluster on ECOMAP_PG_PORT (default 55432), which `ecomap` itself also finds without a URL.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${DATABASE_URL:-}" ] && [ -z "${ECOMAP_DATABASE_URL:-}" ]; then
  scripts/pgcluster.sh start
  export ECOMAP_DATABASE_URL="$(scripts/pgcluster.sh url ecomap)"
fi
.venv/bin/ecomap setup
exec .venv/bin/ecomap serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" ${WORKERS:+--workers "$WORKERS"}
