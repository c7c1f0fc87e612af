"""Monthly assessment of the cross-boundary sections (地市交接断面) against their targets.

A cross-boundary section is a section station with an upstream and a downstream city
(``station.upstream_city``/``downstream_city``, migration 0022). For a month (China time) each
factor's daily means come from ``observation_daily`` (valid sum / valid hours, a day counting
when it has the water daily mean's valid hours), its monthly mean from the standards engine's
``monthly_mean`` (its validity rule), and the section's class from ``classify`` (GB 3838-2002,
the worst factor decides) against the section's target, as the water-quality summary does.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.access.scopes import Sources
from gis_service.monitoring.hj212.factors import FACTORS
from gis_service.monitoring.standards import monthly_mean
from gis_service.monitoring.standards.tables import validity_rules
from gis_service.monitoring.status.assess import NO_DATA_COLOUR, WATER_COLOURS, classify, water_codes, water_detail
from layers.regions import load_regions

_SECTIONS = """
SELECT s.id, s.code, s.name, s.standard, s.water_target, s.river_id, s.upstream_city, s.downstream_city,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat
FROM {station} AS s
WHERE s.upstream_city IS NOT NULL
  AND (%(upstream)s::text IS NULL OR s.upstream_city = %(upstream)s)
  AND (%(downstream)s::text IS NULL OR s.downstream_city = %(downstream)s)
ORDER BY s.id
"""
_DAILY = """
SELECT d.station_id, d.factor_code, y.day, y.valid, y.valid_sum
FROM datastream AS d JOIN observation_daily AS y ON y.datastream_id = d.id
WHERE d.station_id = ANY(%(stations)s) AND d.aggregation = 'hour' AND y.day BETWEEN %(first)s AND %(last)s
"""


def city_names() -> dict[str, dict[str, str]]:
    """City adcode -> its names (``layers/regions.yaml``)."""
    return {r.adcode: {"zh": r.city_zh, "en": r.city_en} for r in load_regions().values() if r.adcode}


async def _rows(conn: AsyncConnection, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def cross_boundary_sections(
    conn: AsyncConnection, stations: Sources, upstream: str | None = None, downstream: str | None = None
) -> list[dict[str, Any]]:
    """The cross-boundary sections the caller reads (optionally of one upstream/downstream city)."""
    params = stations.bind({"upstream": upstream, "downstream": downstream})
    return await _rows(conn, stations.statement(_SECTIONS), params)


async def monthly_means(
    conn: AsyncConnection, station_ids: list[int], first: dt.date
) -> dict[int, dict[str, dict[str, Any]]]:
    """Per station and HJ 212 code: the month's mean of the valid daily means and its validity."""
    days = calendar.monthrange(first.year, first.month)[1]
    last = first.replace(day=days)
    required_hours = validity_rules()["water_daily"].min_valid
    daily: dict[tuple[int, str], list[float | None]] = {}
    for row in await _rows(conn, _DAILY, {"stations": station_ids, "first": first, "last": last}):
        values = daily.setdefault((row["station_id"], row["factor_code"]), [None] * days)
        if row["valid"] >= required_hours:
            values[row["day"].day - 1] = row["valid_sum"] / row["valid"]
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for (station_id, code), values in daily.items():
        agg = monthly_mean(values, year=first.year, month=first.month)
        out.setdefault(station_id, {})[code] = {
            "value": agg.value,
            "valid_days": agg.valid,
            "required_days": agg.required,
            "reason": agg.reason,
        }
    return out


def assess(section: dict[str, Any], means: dict[str, dict[str, Any]], first: dt.date) -> dict[str, Any]:
    """A section's month: its monthly means per factor, its class and whether it meets its target."""
    standard = section["standard"] or "river"
    known = water_codes(standard)
    values = {code: m["value"] for code, m in means.items() if m["value"] is not None and code in known}
    factors = {
        known[code]: {"code": code, "unit": FACTORS[code].unit, **m}
        for code, m in sorted(means.items())
        if code in known
    }
    result = classify(standard, values, section["water_target"], first) if values else None
    if result is None:
        return {"water_class": None, "target": section["water_target"], "meets_target": None, "factors": factors,
                "deciding_factors": [], "colour": NO_DATA_COLOUR, "standard": None, "version": None}  # fmt: skip
    detail = water_detail(standard, result, values, {c: FACTORS[c].unit for c in values})
    return {
        **{k: detail[k] for k in ("water_class", "target", "meets_target", "deciding_factors", "standard", "version")},
        "factors": factors,
        "colour": WATER_COLOURS.get(detail["water_class"], NO_DATA_COLOUR),
    }
