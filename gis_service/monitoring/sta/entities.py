"""The SensorThings data model mapped onto the observation store: entity sets, their
properties as SQL expressions, and the navigation links between them.

Every SQL text here is a constant of this module (``{a}`` is the entity's table alias, filled
in by ``queries``; ``{station}`` what the caller reads of the station table, filled in by the
caller's ``visibility.Model``); the only values are the HJ 212 factor table and a caller's
scope area, bound as parameters.

- Things, Locations, HistoricalLocations, FeaturesOfInterest and Sensors are views of the
  ``station`` table (one each per station, sharing the station id): a station never moves, so
  its one HistoricalLocation has the time its record last changed; its Sensor is the station's
  data logger (HJ 212 device code ``mn``).
- ObservedProperties are the HJ 212 factors (``hj212.factors``), identified by factor code.
- Datastreams are ``datastream`` rows; Observations ``observation`` rows, whose ``@iot.id`` is
  ``datastream id × 10¹³ + phenomenon time in epoch milliseconds`` (the table's key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from gis_service.monitoring.hj212.factors import FACTORS

Kind = Literal["number", "text", "time", "geometry", "json", "bool"]

OBSERVATION_ID_FACTOR = 10**13
"""Observation ids: datastream id × 10¹³ + epoch milliseconds (good until the year 2286)."""

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class Prop:
    """A property: the SQL expression over ``{a}`` and what kind of value it is."""

    sql: str
    kind: Kind
    filterable: bool = True


@dataclass(frozen=True)
class Nav:
    """A navigation link: ``key`` is the value over the parent ``{p}`` that identifies the related
    entities, ``match`` the condition over the related entity ``{a}`` and that value ``{k}``."""

    target: str
    many: bool
    key: str
    match: str
    key_kind: Literal["bigint", "text"] = "bigint"


@dataclass(frozen=True)
class Entity:
    """One entity type of the data model."""

    name: str
    plural: str
    source: str
    id_sql: str
    id_kind: Literal["number", "text"]
    props: dict[str, Prop]
    navs: dict[str, Nav]
    sub: dict[str, dict[str, Prop]] = field(default_factory=dict)
    """Members of JSON properties that filters and orderings may name (``unitOfMeasurement/symbol``)."""
    default_order: tuple[str, ...] = ("{a}.id",)
    source_params: tuple = ()
    scoped_source: str | None = None
    """The source for a caller who reads only some stations (default: ``source``)."""


def _factor_table() -> tuple:
    factors = sorted(FACTORS.values(), key=lambda f: f.code)
    return (
        [f.code for f in factors],
        [f.name for f in factors],
        [f.unit for f in factors],
        [f.medium for f in factors],
    )


def iso(expression: str) -> str:
    """SQL writing a timestamptz as ISO 8601 in UTC (whatever the session's time zone)."""
    return f"to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


_STATION_DESCRIPTION = "'HJ 212 monitoring station ' || {a}.code || ' (' || {a}.kind || ')'"

THING = Entity(
    name="Thing",
    plural="Things",
    source="{station} {a}",
    id_sql="{a}.id",
    id_kind="number",
    props={
        "name": Prop("{a}.name", "text"),
        "description": Prop(_STATION_DESCRIPTION, "text"),
        "properties": Prop("", "json", filterable=False),  # built from the station layer's visible properties
    },
    navs={
        "Locations": Nav("Location", True, "{p}.id", "{a}.id = {k}"),
        "HistoricalLocations": Nav("HistoricalLocation", True, "{p}.id", "{a}.id = {k}"),
        "Datastreams": Nav("Datastream", True, "{p}.id", "{a}.station_id = {k}"),
    },
)

LOCATION = Entity(
    name="Location",
    plural="Locations",
    source="{station} {a}",
    id_sql="{a}.id",
    id_kind="number",
    props={
        "name": Prop("{a}.name", "text"),
        "description": Prop("'Location of station ' || {a}.code", "text"),
        "encodingType": Prop(f"'{GEOJSON}'::text", "text"),
        "location": Prop("{a}.geom", "geometry"),
    },
    navs={
        "Things": Nav("Thing", True, "{p}.id", "{a}.id = {k}"),
        "HistoricalLocations": Nav("HistoricalLocation", True, "{p}.id", "{a}.id = {k}"),
    },
)

HISTORICAL_LOCATION = Entity(
    name="HistoricalLocation",
    plural="HistoricalLocations",
    source="{station} {a}",
    id_sql="{a}.id",
    id_kind="number",
    props={"time": Prop("{a}.updated_at", "time")},
    navs={
        "Thing": Nav("Thing", False, "{p}.id", "{a}.id = {k}"),
        "Locations": Nav("Location", True, "{p}.id", "{a}.id = {k}"),
    },
)

SENSOR = Entity(
    name="Sensor",
    plural="Sensors",
    source="{station} {a}",
    id_sql="{a}.id",
    id_kind="number",
    props={
        "name": Prop("'Data logger ' || coalesce({a}.mn, 'of station ' || {a}.code)", "text"),
        "description": Prop("'HJ 212-2017 data logger of station ' || {a}.code || ' (' || {a}.kind || ')'", "text"),
        "encodingType": Prop("'text/plain'::text", "text"),
        "metadata": Prop("'HJ 212-2017 device code (MN) ' || coalesce({a}.mn, 'not set')", "text"),
        "properties": Prop("json_build_object('mn', {a}.mn, 'stationKind', {a}.kind)", "json", filterable=False),
    },
    navs={"Datastreams": Nav("Datastream", True, "{p}.id", "{a}.station_id = {k}")},
    sub={"properties": {"mn": Prop("{a}.mn", "text"), "stationKind": Prop("{a}.kind", "text")}},
)

OBSERVED_PROPERTY = Entity(
    name="ObservedProperty",
    plural="ObservedProperties",
    source="unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS {a}(code, name, unit, medium)",
    source_params=_factor_table(),
    id_sql="{a}.code",
    id_kind="text",
    props={
        "name": Prop("{a}.name", "text"),
        "definition": Prop("'urn:x-hj212:2017:factor:' || {a}.code", "text"),
        "description": Prop("{a}.name || ' (' || {a}.medium || '), HJ 212-2017 factor ' || {a}.code", "text"),
        "properties": Prop(
            "json_build_object('factorCode', {a}.code, 'medium', {a}.medium, 'unit', {a}.unit)", "json", False
        ),
    },
    navs={"Datastreams": Nav("Datastream", True, "{p}.code", "{a}.factor_code = {k}", "text")},
    sub={"properties": {"factorCode": Prop("{a}.code", "text"), "medium": Prop("{a}.medium", "text")}},
    default_order=("{a}.code",),
)

_DS_NAME = "{a}.station_name || ' ' || {a}.property || ' (' || {a}.aggregation || ')'"
_FIRST_TIME = "(SELECT min(o.phenomenon_time) FROM observation o WHERE o.datastream_id = {a}.id)"

DATASTREAM = Entity(
    name="Datastream",
    plural="Datastreams",
    source=(
        "(SELECT d.*, s.name AS station_name, s.code AS station_code, s.geom,"
        " l.phenomenon_time AS latest_time, l.value AS latest_value, l.flag AS latest_flag"
        " FROM datastream d JOIN {station} s ON s.id = d.station_id"
        " LEFT JOIN datastream_latest l ON l.datastream_id = d.id) {a}"
    ),
    id_sql="{a}.id",
    id_kind="number",
    props={
        "name": Prop(_DS_NAME, "text"),
        "description": Prop(
            "{a}.aggregation || ' values of ' || {a}.property || ' at station ' || {a}.station_code", "text"
        ),
        "observationType": Prop(f"'{OM_MEASUREMENT}'::text", "text"),
        "unitOfMeasurement": Prop(
            "json_build_object('name', {a}.unit, 'symbol', {a}.unit,"
            " 'definition', 'http://unitsofmeasure.org/ucum.html#' || {a}.unit)",
            "json",
            False,
        ),
        "observedArea": Prop("{a}.geom", "geometry"),
        "phenomenonTime": Prop(
            f"CASE WHEN {{a}}.latest_time IS NULL THEN NULL"
            f" ELSE {iso(_FIRST_TIME)} || '/' || {iso('{a}.latest_time')} END",
            "text",
            False,
        ),
        "properties": Prop(
            "json_build_object('factorCode', {a}.factor_code, 'aggregation', {a}.aggregation,"
            " 'stationCode', {a}.station_code, 'latest', CASE WHEN {a}.latest_time IS NULL THEN NULL ELSE"
            f" json_build_object('phenomenonTime', {iso('{a}.latest_time')}, 'result', {{a}}.latest_value,"
            " 'flag', {a}.latest_flag) END)",
            "json",
            False,
        ),
    },
    navs={
        "Thing": Nav("Thing", False, "{p}.station_id", "{a}.id = {k}"),
        "Sensor": Nav("Sensor", False, "{p}.station_id", "{a}.id = {k}"),
        "ObservedProperty": Nav("ObservedProperty", False, "{p}.factor_code", "{a}.code = {k}", "text"),
        "Observations": Nav("Observation", True, "{p}.id", "{a}.datastream_id = {k}"),
    },
    sub={
        "unitOfMeasurement": {
            "name": Prop("{a}.unit", "text"),
            "symbol": Prop("{a}.unit", "text"),
        },
        "properties": {
            "factorCode": Prop("{a}.factor_code", "text"),
            "aggregation": Prop("{a}.aggregation", "text"),
            "stationCode": Prop("{a}.station_code", "text"),
        },
    },
)

OBSERVATION_ID = (
    f"({{a}}.datastream_id * {OBSERVATION_ID_FACTOR} + (extract(epoch FROM {{a}}.phenomenon_time) * 1000)::bigint)"
)

OBSERVATION = Entity(
    name="Observation",
    plural="Observations",
    source="observation {a}",
    scoped_source=(
        "(SELECT o.* FROM observation o WHERE o.datastream_id IN"
        " (SELECT d.id FROM datastream d JOIN {station} s ON s.id = d.station_id)) {a}"
    ),
    id_sql=OBSERVATION_ID,
    id_kind="number",
    props={
        "phenomenonTime": Prop("{a}.phenomenon_time", "time"),
        "resultTime": Prop("{a}.result_time", "time"),
        "result": Prop("{a}.value", "number"),
        "resultQuality": Prop("{a}.quality", "text"),
        "parameters": Prop(
            "json_build_object('flag', {a}.flag, 'min', {a}.value_min, 'max', {a}.value_max, 'source', {a}.source)",
            "json",
            False,
        ),
    },
    navs={
        "Datastream": Nav("Datastream", False, "{p}.datastream_id", "{a}.id = {k}"),
        "FeatureOfInterest": Nav(
            "FeatureOfInterest",
            False,
            "(SELECT d.station_id FROM datastream d WHERE d.id = {p}.datastream_id)",
            "{a}.id = {k}",
        ),
    },
    sub={
        "parameters": {
            "flag": Prop("{a}.flag", "text"),
            "min": Prop("{a}.value_min", "number"),
            "max": Prop("{a}.value_max", "number"),
            "source": Prop("{a}.source", "text"),
        }
    },
    default_order=("{a}.datastream_id", "{a}.phenomenon_time"),
)

FEATURE_OF_INTEREST = Entity(
    name="FeatureOfInterest",
    plural="FeaturesOfInterest",
    source="{station} {a}",
    id_sql="{a}.id",
    id_kind="number",
    props={
        "name": Prop("{a}.name", "text"),
        "description": Prop("'Waters or air sampled at station ' || {a}.code", "text"),
        "encodingType": Prop(f"'{GEOJSON}'::text", "text"),
        "feature": Prop("{a}.geom", "geometry"),
    },
    navs={
        "Observations": Nav(
            "Observation",
            True,
            "{p}.id",
            "{a}.datastream_id IN (SELECT d.id FROM datastream d WHERE d.station_id = {k})",
        )
    },
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        THING,
        LOCATION,
        HISTORICAL_LOCATION,
        SENSOR,
        OBSERVED_PROPERTY,
        DATASTREAM,
        OBSERVATION,
        FEATURE_OF_INTEREST,
    )
}
"""Entity types by name."""

BY_PLURAL: dict[str, Entity] = {e.plural: e for e in ENTITIES.values()}
"""Entity sets by their name in URLs (``Things``)."""


def observation_key(ident: int) -> tuple[int, datetime]:
    """The (datastream id, phenomenon time) an Observation ``@iot.id`` stands for."""
    datastream_id, millis = divmod(ident, OBSERVATION_ID_FACTOR)
    return datastream_id, datetime.fromtimestamp(millis / 1000, UTC)


def observation_id(datastream_id: int, phenomenon_time: datetime) -> int:
    """The ``@iot.id`` of the observation of a datastream at a time (millisecond precision)."""
    return datastream_id * OBSERVATION_ID_FACTOR + round(phenomenon_time.timestamp() * 1000)
