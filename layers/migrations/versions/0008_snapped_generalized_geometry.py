"""Generalized geometry stored snapped to its zoom's tile grid.

``<table>_gen.grid_extent`` records the MVT extent whose grid the row's geometry was
snapped to (valid, exterior rings clockwise) by ``tiles.generalize``; NULL for rows
written before, and for features smaller than a grid cell (left as simplified). A
low-zoom tile then takes a feature lying wholly inside it by a plain scale and
translation instead of ``ST_AsMVTGeom`` (whose validity work is most of a low-zoom
tile's database time); features crossing the tile edge, edited features and rows of
another extent still go through ``ST_AsMVTGeom``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GENERALIZED = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay")


def upgrade() -> None:
    for table in GENERALIZED:
        op.execute(f"ALTER TABLE {table}_gen ADD COLUMN grid_extent smallint")


def downgrade() -> None:
    for table in GENERALIZED:
        op.execute(f"ALTER TABLE {table}_gen DROP COLUMN grid_extent")
