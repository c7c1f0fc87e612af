"""Regions of interest a deployment can be configured for, kept as data (``regions.yaml``).

The deployment's region (``ECOMAP_REGION``, default ``xiamen``) bounds what is plausible:
the importer refuses features outside it and the zone check refuses sites outside it, and
both messages say how to choose another region. A region is a longitude/latitude box
(the city's extent plus a margin); ``minxinan`` is the union of the five cities of
southwest Fujian.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REGIONS_FILE = Path(__file__).with_name("regions.yaml")
DEFAULT_REGION = "xiamen"
REGION_VARIABLE = "ECOMAP_REGION"


class UnknownRegion(ValueError):
    """A region name that is not defined; the message lists the defined ones."""


@dataclass(frozen=True)
class Region:
    """The area the data is expected in (lon/lat degrees), for plausibility checks."""

    name: str
    west: float
    south: float
    east: float
    north: float
    key: str = ""
    name_zh: str = ""
    adcode: str | None = None
    approximate: bool = False
    city_zh: str = ""
    """The city's own name (厦门市), where the region's (厦门市及其海域) says more."""
    city_en: str = ""

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """True where points lie inside the region (vectorised)."""
        return (lon >= self.west) & (lon <= self.east) & (lat >= self.south) & (lat <= self.north)

    def covers(self, bounds: tuple[float, float, float, float]) -> bool:
        """True when a (west, south, east, north) box lies wholly inside the region."""
        west, south, east, north = bounds
        return self.west <= west <= east <= self.east and self.south <= south <= north <= self.north

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.west, self.south, self.east, self.north)

    def describe(self) -> str:
        approx = ", approximate" if self.approximate else ""
        return f"{self.name} ({self.west:g}..{self.east:g}°E, {self.south:g}..{self.north:g}°N{approx})"

    def change_hint(self) -> str:
        """How to choose another region, for messages refusing data outside this one."""
        others = ", ".join(k for k in region_names() if k not in (self.key, "minxinan"))
        return (
            f"the deployment's region is {self.key or self.name} ({REGION_VARIABLE}); data of a neighbouring city "
            f"needs {REGION_VARIABLE}=minxinan (or one of {others})"
        )


def _box(entry: dict[str, Any], key: str) -> tuple[float, float, float, float]:
    extent = entry.get("extent")
    if not (isinstance(extent, list) and len(extent) == 4):
        raise UnknownRegion(f"{REGIONS_FILE}: region {key} needs `extent: [west, south, east, north]`")
    margin = entry.get("margin_deg", 0.0)
    west_m, south_m, east_m, north_m = (float(v) for v in (margin if isinstance(margin, list) else [margin] * 4))
    west, south, east, north = (float(v) for v in extent)
    return (round(west - west_m, 4), round(south - south_m, 4), round(east + east_m, 4), round(north + north_m, 4))


@cache
def load_regions(path: Path = REGIONS_FILE) -> dict[str, Region]:
    """Every defined region by its key (cached)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    boxes: dict[str, tuple[float, float, float, float]] = {}
    regions: dict[str, Region] = {}
    for key, entry in raw.items():
        if "union" not in entry:
            boxes[key] = _box(entry, key)
    for key, entry in raw.items():
        members = entry.get("union")
        if members:
            unknown = [m for m in members if m not in boxes]
            if unknown:
                raise UnknownRegion(f"{path}: region {key} unites undefined regions {unknown}")
            parts = [boxes[m] for m in members]
            box = (min(b[0] for b in parts), min(b[1] for b in parts), max(b[2] for b in parts),
                   max(b[3] for b in parts))  # fmt: skip
            approximate = any(raw[m].get("approximate", False) for m in members)
        else:
            box, approximate = boxes[key], bool(entry.get("approximate", False))
        name = entry.get("name") or {}
        city = entry.get("city_name") or name
        regions[key] = Region(
            str(name.get("en") or key), *box, key=key, name_zh=str(name.get("zh") or ""),
            adcode=entry.get("adcode"), approximate=approximate,
            city_zh=str(city.get("zh") or ""), city_en=str(city.get("en") or key),
        )  # fmt: skip
    return regions


def region_names() -> list[str]:
    """The keys ``ECOMAP_REGION`` accepts."""
    return list(load_regions())


def get_region(key: str | None = None) -> Region:
    """The region named ``key`` (default: xiamen)."""
    name = (key or DEFAULT_REGION).strip().lower()
    regions = load_regions()
    if name not in regions:
        raise UnknownRegion(f"unknown region {key!r}: {REGION_VARIABLE} must be one of {', '.join(regions)}")
    return regions[name]
