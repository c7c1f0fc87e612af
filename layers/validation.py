"""Validation of features before they are written: geometry, region, attributes.

The checks run chunk by chunk while a file is read (bounded memory) and collect
:class:`Finding` s in a :class:`ValidationReport`, printed as text or JSON before
anything is written. Errors block the import; warnings (e.g. repaired geometry) do not.
Every finding names the feature indices (0-based, in file order) and the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely

from layers.catalog import Layer, LayerProperty
from layers.regions import Region

Severity = Literal["error", "warning", "info"]
MAX_LISTED = 20
"""Feature indices and example values listed per finding."""

_FAMILIES = {
    "Point": ("Point",),
    "MultiPoint": ("Point", "MultiPoint"),
    "LineString": ("LineString",),
    "MultiLineString": ("LineString", "MultiLineString"),
    "Polygon": ("Polygon",),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
}
_TRUE = {"true", "t", "yes", "y", "1", "是", "真"}
_FALSE = {"false", "f", "no", "n", "0", "否", "假"}


@dataclass
class Finding:
    """One kind of problem, with the features and field it concerns."""

    severity: Severity
    code: str
    message: str
    field: str | None = None
    count: int = 0
    features: list[int] = dataclasses.field(default_factory=list)
    examples: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "count": self.count,
            "features": self.features,
            "examples": self.examples,
        }

    def describe(self) -> str:
        """One line: what, where (features, field) and examples."""
        where = []
        if self.field:
            where.append(f"field {self.field}")
        if self.features:
            listed = ", ".join(map(str, self.features))
            more = f" and {self.count - len(self.features)} more" if self.count > len(self.features) else ""
            where.append(f"feature{'s' if self.count > 1 else ''} {listed}{more}")
        text = self.message
        if where:
            text += " [" + "; ".join(where) + "]"
        if self.examples:
            text += " e.g. " + "; ".join(self.examples[:3])
        return text


@dataclass
class ValidationReport:
    """Everything known about a file before it is written to a layer."""

    file: str
    layer: str
    source_layer: str | None = None
    driver: str | None = None
    crs: str | None = None
    encoding: str | None = None
    features: int = 0
    geometry_types: Counter = dataclasses.field(default_factory=Counter)
    mapping: dict[str, str] = dataclasses.field(default_factory=dict)
    findings: dict[tuple[str, str | None], Finding] = dataclasses.field(default_factory=dict)

    def add(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        field_name: str | None = None,
        indices: Any = (),
        examples: Any = (),
        count: int | None = None,
    ) -> None:
        """Record a finding (merged with earlier ones of the same code and field)."""
        key = (code, field_name)
        finding = self.findings.get(key)
        if finding is None:
            finding = self.findings[key] = Finding(severity, code, message, field_name)
        indices = [int(i) for i in indices]
        finding.count += count if count is not None else max(len(indices), 1)
        room = MAX_LISTED - len(finding.features)
        finding.features.extend(indices[: max(room, 0)])
        for example in examples:
            if len(finding.examples) >= MAX_LISTED // 4:
                break
            finding.examples.append(str(example))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def first_error(self) -> str:
        """The first error as ``file: feature N, field F: message`` for one-line messages."""
        if not self.errors:
            return ""
        finding = min(self.errors, key=lambda f: f.features[0] if f.features else -1)
        where = [self.file]
        if finding.features:
            where.append(f"feature {finding.features[0]}")
        if finding.field:
            where.append(f"field {finding.field}")
        extra = len(self.errors) - 1
        tail = f" (and {extra} more kind{'s' if extra > 1 else ''} of error; see the report)" if extra else ""
        return ", ".join(where) + ": " + finding.message + tail

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "layer": self.layer,
            "source_layer": self.source_layer,
            "driver": self.driver,
            "crs": self.crs,
            "encoding": self.encoding,
            "features": self.features,
            "geometry_types": dict(self.geometry_types),
            "mapping": self.mapping,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings.values()],
        }

    def to_text(self) -> str:
        """The human-readable report."""
        types = ", ".join(f"{k} {v}" for k, v in self.geometry_types.most_common()) or "none"
        lines = [
            f"Validation report: {self.file} -> layer {self.layer}",
            f"  source layer: {self.source_layer or '-'}   driver: {self.driver or '-'}",
            f"  CRS: {self.crs or '-'}   encoding: {self.encoding or '-'}",
            f"  features: {self.features}   geometry types: {types}",
        ]
        if self.mapping:
            lines.append("  fields: " + ", ".join(f"{src} -> {dst}" for src, dst in self.mapping.items()))
        order = {"error": 0, "warning": 1, "info": 2}
        for finding in sorted(self.findings.values(), key=lambda f: order[f.severity]):
            lines.append(f"  {finding.severity.upper():7} {finding.code}: {finding.describe()}")
        verdict = "OK" if self.ok else "REJECTED"
        lines.append(f"  result: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings)")
        return "\n".join(lines)


def check_geometries(
    geoms: np.ndarray, layer: Layer, start: int, report: ValidationReport, *, strict: bool, region: Region
) -> np.ndarray:
    """Check and normalise one chunk of WGS84 geometries; returns the geometries to write.

    Empty geometries, wrong types and features outside the region are errors. Invalid
    polygons are repaired with ``make_valid`` (a warning), or rejected with ``strict``.
    Single parts are promoted to the layer's multi type and Z/M values dropped.
    """
    index = np.arange(start, start + len(geoms))
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        report.add("error", "empty_geometry", "feature has no geometry (null or empty)", indices=index[missing])
    types = np.array([g.geom_type if g is not None else "None" for g in geoms], dtype=object)
    report.geometry_types.update(types[~missing].tolist())
    allowed = _FAMILIES[layer.geometry_type]
    wrong = ~missing & ~np.isin(types, allowed)
    if wrong.any():
        found = sorted(set(types[wrong]))
        report.add(
            "error",
            "geometry_type",
            f"geometry type {'/'.join(found)} where layer {layer.id} takes {layer.geometry_type}"
            f" ({' or '.join(allowed)}); is this the file for this layer?",
            indices=index[wrong],
        )
    usable = ~missing & ~wrong
    if shapely.has_z(geoms[usable]).any():
        report.add("info", "z_dropped", "Z coordinates dropped (the layers are 2D)", count=1)
        geoms[usable] = shapely.force_2d(geoms[usable])
    finite = np.ones(len(geoms), dtype=bool)
    finite[usable] = [bool(np.isfinite(shapely.get_coordinates(g)).all()) for g in geoms[usable]]
    if (~finite).any():
        report.add("error", "bad_coordinates", "coordinates are not finite numbers", indices=index[~finite])
        usable &= finite
    if layer.geometry_type != "Point" and usable.any():
        geoms = _repair(geoms, usable, index, report, strict=strict, polygonal=layer.is_polygon)
    bounds = shapely.bounds(geoms[usable])
    if len(bounds):
        inside = (
            (bounds[:, 2] >= region.west)
            & (bounds[:, 0] <= region.east)
            & (bounds[:, 3] >= region.south)
            & (bounds[:, 1] <= region.north)
        )
        if (~inside).any():
            outside = index[usable][~inside]
            examples = [
                f"feature {i} at ({b[0]:.6g}, {b[1]:.6g})" for i, b in zip(outside, bounds[~inside], strict=True)
            ]
            report.add(
                "error",
                "outside_region",
                f"feature lies outside {region.describe()}: wrong CRS or wrong file? If the data is right, "
                f"{region.change_hint()}",
                indices=outside,
                examples=examples,
            )
    if layer.geometry_type.startswith("Multi"):
        single = usable & np.isin(types, allowed[:1])
        if single.any():
            geoms[single] = [_as_multi(g) for g in geoms[single]]
    return geoms


def _as_multi(geom: shapely.Geometry) -> shapely.Geometry:
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    if isinstance(geom, shapely.LineString):
        return shapely.MultiLineString([geom])
    if isinstance(geom, shapely.Point):
        return shapely.MultiPoint([geom])
    return geom


def _repair(
    geoms: np.ndarray, usable: np.ndarray, index: np.ndarray, report: ValidationReport, *, strict: bool, polygonal: bool
) -> np.ndarray:
    invalid = usable.copy()
    invalid[usable] = ~shapely.is_valid(geoms[usable])
    if not invalid.any():
        return geoms
    reasons = [
        f"feature {i}: {shapely.is_valid_reason(g)}" for i, g in zip(index[invalid], geoms[invalid], strict=True)
    ]
    if strict:
        report.add(
            "error",
            "invalid_geometry",
            "invalid geometry (self-intersection, bad ring...); fix it or drop --strict to repair with make_valid",
            indices=index[invalid],
            examples=reasons,
        )
        return geoms
    repaired = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    if polygonal:
        repaired = np.array([_polygonal_part(g) for g in repaired], dtype=object)
    failed = shapely.is_empty(repaired) | ~shapely.is_valid(repaired)
    geoms[invalid] = repaired
    if (~failed).any():
        report.add(
            "warning",
            "repaired_geometry",
            "invalid geometry repaired with make_valid (use --strict to refuse instead)",
            indices=index[invalid][~failed],
            examples=[r for r, f in zip(reasons, failed, strict=True) if not f],
        )
    if failed.any():
        report.add(
            "error",
            "invalid_geometry",
            "invalid geometry that make_valid cannot repair into a polygon",
            indices=index[invalid][failed],
            examples=[r for r, f in zip(reasons, failed, strict=True) if f],
        )
    return geoms


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a repaired geometry (make_valid may return lines or collections)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon | shapely.MultiPolygon)]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


@dataclass(frozen=True)
class ColumnRule:
    """What the database accepts in one column (from the catalog and the table definition)."""

    prop: LayerProperty
    required: bool
    max_length: int | None = None


def coerce_attributes(
    frame: pd.DataFrame, rules: list[ColumnRule], start: int, report: ValidationReport
) -> dict[str, list[Any]]:
    """Convert one chunk's mapped columns to the catalog types; returns values per property.

    Records missing required values, type mismatches, values outside the catalog's
    enumerations and strings too long for their column. Columns absent from the file
    are all-null (the absence of a required one is reported once by the importer).
    """
    out: dict[str, list[Any]] = {}
    index = np.arange(start, start + len(frame))
    for rule in rules:
        name = rule.prop.name
        if name not in frame.columns:
            out[name] = [None] * len(frame)
            continue
        values: list[Any] = []
        bad_idx: list[int] = []
        bad_examples: list[str] = []
        for i, raw in zip(index, frame[name].tolist(), strict=True):
            try:
                values.append(_convert(raw, rule.prop.type))
            except (ValueError, TypeError, OverflowError):
                values.append(None)
                bad_idx.append(int(i))
                bad_examples.append(f"feature {i}: {raw!r}")
        if bad_idx:
            report.add(
                "error",
                "type_mismatch",
                f"value is not {_TYPE_WORDS[rule.prop.type]}",
                field_name=name,
                indices=bad_idx,
                examples=bad_examples,
            )
        _check_values(values, rule, index, report, skip=set(bad_idx))
        out[name] = values
    return out


_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true/false, 1/0, 是/否)",
    "date": "a date (YYYY-MM-DD)",
}


def _is_null(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, float) and math.isnan(raw):
        return True
    if raw is pd.NaT or (isinstance(raw, str) and not raw.strip()):
        return True
    try:
        return bool(pd.isna(raw))
    except (TypeError, ValueError):
        return False


def _convert(raw: Any, kind: str) -> Any:
    """One value in the catalog type; None for nulls; ValueError when it does not fit."""
    if _is_null(raw):
        return None
    if kind == "string":
        if isinstance(raw, float) and raw.is_integer():
            return str(int(raw))  # codes read as numbers: 350203.0 -> "350203"
        if isinstance(raw, dt.datetime | pd.Timestamp):
            return raw.isoformat()
        return str(raw).strip()
    if kind == "integer":
        number = float(raw.strip() if isinstance(raw, str) else raw)
        if not number.is_integer() or isinstance(raw, bool):
            raise ValueError(raw)
        return int(number)
    if kind == "number":
        if isinstance(raw, bool):
            raise ValueError(raw)
        number = float(raw.strip() if isinstance(raw, str) else raw)
        if not math.isfinite(number):
            raise ValueError(raw)
        return number
    if kind == "boolean":
        if isinstance(raw, bool | np.bool_):
            return bool(raw)
        text = str(int(raw)) if isinstance(raw, int | float | np.integer | np.floating) else str(raw)
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ValueError(raw)
    if kind == "date":
        if isinstance(raw, pd.Timestamp | dt.datetime):
            return raw.date()
        if isinstance(raw, dt.date):
            return raw
        text = str(raw).strip().replace("/", "-").replace(".", "-")
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return pd.Timestamp(text).date()
    raise ValueError(f"unknown type {kind}")  # pragma: no cover - the catalog restricts types


def _check_values(
    values: list[Any], rule: ColumnRule, index: np.ndarray, report: ValidationReport, skip: set[int]
) -> None:
    name = rule.prop.name
    if rule.required:
        missing = [int(i) for i, v in zip(index, values, strict=True) if v is None and int(i) not in skip]
        if missing:
            report.add("error", "missing_value", "required value is empty", field_name=name, indices=missing)
    if rule.prop.values:
        allowed = set(rule.prop.values)
        bad = [(int(i), v) for i, v in zip(index, values, strict=True) if v is not None and str(v) not in allowed]
        if bad:
            report.add(
                "error",
                "not_allowed_value",
                "value is not one of " + ", ".join(rule.prop.values),
                field_name=name,
                indices=[i for i, _ in bad],
                examples=[f"feature {i}: {v!r}" for i, v in bad],
            )
    if rule.max_length:
        long = [
            (int(i), v) for i, v in zip(index, values, strict=True) if isinstance(v, str) and len(v) > rule.max_length
        ]
        if long:
            report.add(
                "error",
                "value_too_long",
                f"text longer than the column's {rule.max_length} characters",
                field_name=name,
                indices=[i for i, _ in long],
                examples=[f"feature {i}: {v!r}" for i, v in long],
            )
