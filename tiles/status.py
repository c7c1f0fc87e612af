"""Live status properties of station, river and bay tiles: joins on the small precomputed
``station_status`` table (migration 0011, kept by ``gis_service.monitoring.status``), never the
observation table.

- station tiles: the station's own class / AQI and colour;
- river segment tiles: the worst current class among the water stations on the segment
  (``station.river_id``, outfalls left out) — the section's class, coloured as the station is;
- bay tiles: the worst current class among the sea stations inside the bay.

Its rows change only when a station's class, AQI or colour does, and each change bumps the
station layer's revision with the stations' extent, and the river and bay layers' with the
extent of the segments and bays they classify (migration 0022), so cached tiles are
invalidated exactly as after an edit of those layers.
"""

from __future__ import annotations

from psycopg import sql

from layers.catalog import Layer

STATUS_COLUMNS = (
    ("water_class", "water_class"),
    ("meets_target", "meets_target"),
    ("aqi", "aqi"),
    ("colour", "status_colour"),
)
"""station_status column -> tile property."""
STATUS_PROPERTIES = tuple(name for _, name in STATUS_COLUMNS)
FIELD_TITLES = {
    "water_class": "Water quality class (GB 3838 / GB 3097)",
    "meets_target": "Meets the water target",
    "aqi": "Air quality index (HJ 633, real-time)",
    "status_colour": "Status colour",
}
SECTION_FIELDS = ("water_class", "meets_target", "status_colour")
"""What river and bay tiles carry (no AQI)."""
CLASS_ORDER = "ARRAY['I', 'II', 'III', 'IV', 'V', '劣V', '一类', '二类', '三类', '四类', '劣四类']"
"""Classes best to worst (GB 3838, then GB 3097): the worst station decides a segment's or bay's."""
_WORST = (
    "LEFT JOIN LATERAL (SELECT ss.water_class, ss.meets_target, NULL::integer AS aqi, ss.colour"
    " FROM {from_} JOIN station_status AS ss ON ss.station_id = st.id"
    " WHERE {where} AND st.kind <> 'outfall' AND ss.water_class IS NOT NULL"
    f" ORDER BY array_position({CLASS_ORDER}, ss.water_class) DESC LIMIT 1) AS s ON true"
)
_SECTIONS = {
    "river": ("station AS st", "st.river_id = {id}"),
    "bay": ("{table} AS b JOIN station AS st ON ST_Intersects(st.geom, b.geom)", "b.id = {id} AND st.standard = 'sea'"),
}
"""The stations classifying a feature of each layer (``{id}``: the feature's id)."""


def has_status(layer: Layer) -> bool:
    """Whether the layer's tiles carry live status (the station, river and bay layers' own tables)."""
    return layer.id in ("station", *_SECTIONS) and layer.table == layer.id


def status_join(layer: Layer, feature_id: sql.Composable | None = None) -> sql.Composable:
    """The LEFT JOIN (alias ``s``) of the status of the feature whose id is ``feature_id``
    (default: ``t.<id column>``); empty for other layers."""
    if not has_status(layer):
        return sql.SQL("")
    if feature_id is None:
        feature_id = sql.SQL("t.{}").format(sql.Identifier(layer.id_column))
    if layer.id == "station":
        return sql.SQL(" LEFT JOIN station_status AS s ON s.station_id = {}").format(feature_id)
    from_, where = _SECTIONS[layer.id]
    return sql.SQL(" " + _WORST).format(
        from_=sql.SQL(from_).format(table=sql.Identifier(layer.table)),
        where=sql.SQL(where).format(id=feature_id),
    )


def status_columns(layer: Layer) -> list[sql.Composable]:
    """The SELECT list of the status properties (none for other layers)."""
    if not has_status(layer):
        return []
    return [
        sql.SQL("s.{} AS {}").format(sql.Identifier(c), sql.Identifier(n))
        for c, n in STATUS_COLUMNS
        if layer.id == "station" or n in SECTION_FIELDS
    ]


def status_fields(layer: Layer) -> dict[str, str]:
    """TileJSON ``fields`` of the status properties (none for other layers)."""
    if not has_status(layer):
        return {}
    return {k: v for k, v in FIELD_TITLES.items() if layer.id == "station" or k in SECTION_FIELDS}
