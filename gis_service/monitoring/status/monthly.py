"""Monthly water class of sections (the 12-month trend of 一河一档 / 一湾一档), from the daily sums
of ``observation_daily`` (migration 0018), never the hourly rows.

A day's mean counts when enough of its hours were valid (the engine's ``water_daily`` rule); a
month's mean of those daily means counts when enough days were (``monthly_mean``); the class
of a month is the standards engine's for the means of the factors that had one (GB 3838 for
river and lake sections, GB 3097 for sea stations), as ``water_summary`` classes a month.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.monitoring.standards import monthly_mean
from gis_service.monitoring.standards.tables import validity_rules
from gis_service.monitoring.status.assess import WATER_COLOURS, class_name, classify, water_codes

TREND_MONTHS = 12

_DAILY = """
SELECT d.station_id, d.factor_code, od.day, od.valid, od.valid_sum
FROM datastream AS d JOIN observation_daily AS od ON od.datastream_id = d.id
WHERE d.station_id = ANY(%(stations)s) AND d.aggregation = 'hour' AND od.day >= %(first)s AND od.day <= %(last)s
"""


def trend_months(last: dt.date, months: int = TREND_MONTHS) -> list[dt.date]:
    """The first days of the ``months`` months ending with the month of ``last``, oldest first."""
    out = []
    year, month = last.year, last.month
    for _ in range(months):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


async def monthly_classes(
    conn: AsyncConnection, stations: list[dict[str, Any]], last: dt.date, months: int = TREND_MONTHS
) -> dict[int, list[dict[str, Any]]]:
    """Per station (rows with ``id``, ``standard``, ``water_target``): one entry per month of the
    trend, ``{"month": "YYYY-MM", "water_class", "meets_target", "colour", "deciding_factors"`` (HJ 212 codes)}; a month
    without a valid monthly mean of any assessed factor has class None."""
    firsts = trend_months(last, months)
    end = firsts[-1].replace(day=calendar.monthrange(firsts[-1].year, firsts[-1].month)[1])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_DAILY, {"stations": [s["id"] for s in stations], "first": firsts[0], "last": end})
    min_valid = validity_rules()["water_daily"].min_valid
    daily: dict[tuple[int, str], dict[dt.date, float]] = defaultdict(dict)
    for row in await cur.fetchall():
        if row["valid"] >= min_valid:
            daily[(row["station_id"], row["factor_code"])][row["day"]] = row["valid_sum"] / row["valid"]
    out: dict[int, list[dict[str, Any]]] = {}
    for station in stations:
        codes = water_codes(station["standard"])
        by_id = {fid: code for code, fid in codes.items()}
        entries = []
        for first in firsts:
            n = calendar.monthrange(first.year, first.month)[1]
            means = {}
            for code in codes:
                days = daily.get((station["id"], code), {})
                values = [days.get(first.replace(day=i)) for i in range(1, n + 1)]
                mean = monthly_mean(values, year=first.year, month=first.month)
                if mean.value is not None:
                    means[code] = mean.value
            result = classify(station["standard"], means, station["water_target"], first) if means else None
            klass = class_name(station["standard"], result.klass) if result else None
            entries.append(
                {
                    "month": f"{first:%Y-%m}",
                    "water_class": klass,
                    "meets_target": result.meets_target if result else None,
                    "colour": WATER_COLOURS.get(klass or ""),
                    "deciding_factors": [by_id[f] for f in result.deciding_factors] if result else [],
                }
            )
        out[station["id"]] = entries
    return out
