"""Import official data into a layer, safely: read, validate, then write all or nothing.

``import_layer`` reads a file chunk by chunk (:mod:`layers.sources`), reprojects each
chunk to WGS84 (optionally undoing GCJ-02), validates it (:mod:`layers.validation`) and
copies it into a temporary staging table. Keys and unique values are then checked in
SQL over the whole file, so the validation report is complete before the layer is
touched.

Everything runs in one transaction: a ``layer_revision`` is opened for layers with
history (author, file, SHA-256, approval document), the layer changes (``replace``,
``append`` or ``upsert`` by a key; ``replace`` with a key keeps the ids of features
that stay, so revisions diff feature by feature), and the low-zoom tile generalization
is recomputed by the caller's ``generalizer`` (the CLI passes
``tiles.incremental.regeneralize_changes``, which re-generalizes only around the changed
features; ``layers`` does not import ``tiles``) when that is quick: a small layer
(``GENERALIZE_INLINE_MAX_BYTES``) or few changes (``GENERALIZE_INLINE_MAX_CHANGES``); a larger change
keeps its new features in ``gen_dirty`` (tiles simplify them on the fly) and the service's background
scheduler, notified by the commit, regeneralizes it. Then commit. Any failure rolls
all of it back: the layer stays exactly as it was and readers never see half an import.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psycopg
import shapely
from psycopg import sql
from pyogrio.errors import DataLayerError, DataSourceError

from layers.catalog import Layer
from layers.crs import (
    XIAMEN_REGION,
    CRSProblem,
    Region,
    check_datum,
    describe_crs,
    missing_crs_message,
    parse_crs,
    reproject_to_wgs84,
    suggest_crs,
    wgs84_transformer,
)
from layers.history import has_history
from layers.sources import ImportFailed, Source, open_source, read_chunks, resolve_mapping
from layers.validation import ColumnRule, ValidationReport, check_geometries, coerce_attributes

__all__ = ["MODES", "ImportFailed", "ImportResult", "ValidationFailed", "import_layer"]

logger = logging.getLogger(__name__)

Mode = Literal["replace", "append", "upsert"]
MODES: tuple[str, ...] = ("replace", "append", "upsert")
_STAGE_TYPES = {"string": "text", "integer": "int8", "number": "float8", "boolean": "bool", "date": "date"}
"""Staging column types; the same names tell the binary COPY how to send each value."""
GEOMETRY_TOLERANCE_DEG = 1e-7
"""About 1 cm: re-imported vertices closer than this to the stored ones are not a change."""
_SAME_GEOMETRY = sql.SQL(
    "({stored} = s.geom OR (ST_NPoints({stored}) = ST_NPoints(s.geom) AND coalesce(("
    "SELECT count(*) = ST_NPoints({stored}) AND max(ST_Distance(a.geom, b.geom)) < {tolerance}"
    " FROM ST_DumpPoints(ST_ForcePolygonCCW({stored})) AS a"
    " JOIN ST_DumpPoints(ST_ForcePolygonCCW(s.geom)) AS b USING (path)), false)))"
)
GENERALIZE_INLINE_MAX_BYTES = 32 * 1024 * 1024
"""Layers up to this size (table + TOAST) are regeneralized inside the import transaction."""
GENERALIZE_INLINE_MAX_CHANGES = 200
"""So are imports that change (insert, edit, delete) at most this many features of a larger layer:
the generalizer then re-generalizes only around them (``tiles.incremental``)."""
_LOCATE_LIMIT = 20_000
"""When the database refuses a row, at most this many rows are retried one by one to name it."""


class ValidationFailed(ImportFailed):
    """Validation found errors; nothing was written. ``report`` has every finding."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.first_error())
        self.report = report


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would have done)."""

    report: ValidationReport
    applied: bool = False
    mode: str = "replace"
    key: str | None = None
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    revision: int | None = None
    checksum: str = ""
    generalized: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied, "mode": self.mode, "key": self.key, "inserted": self.inserted,
            "updated": self.updated, "deleted": self.deleted, "revision": self.revision,
            "checksum": self.checksum, "generalized_rows": self.generalized, "report": self.report.to_dict(),
        }  # fmt: skip


@dataclass(frozen=True)
class _Table:
    """What the database says about the target table."""

    rules: list[ColumnRule]
    unique: list[str]
    nullable: set[str]


def _describe_table(conn: psycopg.Connection, layer: Layer) -> _Table:
    rows = conn.execute(
        "SELECT column_name, is_nullable = 'YES', column_default IS NOT NULL, character_maximum_length"
        " FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
        [layer.table],
    ).fetchall()
    if not rows:
        raise ImportFailed(f"the table of layer {layer.id} does not exist; run `ecomap db upgrade` first")
    columns = {name: (nullable, has_default, length) for name, nullable, has_default, length in rows}
    rules = []
    for prop in layer.properties:
        nullable, has_default, length = columns.get(prop.name, (True, False, None))
        rules.append(ColumnRule(prop, prop.required or (not nullable and not has_default), length))
    unique = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary AND i.indnatts = 1"
        " AND i.indpred IS NULL",
        [layer.table],
    ).fetchall()
    return _Table(
        rules, [r[0] for r in unique if r[0] in layer.property_names], {n for n, c in columns.items() if c[0]}
    )


def _resolve_crs(source: Source, crs: str | None, report: ValidationReport, region: Region) -> Any:
    given = parse_crs(crs) if crs else None
    if source.crs is None and given is None:
        bounds = None
        with contextlib.suppress(DataSourceError, DataLayerError, UnicodeDecodeError):  # only for the suggestion
            sample = np.asarray(source.read(0, 10_000).geometry.values, dtype=object)
            sample = sample[~(shapely.is_missing(sample) | shapely.is_empty(sample))]
            bounds = tuple(shapely.total_bounds(sample).tolist()) if len(sample) else None
        raise ImportFailed(missing_crs_message(source.display, bounds, region))
    if given is not None and source.crs is not None and not given.equals(source.crs, ignore_axis_order=True):
        report.add(
            "warning",
            "crs_override",
            f"--crs {describe_crs(given)} overrides the file's {describe_crs(source.crs)}",
            count=1,
        )
    return given or source.crs


def _stage(conn: psycopg.Connection, name: sql.Identifier, layer: Layer) -> None:
    """Create the staging table; large values are compressed with lz4 when the server has it (5x faster)."""
    lz4 = conn.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    if lz4 and lz4[0]:
        conn.execute("SET LOCAL default_toast_compression = 'lz4'")
    columns = [sql.SQL("feature_index int4 PRIMARY KEY")]
    for prop in layer.properties:
        columns.append(sql.SQL("{} {}").format(sql.Identifier(prop.name), sql.SQL(_STAGE_TYPES[prop.type])))
    columns.append(sql.SQL("geom geometry(Geometry, 4326)"))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(name, sql.SQL(", ").join(columns)))


def _load_stage(
    conn: psycopg.Connection,
    stage: sql.Identifier,
    source: Source,
    layer: Layer,
    table: _Table,
    mapping: dict[str, str],
    report: ValidationReport,
    *,
    transformer: Any,
    gcj02: bool,
    strict: bool,
    region: Region,
    progress: bool,
) -> tuple[int, np.ndarray]:
    """Read, reproject, validate and stage every feature; returns the count and raw bounds."""
    names = [p.name for p in layer.properties]
    copy_sql = sql.SQL("COPY {} (feature_index, {}, geom) FROM STDIN (FORMAT BINARY)").format(
        stage, sql.SQL(", ").join(map(sql.Identifier, names))
    )
    raw_bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])
    total = 0
    with conn.cursor().copy(copy_sql) as copy:
        # geometry travels as EWKB: PostGIS's binary input format, sent like a bytea
        copy.set_types(["int4", *(_STAGE_TYPES[p.type] for p in layer.properties), "bytea"])
        for start, frame in read_chunks(source, progress=progress):
            raw = np.asarray(frame.geometry.values, dtype=object)
            present = ~(shapely.is_missing(raw) | shapely.is_empty(raw))
            if present.any():
                b = shapely.total_bounds(raw[present])
                raw_bounds = np.array([min(raw_bounds[0], b[0]), min(raw_bounds[1], b[1]),
                                       max(raw_bounds[2], b[2]), max(raw_bounds[3], b[3])])  # fmt: skip
            geoms = check_geometries(
                reproject_to_wgs84(raw, transformer, gcj02), layer, start, report, strict=strict, region=region
            )
            attributes = frame.drop(columns=frame.geometry.name).rename(columns=mapping)
            attributes = attributes.loc[:, [c for c in attributes.columns if c in names]]
            values = coerce_attributes(attributes, table.rules, start, report)
            ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), include_srid=True)
            for i in range(len(frame)):
                copy.write_row([start + i, *(values[n][i] for n in names), ewkb[i]])
            total += len(frame)
    return total, raw_bounds


def _check_keys(
    conn: psycopg.Connection, stage: sql.Identifier, layer: Layer, table: _Table, mode: str, key: str | None,
    report: ValidationReport,
) -> None:  # fmt: skip
    """Duplicate keys in the file, and unique values that would clash with features that stay."""
    target = sql.Identifier(layer.table)
    checked = [c for c in dict.fromkeys([*([key] if key else []), *table.unique])]
    for column in checked:
        col = sql.Identifier(column)
        rows = conn.execute(
            sql.SQL(
                "SELECT {c}::text, array_agg(feature_index ORDER BY feature_index) FROM {s}"
                " WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1 ORDER BY min(feature_index) LIMIT 50"
            ).format(c=col, s=stage)
        ).fetchall()
        for value, indices in rows:
            report.add(
                "error", "duplicate_key", f"the same {column} appears more than once in the file",
                field_name=column, indices=indices, examples=[f"{column}={value!r}: features {indices}"],
            )  # fmt: skip
        if mode == "replace" and key is None:
            continue  # every existing feature is deleted first
        stays = sql.SQL("true") if mode != "replace" else sql.SQL("t.{k} IN (SELECT {k} FROM {s})")
        same_row = sql.SQL("t.{k} = s.{k}") if key and mode != "append" else sql.SQL("false")
        clashes = conn.execute(
            sql.SQL(
                "SELECT s.feature_index, s.{c}::text FROM {s} AS s JOIN {t} AS t ON t.{c} = s.{c}"
                " WHERE " + "{stays} AND NOT ({same}) ORDER BY s.feature_index LIMIT 50"
            ).format(
                c=col, s=stage, t=target,
                stays=stays.format(k=sql.Identifier(key or column), s=stage),
                same=same_row.format(k=sql.Identifier(key or column)),
            )
        ).fetchall()  # fmt: skip
        if clashes:
            report.add(
                "error", "existing_key",
                f"{column} already belongs to another feature of layer {layer.id} (use --mode upsert --key {column}"
                " to update it)",
                field_name=column, indices=[r[0] for r in clashes], examples=[f"{column}={r[1]!r}" for r in clashes],
            )  # fmt: skip
    if key and mode != "append":
        missing = conn.execute(
            sql.SQL("SELECT feature_index FROM {} WHERE {} IS NULL ORDER BY 1 LIMIT 50").format(
                stage, sql.Identifier(key)
            )
        ).fetchall()
        if missing:
            report.add(
                "error", "missing_key", f"the key {key} is empty", field_name=key, indices=[r[0] for r in missing]
            )  # fmt: skip
        ambiguous = conn.execute(
            sql.SQL("SELECT {k}::text FROM {t} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1 LIMIT 5").format(
                k=sql.Identifier(key), t=target
            )
        ).fetchall()
        if ambiguous:
            report.add(
                "error", "ambiguous_key",
                f"layer {layer.id} already holds several features with the same {key}; it cannot be the key",
                field_name=key, examples=[r[0] for r in ambiguous],
            )  # fmt: skip


@dataclass(frozen=True)
class _Plan:
    """The write statements of one import (optionally restricted to one staged feature)."""

    layer: Layer
    stage: sql.Identifier
    mode: str
    key: str | None
    columns: list[str]
    values: list[sql.Composable]
    cleared: list[str]

    @classmethod
    def build(cls, layer: Layer, stage: sql.Identifier, table: _Table, mode: str, key: str | None,
              written: list[str]) -> _Plan:  # fmt: skip
        columns = [*written, layer.geometry_column]
        values: list[sql.Composable] = [sql.SQL("s.{}").format(sql.Identifier(c)) for c in written]
        values.append(sql.SQL("s.geom"))
        if "is_sample" not in written:
            columns.append("is_sample")
            values.append(sql.SQL("false"))  # imported data is official, not sample data
        cleared = []
        if mode == "replace":  # properties absent from the file are emptied on the features that stay
            cleared = [p for p in layer.property_names if p not in columns and p in table.nullable]
        return cls(layer, stage, mode, key, columns, values, cleared)

    def _only(self, one: bool) -> sql.Composable:
        return sql.SQL(" AND s.feature_index = %(feature_index)s") if one else sql.SQL("")

    def delete(self) -> sql.Composable | None:
        if self.mode != "replace":
            return None
        target = sql.Identifier(self.layer.table)
        if not self.key:
            return sql.SQL("DELETE FROM {}").format(target)
        return sql.SQL("DELETE FROM {t} AS t WHERE NOT EXISTS (SELECT FROM {s} AS s WHERE s.{k} = t.{k})").format(
            t=target, s=self.stage, k=sql.Identifier(self.key)
        )

    def update(self, one: bool = False) -> sql.Composable | None:
        """Update features matched by key whose attributes or geometry differ.

        A geometry whose every vertex lies within GEOMETRY_TOLERANCE_DEG of the stored one
        (ring orientation aside) is kept as stored: reprojection noise is not a change.
        """
        if not self.key or self.mode == "append":
            return None
        geom = self.layer.geometry_column
        attributes = [c for c in [*self.columns, *self.cleared] if c != geom]
        new_attributes = [v for c, v in zip(self.columns, self.values, strict=True) if c != geom]
        new_attributes += [sql.SQL("NULL") for _ in self.cleared]
        return sql.SQL(
            "UPDATE {t} AS t SET ({cols}, {g}) = ROW({new}, CASE WHEN s.same_geom THEN t.{g} ELSE s.geom END)"
            " FROM (SELECT s.*, {same} AS same_geom FROM {stage} AS s JOIN {t} AS c ON c.{k} = s.{k}"
            " WHERE true{only}) AS s"
            " WHERE t.{k} = s.{k} AND (NOT s.same_geom OR ROW({old}) IS DISTINCT FROM ROW({new}))"
        ).format(
            t=sql.Identifier(self.layer.table), g=sql.Identifier(geom), stage=self.stage, k=sql.Identifier(self.key),
            cols=sql.SQL(", ").join(map(sql.Identifier, attributes)), new=sql.SQL(", ").join(new_attributes),
            old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in attributes),
            same=_SAME_GEOMETRY.format(stored=sql.SQL("c.{}").format(sql.Identifier(geom)), tolerance=sql.Literal(
                GEOMETRY_TOLERANCE_DEG)),
            only=self._only(one),
        )  # fmt: skip

    def insert(self, one: bool = False) -> sql.Composable:
        not_there: sql.Composable = sql.SQL("")
        if self.key and self.mode != "append":
            not_there = sql.SQL(" AND NOT EXISTS (SELECT FROM {t} AS t WHERE t.{k} = s.{k})").format(
                t=sql.Identifier(self.layer.table), k=sql.Identifier(self.key)
            )
        return sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {vals} FROM {s} AS s WHERE true{not_there}{only} ORDER BY s.feature_index"
        ).format(
            t=sql.Identifier(self.layer.table), cols=sql.SQL(", ").join(map(sql.Identifier, self.columns)),
            vals=sql.SQL(", ").join(self.values), s=self.stage, not_there=not_there, only=self._only(one),
        )  # fmt: skip


_REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError)


def _run(conn: psycopg.Connection, build: Any, stage: sql.Identifier, source: Source) -> int:
    """Execute one write; when the database refuses a row, name the feature and field."""
    try:
        with conn.transaction():
            return conn.execute(build(False)).rowcount
    except _REFUSED as exc:
        failure = exc
    indices = conn.execute(
        sql.SQL("SELECT feature_index FROM {} ORDER BY 1 LIMIT %s").format(stage), [_LOCATE_LIMIT]
    ).fetchall()
    for (index,) in indices:
        try:
            with conn.transaction():
                conn.execute(build(True), {"feature_index": index})
        except _REFUSED as exc:
            column = exc.diag.column_name or exc.diag.constraint_name or "?"
            reason = exc.diag.message_primary
            raise ImportFailed(
                f"{source.display}, feature {index}, field {column}: the database refused it: {reason}"
            ) from None
    raise ImportFailed(f"{source.display}: the database refused the data: {failure.diag.message_primary}") from None


def import_layer(
    conn: psycopg.Connection,
    layer: Layer,
    path: str | Path,
    *,
    layer_name: str | None = None,
    crs: str | None = None,
    datum: str | None = None,
    encoding: str | None = None,
    mode: Mode = "replace",
    key: str | None = None,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    strict: bool = False,
    author: str | None = None,
    approval: str | None = None,
    note: str | None = None,
    region: Region = XIAMEN_REGION,
    generalizer: Callable[[psycopg.Connection, Layer], Any] | None = None,
    generalize: bool | None = None,
    progress: bool = False,
) -> ImportResult:
    """Validate a file and, unless ``dry_run``, write it to a layer in one transaction.

    Args:
        conn: a psycopg connection; the import runs in ``conn.transaction()`` (a savepoint
            if the caller already has a transaction open, which it must then commit).
        layer: the catalog layer to write.
        path: .shp, .zip, .gpkg, .geojson, .kml or .csv (lon/lat columns; needs ``crs``).
        layer_name: the layer inside a multi-layer file (GeoPackage, KML, zip).
        crs: the CRS when the file declares none (``EPSG:4527``); overrides it otherwise.
        datum: ``"gcj02"`` to convert AMap/Tencent coordinates to WGS84.
        encoding: text encoding of the attributes (default: the file's, or detected).
        mode: ``replace`` the layer, ``append`` features, or ``upsert`` by ``key``.
        key: the property identifying a feature (default: a unique column of the table,
            e.g. ``code`` for red lines); with ``replace`` it keeps ids of staying features.
        mapping: source field -> layer property, besides same-name fields.
        dry_run: validate and report only. strict: refuse invalid geometry instead of repairing it.
        author, approval, note: recorded with the new revision (layers with history).
        region: the deployment's region; features outside it are errors (wrong CRS or file).
        generalize: True: recompute the tile generalization in the transaction; False:
            leave the new features in ``gen_dirty`` for the service to regeneralize in the
            background; None (default): in the transaction when the layer is small or few
            features changed.
        generalizer: what recomputes it (``tiles.incremental.regeneralize_changes``, passed by
            the caller: ``layers`` does not depend on ``tiles``); without one the new
            features stay in ``gen_dirty``.

    Raises:
        ImportFailed: the file cannot be read or used; ValidationFailed: errors were found.
    """
    if mode not in MODES:
        raise ImportFailed(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    source = open_source(path, layer_name, encoding)
    try:
        return _import(
            conn, layer, source, crs=crs, datum=datum, mode=mode, key=key, mapping=mapping, dry_run=dry_run,
            strict=strict, author=author, approval=approval, note=note, region=region, generalize=generalize,
            generalizer=generalizer, progress=progress,
        )  # fmt: skip
    finally:
        source.close()


def _import(
    conn: psycopg.Connection, layer: Layer, source: Source, *, crs: str | None, datum: str | None, mode: str,
    key: str | None, mapping: dict[str, str] | None, dry_run: bool, strict: bool, author: str | None,
    approval: str | None, note: str | None, region: Region, generalize: bool | None,
    generalizer: Callable[[psycopg.Connection, Layer], Any] | None, progress: bool,
) -> ImportResult:  # fmt: skip
    report = ValidationReport(file=source.display, layer=layer.id, source_layer=source.layer, driver=source.driver)
    report.encoding = source.encoding_note
    try:
        source_crs = _resolve_crs(source, crs, report, region)
        gcj02 = check_datum(datum, source_crs) == "gcj02"
    except CRSProblem as exc:
        raise ImportFailed(str(exc)) from None
    report.crs = describe_crs(source_crs) + (" + GCJ-02 offset removed" if gcj02 else "")
    field_map, unused = resolve_mapping(source.fields, layer, mapping)
    report.mapping = field_map
    if unused:
        report.add(
            "info", "ignored_fields", "fields not in the layer, ignored: " + ", ".join(unused), count=len(unused)
        )
    table = _describe_table(conn, layer)
    written = [p for p in layer.property_names if p in field_map.values()]
    for rule in table.rules:
        if rule.required and rule.prop.name not in written:
            report.add(
                "error", "missing_attribute",
                f"required attribute {rule.prop.name!r} is not in the file (fields: {', '.join(source.fields)});"
                f" map one with --map FIELD={rule.prop.name}",
                field_name=rule.prop.name,
            )  # fmt: skip
    if key is None and mode != "append":
        key = next((c for c in table.unique if c in written), None)
    if key is not None and key not in layer.property_names:
        raise ImportFailed(f"--key {key}: layer {layer.id} has no property {key!r}; use one of {', '.join(written)}")
    if key is not None and key not in written and mode != "append":
        raise ImportFailed(f"--key {key}: the file has no field for {key!r}; map one with --map FIELD={key}")
    if mode == "upsert" and key is None:
        raise ImportFailed(
            f"--mode upsert needs --key FIELD naming the property that identifies a feature of {layer.id}"
        )
    result = ImportResult(report, mode=mode, key=key if mode != "append" else None, checksum=source.checksum())
    stage = sql.Identifier(f"ecomap_import_{uuid.uuid4().hex[:12]}")
    try:
        with conn.transaction():
            _stage(conn, stage, layer)
            total, raw_bounds = _load_stage(
                conn, stage, source, layer, table, field_map, report,
                transformer=wgs84_transformer(source_crs), gcj02=gcj02, strict=strict, region=region, progress=progress,
            )  # fmt: skip
            report.features = total
            if total != source.count:
                report.add(
                    "error", "truncated",
                    f"the file announces {source.count} features but {total} could be read (truncated file?)",
                )  # fmt: skip
            if total == 0 and mode == "replace":
                report.add("error", "empty_file", "the file holds no feature; replacing would empty the layer")
            _hint_crs(report, source_crs, raw_bounds, region)
            conn.execute(sql.SQL("ANALYZE {}").format(stage))
            _check_keys(conn, stage, layer, table, mode, result.key, report)
            if dry_run:
                raise psycopg.Rollback()
            if not report.ok:
                raise ValidationFailed(report)
            _apply(conn, stage, layer, table, source, result, written, author=author, approval=approval, note=note)
            if generalizer is not None and (generalize or (generalize is None and _quick_to_generalize(conn, layer))):
                result.generalized = generalizer(conn, layer)
            else:
                report.add("info", "generalize_later", "tile generalization left to the service (background)", count=1)
    except psycopg.Error as exc:
        raise ImportFailed(f"{source.display}: the import failed and was rolled back: {exc}") from None
    result.applied = not dry_run
    return result


def _quick_to_generalize(conn: psycopg.Connection, layer: Layer) -> bool:
    """A small layer, or few changed features (the generalizer re-generalizes only around them)."""
    size = conn.execute("SELECT pg_table_size(%s::regclass)", [layer.table]).fetchone()
    if size and size[0] <= GENERALIZE_INLINE_MAX_BYTES:
        return True
    changed = conn.execute("SELECT count(*) FROM gen_dirty WHERE layer = %s", [layer.id]).fetchone()
    return bool(changed and changed[0] <= GENERALIZE_INLINE_MAX_CHANGES)


def _hint_crs(report: ValidationReport, source_crs: Any, raw_bounds: np.ndarray, region: Region) -> None:
    """Add to an ``outside_region`` finding which CRSs would fit the file's coordinates."""
    finding = report.findings.get(("outside_region", None))
    if finding is None or not np.isfinite(raw_bounds).all():
        return
    xmin, ymin, xmax, ymax = raw_bounds.tolist()
    hint = f"; the file's coordinates span x {xmin:.6g}..{xmax:.6g}, y {ymin:.6g}..{ymax:.6g}"
    hint += f" read as {describe_crs(source_crs)}"
    candidates = suggest_crs((xmin, ymin, xmax, ymax), region)
    if candidates:
        hint += "; they would fit " + ", ".join(candidates) + " (fix the .prj or pass --crs)"
    finding.message += hint


def _apply(
    conn: psycopg.Connection, stage: sql.Identifier, layer: Layer, table: _Table, source: Source,
    result: ImportResult, written: list[str], *, author: str | None, approval: str | None, note: str | None,
) -> None:  # fmt: skip
    """Open the revision, lock the layer against other writers and write the staged features."""
    if has_history(layer):
        opened = conn.execute(
            "SELECT ecomap_begin_revision(%s, %s, %s, %s, %s, %s, 'import')",
            [layer.id, author, Path(source.display).name, result.checksum, approval, note or f"import ({result.mode})"],
        ).fetchone()
        row = conn.execute("SELECT number FROM layer_revision WHERE id = %s", [opened[0] if opened else None])
        result.revision = (row.fetchone() or (None,))[0]
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(layer.table)))
    plan = _Plan.build(layer, stage, table, result.mode, result.key, written)
    if (delete := plan.delete()) is not None:
        result.deleted = conn.execute(delete).rowcount
    if plan.update() is not None:
        result.updated = _run(conn, plan.update, stage, source)
    result.inserted = _run(conn, plan.insert, stage, source)
    conn.execute(
        sql.SQL("UPDATE layer_state SET sample_data = EXISTS (SELECT FROM {} WHERE is_sample) WHERE layer = %s").format(
            sql.Identifier(layer.table)
        ),
        [layer.id],
    )
    logger.info(
        "imported %s into %s: %d inserted, %d updated, %d deleted (revision %s)",
        source.display, layer.id, result.inserted, result.updated, result.deleted, result.revision,
    )  # fmt: skip
