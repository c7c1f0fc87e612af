"""Label points: one stored point on the surface of each polygon, for map labels.

Labelling the clipped polygon parts of each tile repeats a name once per tile; tiles
carry these points instead (a ``<layer>_label`` MVT layer), one label per feature.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

POLYGON_TABLES = ("district", "redline", "protected_area", "water_source_zone", "watershed", "bay")
HISTORY_TABLES = ("redline", "protected_area")


def upgrade() -> None:
    for table in POLYGON_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN label_3857 geometry"
            " GENERATED ALWAYS AS (ST_Transform(ST_PointOnSurface(geom), 3857)) STORED"
        )
        op.execute(f"CREATE INDEX idx_{table}_label_3857 ON {table} USING gist (label_3857)")
    for table in HISTORY_TABLES:  # history copies every column of its layer (migration 0004)
        op.execute(f"ALTER TABLE {table}_history ADD COLUMN label_3857 geometry")
        op.execute(f"UPDATE {table}_history SET label_3857 = ST_Transform(ST_PointOnSurface(geom), 3857)")


def downgrade() -> None:
    for table in HISTORY_TABLES:
        op.execute(f"ALTER TABLE {table}_history DROP COLUMN IF EXISTS label_3857")
    for table in POLYGON_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS label_3857")
