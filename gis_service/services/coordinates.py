"""Coordinates typed into the search box, read as a place on the map.

Accepted forms (README "Search"):

- decimal degrees in either order, ``118.1,24.5`` or ``24.5 118.1``: a value above 90 is the
  longitude; when both orders are possible, the readings inside the deployment's region are
  offered (both, if both are);
- hemisphere letters or Chinese prefixes fix the axes: ``24.5N 118.1E``, ``北纬24.5 东经118.1``;
- degrees, minutes and seconds: ``24°27′N 118°05′E``, ``24°27'30"N 118°5'E``, ``24d27m 118d5m``;
- projected metres, e.g. CGCS2000 3-degree Gauss–Krüger: ``EPSG:4527 39512345 2709876`` (an
  explicit CRS), or bare numbers: an easting with the zone prefix (39xxxxxx) is EPSG:4527
  (zone 39), one without is EPSG:4548 (CM 117°E); surveyors' X (northing) first is understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pyproj

from layers.crs import CRSProblem, parse_crs
from layers.regions import Region

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_DMS = re.compile(
    rf"""(?P<prefix>北纬|南纬|东经|西经)?\s*(?P<deg>{_NUMBER})\s*(?:°|度|d|\s(?=\d))\s*
        (?:(?P<min>\d+(?:\.\d+)?)\s*(?:′|'|’|分|m)\s*)?
        (?:(?P<sec>\d+(?:\.\d+)?)\s*(?:″|"|”|''|秒|s)\s*)?
        (?P<hemi>[NSEWnsew])?""",
    re.VERBOSE,
)
_DECIMAL = re.compile(rf"(?P<prefix>北纬|南纬|东经|西经)?\s*(?P<value>{_NUMBER})\s*°?\s*(?P<hemi>[NSEWnsew])?")
_EPSG = re.compile(r"^\s*(?:EPSG|epsg)\s*:\s*(\d{4,5})[\s,;]+(.*)$")
_PREFIX_AXIS = {"北纬": ("lat", 1), "南纬": ("lat", -1), "东经": ("lon", 1), "西经": ("lon", -1)}
_HEMI_AXIS = {"n": ("lat", 1), "s": ("lat", -1), "e": ("lon", 1), "w": ("lon", -1)}


@dataclass(frozen=True)
class Reading:
    """One way of reading the text: a WGS84/CGCS2000 point and how it was read."""

    lon: float
    lat: float
    how: str
    """``lon,lat``, ``lat,lon``, ``dms`` or a CRS label such as ``EPSG:4527``."""


def _split(text: str) -> list[str]:
    """Two coordinate parts of a text, split at a comma, semicolon or the gap between them."""
    for sep in (",", "，", ";", "；"):
        if text.count(sep) == 1:
            return [p.strip() for p in text.split(sep)]
    parts = re.findall(
        rf"(?:北纬|南纬|东经|西经)?\s*{_NUMBER}(?:\s*(?:°|度|d)\s*(?:\d+(?:\.\d+)?\s*(?:′|'|’|分|m))?"
        rf"\s*(?:\d+(?:\.\d+)?\s*(?:″|\"|”|''|秒|s))?)?\s*[NSEWnsew]?",
        text,
    )
    parts = [p.strip() for p in parts if p.strip()]
    return parts if "".join(parts).replace(" ", "") == text.replace(" ", "") else []


def _angle(part: str) -> tuple[float, str | None] | None:
    """The value in degrees of one part and the axis it names (``lat``/``lon``/None)."""
    match = _DMS.fullmatch(part) if any(c in part for c in "°度′'’\"″dm分秒") else None
    match = match or _DECIMAL.fullmatch(part)
    if match is None:
        return None
    groups = match.groupdict()
    value = float(groups.get("deg") or groups.get("value") or 0)
    minutes, seconds = float(groups.get("min") or 0), float(groups.get("sec") or 0)
    if minutes >= 60 or seconds >= 60:
        return None
    value = abs(value) + minutes / 60 + seconds / 3600
    sign = -1 if (groups.get("deg") or groups.get("value") or "").startswith("-") else 1
    axis = None
    for key, table in ((groups.get("prefix"), _PREFIX_AXIS), ((groups.get("hemi") or "").lower(), _HEMI_AXIS)):
        if key:
            axis, sign = table[key]
    return sign * value, axis


def _degrees(text: str, region: Region) -> list[Reading]:
    parts = _split(text)
    if len(parts) != 2:
        return []
    angles = [_angle(p) for p in parts]
    if any(a is None for a in angles):
        return []
    (first, axis1), (second, axis2) = angles  # type: ignore[misc]
    how = "dms" if any(c in text for c in "°度′'’\"″分秒") or re.search(r"\dd\d", text) else None
    if axis1 or axis2:
        if axis1 == axis2:
            return []
        lat_first = axis1 == "lat" or axis2 == "lon"
        lat, lon = (first, second) if lat_first else (second, first)
        return [Reading(lon, lat, how or ("lat,lon" if lat_first else "lon,lat"))] if _valid(lon, lat) else []
    readings = [Reading(first, second, how or "lon,lat"), Reading(second, first, how or "lat,lon")]
    readings = [r for r in readings if _valid(r.lon, r.lat)]
    inside = [r for r in readings if bool(region.contains(r.lon, r.lat))]
    return inside or readings[:1]


def _valid(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


@lru_cache(maxsize=32)
def _to_lonlat(code: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(parse_crs(code), pyproj.CRS.from_epsg(4326), always_xy=True)


def _projected(text: str, region: Region) -> list[Reading]:
    explicit = _EPSG.match(text)
    numbers_text = explicit.group(2) if explicit else text
    numbers = re.findall(_NUMBER, numbers_text)
    if len(numbers) != 2 or re.sub(rf"{_NUMBER}|[\s,;，；xXyY=:]", "", numbers_text):
        return []
    a, b = float(numbers[0]), float(numbers[1])
    if explicit:
        codes = [f"EPSG:{explicit.group(1)}"]
    elif max(abs(a), abs(b)) < 100_000:
        return []  # not metres of a national grid
    else:
        codes = ["EPSG:4527" if max(a, b) >= 10_000_000 else "EPSG:4548"]
    readings = []
    for code in codes:
        try:
            transformer = _to_lonlat(code)
        except CRSProblem:
            return []
        if transformer.source_crs is not None and transformer.source_crs.is_geographic:
            return []
        for east, north in ((a, b), (b, a)):
            lon, lat = transformer.transform(east, north, errcheck=False)
            if _valid(lon, lat) and bool(region.contains(lon, lat)):
                readings.append(Reading(float(lon), float(lat), code))
    return readings[:1] if not explicit else readings[:2]


def read_coordinates(text: str, region: Region) -> list[Reading]:
    """The points a search text denotes (none when it is not a coordinate)."""
    text = text.strip()
    if not text or not re.search(r"\d", text) or len(text) > 80:
        return []
    return _projected(text, region) or _degrees(text, region)
