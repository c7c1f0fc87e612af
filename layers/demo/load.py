"""Insert the demo dataset into the database through a SQLAlchemy connection."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, bindparam, insert, text, update

from layers.demo.build import GEOMETRY_COLUMN, DemoDataset, build_demo_dataset
from layers.demo.observations import generate_observations, load_observations, observation_days
from layers.gazetteer import DEMO_GAZETTEER, read_places, write_places
from layers.models import LAYER_TABLES, SRID, Base

SELF_REFERENCES: dict[str, tuple[str, ...]] = {
    # Filled in after all rows of the table exist (the targets may come later).
    "watershed": ("parent_id", "downstream_id"),
    "river": ("downstream_id",),
}
LOAD_ORDER = ("district", "redline", "protected_area", "water_source_zone", "watershed", "river", "bay", "station")
"""Foreign keys point backwards in this order: river -> watershed, station -> river."""

_SET_SEQUENCE = text("SELECT setval(pg_get_serial_sequence(:table_name, 'id'), :max_id)")
_MARK_SAMPLE = text(
    "INSERT INTO layer_state (layer, sample_data) VALUES (:layer, :sample) "
    "ON CONFLICT (layer) DO UPDATE SET sample_data = :sample"
)


def _value(value: Any) -> Any:
    """A DataFrame cell as a plain Python value for the driver."""
    if isinstance(value, BaseGeometry):
        # EWKB: exact coordinates, bound as a parameter of ST_GeomFromEWKT (which reads EWKB hex).
        return from_shape(value, srid=SRID, extended=True)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.date | str | int | float | bool):
        return value
    raise TypeError(f"cannot load demo value {value!r} of type {type(value).__name__}")


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    return [{c: _value(v) for c, v in zip(columns, row, strict=True)} for row in frame.itertuples(index=False)]


def _insert_table(connection: Connection, name: str, frame: pd.DataFrame) -> int:
    table = Base.metadata.tables[name]
    rows = _rows(frame)
    deferred = SELF_REFERENCES.get(name, ())
    if not rows:
        return 0
    connection.execute(insert(table), [{**row, **dict.fromkeys(deferred)} for row in rows])
    links = [row for row in rows if any(row[c] is not None for c in deferred)]
    if links:
        statement = (
            update(table).where(table.c.id == bindparam("b_id")).values({c: bindparam(f"b_{c}") for c in deferred})
        )
        connection.execute(statement, [{"b_id": r["id"], **{f"b_{c}": r[c] for c in deferred}} for r in links])
    connection.execute(_SET_SEQUENCE, {"table_name": name, "max_id": max(row["id"] for row in rows)})
    return len(rows)


def load_demo(connection: Connection, dataset: DemoDataset | None = None, days: int | None = None) -> dict[str, int]:
    """Insert the demo dataset (built with the default seed if not given) in the caller's transaction,
    with ``days`` of hourly observations ending now (default ``ECOMAP_DEMO_OBSERVATION_DAYS`` or a
    year; 0 for none), loaded with COPY.

    Expects the schema to exist and the tables to be empty (explicit ids are inserted);
    resets the id sequences and marks the layers holding sample data (all but the real districts). Does not
    commit. Returns the number of rows per layer plus ``chief``, ``chief_assignment``, ``place`` (the demo
    gazetteer, layers/demo/data/gazetteer.csv) and ``observation``.
    """
    dataset = dataset if dataset is not None else build_demo_dataset()
    counts: dict[str, int] = {}
    for name in LOAD_ORDER:
        frame = dataset.layers[name]
        if GEOMETRY_COLUMN not in frame.columns:
            raise ValueError(f"demo layer {name!r} has no {GEOMETRY_COLUMN!r} column")
        counts[name] = _insert_table(connection, name, pd.DataFrame(frame))
    counts["chief"] = _insert_table(connection, "chief", dataset.chiefs)
    counts["chief_assignment"] = _insert_table(connection, "chief_assignment", dataset.assignments)
    places = read_places(DEMO_GAZETTEER.read_text(encoding="utf-8"))
    counts["place"] = write_places(connection.connection.driver_connection, places, replace=True)
    connection.execute(
        _MARK_SAMPLE,
        [{"layer": layer, "sample": bool(dataset.layers[layer]["is_sample"].any())} for layer in LAYER_TABLES],
    )
    days = observation_days() if days is None else days
    if days > 0:
        observations = generate_observations(
            dataset.layers["station"], dataset.layers["river"], days=days, seed=dataset.seed
        )
        with connection.connection.driver_connection.cursor() as cursor:  # psycopg: COPY
            counts["observation"] = load_observations(cursor, observations)
    return counts
