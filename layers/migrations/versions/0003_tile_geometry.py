"""Tile geometry: Web Mercator copies, generalized geometry per zoom, dirty tracking.

- ``geom_3857``: a stored generated column (``ST_Transform(geom, 3857)``) with a GiST
  index on every layer table, so tile queries never reproject at request time and it
  can never disagree with ``geom``.
- ``<table>_gen (id, z, geom)``: geometry generalized for zoom ``z`` (coverage-simplified
  for polygons that share edges), computed by ``tiles.generalize`` at load/import time.
- ``layer_state.gen_revision``: bumped each time a layer's generalization is recomputed.
- ``gen_dirty (layer, id)``: features written since their generalization was computed.
  A trigger deletes their stale generalized rows and marks them here; tile queries
  simplify those few features on the fly until the generalization is recomputed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LAYER_TABLES = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay", "station")
GENERALIZED = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay")

DIRTY_FUNCTION = """
CREATE OR REPLACE FUNCTION ecomap_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT id FROM old_rows)', TG_ARGV[0] || '_gen');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO gen_dirty (layer, id) SELECT TG_ARGV[0], id FROM new_rows ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM gen_dirty WHERE layer = TG_ARGV[0] AND id IN (SELECT id FROM old_rows);
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('DELETE FROM %I', TG_ARGV[0] || '_gen');
        DELETE FROM gen_dirty WHERE layer = TG_ARGV[0];
    END IF;
    RETURN NULL;
END;
$$;
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("ALTER TABLE layer_state ADD COLUMN gen_revision bigint NOT NULL DEFAULT 0")
    for table in LAYER_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN geom_3857 geometry GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
        )
        op.execute(f"CREATE INDEX idx_{table}_geom_3857 ON {table} USING gist (geom_3857)")
    op.execute(
        "CREATE TABLE gen_dirty (layer text NOT NULL, id integer NOT NULL,"
        " marked_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (layer, id))"
    )
    op.execute(DIRTY_FUNCTION)
    for table in GENERALIZED:
        op.execute(
            f"CREATE TABLE {table}_gen (id integer NOT NULL,"
            " z smallint NOT NULL, geom geometry(Geometry, 3857) NOT NULL, PRIMARY KEY (z, id))"
        )
        op.execute(f"CREATE INDEX idx_{table}_gen_z_geom ON {table}_gen USING gist (z, geom)")
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_dirty_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ecomap_mark_dirty('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_dirty_update AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ecomap_mark_dirty('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_dirty_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ecomap_mark_dirty('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_dirty_truncate BEFORE TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ecomap_mark_dirty('{table}')"
        )


def downgrade() -> None:
    for table in GENERALIZED:
        for suffix in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS ecomap_{table}_dirty_{suffix} ON {table}")
        op.execute(f"DROP TABLE IF EXISTS {table}_gen")
    op.execute("DROP FUNCTION IF EXISTS ecomap_mark_dirty()")
    op.execute("DROP TABLE IF EXISTS gen_dirty")
    for table in LAYER_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS geom_3857")
    op.execute("ALTER TABLE layer_state DROP COLUMN gen_revision")
