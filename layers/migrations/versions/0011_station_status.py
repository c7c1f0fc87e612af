"""Station catalog for the standards, and the precomputed station status the map shows.

- ``station.water_target``: the section's water-quality target (水质目标): ``I``…``V`` for
  river and lake stations (GB 3838-2002), ``一类``…``四类`` for seawater stations (GB 3097-1997).
- ``station.standard``: which kind of standard applies: ``river``, ``lake`` (湖、库: lake TP
  limits, TN assessed), ``sea`` or ``air``; NULL for outfalls (discharge limits, not assessed).
- ``station_status``: one small row per station with its current class / AQI and colour,
  written by ``gis_service.monitoring.status`` (throttled, only rows whose status changed).
  Station tiles join it on the primary key (never the observation table). A statement that
  changes rows bumps the station layer's revision and logs the stations' extent exactly as a
  station edit does (``ecomap_layer_changed``: the tile caches invalidate those tiles), and
  sends one ``ecomap_monitoring`` notification per changed station (the map's event stream).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE station ADD COLUMN water_target text;
ALTER TABLE station ADD COLUMN standard text;
ALTER TABLE station ADD CONSTRAINT ck_station_standard CHECK (standard IN ('river', 'lake', 'sea', 'air'));
ALTER TABLE station ADD CONSTRAINT ck_station_water_target CHECK (
    water_target IS NULL
    OR (standard IN ('river', 'lake') AND water_target IN ('I', 'II', 'III', 'IV', 'V'))
    OR (standard = 'sea' AND water_target IN ('一类', '二类', '三类', '四类')));

CREATE TABLE station_status (
    station_id integer PRIMARY KEY REFERENCES station (id) ON DELETE CASCADE,
    observed_at timestamptz,
    water_class text,
    meets_target boolean,
    aqi integer,
    category text,
    colour text,
    standard text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION ecomap_station_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
        RETURN NULL;  -- no row changed (or the stations are gone)
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

CREATE TRIGGER station_status_insert AFTER INSERT ON station_status REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecomap_station_status_changed();
CREATE TRIGGER station_status_update AFTER UPDATE ON station_status REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecomap_station_status_changed();
CREATE TRIGGER station_status_delete AFTER DELETE ON station_status REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ecomap_station_status_changed();
"""

DOWNGRADE = """
DROP TABLE station_status;
DROP FUNCTION ecomap_station_status_changed();
ALTER TABLE station DROP CONSTRAINT ck_station_water_target;
ALTER TABLE station DROP CONSTRAINT ck_station_standard;
ALTER TABLE station DROP COLUMN standard;
ALTER TABLE station DROP COLUMN water_target;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
