"""Incremental generalization: dirty features remember where they were.

``gen_dirty.old_extent`` (Web Mercator envelope) holds the extent an edited feature had
before its first geometry edit since the last generalization, and a deleted feature now
stays listed (with its old extent) instead of being dropped from ``gen_dirty``. The
incremental generalizer (``tiles/incremental.py``) re-generalizes the coverage neighbours
of both the new geometry and the old extent, so a feature that moved away or was removed
no longer shapes its former neighbours' generalized edges. Tile queries join ``gen_dirty``
to the layer table, so deleted ids listed there draw nothing.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# The trigger function as 0007 left it (a snapshot: migrations never import each other).
PREVIOUS_MARK_DIRTY = """
CREATE OR REPLACE FUNCTION ecomap_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT o.id FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id'
                       ' WHERE n.id IS NULL OR n.geom IS DISTINCT FROM o.geom)', TG_ARGV[0] || '_gen');
        -- Attribute-only edits: tiles read these features' properties from the layer table.
        EXECUTE format('UPDATE %I SET props = NULL WHERE props IS NOT NULL AND id IN (SELECT id FROM new_rows)',
                       TG_ARGV[0] || '_gen');
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

# A feature keeps the extent of its first listing (the generalized rows then showed it there);
# an inserted one has none. ON CONFLICT keeps an existing extent and fills a missing one.
MARK_DIRTY = """
CREATE OR REPLACE FUNCTION ecomap_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT o.id FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id'
                       ' WHERE n.id IS NULL OR n.geom IS DISTINCT FROM o.geom)', TG_ARGV[0] || '_gen');
        -- Attribute-only edits: tiles read these features' properties from the layer table.
        EXECUTE format('UPDATE %I SET props = NULL WHERE props IS NOT NULL AND id IN (SELECT id FROM new_rows)',
                       TG_ARGV[0] || '_gen');
        INSERT INTO gen_dirty AS d (layer, id, old_extent)
        SELECT TG_ARGV[0], o.id, ST_Envelope(o.geom_3857) FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id
        WHERE n.id IS NULL OR n.geom IS DISTINCT FROM o.geom
        ON CONFLICT (layer, id) DO UPDATE SET old_extent = coalesce(d.old_extent, EXCLUDED.old_extent);
        INSERT INTO gen_dirty (layer, id)
        SELECT TG_ARGV[0], n.id FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id
        WHERE o.id IS NULL
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO gen_dirty (layer, id) SELECT TG_ARGV[0], id FROM new_rows ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('DELETE FROM %I WHERE id IN (SELECT id FROM old_rows)', TG_ARGV[0] || '_gen');
        INSERT INTO gen_dirty AS d (layer, id, old_extent)
        SELECT TG_ARGV[0], id, ST_Envelope(geom_3857) FROM old_rows
        ON CONFLICT (layer, id) DO UPDATE SET old_extent = coalesce(d.old_extent, EXCLUDED.old_extent);
    ELSE  -- TRUNCATE
        EXECUTE format('DELETE FROM %I', TG_ARGV[0] || '_gen');
        DELETE FROM gen_dirty WHERE layer = TG_ARGV[0];
    END IF;
    RETURN NULL;
END;
$$;
"""


def upgrade() -> None:
    op.execute("ALTER TABLE gen_dirty ADD COLUMN old_extent geometry(Geometry, 3857)")
    op.execute(MARK_DIRTY)


def downgrade() -> None:
    op.execute(PREVIOUS_MARK_DIRTY)
    op.execute("ALTER TABLE gen_dirty DROP COLUMN old_extent")
