"""Section status on river and bay tiles: a station's class change invalidates their tiles too.

River segment tiles carry the current class of the water stations on the segment
(``station.river_id``), bay tiles that of the sea stations inside the bay (``tiles.status``).
The ``station_status`` trigger of migration 0011 bumped only the station layer; now a change of
statement also bumps the river layer with the extent of the changed stations' segments and the
bay layer with the extent of the bays holding them (each only when there are such), and logs
and notifies each as any layer change, so cached river and bay tiles are invalidated exactly
where a class changed.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

BUMP = """
CREATE FUNCTION ecomap_bump_layer(layer_id text, box geometry) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rev bigint;
BEGIN
    IF box IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO layer_state AS s (layer, revision, updated_at) VALUES (layer_id, 1, now())
    ON CONFLICT (layer) DO UPDATE SET revision = s.revision + 1, updated_at = now()
    RETURNING s.revision INTO rev;
    INSERT INTO layer_change (layer, revision, bbox) VALUES (layer_id, rev, ST_SetSRID(box, 4326));
    PERFORM pg_notify('ecomap_layer_changed', json_build_object(
        'layer', layer_id, 'revision', rev,
        'bbox', json_build_array(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)))::text);
END;
$$;
"""

FUNCTION = """
CREATE OR REPLACE FUNCTION ecomap_station_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed integer[];
    box geometry;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT array_agg(o.station_id) INTO changed FROM old_rows AS o;
    ELSE
        SELECT array_agg(n.station_id) INTO changed FROM new_rows AS n;
    END IF;
    SELECT ST_Extent(s.geom)::geometry INTO box FROM station AS s WHERE s.id = ANY(changed);
    IF box IS NULL THEN
        RETURN NULL;  -- no row changed (or the stations are gone)
    END IF;
    PERFORM ecomap_bump_layer('station', box);
    PERFORM ecomap_bump_layer('river', (SELECT ST_Extent(r.geom)::geometry FROM river AS r
        WHERE r.id IN (SELECT s.river_id FROM station AS s WHERE s.id = ANY(changed))));
    PERFORM ecomap_bump_layer('bay', (SELECT ST_Extent(b.geom)::geometry FROM bay AS b
        WHERE EXISTS (SELECT 1 FROM station AS s WHERE s.id = ANY(changed) AND s.standard = 'sea'
                      AND ST_Intersects(s.geom, b.geom))));
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ecomap_monitoring', json_build_object(
            'event', 'status', 'station_id', n.station_id, 'observed_at', n.observed_at,
            'water_class', n.water_class, 'meets_target', n.meets_target, 'aqi', n.aqi,
            'category', n.category, 'colour', n.colour)::text)
        FROM new_rows AS n;
    END IF;
    RETURN NULL;
END;
$$;
"""

PREVIOUS = """
CREATE OR REPLACE FUNCTION ecomap_station_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    box geometry;
    rev bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT ST_Extent(s.geom)::geometry INTO box FROM station AS s JOIN old_rows AS o ON o.station_id = s.id;
    ELSE
        SELECT ST_Extent(s.geom)::geometry INTO box FROM station AS s JOIN new_rows AS n ON n.station_id = s.id;
    END IF;
    IF box IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO layer_state AS s (layer, revision, updated_at) VALUES ('station', 1, now())
    ON CONFLICT (layer) DO UPDATE SET revision = s.revision + 1, updated_at = now()
    RETURNING s.revision INTO rev;
    INSERT INTO layer_change (layer, revision, bbox) VALUES ('station', rev, ST_SetSRID(box, 4326));
    PERFORM pg_notify('ecomap_layer_changed', json_build_object(
        'layer', 'station', 'revision', rev,
        'bbox', json_build_array(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)))::text);
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ecomap_monitoring', json_build_object(
            'event', 'status', 'station_id', n.station_id, 'observed_at', n.observed_at,
            'water_class', n.water_class, 'meets_target', n.meets_target, 'aqi', n.aqi,
            'category', n.category, 'colour', n.colour)::text)
        FROM new_rows AS n;
    END IF;
    RETURN NULL;
END;
$$;
"""
"""Migration 0011's function, restored on downgrade."""


def upgrade() -> None:
    op.execute(BUMP)
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(PREVIOUS)
    op.execute("DROP FUNCTION ecomap_bump_layer(text, geometry)")
