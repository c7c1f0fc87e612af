"""Validation of a partner's features before they are stored, with the importer's checks.

The same functions as ``ecomap import`` (``layers.validation``): geometry type, emptiness,
finite coordinates, validity (strict: an invalid geometry is refused, never repaired, since
the partner must fix its data), the region box (wrong CRS or wrong collection), and the
declared properties: types, required values, allowed values. One error refuses the whole
answer (the copy is replaced whole or not at all).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import orjson
import pandas as pd
import shapely

from gis_service.federation.store import RemoteRow
from layers.catalog import Layer
from layers.regions import Region
from layers.validation import ColumnRule, ValidationReport, check_geometries, coerce_attributes


def _geometry(feature: Any) -> shapely.Geometry | None:
    """A feature's geometry, or None when it has none or an unreadable one."""
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        return None
    try:
        return shapely.geometry.shape(feature["geometry"])
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, shapely.errors.GEOSException):
        return None


def _feature_ids(features: list[Any]) -> tuple[list[int], list[str], list[int]]:
    """Our ids (the partner's when all are distinct non-negative integers, else 1..N), the
    partner's ids as text, and the indices of features without an id or with a repeated one."""
    remote = [str(f.get("id")) if isinstance(f, dict) and f.get("id") is not None else "" for f in features]
    seen: set[str] = set()
    bad = []
    for i, rid in enumerate(remote):
        if not rid or rid in seen:
            bad.append(i)
        seen.add(rid)
    numeric = all(rid.isdigit() and len(rid) < 18 for rid in remote)
    ours = [int(rid) for rid in remote] if numeric else list(range(1, len(features) + 1))
    return ours, remote, bad


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def validate_features(
    features: list[Any], layer: Layer, region: Region, source: str
) -> tuple[list[RemoteRow], ValidationReport]:
    """The rows to store, and the report (rows are only usable when ``report.ok``)."""
    report = ValidationReport(file=source, layer=layer.id, driver="OGC API Features", crs="OGC:CRS84")
    report.features = len(features)
    ours, remote_ids, bad_ids = _feature_ids(features)
    if bad_ids:
        report.add("error", "feature_id", "feature without an id, or with an id used twice", indices=bad_ids)
    not_features = [i for i, f in enumerate(features) if not isinstance(f, dict) or f.get("type") != "Feature"]
    if not_features:
        report.add("error", "not_a_feature", "not a GeoJSON Feature", indices=not_features)
    geoms = np.array([_geometry(f) for f in features], dtype=object)
    geoms = check_geometries(geoms, layer, 0, report, strict=True, region=region)
    records = [
        f.get("properties") if isinstance(f, dict) and isinstance(f.get("properties"), dict) else {} for f in features
    ]
    names = layer.property_names
    frame = pd.DataFrame(
        [{name: record.get(name) for name in names} for record in records], columns=names, dtype=object
    )
    required = [prop.name for prop in layer.properties if prop.required]
    for name in required:
        if records and all(name not in record for record in records):
            message = f"required property {name!r} is in no feature: wrong collection, or its schema changed?"
            report.add("error", "missing_field", message, field_name=name, count=1)
    rules = [ColumnRule(prop, required=prop.required) for prop in layer.properties]
    values = coerce_attributes(frame, rules, 0, report) if len(frame) else {name: [] for name in names}
    if not report.ok:
        return [], report
    geoms = shapely.set_srid(geoms, 4326)
    wkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
    rows = [
        RemoteRow(
            id=ours[i],
            remote_id=remote_ids[i],
            ewkb=str(wkb[i]),
            props={name: _json_value(values[name][i]) for name in names if values[name][i] is not None},
        )
        for i in range(len(features))
    ]
    return rows, report


def content_hash(rows: list[RemoteRow]) -> str:
    """A digest of the rows as stored: equal digests, equal copies (for partners without ETags)."""
    digest = hashlib.blake2b(digest_size=16)
    for row in sorted(rows, key=lambda r: r.id):
        digest.update(orjson.dumps([row.id, row.remote_id, row.ewkb, row.props], option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
