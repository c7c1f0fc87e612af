"""A station's values judged by the standard it falls under, through the standards engine.

Water stations (``standard`` river / lake) are classed by GB 3838-2002, seawater stations by
GB 3097-1997, air stations get an AQI by the HJ 633 version in force on the observation date.
Factors the standard does not list (e.g. NH3-N at a sea station) are shown, not assessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gis_service.monitoring.standards import (
    AqiResult,
    StandardsError,
    WaterResult,
    aqi,
    classify_seawater,
    classify_surface_water,
    daily_mean,
    o3_8h_moving,
    o3_daily_max_8h,
    select_aqi_standard,
)
from gis_service.monitoring.standards.tables import water_standards

CHINA = dt.timezone(dt.timedelta(hours=8))
SEA_CLASS = {"一类": "1", "二类": "2", "三类": "3", "四类": "4"}
"""Catalog names of the GB 3097 classes -> the engine's class names."""
SEA_NAME = {v: k for k, v in SEA_CLASS.items()}
WATER_COLOURS = {
    "I": "#CCFFFF",
    "II": "#00CCFF",
    "III": "#00FF00",
    "IV": "#FFFF00",
    "V": "#FF9B00",
    "劣V": "#FF0000",
    "一类": "#00CCFF",
    "二类": "#00FF00",
    "三类": "#FFFF00",
    "四类": "#FF9B00",
    "劣四类": "#FF0000",
}
"""Class colours on the map (the usual 水质类别 palette: I light blue … 劣V red; sea classes alike)."""
NO_DATA_COLOUR = "#9E9E9E"
AIR_CODES = {"a34004": "pm25", "a34002": "pm10", "a21026": "so2", "a21004": "no2", "a21005": "co", "a05024": "o3"}
"""HJ 212 air factor codes -> pollutant ids of the AQI reports."""


@dataclass(frozen=True)
class Assessment:
    """The status of one station at one time: water class or AQI, the colour, the standard used."""

    observed_at: dt.datetime | None
    water_class: str | None = None
    meets_target: bool | None = None
    aqi: int | None = None
    category: str | None = None
    colour: str = NO_DATA_COLOUR
    standard: str | None = None
    detail: dict[str, Any] | None = None


def china_date(moment: dt.datetime) -> dt.date:
    """The calendar date in China time (the date the standard in force is chosen by)."""
    return moment.astimezone(CHINA).date()


def water_codes(standard: str) -> dict[str, str]:
    """HJ 212 code -> factor id of the water standard of a station kind (river/lake: GB 3838, sea: GB 3097)."""
    table = water_standards()["sea" if standard == "sea" else "surface"]
    return {f.hj212: fid for fid, f in table.factors.items() if f.hj212}


def classify(standard: str, values: Mapping[str, float], target: str | None, on: dt.date) -> WaterResult | None:
    """The water class of values keyed by HJ 212 code (unassessed codes left out); None if none is
    assessed or no standard was in force on the date."""
    known = water_codes(standard)
    usable = {known[code]: v for code, v in values.items() if code in known}
    if not usable:
        return None
    if standard == "sea":
        return classify_seawater(usable, target=SEA_CLASS.get(target or ""), on=on)
    return classify_surface_water(usable, water_body=standard, target=target, on=on)  # type: ignore[arg-type]


def class_name(standard: str, klass: str | None) -> str | None:
    """A class as the API and the map name it (sea classes 一类…劣四类)."""
    if klass is None:
        return None
    return SEA_NAME.get(klass, klass) if standard == "sea" else klass


def water_detail(standard: str, result: WaterResult, values: Mapping[str, float], units: Mapping[str, str]) -> dict:
    """The class with its deciding factors (value, target-class limit, 超标倍数), standard and version."""
    table = water_standards()["sea" if standard == "sea" else "surface"]
    body = "sea" if standard == "sea" else standard
    by_id = {fid: code for code, fid in water_codes(standard).items()}
    target_index = table.classes.index(result.target) if result.target in table.classes else None
    deciding = []
    for fid in result.deciding_factors:
        factor = table.factors[fid]
        limit: Any = None
        if target_index is not None:
            limit = factor.ranges[target_index] if factor.rule == "range" else factor.limits_for(body)[target_index]  # type: ignore[index]
        code = by_id[fid]
        deciding.append(
            {
                "factor": fid,
                "code": code,
                "name": factor.name,
                "value": values[code],
                "unit": units.get(code, factor.unit),
                "class": class_name(standard, result.factor_classes[fid]),
                "limit": list(limit) if isinstance(limit, list | tuple) else limit,
                "rule": factor.rule,
                "exceedance_multiple": result.multiples.get(fid),
            }
        )
    return {
        "water_class": class_name(standard, result.klass),
        "target": class_name(standard, result.target),
        "meets_target": result.meets_target,
        "deciding_factors": deciding,
        "factor_classes": {by_id[f]: class_name(standard, c) for f, c in result.factor_classes.items()},
        "missing_factors": list(result.missing),
        "standard": result.standard,
        "version": result.version,
    }


def air_detail(result: AqiResult) -> dict:
    """AQI, primary pollutant(s), category and colour, with the IAQIs and the standard used."""
    return {
        "aqi": result.aqi,
        "primary_pollutant": list(result.primary),
        "category": result.category,
        "level": result.level,
        "colour": result.colour,
        "iaqi": result.iaqi,
        "concentrations": result.concentrations,
        "missing": list(result.missing),
        "publishable": result.publishable,
        "standard": result.standard,
        "version": result.version,
    }


def hourly_aqi(
    latest: Mapping[str, float], last_24h: Mapping[str, list[float | None]], on: dt.date
) -> AqiResult | None:
    """The real-time AQI (实时报) from the latest hourly values and the last 24 hours of each
    pollutant (oldest first, None where invalid): PM as 24-hour moving means, O3 also as its
    8-hour moving mean (HJ 633-2012 reports it), each only when valid by the engine's rules."""
    values: dict[str, float] = {}
    for code, pollutant in AIR_CODES.items():
        if pollutant in ("pm25", "pm10"):
            mean = daily_mean(last_24h.get(code, [])[-24:]).value
            if mean is not None:
                values[pollutant] = mean
        elif code in latest:
            values["o3_1h" if pollutant == "o3" else pollutant] = latest[code]
    o3 = last_24h.get("a05024", [])
    if len(o3) >= 8:
        eight = o3_8h_moving(o3[-8:])[-1].value
        if eight is not None:
            values["o3_8h"] = eight
    return _aqi(values, "1h", on)


def _aqi(values: dict[str, float], averaging: Literal["1h", "24h"], on: dt.date) -> AqiResult | None:
    """The AQI of the values the version in force reports (others, e.g. O3 8-hour in a 2026
    real-time report, left out); None when none is given."""
    try:
        report = select_aqi_standard(on).reports[averaging]
        wanted = {k: v for k, v in values.items() if k in report.keys or k in report.companions}
        return aqi(wanted, averaging=averaging, on=on) if set(wanted) & set(report.keys) else None
    except StandardsError:  # no version in force on that date (before 2016), or values it refuses
        return None


def daily_aqi(hours: Mapping[str, list[float | None]], on: dt.date) -> AqiResult | None:
    """The daily AQI (日报) of one day's 24 hourly values per pollutant code (None where invalid):
    24-hour means by the validity rules, O3 the daily maximum 8-hour mean (and for HJ 633-2012 its
    daily maximum 1-hour value)."""
    values: dict[str, float] = {}
    for code, pollutant in AIR_CODES.items():
        series = hours.get(code, [])
        if pollutant == "o3":
            best = o3_daily_max_8h(o3_8h_moving(series)[:24]).value if len(series) >= 8 else None
            if best is not None:
                values["o3_8h"] = best
            good = [v for v in series[-24:] if v is not None]
            if good:
                values["o3_1h"] = max(good)
            continue
        mean = daily_mean(series[:24]).value
        if mean is not None:
            values[pollutant] = mean
    return _aqi(values, "24h", on)
