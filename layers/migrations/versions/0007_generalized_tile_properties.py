"""Low-zoom tile properties stored with the generalized geometry.

``<table>_gen.props`` (jsonb) holds, for each feature and zoom, the properties its tiles
carry at that zoom (``tile_minzoom``), written by ``tiles.generalize`` with the geometry.
Low-zoom tiles then need no join back to the layer table (about half their database
time on large layers). An attribute-only edit sets ``props`` of the feature's rows to
NULL; tile queries then read that feature's properties from the layer table until the
next generalization, so tiles never show stale attributes. Geometry edits still delete
the generalized rows and mark the feature dirty (0006).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

GENERALIZED = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay")

# The trigger function as 0006 left it (a snapshot: migrations never import each other).
PREVIOUS_MARK_DIRTY = """
CREATE OR REPLACE FUNCTION ecomap_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT o.id FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id'
                       ' WHERE n.id IS NULL OR n.geom IS DISTINCT FROM o.geom)', TG_ARGV[0] || '_gen');
        INSERT INTO gen_dirty (layer, id)
        SELECT TG_ARGV[0], n.id FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id
        WHERE o.id IS NULL OR n.geom IS DISTINCT FROM o.geom
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO gen_dirty (layer, id) SELECT TG_ARGV[0], id FROM new_rows ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT id FROM old_rows)', TG_ARGV[0] || '_gen');
        DELETE FROM gen_dirty WHERE layer = TG_ARGV[0] AND id IN (SELECT id FROM old_rows);
    ELSE  -- TRUNCATE
        EXECUTE format('DELETE FROM %I', TG_ARGV[0] || '_gen');
        DELETE FROM gen_dirty WHERE layer = TG_ARGV[0];
    END IF;
    RETURN NULL;
END;
$$;
"""


# 0007 adds one step to 0006's function: attribute-only edits clear the stored properties.
_ATTRIBUTE_EDITS = """
        -- Attribute-only edits: tiles read these features' properties from the layer table.
        EXECUTE format('UPDATE %I SET props = NULL WHERE props IS NOT NULL AND id IN (SELECT id FROM new_rows)',
                       TG_ARGV[0] || '_gen');
        INSERT INTO gen_dirty (layer, id)"""
MARK_DIRTY = PREVIOUS_MARK_DIRTY.replace("\n        INSERT INTO gen_dirty (layer, id)", _ATTRIBUTE_EDITS, 1)


def upgrade() -> None:
    for table in GENERALIZED:
        op.execute(f"ALTER TABLE {table}_gen ADD COLUMN props jsonb")
    op.execute(MARK_DIRTY)


def downgrade() -> None:
    op.execute(PREVIOUS_MARK_DIRTY)
    for table in GENERALIZED:
        op.execute(f"ALTER TABLE {table}_gen DROP COLUMN props")
