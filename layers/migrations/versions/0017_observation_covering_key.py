"""Observation store: the primary key carries value and quality (INCLUDE), for index-only reads.

Measured by ``bench/observations_bench.py``: the ingest writes observations in time order,
so one datastream's hourly values lie one per heap page; a year's series (8,760 values)
read through the plain key visited 8,760 heap pages, and a month of daily means of every
section visited every page of the month's partition. With value and quality in the key's
leaf entries both queries are index-only scans of contiguous entries (the visibility map
of a month is set by autovacuum once its inserts slow down; the current month's recent
pages fall back to the heap). The key stays (datastream_id, phenomenon_time): ON CONFLICT
and partition attachment work as before; each entry grows by 16 bytes.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE observation DROP CONSTRAINT observation_pkey")
    op.execute("ALTER TABLE observation ADD PRIMARY KEY (datastream_id, phenomenon_time) INCLUDE (value, quality)")


def downgrade() -> None:
    op.execute("ALTER TABLE observation DROP CONSTRAINT observation_pkey")
    op.execute("ALTER TABLE observation ADD PRIMARY KEY (datastream_id, phenomenon_time)")
