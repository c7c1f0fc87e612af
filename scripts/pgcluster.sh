#!/usr/bin/env bash
# Manage the project-owned PostgreSQL/PostGIS cluster used by `make run` and `make test`.
#
#   scripts/pgcluster.sh start   initdb on first use, start if stopped, ensure databases
#   scripts/pgcluster.sh stop    stop the cluster
#   scripts/pgcluster.sh status  print whether it runs
#   scripts/pgcluster.sh url DB      print the owner's connection URL of database DB (migrations, imports)
#   scripts/pgcluster.sh web-url DB  print the web role's connection URL of database DB (the service)
#   scripts/pgcluster.sh replica-start   a streaming replica of it (pg_basebackup -R on first use), started
#   scripts/pgcluster.sh replica-stop    stop the replica
#   scripts/pgcluster.sh replica-drop    stop it, delete it and its replication slot
#   scripts/pgcluster.sh replica-web-url DB  the web role's URL of database DB on the replica (reads)
#
# Roles (README "Database roles"): the bootstrap superuser `ecomap` has no password and is
# reachable only through the Unix socket (this script uses it to create roles and databases);
# `ecomap_owner` (LOGIN CREATEDB, no superuser) owns the databases and tables and runs
# migrations, imports and `ecomap setup`; `ecomap_web` (LOGIN, nothing else) is the service's.
# Their passwords are generated on first start into .data/pgpass (mode 0600, libpq's passfile
# format, never printed); the URLs name that file (`?passfile=`) instead of carrying a password.
# A cluster made by older versions of this script (superuser `ecomap` with a known password) is
# moved to this layout on start: roles created, databases and their tables handed to the owner,
# the superuser's password removed.
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
DB_USER="ecomap"  # the bootstrap superuser: Unix socket only, no password
OWNER_ROLE="ecomap_owner"  # as gis_service/settings.py names them
WEB_ROLE="ecomap_web"
PASSFILE="$ROOT/.data/pgpass"

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
  BASE="${ECOMAP_PG_BASE:-$ROOT/.data}"  # ECOMAP_PG_BASE: another cluster (the replica tests' own)
  mkdir -p "$BASE"
  if [ "$(id -u)" = "0" ] && [ -n "${ECOMAP_PG_BASE:-}" ]; then
    chown "$OWNER" "$BASE"
  elif [ "$(id -u)" = "0" ]; then
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
  run_as_owner "$PGBIN/initdb" -D "$PGDATA" -U "$DB_USER" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
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

new_password() {
  head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

password_of() {  # the password of role $1 in the passfile (lines host:port:db:user:password)
  awk -F: -v user="$1" '$4 == user { print $5; exit }' "$PASSFILE" 2>/dev/null || true
}

ensure_passfile() {
  # Generated once; kept outside the repository (.data is git-ignored), readable only by its owner.
  local owner_pw web_pw
  owner_pw="$(password_of "$OWNER_ROLE")"
  web_pw="$(password_of "$WEB_ROLE")"
  if [ -n "$owner_pw" ] && [ -n "$web_pw" ]; then
    chmod 600 "$PASSFILE"
    return
  fi
  mkdir -p "$(dirname "$PASSFILE")"
  local tmp
  tmp="$(umask 077 && mktemp "$PASSFILE.XXXXXX")"
  {
    printf '127.0.0.1:*:*:%s:%s\n' "$OWNER_ROLE" "${owner_pw:-$(new_password)}"
    printf '127.0.0.1:*:*:%s:%s\n' "$WEB_ROLE" "${web_pw:-$(new_password)}"
  } >"$tmp"
  mv -f "$tmp" "$PASSFILE"
}

ensure_roles() {
  # Passwords go to psql on stdin (never on a command line); the server stores SCRAM hashes.
  ensure_passfile
  psql_admin -d postgres <<SQL >/dev/null
SELECT format('CREATE ROLE %I', '$OWNER_ROLE') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$OWNER_ROLE')
UNION ALL
SELECT format('CREATE ROLE %I', '$WEB_ROLE') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$WEB_ROLE')
\\gexec
ALTER ROLE "$OWNER_ROLE" LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD '$(password_of "$OWNER_ROLE")';
ALTER ROLE "$WEB_ROLE" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
  PASSWORD '$(password_of "$WEB_ROLE")';
-- The owner may end the web role's sessions (the test suite drops databases the service used)
-- and see what they run (pg_stat_activity's query text).
GRANT pg_signal_backend, pg_read_all_stats TO "$OWNER_ROLE";
-- The superuser: socket only (a password would let it in over TCP, as older versions set one).
ALTER ROLE "$DB_USER" PASSWORD NULL;
SQL
  # PostGIS is not a trusted extension: put it in template1 so databases the owner creates
  # (the test suite's, createdb's) have it without a superuser.
  psql_admin -d template1 -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  grant_replay_control template1
}

grant_replay_control() {
  # The owner may pause and resume a replica's replay (the replicas' freshness tests); function
  # privileges are per database, so in template1 (new databases) and each database made here.
  psql_admin -d "$1" -c "GRANT EXECUTE ON FUNCTION pg_wal_replay_pause(), pg_wal_replay_resume() TO \"$OWNER_ROLE\"" >/dev/null
}

hand_to_owner() {
  # Older clusters: databases and tables made by the superuser go to the owner role (idempotent).
  local db="$1"
  psql_admin -d "$db" <<SQL >/dev/null
ALTER DATABASE "$db" OWNER TO "$OWNER_ROLE";
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              c.oid::regclass, '$OWNER_ROLE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relowner = '$DB_USER'::regrole
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, '$OWNER_ROLE')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proowner = '$DB_USER'::regrole
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
\\gexec
SQL
}

ensure_database() {
  local db="$1"
  if ! psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql_admin -d postgres -c "CREATE DATABASE \"$db\" OWNER \"$OWNER_ROLE\"" >/dev/null
  fi
  psql_admin -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  grant_replay_control "$db"
}

migrate_old_databases() {
  local db
  for db in $(psql_admin -d postgres -tAc "SELECT datname FROM pg_database WHERE datdba = '$DB_USER'::regrole
                AND NOT datistemplate AND datname <> 'postgres'"); do
    hand_to_owner "$db"
  done
}

url() {
  local role="$1" db="${2:-ecomap}"
  echo "postgresql://$role@127.0.0.1:$PORT/$db?passfile=$PASSFILE"
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
  ensure_roles
  ensure_database ecomap
  ensure_database ecomap_test
  migrate_old_databases
}

replica_dirs() {
  choose_dirs
  REPLICA_PORT="${ECOMAP_PG_REPLICA_PORT:-$((PORT + 10))}"
  REPLICA_DATA="$BASE/pg-replica"
  REPLICA_LOG="$BASE/postgres-replica.log"
}

replica_running() {
  [ -f "$REPLICA_DATA/PG_VERSION" ] && run_as_owner "$PGBIN/pg_ctl" -D "$REPLICA_DATA" status >/dev/null 2>&1
}

replica_start() {
  # A physical copy of the whole cluster streaming from it (README "Read replicas"): the
  # bootstrap superuser replicates over the Unix socket (trust, as initdb set up local access).
  start >/dev/null
  replica_dirs
  if [ ! -f "$REPLICA_DATA/PG_VERSION" ]; then
    echo "pgcluster: creating a streaming replica in $REPLICA_DATA (port $REPLICA_PORT)"
    run_as_owner rm -rf "$REPLICA_DATA"
    # Its slot keeps the WAL it has not received (a stopped replica holds WAL back: replica-drop).
    run_as_owner "$PGBIN/pg_basebackup" -h "$SOCKDIR" -p "$PORT" -U "$DB_USER" -D "$REPLICA_DATA" \
      --write-recovery-conf --wal-method=stream --checkpoint=fast --create-slot --slot=ecomap_replica
    printf '# --- EcoMap replica ---\nport = %s\nhot_standby_feedback = on\n' "$REPLICA_PORT" \
      | run_as_owner tee -a "$REPLICA_DATA/postgresql.conf" >/dev/null
  fi
  if ! replica_running; then
    rm -f "$REPLICA_DATA/postmaster.pid"
    run_as_owner "$PGBIN/pg_ctl" -D "$REPLICA_DATA" -l "$REPLICA_LOG" -w -t 60 start >/dev/null
    echo "pgcluster: replica started on 127.0.0.1:$REPLICA_PORT (data: $REPLICA_DATA)"
  fi
}

replica_stop() {
  replica_dirs
  if replica_running; then
    run_as_owner "$PGBIN/pg_ctl" -D "$REPLICA_DATA" -m fast -w stop >/dev/null
    echo "pgcluster: replica stopped"
  fi
}

replica_drop() {
  replica_stop
  run_as_owner rm -rf "$REPLICA_DATA"
  if is_running; then
    psql_admin -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                                WHERE slot_name = 'ecomap_replica'" >/dev/null
  fi
}

stop() {
  replica_stop >/dev/null
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
  url) url "$OWNER_ROLE" "${2:-ecomap}" ;;
  web-url) url "$WEB_ROLE" "${2:-ecomap}" ;;
  replica-start) replica_start ;;
  replica-stop) replica_stop ;;
  replica-drop) replica_drop ;;
  replica-web-url) replica_dirs; PORT="$REPLICA_PORT" url "$WEB_ROLE" "${2:-ecomap}" ;;
  replica-url) replica_dirs; PORT="$REPLICA_PORT" url "$OWNER_ROLE" "${2:-ecomap}" ;;
  *) echo "usage: $0 start|stop|status|url [DB]|web-url [DB]|replica-start|replica-stop|replica-drop|replica-url [DB]|replica-web-url [DB]" >&2; exit 2 ;;
esac
