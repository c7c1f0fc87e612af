"""GeoAlchemy2 models of the layer tables, the chiefs and the change-tracking table.

All geometries are stored in EPSG:4326 with a GiST index. Each feature has a stable
integer id (an identity column). Every layer table also carries ``is_sample`` (demo
data is flagged so nobody mistakes it for official boundaries) and ``updated_at``.
Change tracking per layer lives in ``layer_state`` (bumped by triggers, see the
migrations), so caches can be invalidated exactly.
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _geom(kind: str) -> Mapped[object]:
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=True), nullable=False)


class FeatureMixin:
    """Columns shared by every layer table."""

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    is_sample: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class District(FeatureMixin, Base):
    __tablename__ = "district"
    adcode: Mapped[str] = mapped_column(String(6), unique=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class RedLine(FeatureMixin, Base):
    __tablename__ = "redline"
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    function_type: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(Text)
    marine_class: Mapped[str | None] = mapped_column(Text)
    area_km2: Mapped[float | None] = mapped_column(Float)
    adcode: Mapped[str | None] = mapped_column(String(6))
    protection_target: Mapped[str | None] = mapped_column(Text)
    control_rules: Mapped[str | None] = mapped_column(Text)
    approval_doc: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    geom = _geom("MULTIPOLYGON")
    __table_args__ = (
        CheckConstraint("domain IN ('陆域', '海域')", name="domain"),
        CheckConstraint("marine_class IS NULL OR domain = '海域'", name="marine_class_at_sea"),
    )


class ProtectedArea(FeatureMixin, Base):
    __tablename__ = "protected_area"
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    area_name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(Text)
    zone: Mapped[str] = mapped_column(Text)
    zoning_scheme: Mapped[str | None] = mapped_column(Text)
    established: Mapped[int | None] = mapped_column(Integer)
    area_ha: Mapped[float | None] = mapped_column(Float)
    geom = _geom("MULTIPOLYGON")


class WaterSourceZone(FeatureMixin, Base):
    __tablename__ = "water_source_zone"
    name: Mapped[str] = mapped_column(Text)
    source_name: Mapped[str] = mapped_column(Text)
    zone: Mapped[str] = mapped_column(Text)
    part: Mapped[str] = mapped_column(Text)
    water_target: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")
    __table_args__ = (CheckConstraint("zone IN ('一级', '二级', '准保护区')", name="zone"),)


class Watershed(FeatureMixin, Base):
    __tablename__ = "watershed"
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("watershed.id", ondelete="SET NULL"), index=True)
    downstream_id: Mapped[int | None] = mapped_column(ForeignKey("watershed.id", ondelete="SET NULL"), index=True)
    area_km2: Mapped[float | None] = mapped_column(Float)
    city: Mapped[str | None] = mapped_column(String(6))  # the city of the outlet (migration 0022)
    geom = _geom("MULTIPOLYGON")
    __table_args__ = (CheckConstraint("level IN ('basin', 'sub_basin', 'small')", name="level"),)


class River(FeatureMixin, Base):
    __tablename__ = "river"
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(Text)
    length_km: Mapped[float | None] = mapped_column(Float)
    target_class: Mapped[str | None] = mapped_column(Text)
    downstream_id: Mapped[int | None] = mapped_column(ForeignKey("river.id", ondelete="SET NULL"), index=True)
    watershed_id: Mapped[int | None] = mapped_column(ForeignKey("watershed.id", ondelete="SET NULL"), index=True)
    city: Mapped[str | None] = mapped_column(String(6))  # city adcode (migration 0022)
    geom = _geom("MULTILINESTRING")


class Bay(FeatureMixin, Base):
    __tablename__ = "bay"
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    area_km2: Mapped[float | None] = mapped_column(Float)
    target_class: Mapped[str | None] = mapped_column(Text)
    geom = _geom("MULTIPOLYGON")


class Station(FeatureMixin, Base):
    __tablename__ = "station"
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    operator: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    adcode: Mapped[str | None] = mapped_column(String(6))
    river_id: Mapped[int | None] = mapped_column(ForeignKey("river.id", ondelete="SET NULL"), index=True)
    mn: Mapped[str | None] = mapped_column(Text, unique=True)  # HJ 212 device code (migration 0010)
    water_target: Mapped[str | None] = mapped_column(Text)  # 水质目标 (migration 0011)
    standard: Mapped[str | None] = mapped_column(Text)  # river / lake / sea / air (migration 0011)
    city: Mapped[str | None] = mapped_column(String(6))  # city adcode (migration 0022)
    upstream_city: Mapped[str | None] = mapped_column(String(6))  # cross-boundary section (migration 0022)
    downstream_city: Mapped[str | None] = mapped_column(String(6))
    geom = _geom("POINT")
    __table_args__ = (
        CheckConstraint(
            "kind IN ('air_national', 'air_local', 'water_auto', 'seawater', 'drinking_intake', 'outfall', 'section')",
            name="kind",
        ),
        CheckConstraint("standard IN ('river', 'lake', 'sea', 'air')", name="standard"),
        CheckConstraint(
            "(upstream_city IS NULL AND downstream_city IS NULL) OR (kind = 'section' AND upstream_city IS NOT NULL"
            " AND downstream_city IS NOT NULL AND upstream_city <> downstream_city)",
            name="cross_boundary",
        ),
    )


class Chief(Base):
    """A river chief (河长) or bay chief (湾长)."""

    __tablename__ = "chief"
    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    adcode: Mapped[str | None] = mapped_column(String(6))
    title: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    is_sample: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    __table_args__ = (
        CheckConstraint("role IN ('river', 'bay')", name="role"),
        CheckConstraint("level IN ('city', 'district', 'town', 'village')", name="level"),
    )


class ChiefAssignment(Base):
    """A chief's responsibility for one river segment, bay or watershed."""

    __tablename__ = "chief_assignment"
    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    chief_id: Mapped[int] = mapped_column(ForeignKey("chief.id", ondelete="CASCADE"), index=True)
    layer: Mapped[str] = mapped_column(Text)
    feature_id: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        CheckConstraint("layer IN ('river', 'bay', 'watershed')", name="layer"),
        UniqueConstraint("chief_id", "layer", "feature_id", name="uq_chief_assignment_target"),
    )


class LayerState(Base):
    """Per-layer change tracking: a revision bumped by triggers on every write."""

    __tablename__ = "layer_state"
    layer: Mapped[str] = mapped_column(Text, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    sample_data: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


LAYER_TABLES = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay", "station")
