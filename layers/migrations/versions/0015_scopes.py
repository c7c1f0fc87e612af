"""Per-feature scopes and access-change notifications.

- ``api_key.area``: a partner key's shared area (EPSG:4326 multipolygon, optional): the key
  reads its layers' features only inside it (``gis_service/access/rules.yaml`` ``scopes``).
- ``ecomap_access_changed``: a NOTIFY (empty payload) whenever a credential stops or changes
  meaning — a session revoked, an account disabled or given another role or chief, a key
  revoked or given other layers or another area. Every worker LISTENs and drops what it
  cached of tokens, keys and scopes at once (``gis_service.access.revocation``).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE api_key ADD COLUMN area geometry(MultiPolygon, 4326)
    CONSTRAINT ck_api_key_area CHECK (area IS NULL OR (role = 'partner' AND ST_IsValid(area) AND NOT ST_IsEmpty(area)));

CREATE FUNCTION access_changed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ecomap_access_changed', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER auth_session_access_changed AFTER UPDATE OF revoked_at, expires_at OR DELETE ON auth_session
    FOR EACH STATEMENT EXECUTE FUNCTION access_changed_notify();
CREATE TRIGGER account_access_changed AFTER UPDATE OF enabled, role, chief_id, login OR DELETE ON account
    FOR EACH STATEMENT EXECUTE FUNCTION access_changed_notify();
CREATE TRIGGER api_key_access_changed AFTER UPDATE OF revoked_at, expires_at, layers, area, role OR DELETE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION access_changed_notify();
CREATE TRIGGER chief_assignment_access_changed AFTER INSERT OR UPDATE OR DELETE ON chief_assignment
    FOR EACH STATEMENT EXECUTE FUNCTION access_changed_notify();
"""

DOWNGRADE = """
DROP TRIGGER chief_assignment_access_changed ON chief_assignment;
DROP TRIGGER api_key_access_changed ON api_key;
DROP TRIGGER account_access_changed ON account;
DROP TRIGGER auth_session_access_changed ON auth_session;
DROP FUNCTION access_changed_notify();
ALTER TABLE api_key DROP COLUMN area;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
