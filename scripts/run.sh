#!/usr/bin/env bash
# Start (or reuse) the database, migrate, load the demo data when empty, and serve the map.
# With DATABASE_URL / ECOMAP_DATABASE_URL set, that PostGIS is used and no local cluster is
# started (ECOMAP_DATABASE_OWNER_URL, if set, is the role `ecomap setup` migrates as); otherwise
# the local cluster on ECOMAP_PG_PORT (default 55432), which `ecomap` itself also finds without a
# URL: `ecomap setup` runs as its owner role, the service as its web role (README "Database roles").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${DATABASE_URL:-}" ] && [ -z "${ECOMAP_DATABASE_URL:-}" ]; then
  scripts/pgcluster.sh start
  export ECOMAP_DATABASE_OWNER_URL="$(scripts/pgcluster.sh url ecomap)"
  export ECOMAP_DATABASE_URL="$(scripts/pgcluster.sh web-url ecomap)"
fi
.venv/bin/ecomap setup
# The service gets only its own URL: never the owner's.
exec env -u ECOMAP_DATABASE_OWNER_URL .venv/bin/ecomap serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" ${WORKERS:+--workers "$WORKERS"}
