"""The region as data: each river segment, watershed and station names its city, and a
cross-boundary section (地市交接断面) its upstream and downstream city.

- ``river.city``, ``watershed.city``, ``station.city``: the 6-digit adcode of the city
  (厦门 350200, 漳州 350600, 泉州 350500, 龙岩 350800, 三明 350400) the feature lies in; a
  watershed's is the city of its outlet. Existing stations take it from their district adcode.
- ``station.upstream_city``, ``station.downstream_city``: set (both, and different) on a
  section station that is a cross-boundary section: the upstream city answers for the water
  leaving it, assessed monthly against the section's target (``gis_service.region``).

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE river ADD COLUMN city varchar(6);
ALTER TABLE watershed ADD COLUMN city varchar(6);
ALTER TABLE station ADD COLUMN city varchar(6);
ALTER TABLE station ADD COLUMN upstream_city varchar(6);
ALTER TABLE station ADD COLUMN downstream_city varchar(6);
ALTER TABLE station ADD CONSTRAINT ck_station_cross_boundary CHECK (
    (upstream_city IS NULL AND downstream_city IS NULL)
    OR (kind = 'section' AND upstream_city IS NOT NULL AND downstream_city IS NOT NULL
        AND upstream_city <> downstream_city));
CREATE INDEX ix_station_cross_boundary ON station (upstream_city, downstream_city)
    WHERE upstream_city IS NOT NULL;
UPDATE station SET city = left(adcode, 4) || '00' WHERE adcode ~ '^[0-9]{6}$';
"""

DOWNGRADE = """
DROP INDEX ix_station_cross_boundary;
ALTER TABLE station DROP CONSTRAINT ck_station_cross_boundary;
ALTER TABLE station DROP COLUMN downstream_city;
ALTER TABLE station DROP COLUMN upstream_city;
ALTER TABLE station DROP COLUMN city;
ALTER TABLE watershed DROP COLUMN city;
ALTER TABLE river DROP COLUMN city;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
