"""Coordinate reference systems of imported and exported files.

Official data in China usually comes in CGCS2000: geographic (EPSG:4490) or projected
with Gauss-Krüger, in 3-degree or 6-degree zones, with or without the zone number
prefixed to the easting (Xiamen: EPSG:4527 = 3-degree zone 39 with prefix, EPSG:4548 =
CM 117°E without). All of them, WGS84 and UTM are handled by PROJ through pyproj.

A file without a CRS is never guessed: :func:`suggest_crs` lists the common CRSs that
would put its coordinates inside the region, for the message asking for ``--crs``.

Measures on the ellipsoid use :class:`LocalEqualArea`, a projection centred on the
geometry measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyproj
import shapely
from pyproj.exceptions import CRSError

from layers.gcj02 import geometry_gcj02_to_wgs84
from layers.regions import Region, get_region

WGS84 = pyproj.CRS.from_epsg(4326)


def transform_geometry(geometry: Any, transformer: pyproj.Transformer, direction: str = "FORWARD") -> Any:
    """A shapely geometry (or array of them) through a pyproj transformer, vectorised."""
    return shapely.transform(
        geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1], direction=direction))
    )


@dataclass(frozen=True)
class LocalEqualArea:
    """A Lambert azimuthal equal-area projection of the WGS84 ellipsoid centred on a
    geometry's bounding box, in metres.

    Areas in it are exactly those of the ellipsoid; distances within the ~25 km around the
    centre are off by less than a millimetre per kilometre. It is several times faster
    than geodesic functions on polygons of hundreds of vertices.
    """

    lon_0: float
    lat_0: float

    @classmethod
    def around(cls, geometry: Any) -> LocalEqualArea:
        minx, miny, maxx, maxy = geometry.bounds
        return cls(round((minx + maxx) / 2, 6), round((miny + maxy) / 2, 6))

    @property
    def proj4(self) -> str:
        """The projection as a PROJ string (for PostGIS ``ST_Transform``)."""
        return f"+proj=laea +lat_0={self.lat_0} +lon_0={self.lon_0} +datum=WGS84 +units=m +no_defs"

    @property
    def transformer(self) -> pyproj.Transformer:
        """WGS84 lon/lat → the projection, as a pipeline: no CRS database lookups (~10 ms each)."""
        return pyproj.Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
            f"+step +proj=laea +lat_0={self.lat_0} +lon_0={self.lon_0} +ellps=WGS84"
        )


XIAMEN_REGION = get_region("xiamen")
"""The default region (see ``layers/regions.yaml``); Xiamen spans 117°53′–118°26′E, 24°23′–24°54′N."""


class CRSProblem(ValueError):
    """A CRS that cannot be used; the message says what to pass instead."""


def parse_crs(text: str) -> pyproj.CRS:
    """Read ``EPSG:4527``, ``4527``, a WKT or a PROJ string into a CRS."""
    value = text.strip()
    if value.isdigit():
        value = f"EPSG:{value}"
    try:
        return pyproj.CRS.from_user_input(value)
    except CRSError as exc:
        raise CRSProblem(f"unknown CRS {text!r} ({exc}); give an EPSG code such as EPSG:4527 or EPSG:4490") from None


def describe_crs(crs: pyproj.CRS) -> str:
    """``EPSG:4527 (CGCS2000 / 3-degree Gauss-Kruger zone 39)``, or the name when it has no code."""
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code} ({crs.name})" if code else crs.name


def crs_label(crs: pyproj.CRS) -> str:
    """``EPSG:4527`` when the CRS has a code, else its name."""
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else crs.name


def _candidate_codes() -> list[int]:
    codes = [4490, 4326]
    codes += list(range(4513, 4534))  # CGCS2000 3-degree GK zones 25-45 (zone prefix on the easting)
    codes += list(range(4534, 4555))  # CGCS2000 3-degree GK CM 75E-135E
    codes += list(range(4491, 4502))  # CGCS2000 6-degree GK zones 13-23 (zone prefix)
    codes += list(range(4502, 4513))  # CGCS2000 6-degree GK CM 75E-135E
    codes += list(range(32643, 32654))  # WGS 84 / UTM zones 43N-53N
    codes.append(3857)  # Web Mercator (data traced from web maps)
    return codes


@lru_cache(maxsize=128)
def _to_wgs84(code: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_epsg(code), WGS84, always_xy=True)


def suggest_crs(bounds: tuple[float, float, float, float], region: Region = XIAMEN_REGION, limit: int = 4) -> list[str]:
    """Common CRSs under which coordinates with these bounds would fall inside the region.

    Returns labels like ``EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E)``. Several
    CRSs often fit (same central meridian, different scale factor); the user must choose.
    """
    xmin, ymin, xmax, ymax = bounds
    if not all(np.isfinite([xmin, ymin, xmax, ymax])):
        return []
    xs = np.array([xmin, xmax, xmin, xmax, (xmin + xmax) / 2])
    ys = np.array([ymin, ymin, ymax, ymax, (ymin + ymax) / 2])
    found = []
    for code in _candidate_codes():
        try:
            lon, lat = _to_wgs84(code).transform(xs, ys, errcheck=False)
        except CRSError:  # pragma: no cover - only when the PROJ database lacks a code
            continue
        lon, lat = np.asarray(lon), np.asarray(lat)
        if np.all(np.isfinite(lon)) and np.all(region.contains(lon, lat)):
            found.append(describe_crs(pyproj.CRS.from_epsg(code)))
        if len(found) >= limit:
            break
    return found


def looks_geographic(bounds: tuple[float, float, float, float]) -> bool:
    """True when coordinates could be longitudes/latitudes."""
    xmin, ymin, xmax, ymax = bounds
    return -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90


def missing_crs_message(path: str, bounds: tuple[float, float, float, float] | None, region: Region) -> str:
    """The refusal for a file without CRS: what was found, what to pass, likely candidates."""
    message = f"{path} declares no coordinate reference system (no .prj or CRS metadata); pass --crs EPSG:XXXX"
    if bounds is None:
        return message
    xmin, ymin, xmax, ymax = bounds
    message += f". Its coordinates span x {xmin:.6g}..{xmax:.6g}, y {ymin:.6g}..{ymax:.6g}"
    candidates = suggest_crs(bounds, region)
    if candidates:
        message += "; these CRSs would place them in " + region.name + ": " + ", ".join(candidates)
        if looks_geographic(bounds):
            message += " (add --datum gcj02 if the coordinates come from AMap/Gaode or Tencent maps)"
    else:
        message += f"; no common CRS places them in {region.describe()}"
    return message


def check_datum(datum: str | None, crs: pyproj.CRS) -> str | None:
    """Validate ``--datum``: only ``gcj02`` is known, and it applies to longitude/latitude data."""
    if datum is None:
        return None
    value = datum.strip().lower().replace("-", "")
    if value not in ("gcj02", "wgs84", "cgcs2000"):
        raise CRSProblem(f"unknown datum {datum!r}; the only correction available is --datum gcj02 (AMap/Tencent)")
    if value != "gcj02":
        return None
    if not crs.is_geographic:
        raise CRSProblem(
            f"--datum gcj02 applies to longitude/latitude coordinates, but the data is in {describe_crs(crs)}"
        )
    return value


def wgs84_transformer(source_crs: pyproj.CRS) -> pyproj.Transformer | None:
    """A transformer to WGS84 lon/lat (None when the data already is)."""
    if source_crs.equals(WGS84, ignore_axis_order=True):
        return None
    return pyproj.Transformer.from_crs(source_crs, WGS84, always_xy=True)


def reproject_to_wgs84(geoms: np.ndarray, transformer: pyproj.Transformer | None, gcj02: bool = False) -> np.ndarray:
    """Reproject an array of shapely geometries, then undo the GCJ-02 offset if asked.

    Coordinates that cannot be transformed become infinite (the validation reports them).
    """
    if transformer is not None:

        def move(coords: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
            return np.column_stack([x, y])

        geoms = shapely.transform(geoms, move)
    if gcj02:
        geoms = geometry_gcj02_to_wgs84(geoms)
    return geoms
