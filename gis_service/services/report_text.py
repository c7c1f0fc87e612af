"""What the zone-check report says in words: local times, codes as titles, spatial relations,
lengths and areas, contacts and the responsible chiefs, each in Chinese and English.

The report shows what a person reads, never a raw code, UTC timestamp or internal path; these
small functions turn the zone-check answer into that text (the template lays it out).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from gis_service.rules import RuleSet
from layers.catalog import Catalog

REPORT_TIMEZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
"""Xiamen's time (UTC+8, no daylight saving): what the report's times are written in."""

Bilingual = dict[str, str]

CHIEF_LEVELS: dict[str, Bilingual] = {
    "city": {"zh": "市级", "en": "City"},
    "district": {"zh": "区级", "en": "District"},
    "town": {"zh": "镇（街）级", "en": "Town"},
    "village": {"zh": "村级", "en": "Village"},
}
CHIEF_ROLES: dict[str, Bilingual] = {
    "river": {"zh": "河长", "en": "river chief"},
    "bay": {"zh": "湾长", "en": "bay chief"},
}

RELATIONS: dict[str, Bilingual] = {
    # DE-9IM of (feature, site), in words; "touches" only for contact of the boundaries.
    "within": {"zh": "拟选址位于其内", "en": "site within"},
    "contains": {"zh": "完全位于拟选址内", "en": "inside the site"},
    "overlaps": {"zh": "部分重叠", "en": "overlaps"},
    "crosses": {"zh": "穿过拟选址", "en": "crosses the site"},
    "touches": {"zh": "边界相接", "en": "touches (boundary only)"},
}
GEOMETRY_TYPES: dict[str, Bilingual] = {
    "Point": {"zh": "点", "en": "Point"},
    "MultiPoint": {"zh": "多点", "en": "Points"},
    "LineString": {"zh": "线", "en": "Line"},
    "MultiLineString": {"zh": "多线", "en": "Lines"},
    "Polygon": {"zh": "面", "en": "Area"},
    "MultiPolygon": {"zh": "多面", "en": "Areas"},
}
_DIALABLE = re.compile(r"^\+?[\d\s()-]{5,}$")


def local_time(value: str | dt.datetime | None) -> str:
    """An ISO timestamp (``2025-06-30T08:00:00Z``) as Xiamen's local time, ``2025-06-30 16:00``."""
    if not value:
        return ""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(REPORT_TIMEZONE).strftime("%Y-%m-%d %H:%M")


def relation(matrix: str, feature_dimension: int) -> str:
    """The spatial relation of a touching feature to the site from their DE-9IM matrix
    (``ST_Relate(feature, site)``): ``within`` (the site lies inside the feature), ``contains``
    (the feature lies inside the site), ``crosses`` (a line through the site), ``overlaps``, or
    ``touches`` when only their boundaries meet."""

    def matches(pattern: str) -> bool:
        return all(p == "*" or (p == "T" and m != "F") or p == m for p, m in zip(pattern, matrix, strict=True))

    if matrix[0] == "F":
        return "touches"
    if matches("T*****FF*"):
        return "within"
    if matches("T*F**F***"):
        return "contains"
    return "crosses" if feature_dimension == 1 else "overlaps"


def length_text(metres: float) -> str:
    """A length in m below 1 km, in km from there on."""
    return f"{metres / 1000:,.2f} km" if metres >= 1000 else f"{metres:,.0f} m"


def area_text(square_metres: float) -> str:
    """An area in m² and hectares."""
    return f"{square_metres:,.0f} m² ({square_metres / 10_000:,.2f} ha)"


def code_title(catalog: Catalog, layer_id: str, property_name: str | None, value: Any) -> Bilingual | None:
    """A stored code (a zone, a class, a station kind) in both languages, from the catalog's
    ``value_titles``; the value itself when the catalog gives no title (free text such as a segment),
    after the property's title when it is a bare number (an adcode)."""
    if value is None or value == "":
        return None
    prop = catalog.get(layer_id).get_property(property_name) if property_name and layer_id in catalog else None
    title = prop.value_title(value) if prop is not None else None
    if title:
        return {"zh": title.zh, "en": title.en}
    if prop is not None and str(value).isdigit():
        # A bare number (a district's adcode) says nothing without its name: 行政区代码 350205.
        return {"zh": f"{prop.title.zh} {value}", "en": f"{prop.title.en} {value}"}
    return {"zh": str(value), "en": ""}


def dialable(contact: str | None) -> bool:
    """Whether a contact is a whole phone number (a tel: link); a masked one (``0592-34***43``) is not."""
    return bool(contact) and bool(_DIALABLE.match(contact or "")) and "*" not in (contact or "")


def overlap_rows(
    catalog: Catalog, rules: RuleSet | None, overlaps: list[dict[str, Any]], relations: dict[tuple[str, int], str]
) -> list[dict[str, Any]]:
    """The overlaps as the report's rows: titles of their codes, the relation to the site in
    words, and what they cover of it (an area for zones, a length for lines)."""
    rows = []
    for o in overlaps:
        fields = rules.layers.get(o["layer"]) if rules is not None else None
        layer = catalog.get(o["layer"])
        key = relations.get((o["layer"], o["id"]))
        if o.get("distance_m") is not None:
            rel = {"zh": f"相距 {o['distance_m']:,.0f} m", "en": f"{o['distance_m']:,.0f} m away"}
            amount = "—"
        else:
            rel = RELATIONS.get(key or "overlaps", RELATIONS["overlaps"])
            if o.get("overlap_length_m") is not None:
                amount = length_text(o["overlap_length_m"])
            elif layer.is_polygon and o.get("overlap_m2"):
                amount = area_text(o["overlap_m2"])
            else:
                amount = "—"
        rows.append(
            {
                **o,
                "layer_title": {"zh": layer.title.zh, "en": layer.title.en},
                "category_title": code_title(
                    catalog, o["layer"], fields.category if fields else None, o.get("category")
                ),
                "zone_title": code_title(catalog, o["layer"], fields.zone if fields else None, o.get("zone")),
                "relation": key or ("near" if o.get("distance_m") is not None else "overlaps"),
                "relation_title": rel,
                "amount": amount,
            }
        )
    return rows


def chief_post(chief: dict[str, Any]) -> Bilingual:
    """A chief's post in words: 镇（街）级河长 / Town river chief."""
    level = CHIEF_LEVELS.get(chief.get("level") or "", {"zh": "", "en": ""})
    role = CHIEF_ROLES.get(chief.get("role") or "", {"zh": "", "en": ""})
    return {"zh": f"{level['zh']}{role['zh']}", "en": f"{level['en']} {role['en']}".strip()}


def chief_rows(chiefs: list[dict[str, Any]], overlaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each responsible chief once (the answer lists one row per assigned unit), with their post
    in words and the names of the overlapped units they answer for."""
    # A river segment is named with its segment (the rules' zone of a river): 东西溪 莲花水库–五显段.
    names = {
        (o["layer"], o["id"]): " ".join(filter(None, [o.get("name"), o.get("zone") if o["layer"] == "river" else None]))
        for o in overlaps
    }
    grouped: dict[int, dict[str, Any]] = {}
    for chief in chiefs:
        row = grouped.setdefault(
            chief["id"],
            {
                **{k: chief.get(k) for k in ("id", "name", "title", "contact", "role", "level")},
                "post": chief_post(chief),
                "dialable": dialable(chief.get("contact")),
                "units": [],
            },
        )
        unit = names.get((chief["layer"], chief["feature_id"]))
        if unit and unit not in row["units"]:
            row["units"].append(unit)
    return list(grouped.values())
