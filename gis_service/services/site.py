"""The site of a zone check, read from GeoJSON or an uploaded file within limits checked
before the work.

A site arrives as a bare GeoJSON geometry, a Feature, a FeatureCollection, or wrapped
with options (``{"geometry": …, "buffer_m": …}``), or as an uploaded file read by the
importer's reader (:func:`layers.sources.read_upload`). The limits are enforced in order
of cost: nesting depth and vertex count while the GeoJSON is walked (before any geometry
is built), then the bounding box against the deployment's region, then validity and the
true area on the ellipsoid. The parsing is CPU-bound: callers run :func:`site_from_json`
and :func:`site_from_upload` in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyproj import CRS, Geod, Transformer
from shapely.geometry.base import BaseGeometry

from gis_service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from layers.crs import transform_geometry
from layers.gcj02 import geometry_gcj02_to_wgs84
from layers.regions import Region
from layers.sources import FileTooLarge, ImportFailed, read_upload

InputCrs = Literal["EPSG:4326", "GCJ-02", "EPSG:4490", "EPSG:4527", "EPSG:4548"]
INPUT_CRS: tuple[str, ...] = ("EPSG:4326", "GCJ-02", "EPSG:4490", "EPSG:4527", "EPSG:4548")

MAX_VERTICES = 20_000
MAX_AREA_KM2 = 500.0
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024
MAX_BUFFER_M = 5_000.0
MAX_STATION_RADIUS_M = 20_000.0
MAX_PARTS = 1_000
MAX_DEPTH = 8
"""Nesting of Features, FeatureCollections and GeometryCollections in a request."""

GEOD = Geod(ellps="WGS84")
_GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
_GEOJSON_TYPES = {*_GEOMETRY_TYPES, "GeometryCollection", "Feature", "FeatureCollection"}
_FIX_HINT = "fix it (e.g. QGIS “Fix geometries” or shapely.make_valid) and send it again"


class ZoneCheckOptions(BaseModel):
    """Options of a zone check."""

    model_config = ConfigDict(extra="ignore")

    buffer_m: float = Field(
        default=0, ge=0, le=MAX_BUFFER_M, description="Also report features within this distance (m)"
    )
    crs: InputCrs = Field(
        default="EPSG:4326", description="CRS of the input coordinates (a file's own .prj/crs wins, except GCJ-02)"
    )
    station_radius_m: float = Field(
        default=3000, ge=0, le=MAX_STATION_RADIUS_M, description="Radius for nearby stations (m)"
    )


@dataclass(frozen=True)
class Site:
    """A checked site in WGS84 with its measures."""

    geometry: BaseGeometry
    dimension: int
    """0 points, 1 lines, 2 polygons."""
    area_m2: float
    length_m: float
    vertices: int

    @property
    def bbox(self) -> list[float]:
        return [round(v, 7) for v in self.geometry.bounds]

    @property
    def points(self) -> int:
        return len(shapely.get_parts(self.geometry)) if self.dimension == 0 else 0

    @property
    def measure(self) -> float:
        """What shares are taken of: the area (m²), the length (m) or the number of points."""
        return {2: self.area_m2, 1: self.length_m}.get(self.dimension, float(self.points))


# --- GeoJSON --------------------------------------------------------------------------


def _positions(kind: str, coordinates: list[Any]) -> int:
    """How many positions a geometry's coordinates hold, counted from the array lengths only
    (a malformed array counts 1 here; the GeoJSON reader refuses it afterwards)."""
    if kind == "Point":
        return 1
    if kind in ("MultiPoint", "LineString"):
        return len(coordinates)
    if kind in ("MultiLineString", "Polygon"):
        return sum(len(ring) if isinstance(ring, list) else 1 for ring in coordinates)
    return sum(
        sum(len(ring) if isinstance(ring, list) else 1 for ring in polygon) if isinstance(polygon, list) else 1
        for polygon in coordinates
    )


def geojson_parts(document: Any) -> list[dict[str, Any]]:
    """The GeoJSON geometries of a geometry, Feature, FeatureCollection or GeometryCollection.

    Walked without recursion, refusing nesting deeper than MAX_DEPTH, more than MAX_PARTS
    parts or more than MAX_VERTICES positions as soon as they are reached.
    """
    parts: list[dict[str, Any]] = []
    vertices = 0
    stack: list[tuple[Any, str, int]] = [(document, "geometry", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(
                f"{path}: the GeoJSON is nested more than {MAX_DEPTH} levels deep (Features, FeatureCollections, "
                "GeometryCollections); flatten it into one FeatureCollection"
            )
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise InvalidRequest(f"{path} must be a GeoJSON object with a 'type'")
        kind = node["type"]
        children: list[tuple[Any, str, int]] = []
        if kind == "Feature":
            if node.get("geometry") is None:
                raise InvalidRequest(f"{path} is a Feature without geometry")
            children = [(node["geometry"], f"{path}.geometry", depth + 1)]
        elif kind in ("FeatureCollection", "GeometryCollection"):
            key = "features" if kind == "FeatureCollection" else "geometries"
            members = node.get(key)
            if not isinstance(members, list) or not members:
                raise InvalidRequest(f"{path}.{key} must be a non-empty array")
            if len(members) > MAX_PARTS:
                raise PayloadTooLarge(f"the input has more than {MAX_PARTS} parts; merge them or check fewer at once")
            children = [(member, f"{path}.{key}[{index}]", depth + 1) for index, member in enumerate(members)]
        elif kind in _GEOMETRY_TYPES:
            coordinates = node.get("coordinates")
            if not isinstance(coordinates, list):
                raise InvalidRequest(f"{path}.coordinates must be an array of positions")
            vertices += _positions(kind, coordinates)
            if vertices > MAX_VERTICES:
                raise PayloadTooLarge(
                    f"the geometry has more than {MAX_VERTICES} vertices, the limit: simplify it "
                    "(e.g. QGIS “Simplify”) or check it in parts"
                )
            parts.append({"type": kind, "coordinates": coordinates})
            if len(parts) > MAX_PARTS:
                raise PayloadTooLarge(f"the input has more than {MAX_PARTS} parts; merge them or check fewer at once")
        else:
            raise InvalidRequest(
                f"{path} has type {kind!r}; expected a GeoJSON geometry (Point, LineString, Polygon, Multi*), "
                "a Feature or a FeatureCollection"
            )
        stack.extend(reversed(children))
    return parts


def geometry_from_geojson(document: Any) -> BaseGeometry:
    """Parse a GeoJSON geometry, Feature or FeatureCollection into one shapely geometry (unchecked CRS)."""
    parts = geojson_parts(document)
    try:  # GEOS's strict GeoJSON reader: positions of 2 or 3 finite numbers, rings of positions...
        shapes = list(shapely.from_geojson([orjson.dumps(part) for part in parts]))
    except (orjson.JSONEncodeError, shapely.errors.GEOSException) as exc:
        message = str(exc).replace("ParseException: Error parsing JSON: ", "")
        raise InvalidRequest(f"the geometry cannot be read ({message}); coordinates must be [x, y] numbers") from None
    return combine(shapes)


def combine(shapes: list[BaseGeometry]) -> BaseGeometry:
    """Join parts of one dimension into a single (multi-part) geometry."""
    shapes = [shapely.force_2d(s) for s in shapes if s is not None and not s.is_empty]
    if not shapes:
        raise InvalidRequest("the input holds no geometry")
    parts = [p for s in shapes for p in shapely.get_parts(s)]
    if len(parts) > MAX_PARTS:
        raise PayloadTooLarge(f"the input has more than {MAX_PARTS} parts; merge them or check fewer at once")
    dimensions = {shapely.get_dimensions(p) for p in parts}
    if len(dimensions) > 1:
        raise InvalidRequest("the input mixes points, lines and polygons; check one kind of geometry at a time")
    if len(shapes) == 1 and shapes[0].geom_type != "GeometryCollection":
        return shapes[0]
    dimension = dimensions.pop()
    if dimension == 0:
        return shapely.multipoints(parts)
    if dimension == 1:
        return shapely.multilinestrings(parts)
    for index, part in enumerate(parts):
        _require_valid(part, f"part {index + 1}")
    return shapely.union_all(parts)


def _readable(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}" for item in exc.errors(include_url=False)
    )


def site_from_json(body: bytes, region: Region) -> tuple[Site, ZoneCheckOptions]:
    """A checked site and its options from a JSON body: a bare GeoJSON geometry, Feature or
    FeatureCollection (default options), or ``{"geometry": <one of those>, "buffer_m": …,
    "crs": …, "station_radius_m": …}``. CPU-bound: run it in a worker thread."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(
            'the body must be a JSON object: a GeoJSON geometry, Feature or FeatureCollection, or {"geometry": …} '
            "with options"
        )
    if document.get("type") in _GEOJSON_TYPES:
        geojson, raw_options = document, {}
    elif "geometry" in document:
        geojson, raw_options = document["geometry"], {k: v for k, v in document.items() if k != "geometry"}
    else:
        raise InvalidRequest(
            'the body needs a GeoJSON geometry, Feature or FeatureCollection (with its "type"), or a "geometry" '
            "member holding one, with options buffer_m, crs and station_radius_m"
        )
    try:  # options through pydantic; the (possibly huge) geometry is read by GEOS, not pydantic
        options = ZoneCheckOptions.model_validate(raw_options)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid zone-check request: {_readable(exc)}") from None
    return check_site(geometry_from_geojson(geojson), options.crs, region), options


def site_from_upload(content: bytes, options: ZoneCheckOptions, region: Region) -> Site:
    """A checked site from an uploaded file (GeoJSON, zipped Shapefile, GeoPackage, KML/KMZ).

    A CRS stored in the file (.prj, GeoJSON ``crs``) wins, except that a declared GCJ-02
    applies to files that claim plain WGS84 (as AMap exports do). CPU-bound: run it in a
    worker thread.
    """
    if len(content) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; simplify or split the site")
    try:
        shapes, file_crs, kind = read_upload(content, max_unzipped_bytes=MAX_UNZIPPED_BYTES, max_vertices=MAX_VERTICES)
    except FileTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except ImportFailed as exc:
        raise UnsupportedMediaType(str(exc)) from None
    if not shapes:
        raise InvalidRequest(f"the {kind} file holds no geometry")
    geometry = combine(shapes)
    declared = options.crs
    if file_crs is None or (declared == "GCJ-02" and file_crs.to_epsg() == 4326):
        return check_site(geometry, declared, region)
    epsg = file_crs.to_epsg()
    if epsg in (4326, 4490):
        return check_site(geometry, f"EPSG:{epsg}", region)
    try:
        transformer = Transformer.from_crs(file_crs, "EPSG:4326", always_xy=True)
    except Exception as exc:  # pyproj raises several types (CRSError, ProjError...) for unusable CRSs
        raise InvalidRequest(f"the file's coordinate system cannot be converted to WGS84: {exc}") from None
    return check_site(transform_geometry(geometry, transformer), "file", region)


# --- checks ---------------------------------------------------------------------------


def to_wgs84(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """Convert a geometry from an accepted input CRS to WGS84 longitude/latitude."""
    if crs in ("EPSG:4326", "file"):
        return geometry
    if crs == "GCJ-02":
        return geometry_gcj02_to_wgs84(geometry)
    converted = transform_geometry(geometry, Transformer.from_crs(crs, "EPSG:4326", always_xy=True))
    area = CRS.from_user_input(crs).area_of_use
    if crs != "EPSG:4490" and area is not None and np.isfinite(shapely.get_coordinates(converted)).all():
        minx, miny, maxx, maxy = converted.bounds
        if minx < area.west - 1 or maxx > area.east + 1 or miny < area.south - 1 or maxy > area.north + 1:
            raise InvalidRequest(
                f"the coordinates fall outside the area where {crs} is used ({area.name}); "
                "check the CRS you declared (EPSG:4548: x ≈ 500,000 m; EPSG:4527: x ≈ 39,500,000 m)"
            )
    return converted


def _require_valid(geometry: BaseGeometry, what: str = "the geometry") -> None:
    if not shapely.is_valid(geometry):
        raise InvalidRequest(f"{what} is not valid ({shapely.is_valid_reason(geometry)}); {_FIX_HINT}")


def ellipsoidal_area(geometry: BaseGeometry) -> float:
    """The area (m²) of a polygonal geometry on the WGS84 ellipsoid, whatever the winding of
    its rings: each ring's geodesic area is taken unsigned (a ring wound the other way is the
    same ring, never its complement), holes subtracted from their shell."""
    total = 0.0
    for polygon in shapely.get_parts(geometry):
        if polygon.is_empty:
            continue
        shell = abs(GEOD.polygon_area_perimeter(*np.asarray(polygon.exterior.coords).T[:2])[0])
        holes = sum(abs(GEOD.polygon_area_perimeter(*np.asarray(r.coords).T[:2])[0]) for r in polygon.interiors)
        total += max(shell - holes, 0.0)
    return total


def check_region(geometry: BaseGeometry, region: Region) -> None:
    """Refuse a site whose bounding box is not within the deployment's region."""
    bounds = tuple(float(v) for v in geometry.bounds)
    if not region.covers(bounds):  # type: ignore[arg-type]
        shown = ", ".join(f"{v:.6g}" for v in bounds)
        raise InvalidRequest(
            f"the site (bbox {shown}) is not within the region this service checks, {region.describe()}: check the "
            f"coordinates and their CRS (crs=GCJ-02, EPSG:4527…); if the site is right, {region.change_hint()}"
        )


def check_site(geometry: BaseGeometry, crs: str, region: Region) -> Site:
    """Enforce the limits and validity, convert to WGS84 and measure on the ellipsoid.

    The cheap checks come first: vertices, coordinates, the bounding box in the region;
    then validity and the area.
    """
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > MAX_VERTICES:
        raise PayloadTooLarge(f"the geometry has {vertices} vertices; the limit is {MAX_VERTICES}: simplify it")
    if geometry.is_empty:
        raise InvalidRequest("the geometry is empty")
    if crs in ("EPSG:4326", "GCJ-02", "EPSG:4490"):
        _check_lon_lat(geometry, crs)
    geometry = to_wgs84(geometry, crs)
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise InvalidRequest(f"some coordinates lie outside the area where {crs} can be converted to WGS84")
    _check_lon_lat(geometry, "WGS84 after conversion from " + crs)
    check_region(geometry, region)
    dimension = int(shapely.get_dimensions(geometry))
    if dimension > 0:
        _require_valid(geometry)
    if dimension == 2:
        geometry = shapely.orient_polygons(geometry)
    area = ellipsoidal_area(geometry) if dimension == 2 else 0.0
    if area > MAX_AREA_KM2 * 1e6:
        raise PayloadTooLarge(
            f"the site covers {area / 1e6:.1f} km²; the limit is {MAX_AREA_KM2:.0f} km²: check it in smaller parts"
        )
    length = GEOD.geometry_length(geometry) if dimension == 1 else 0.0
    return Site(geometry, dimension, area, length, vertices)


def _check_lon_lat(geometry: BaseGeometry, crs: str) -> None:
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidRequest(
            f"coordinates {geometry.bounds} are not longitude/latitude in {crs}: give [longitude, latitude] "
            "in degrees, or declare the CRS (crs=EPSG:4527, EPSG:4548 for Gauss-Krüger metres)"
        )
