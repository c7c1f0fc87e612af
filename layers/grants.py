"""What the web role may do in the database: declared here once, re-applied after every migration.

Two roles use a database (README "Database roles"): the *owner* (migrations, imports,
``ecomap setup``; owns every table) and the *web* role the service connects as. The web role
reads every table (a default privilege: tables the owner creates later are readable at once)
and writes only the tables listed in ``WEB_WRITES``, with only the statements listed there; it
runs no DDL (the monthly observation partitions and the generalizer's table lock go through
SECURITY DEFINER functions of migration 0013).

**A new table** is readable by the web role without anything to do. If the service must write
it, add one line to ``WEB_WRITES`` (table → statements); ``apply_grants`` runs after every
``ecomap db upgrade`` / ``downgrade`` (layers/migrations/env.py), so the next ``ecomap setup``
grants it. Tables named in ``WEB_WRITES`` that do not exist (yet) are skipped.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.engine import Connection

WEB_ROLE_VARIABLE = "ECOMAP_DB__WEB_ROLE"
DEFAULT_WEB_ROLE = "ecomap_web"

WEB_WRITES: dict[str, str] = {
    # access (gis_service/access): sign-in sessions, throttling, accounts and keys the admin API edits
    "account": "INSERT, UPDATE",
    "api_key": "INSERT, UPDATE",
    "auth_session": "INSERT, UPDATE, DELETE",
    "refresh_token": "INSERT, UPDATE",
    "login_throttle": "INSERT, UPDATE, DELETE",
    "audit_log": "INSERT",  # append-only: never UPDATE, DELETE or TRUNCATE
    # monitoring ingest (gis_service/monitoring/store.py)
    "datastream": "INSERT",
    "observation": "INSERT",
    "datastream_latest": "INSERT, UPDATE",
    "observation_daily": "INSERT, UPDATE",  # daily sums kept at ingest (migration 0018)
    "station_status": "INSERT, UPDATE, DELETE",  # the status refresh (gis_service/monitoring/status)
    # single sign-on (gis_service/access/oidc.py): provider subjects linked to accounts
    "account_identity": "INSERT, UPDATE",
    # the chiefs' work (gis_service/workflow)
    "workflow_issue": "INSERT, UPDATE",
    "workflow_issue_chief": "INSERT",
    "workflow_transition": "INSERT",
    "workflow_comment": "INSERT",
    "workflow_photo": "INSERT",
    "workflow_patrol": "INSERT, UPDATE",
    "workflow_patrol_point": "INSERT",
    "workflow_patrol_unit": "INSERT",
    "workflow_alert": "INSERT, UPDATE",  # alerts raised, updated, escalated, resolved (gis_service/workflow/alerts)
    "workflow_alert_chief": "INSERT",
    "workflow_alert_event": "INSERT",
    # federation (gis_service/federation): the copies of partners' collections and their fetch state
    "remote_feature": "INSERT, DELETE",
    "remote_layer_state": "INSERT, UPDATE",
    # background regeneralization (tiles/generalize.py, run by the service's scheduler)
    "gen_dirty": "DELETE",
    "layer_state": "INSERT, UPDATE",
    "layer_change": "INSERT",  # the station status trigger records the changed stations (migration 0011)
}
GENERALIZED_SUFFIX = "_gen"
"""Every ``<layer table>_gen`` gets DELETE and INSERT (the generalizer rewrites it)."""
GENERALIZED_WRITES = "INSERT, DELETE"

WEB_FUNCTIONS = ("observation_ensure_partition(timestamptz)", "ecomap_lock_for_generalization(text)")
"""SECURITY DEFINER functions (owner's rights): executable by the owner and the web role only."""


def web_role() -> str:
    """The web role's name: ``ECOMAP_DB__WEB_ROLE``, default ``ecomap_web``."""
    return os.environ.get(WEB_ROLE_VARIABLE, "").strip() or DEFAULT_WEB_ROLE


def _quote(conn: Connection, name: str) -> str:
    return conn.execute(text("SELECT quote_ident(:name)"), {"name": name}).scalar_one()


def apply_grants(conn: Connection, role: str | None = None) -> bool:
    """Grant the web role what it needs in the connected database (idempotent); False (nothing
    done) when the role does not exist, e.g. a deployment with one role for everything."""
    role = role or web_role()
    if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
        return False
    web = _quote(conn, role)
    database = _quote(conn, conn.execute(text("SELECT current_database()")).scalar_one())
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {web}",
        f"GRANT USAGE ON SCHEMA public TO {web}",
        f"REVOKE CREATE ON SCHEMA public FROM {web}, PUBLIC",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {web}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {web}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {web}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {web}",
    ]
    tables = {
        name
        for (name,) in conn.execute(
            text("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')")
        )
    }
    # Anything granted before (a table dropped from WEB_WRITES) is taken back first.
    writable = {t: p for t, p in WEB_WRITES.items() if t in tables}
    writable |= {t: GENERALIZED_WRITES for t in tables if t.endswith(GENERALIZED_SUFFIX)}
    for table in sorted(tables):
        name = _quote(conn, table)
        statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {name} FROM {web}")
        if table in writable:
            statements.append(f"GRANT {writable[table]} ON {name} TO {web}")
    for function in WEB_FUNCTIONS:
        if conn.execute(text("SELECT to_regprocedure(:f)"), {"f": function}).scalar_one() is not None:
            statements.append(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
            statements.append(f"GRANT EXECUTE ON FUNCTION {function} TO {web}")
    for statement in statements:
        conn.execute(text(statement))
    return True
