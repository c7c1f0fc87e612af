"""Live status properties of station tiles: a join on the small precomputed ``station_status``
table (migration 0011, kept by ``gis_service.monitoring.status``), never the observation table.

Its rows change only when a station's class, AQI or colour does, and each change bumps the
station layer's revision with the stations' extent, so cached tiles are invalidated exactly as
after a station edit.
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


def has_status(layer: Layer) -> bool:
    """Whether the layer's tiles carry station status (the station layer's own table)."""
    return layer.id == "station" and layer.table == "station"


def status_join(layer: Layer) -> sql.Composable:
    """The LEFT JOIN of a layer's status rows on the primary key (empty for other layers)."""
    if not has_status(layer):
        return sql.SQL("")
    return sql.SQL(" LEFT JOIN station_status AS s ON s.station_id = t.{}").format(sql.Identifier(layer.id_column))


def status_columns(layer: Layer) -> list[sql.Composable]:
    """The SELECT list of the status properties (none for other layers)."""
    if not has_status(layer):
        return []
    return [sql.SQL("s.{} AS {}").format(sql.Identifier(c), sql.Identifier(n)) for c, n in STATUS_COLUMNS]


def status_fields(layer: Layer) -> dict[str, str]:
    """TileJSON ``fields`` of the status properties (none for other layers)."""
    return dict(FIELD_TITLES) if has_status(layer) else {}
