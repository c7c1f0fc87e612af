"""Federation: copies of partners' OGC API Features collections (remote layers).

``remote_feature`` holds every remote layer's copy (one table, keyed by layer id and our
feature id; the declared properties in ``props``), with the source URL and when each row
version was fetched. A statement-level trigger records every change in ``layer_state`` /
``layer_change`` and sends the ``ecomap_layer_changed`` NOTIFY per remote layer, exactly as
the triggers of the catalog tables do (migration 0002), so tile caches and the HTTP cache in
front drop exactly the tiles a refresh changed. ``remote_layer_state`` keeps each remote
layer's fetch state: ETag, content hash, last check, fetch and change, feature count, last error.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

TRACK_FUNCTION = """
CREATE OR REPLACE FUNCTION ecomap_track_remote_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed record;
    rev bigint;
BEGIN
    FOR changed IN
        SELECT c.layer, ST_Extent(c.geom)::geometry AS box FROM ({rows}) AS c GROUP BY c.layer
    LOOP
        INSERT INTO layer_state AS s (layer, revision, updated_at) VALUES (changed.layer, 1, now())
        ON CONFLICT (layer) DO UPDATE SET revision = s.revision + 1, updated_at = now()
        RETURNING s.revision INTO rev;
        INSERT INTO layer_change (layer, revision, bbox) VALUES (changed.layer, rev, ST_SetSRID(changed.box, 4326));
        PERFORM pg_notify('ecomap_layer_changed', json_build_object(
            'layer', changed.layer,
            'revision', rev,
            'bbox', json_build_array(ST_XMin(changed.box), ST_YMin(changed.box),
                                     ST_XMax(changed.box), ST_YMax(changed.box))
        )::text);
    END LOOP;
    RETURN NULL;
END;
$$;
"""
EVENT_ROWS = {
    "insert": "SELECT layer, geom FROM new_rows",
    "delete": "SELECT layer, geom FROM old_rows",
    "update": "SELECT layer, geom FROM new_rows UNION ALL SELECT layer, geom FROM old_rows",
}
"""The changed rows of each event: a PL/pgSQL body may only name the transition tables its trigger has."""
TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE remote_feature (
            layer text NOT NULL,
            id bigint NOT NULL,
            remote_id text NOT NULL,
            geom geometry(Geometry, 4326) NOT NULL CHECK (ST_IsValid(geom)),
            geom_3857 geometry GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
            props jsonb NOT NULL DEFAULT '{}',
            source_url text NOT NULL,
            fetched_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (layer, id)
        )
        """
    )
    op.execute("COMMENT ON TABLE remote_feature IS 'Copies of partners'' OGC API collections (gis_service/federation)'")
    op.execute("COMMENT ON COLUMN remote_feature.fetched_at IS 'When this version of the feature was fetched'")
    op.execute("CREATE INDEX ix_remote_feature_geom_3857 ON remote_feature USING gist (geom_3857)")
    op.execute("CREATE INDEX ix_remote_feature_geom ON remote_feature USING gist (geom)")
    op.execute(
        """
        CREATE TABLE remote_layer_state (
            layer text PRIMARY KEY,
            source_url text NOT NULL,
            etag text,
            declaration text,
            content_hash text,
            feature_count integer NOT NULL DEFAULT 0,
            checked_at timestamptz,
            fetched_at timestamptz,
            changed_at timestamptz,
            last_error text,
            last_error_at timestamptz,
            errors integer NOT NULL DEFAULT 0
        )
        """
    )
    for column, comment in (
        ("checked_at", "Last time the partner was asked (200 or 304)"),
        ("fetched_at", "Last time the copy was confirmed current (a 200 validated, or a 304)"),
        ("changed_at", "Last time the copy changed"),
        ("errors", "Failed refreshes since the last good one"),
        ("declaration", "Digest of the declaration the copy was made by (another: the ETag is not sent)"),
    ):
        op.execute(f"COMMENT ON COLUMN remote_layer_state.{column} IS '{comment}'")
    for event, rows in EVENT_ROWS.items():
        op.execute(TRACK_FUNCTION.format(event=event, rows=rows))
        op.execute(
            f"CREATE TRIGGER ecomap_remote_feature_{event} AFTER {event.upper()} ON remote_feature "
            f"REFERENCING {TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION ecomap_track_remote_{event}()"
        )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS remote_feature")
    op.execute("DROP TABLE IF EXISTS remote_layer_state")
    for suffix in ("insert", "delete", "update"):
        op.execute(f"DROP FUNCTION IF EXISTS ecomap_track_remote_{suffix}()")
