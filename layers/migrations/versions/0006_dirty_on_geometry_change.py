"""Only geometry edits make generalized tile geometry stale.

0003 marked every updated feature dirty; an attribute-only edit (a name, an approval
document) then cost a recomputation of the layer's generalization. Tiles read attributes
from the layer table itself, so only a changed geometry (or id) needs it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MARK_DIRTY = """
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


PREVIOUS_MARK_DIRTY = """
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
    op.execute(MARK_DIRTY)


def downgrade() -> None:
    op.execute(PREVIOUS_MARK_DIRTY)
