"""Observation store: daily sums of hourly values per datastream, kept at ingest.

``observation_daily`` holds, per hourly datastream and Beijing day (UTC+8, the day HJ 212
times and the standards' daily means use), how many observations were stored, how many of
them are valid (quality ``good``) and the sum of the valid values: a daily mean and its
validity (the standards engine's minimum of valid hours) without reading the day's rows.
The ingest adds each newly stored hourly observation in the same transaction (a re-sent one
adds nothing). Measured by ``bench/observations_bench.py``: a month of daily means of every
section read 5 M hourly rows from the store (seconds at 100 M observations); from this
table it reads one row per section, factor and day. The upgrade fills it from the
observations already stored.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE observation_daily (
    datastream_id bigint NOT NULL REFERENCES datastream (id) ON DELETE CASCADE,
    day date NOT NULL,
    observations integer NOT NULL,
    valid integer NOT NULL,
    valid_sum double precision NOT NULL,
    PRIMARY KEY (datastream_id, day)
);

INSERT INTO observation_daily (datastream_id, day, observations, valid, valid_sum)
SELECT o.datastream_id, (o.phenomenon_time AT TIME ZONE 'Asia/Shanghai')::date, count(*),
       count(*) FILTER (WHERE o.quality = 'good'), coalesce(sum(o.value) FILTER (WHERE o.quality = 'good'), 0)
FROM observation o JOIN datastream d ON d.id = o.datastream_id
WHERE d.aggregation = 'hour'
GROUP BY 1, 2;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE observation_daily")
