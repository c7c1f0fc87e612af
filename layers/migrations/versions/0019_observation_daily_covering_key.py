"""Daily sums: the primary key carries the counts and the sum (INCLUDE), for index-only reads.

Measured by ``bench/observations_bench.py`` at 100 M observations: a month of daily means of
every section (7,000 datastreams × 30 days) read through the plain key visited 231,000
buffers, one heap page per row, since the rows of a datastream are written a day apart. With
``observations``, ``valid`` and ``valid_sum`` in the key's leaf entries the read is an
index-only scan of contiguous entries (the visibility map of past days is set by autovacuum;
today's rows, still updated at ingest, fall back to the heap). The key stays
(datastream_id, day), so the ingest's ON CONFLICT works as before.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE observation_daily DROP CONSTRAINT observation_daily_pkey")
    op.execute(
        "ALTER TABLE observation_daily ADD PRIMARY KEY (datastream_id, day) INCLUDE (observations, valid, valid_sum)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE observation_daily DROP CONSTRAINT observation_daily_pkey")
    op.execute("ALTER TABLE observation_daily ADD PRIMARY KEY (datastream_id, day)")
