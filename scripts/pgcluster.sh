#!/usr/bin/env bash
# Manage the project-owned PostgreSQL/PostGIS cluster used by `make run` and `make test`.
#
#   scripts/pgcluster.sh start   initdb on first use, start if stopped, ensure databases
#   scripts/pgcluster.sh stop    stop the cluster
#   scripts/pgcluster.sh status  print whether it runs
#   scripts/pgcluster.sh url DB  print the connection URL of database DB
#
# The cluster lives in .data/pg of the checkout, listens on 127.0.0.1:$ECOMAP_PG_PORT
# (default 55432) and on a Unix socket next to its data. PostgreSQL refuses to run as
# root, so when invoked as root the server runs as the unprivileged user `postgres`
# (or $ECOMAP_PG_USER); if that user cannot enter the checkout (e.g. a clone under
# /root), the data directory falls back to /var/tmp/ecomap-<hash of the checkout path>.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${ECOMAP_PG_PORT:-55432}"
PGBIN="${ECOMAP_PG_BIN:-$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || dirname "$(command -v pg_ctl)")}"
DB_USER="ecomap"
DB_PASSWORD="ecomap"

run_as_owner() {
  if [ "$(id -u)" = "0" ]; then
    (cd / && runuser -u "$OWNER" -- "$@")
  else
    "$@"
  fi
}

choose_dirs() {
  if [ "$(id -u)" = "0" ]; then
    OWNER="${ECOMAP_PG_USER:-postgres}"
    if ! id "$OWNER" >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$OWNER"
    fi
  else
    OWNER="$(id -un)"
  fi
  BASE="$ROOT/.data"
  mkdir -p "$BASE"
  if [ "$(id -u)" = "0" ]; then
    chown "$OWNER" "$BASE"
    if ! runuser -u "$OWNER" -- test -w "$BASE"; then
      # The server user cannot reach the checkout (e.g. /root/...): use a directory it owns.
      BASE="/var/tmp/ecomap-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
      mkdir -p "$BASE"
      chown "$OWNER" "$BASE"
      chmod 700 "$BASE"
    fi
  fi
  PGDATA="$BASE/pg"
  SOCKDIR="$BASE/sock"
  LOGFILE="$BASE/postgres.log"
}

ensure_initdb() {
  if [ -f "$PGDATA/PG_VERSION" ]; then return; fi
  echo "pgcluster: creating a new cluster in $PGDATA (port $PORT)"
  run_as_owner mkdir -p "$PGDATA" "$SOCKDIR"
  local pwfile
  pwfile="$(mktemp)"
  printf '%s\n' "$DB_PASSWORD" >"$pwfile"
  chmod 644 "$pwfile"
  run_as_owner "$PGBIN/initdb" -D "$PGDATA" -U "$DB_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat <<CONF | run_as_owner tee -a "$PGDATA/postgresql.conf" >/dev/null
# --- EcoMap settings ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
jit = off
fsync = ${ECOMAP_PG_FSYNC:-on}
log_min_messages = warning
CONF
}

is_running() {
  [ -f "$PGDATA/PG_VERSION" ] && run_as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

psql_admin() {
  PGOPTIONS="-c client_min_messages=warning" run_as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -U "$DB_USER" "$@"
}

ensure_database() {
  local db="$1"
  if ! psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql_admin -d postgres -c "CREATE DATABASE \"$db\""
  fi
  psql_admin -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

start() {
  choose_dirs
  if [ ! -x "$PGBIN/pg_ctl" ]; then
    echo "pgcluster: PostgreSQL 15 server binaries not found (install postgresql-15)." >&2
    exit 1
  fi
  local sharedir
  sharedir="$("$PGBIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)"
  if [ ! -f "$sharedir/extension/postgis.control" ]; then
    echo "pgcluster: PostGIS is missing: apt-get install postgresql-15-postgis-3" >&2
    exit 1
  fi
  ensure_initdb
  if ! is_running; then
    rm -f "$PGDATA/postmaster.pid"
    run_as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGFILE" -w -t 60 start >/dev/null
    echo "pgcluster: started on 127.0.0.1:$PORT (data: $PGDATA)"
  fi
  ensure_database ecomap
  ensure_database ecomap_test
}

stop() {
  choose_dirs
  if is_running; then
    run_as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "pgcluster: stopped"
  else
    echo "pgcluster: not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) choose_dirs; if is_running; then echo "running on 127.0.0.1:$PORT ($PGDATA)"; else echo "stopped"; exit 3; fi ;;
  url) echo "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/${2:-ecomap}" ;;
  *) echo "usage: $0 start|stop|status|url [DB]" >&2; exit 2 ;;
esac
