"""Geometry helpers for the demo dataset: a local metric frame and irregular shapes.

The generator works in a local equirectangular frame (metres around Xiamen) so that
buffers and radii are in metres; the frame is affine in lon/lat, so containment,
disjointness and validity survive the round trip exactly (up to float rounding).
Areas and lengths reported in the data are always measured on the WGS84 ellipsoid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

LonLat = tuple[float, float]

_WGS84_A = 6378137.0
_WGS84_E2 = 0.00669437999014
_GEOD = Geod(ellps="WGS84")

ORIGIN: LonLat = (118.15, 24.65)
"""Origin of the local frame, near the middle of Xiamen."""


def _metres_per_degree(lat: float) -> tuple[float, float]:
    phi = math.radians(lat)
    w = 1.0 - _WGS84_E2 * math.sin(phi) ** 2
    meridional = _WGS84_A * (1.0 - _WGS84_E2) / w**1.5
    prime_vertical = _WGS84_A / math.sqrt(w)
    return prime_vertical * math.cos(phi) * math.pi / 180.0, meridional * math.pi / 180.0


_KX, _KY = _metres_per_degree(ORIGIN[1])


def to_local(geom: BaseGeometry) -> BaseGeometry:
    """Lon/lat (EPSG:4326) -> local metres."""
    return shapely.transform(
        geom, lambda c: np.column_stack([(c[:, 0] - ORIGIN[0]) * _KX, (c[:, 1] - ORIGIN[1]) * _KY])
    )


def to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    """Local metres -> lon/lat (EPSG:4326)."""
    return shapely.transform(geom, lambda c: np.column_stack([c[:, 0] / _KX + ORIGIN[0], c[:, 1] / _KY + ORIGIN[1]]))


def xy(lon: float, lat: float) -> tuple[float, float]:
    """A lon/lat position in local metres."""
    return (lon - ORIGIN[0]) * _KX, (lat - ORIGIN[1]) * _KY


def local_point(lon: float, lat: float) -> Point:
    return Point(xy(lon, lat))


def local_polygon(ring: Sequence[LonLat]) -> Polygon:
    """A polygon given by lon/lat vertices, in local metres."""
    return Polygon([xy(lon, lat) for lon, lat in ring])


# --- irregular shapes --------------------------------------------------------------


def blob(
    center: tuple[float, float],
    radius: float,
    rng: np.random.Generator,
    *,
    irregularity: float = 0.35,
    elongation: float = 1.0,
    angle: float | None = None,
    vertices: int = 72,
) -> Polygon:
    """A star-shaped irregular polygon around ``center`` (local metres).

    The radius varies with a few random harmonics (smooth lobes and bays) plus a little
    per-vertex jitter, so outlines look hand-digitised rather than geometric.
    ``elongation`` stretches the shape along ``angle`` (radians, random if omitted).
    """
    theta = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    r = np.ones(vertices)
    for k in range(2, 9):
        amp = irregularity * rng.uniform(0.3, 1.0) / k
        r += amp * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    r += rng.normal(0.0, irregularity * 0.04, vertices)
    r = np.clip(r, 0.25, None) * radius
    x = r * np.cos(theta) * elongation
    y = r * np.sin(theta)
    rot = rng.uniform(0.0, np.pi) if angle is None else angle
    xr = x * np.cos(rot) - y * np.sin(rot)
    yr = x * np.sin(rot) + y * np.cos(rot)
    return Polygon(np.column_stack([xr + center[0], yr + center[1]]))


def lobed(
    center: tuple[float, float], radius: float, rng: np.random.Generator, *, irregularity: float = 0.4
) -> Polygon:
    """An irregular shape made of a main blob and two to four overlapping lobes.

    Looks like a parcel following ridges and valleys rather than a single splat; its
    area is close to that of a blob of the same ``radius``.
    """
    cx, cy = center
    parts = [blob(center, radius * 0.9, rng, irregularity=irregularity)]
    for _ in range(int(rng.integers(2, 5))):
        direction = rng.uniform(0.0, 2.0 * np.pi)
        distance = radius * rng.uniform(0.5, 0.8)
        lobe_center = (cx + distance * np.cos(direction), cy + distance * np.sin(direction))
        parts.append(blob(lobe_center, radius * rng.uniform(0.45, 0.65), rng, irregularity=irregularity))
    return largest_polygon(shapely.union_all(parts))


def meander_path(
    waypoints: Sequence[tuple[float, float]],
    seed: int,
    *,
    scale: float = 1.0,
    step: float = 40.0,
) -> LineString:
    """A meandering line through ``waypoints`` (local metres), like a digitised stream.

    Each leg gets a few broad bends plus meanders with wavelengths of 0.2–1.6 km,
    displaced sideways from the straight leg (so the line never loops) and tapered to
    zero at the waypoints (so the line passes through them). The random shape depends
    only on ``seed``; ``scale`` multiplies the meander amplitude, which lets callers
    tune the length of a stream without changing its character.
    """
    rng = np.random.default_rng(seed)
    pts: list[np.ndarray] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(waypoints):
        length = math.hypot(x1 - x0, y1 - y0)
        t = np.linspace(0.0, 1.0, max(8, int(length / step)) + 1)
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length
        bends = sum(rng.normal(0.0, 0.06 / k) * length * np.sin(k * np.pi * t) for k in range(1, 4))
        meanders = np.zeros_like(t)
        for low, high, ratio in ((700.0, 1600.0, 0.16), (450.0, 900.0, 0.10), (180.0, 320.0, 0.05)):
            wavelength = rng.uniform(low, high)
            amplitude = ratio * wavelength * rng.uniform(0.6, 1.0)
            meanders += amplitude * np.sin(2.0 * np.pi * t * length / wavelength + rng.uniform(0.0, 2.0 * np.pi))
        offset = bends + scale * meanders * np.sin(np.pi * t)
        leg = np.column_stack([x0 + t * (x1 - x0) + offset * nx, y0 + t * (y1 - y0) + offset * ny])
        pts.append(leg if not pts else leg[1:])
    return LineString(np.vstack(pts))


def perturb_polygon(
    poly: Polygon, rng: np.random.Generator, *, step: float = 250.0, amplitude: float = 120.0
) -> Polygon:
    """Densify a hand-drawn polygon and push its vertices around so edges look natural."""
    ring = shapely.segmentize(poly.exterior, step)
    coords = np.asarray(ring.coords)[:-1]
    n = len(coords)
    noise = np.zeros(n)
    phase = np.arange(n) / n * 2.0 * np.pi
    for k in range(3, 40, 3):
        noise += rng.normal(0.0, 1.0 / math.sqrt(k)) * np.sin(k * phase + rng.uniform(0.0, 2.0 * np.pi))
    noise = noise / max(np.abs(noise).max(), 1e-9) * amplitude
    centre = np.asarray(poly.centroid.coords[0])
    radial = coords - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    moved = coords + radial * noise[:, None]
    return largest_polygon(repair(Polygon(moved)))


# --- cleaning ------------------------------------------------------------------------


def repair(geom: BaseGeometry) -> BaseGeometry:
    """A valid version of a polygonal geometry: shells unioned, holes subtracted.

    The "structure" method keeps the meaning of rings (a hole never turns into an
    extra polygon), unlike the default linework repair.
    """
    if shapely.is_valid(geom):
        return geom
    return shapely.make_valid(geom, method="structure", keep_collapsed=False)


def polygons_of(geom: BaseGeometry | None) -> list[Polygon]:
    """The polygon parts of any geometry (drops points and lines left by overlays)."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    if hasattr(geom, "geoms"):
        return [p for part in geom.geoms for p in polygons_of(part)]
    return []


def largest_polygon(geom: BaseGeometry) -> Polygon:
    parts = polygons_of(geom)
    return max(parts, key=lambda p: p.area) if parts else Polygon()


def clean_area(geom: BaseGeometry | None, *, min_part: float = 20_000.0) -> MultiPolygon:
    """Polygonal parts of ``geom`` as a valid MultiPolygon, without parts under ``min_part`` m².

    Dropping whole parts never makes the result overlap anything it was subtracted
    from, so coverages built by successive differences stay disjoint.
    """
    parts = [p for p in polygons_of(repair(geom) if geom is not None else None) if p.area >= min_part]
    return as_multipolygon(repair(MultiPolygon(parts))) if parts else MultiPolygon()


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    parts = polygons_of(geom)
    return MultiPolygon(parts) if parts else MultiPolygon()


def as_multilinestring(geom: BaseGeometry) -> MultiLineString:
    if isinstance(geom, LineString):
        return MultiLineString([geom])
    if isinstance(geom, MultiLineString):
        return geom
    lines = [g for g in getattr(geom, "geoms", []) if isinstance(g, LineString)]
    return MultiLineString(lines)


def union_all(geoms: Iterable[BaseGeometry]) -> BaseGeometry:
    return shapely.union_all(list(geoms))


# --- ellipsoidal measures (lon/lat input) --------------------------------------------


def area_km2(geom_lonlat: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid, km²."""
    return abs(_GEOD.geometry_area_perimeter(geom_lonlat)[0]) / 1e6


def length_km(geom_lonlat: BaseGeometry) -> float:
    """Length on the WGS84 ellipsoid, km."""
    return _GEOD.geometry_length(geom_lonlat) / 1000.0
