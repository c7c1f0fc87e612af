"""Per-layer change tracking: revision bumps, a change log with bounding boxes, NOTIFY.

Any write to a layer table — through the API, an import, or plain SQL — bumps the
layer's revision in ``layer_state``, records the bounding box of the changed rows
(old and new geometries) in ``layer_change`` and sends a NOTIFY on channel
``ecomap_layer_changed`` with ``{"layer", "revision", "bbox"}`` (bbox null = whole
layer, e.g. after TRUNCATE). Tile caches use it to invalidate exactly the affected tiles.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LAYER_TABLES = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay", "station")

TRACK_FUNCTION = """
CREATE OR REPLACE FUNCTION ecomap_track_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    box geometry;
    rev bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT ST_Extent(geom)::geometry INTO box FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT ST_Extent(geom)::geometry INTO box
        FROM (SELECT geom FROM new_rows UNION ALL SELECT geom FROM old_rows) AS changed;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT ST_Extent(geom)::geometry INTO box FROM old_rows;
    END IF;
    IF TG_OP <> 'TRUNCATE' AND box IS NULL THEN
        RETURN NULL;  -- the statement changed no row
    END IF;
    INSERT INTO layer_state AS s (layer, revision, updated_at) VALUES (TG_ARGV[0], 1, now())
    ON CONFLICT (layer) DO UPDATE SET revision = s.revision + 1, updated_at = now()
    RETURNING s.revision INTO rev;
    INSERT INTO layer_change (layer, revision, bbox) VALUES (TG_ARGV[0], rev, ST_SetSRID(box, 4326));
    PERFORM pg_notify('ecomap_layer_changed', json_build_object(
        'layer', TG_ARGV[0],
        'revision', rev,
        'bbox', CASE WHEN box IS NULL THEN NULL
                     ELSE json_build_array(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)) END
    )::text);
    RETURN NULL;
END;
$$;
"""

TOUCH_FUNCTION = """
CREATE OR REPLACE FUNCTION ecomap_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
"""


def upgrade() -> None:
    op.create_table(
        "layer_change",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column(
            "bbox",
            geoalchemy2.types.Geometry(srid=4326, spatial_index=False),
            nullable=True,
            comment="Extent of the changed rows; NULL means the whole layer",
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_layer_change_layer_revision", "layer_change", ["layer", "revision"])
    op.execute(TRACK_FUNCTION)
    op.execute(TOUCH_FUNCTION)
    for table in LAYER_TABLES:
        op.execute(f"INSERT INTO layer_state (layer) VALUES ('{table}') ON CONFLICT DO NOTHING")
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_insert AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ecomap_track_change('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_update AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION ecomap_track_change('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_delete AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ecomap_track_change('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION ecomap_track_change('{table}')"
        )
        op.execute(
            f"CREATE TRIGGER ecomap_{table}_touch BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ecomap_touch_updated_at()"
        )


def downgrade() -> None:
    for table in LAYER_TABLES:
        for suffix in ("insert", "update", "delete", "truncate", "touch"):
            op.execute(f"DROP TRIGGER IF EXISTS ecomap_{table}_{suffix} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS ecomap_track_change()")
    op.execute("DROP FUNCTION IF EXISTS ecomap_touch_updated_at()")
    op.drop_index("ix_layer_change_layer_revision", table_name="layer_change")
    op.drop_table("layer_change")
    op.execute("DELETE FROM layer_state")
