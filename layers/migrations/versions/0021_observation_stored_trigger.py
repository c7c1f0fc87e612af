"""Observation store: one statement-level trigger keeps what every write path must keep.

Every statement that inserts observations — the HJ 212 receiver's group commit, the bulk
COPY path, SensorThings creates, the lab-results import, the demo loader — fires
``observation_stored`` once, with the rows it really inserted (``REFERENCING NEW TABLE``:
a re-sent observation that ``ON CONFLICT DO NOTHING`` skipped is not in it). In that
statement's transaction the trigger

- checks that every inserted row's datastream exists (what the foreign key to ``datastream``
  checked row by row: one anti-join per statement instead of one locking query per row,
  which cost as much as the insert itself in ``bench/ingest_bench.py``); a datastream
  deleted meanwhile cannot leave orphans: deleting datastreams first takes a SHARE lock on
  ``observation`` (it waits for the inserting transactions to end and holds off new ones
  until it commits), then deletes their observations (the former ``ON DELETE CASCADE``);
  truncating ``datastream`` truncates ``observation``;
- moves ``datastream_latest`` forward (newest phenomenon time per datastream; a late
  older value never replaces a newer one);
- adds the hourly observations to their Beijing day's counts and sum (``observation_daily``,
  migration 0018), which the SensorThings creates and the demo loader did not fill: the
  upgrade recomputes the table from the stored observations;
- sends one ``ecomap_observation`` notification per station (``{"event": "observation",
  "station_id", "mn", "time": newest phenomenon time, "inserted", "source"}``), delivered at
  commit to every worker's LISTEN (the map's event stream, the status refresh).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION observation_stored() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    inserted bigint;
    known bigint;
BEGIN
    WITH n AS (
        SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result_time, value, flag, quality
        FROM new_rows ORDER BY datastream_id, phenomenon_time DESC
    ), moved AS (  -- a plain update of the rows there (cheaper than an upsert: no insertion attempt)
        UPDATE datastream_latest l SET phenomenon_time = n.phenomenon_time, result_time = n.result_time,
            value = n.value, flag = n.flag, quality = n.quality
        FROM n WHERE l.datastream_id = n.datastream_id AND l.phenomenon_time < n.phenomenon_time
    )  -- a datastream's first value (another transaction may insert it meanwhile: then forward only)
    INSERT INTO datastream_latest AS l (datastream_id, phenomenon_time, result_time, value, flag, quality)
    SELECT * FROM n WHERE NOT EXISTS (SELECT 1 FROM datastream_latest x WHERE x.datastream_id = n.datastream_id)
    ON CONFLICT (datastream_id) DO UPDATE SET phenomenon_time = EXCLUDED.phenomenon_time,
        result_time = EXCLUDED.result_time, value = EXCLUDED.value, flag = EXCLUDED.flag, quality = EXCLUDED.quality
    WHERE l.phenomenon_time < EXCLUDED.phenomenon_time;

    -- One look-up of each row's datastream serves the check, the daily sums and the notifications.
    WITH e AS MATERIALIZED (
        SELECT n.datastream_id, n.phenomenon_time, n.value, n.quality, n.source, d.station_id, d.aggregation
        FROM new_rows n JOIN datastream d ON d.id = n.datastream_id
    ), daily AS (
        INSERT INTO observation_daily AS y (datastream_id, day, observations, valid, valid_sum)
        SELECT datastream_id, (phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date, count(*),
               count(*) FILTER (WHERE quality = 'good'), coalesce(sum(value) FILTER (WHERE quality = 'good'), 0)
        FROM e WHERE aggregation = 'hour'
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (datastream_id, day) DO UPDATE SET observations = y.observations + EXCLUDED.observations,
            valid = y.valid + EXCLUDED.valid, valid_sum = y.valid_sum + EXCLUDED.valid_sum
    ), notified AS (
        SELECT pg_notify('ecomap_observation', json_build_object(
            'event', 'observation', 'station_id', x.station_id, 'mn', x.mn, 'time', x.newest,
            'inserted', x.inserted, 'source', x.source)::text)
        FROM (SELECT e.station_id, s.mn, max(e.phenomenon_time) AS newest, count(*) AS inserted,
                     min(e.source) AS source
              FROM e JOIN station s ON s.id = e.station_id GROUP BY e.station_id, s.mn) AS x
    )
    SELECT (SELECT count(*) FROM new_rows), (SELECT count(*) FROM e) + 0 * (SELECT count(*) FROM notified)
    INTO inserted, known;
    IF known < inserted THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert into observation: %s of %s rows name no existing datastream', inserted - known,
                             inserted),
            TABLE = 'observation', CONSTRAINT = 'observation_datastream_exists';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER observation_stored AFTER INSERT ON observation REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observation_stored();

CREATE FUNCTION datastream_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE observation IN SHARE MODE;  -- inserting transactions end first, new ones wait for this one
    DELETE FROM observation o USING old_rows d WHERE o.datastream_id = d.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER datastream_deleted AFTER DELETE ON datastream REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION datastream_deleted();

CREATE FUNCTION datastream_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE observation;
    RETURN NULL;
END;
$$;

CREATE TRIGGER datastream_truncated AFTER TRUNCATE ON datastream
    FOR EACH STATEMENT EXECUTE FUNCTION datastream_truncated();

ALTER TABLE observation DROP CONSTRAINT observation_datastream_id_fkey;

TRUNCATE observation_daily;
INSERT INTO observation_daily (datastream_id, day, observations, valid, valid_sum)
SELECT o.datastream_id, (o.phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date, count(*),
       count(*) FILTER (WHERE o.quality = 'good'), coalesce(sum(o.value) FILTER (WHERE o.quality = 'good'), 0)
FROM observation o JOIN datastream d ON d.id = o.datastream_id
WHERE d.aggregation = 'hour'
GROUP BY 1, 2;
"""

DOWNGRADE = """
DELETE FROM observation o WHERE NOT EXISTS (SELECT 1 FROM datastream d WHERE d.id = o.datastream_id);
ALTER TABLE observation ADD CONSTRAINT observation_datastream_id_fkey
    FOREIGN KEY (datastream_id) REFERENCES datastream (id) ON DELETE CASCADE;
DROP TRIGGER datastream_truncated ON datastream;
DROP FUNCTION datastream_truncated();
DROP TRIGGER datastream_deleted ON datastream;
DROP FUNCTION datastream_deleted();
DROP TRIGGER observation_stored ON observation;
DROP FUNCTION observation_stored();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
