"""A rule's condition judged on one station's latest values (no database): whether it holds,
when, its measure and what decided it. Water classes come from the standards engine (through
the monitoring status module, as the station's status does), the AQI from the station's status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from gis_service.monitoring.hj212.factors import FACTORS
from gis_service.monitoring.standards import StandardsError
from gis_service.monitoring.status.assess import china_date, classify, water_detail
from gis_service.workflow.alerts.rules import (
    AqiAbove,
    DataMissing,
    LoggerFlags,
    OutsideRange,
    Rule,
    WorseThanClass,
)

WATER_STANDARDS = ("river", "lake", "sea")
AIR_DETAIL_KEYS = ("aqi", "primary_pollutant", "category", "level", "iaqi", "standard", "version")


@dataclass(frozen=True)
class Snapshot:
    """What the evaluator knows of one station: its catalog row, its latest value per factor
    (``code``, ``property``, ``unit``, ``time``, ``value``, ``flag``, ``quality``; None when
    they were not read this time, only ``newest``), the newest time of any of them, and the
    real-time AQI of an air station (``air``: its status detail; ``air_at``: its time)."""

    station: dict[str, Any]
    values: list[dict[str, Any]] | None
    newest: dt.datetime | None
    air: dict[str, Any] | None = None
    air_at: dt.datetime | None = None


@dataclass(frozen=True)
class Finding:
    """A rule's condition at one station: ``holds`` or not, seen at ``observed_at`` (data time),
    begun at ``since`` when that is known (no data: the last value plus the rule's hours), its
    ``measure`` and the ``detail`` that decided it (JSON-ready)."""

    holds: bool
    observed_at: dt.datetime
    measure: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    since: dt.datetime | None = None


def evaluate(rule: Rule, snapshot: Snapshot, now: dt.datetime) -> Finding | None:
    """The rule's finding at the station, or None when it cannot say (no valid value of what it
    needs, no target class, the station not watched by the rule)."""
    if not rule.stations.matches(snapshot.station):
        return None
    condition = rule.condition
    if condition.needs_values:
        if snapshot.values is None:
            return None
        snapshot = _recent(snapshot, now - dt.timedelta(hours=rule.max_age_hours))
    if isinstance(condition, WorseThanClass):
        return _worse_than_class(condition, snapshot)
    if isinstance(condition, OutsideRange):
        return _outside_range(condition, snapshot)
    if isinstance(condition, AqiAbove):
        return _aqi_above(condition, snapshot)
    if isinstance(condition, DataMissing):
        return _data_missing(condition, snapshot, now)
    assert isinstance(condition, LoggerFlags)  # noqa: S101 - the union is closed
    return _logger_flags(condition, snapshot)


def _recent(snapshot: Snapshot, oldest: dt.datetime) -> Snapshot:
    """The snapshot without the values (and the AQI) older than ``oldest``."""
    recent = [v for v in snapshot.values or [] if v["time"] >= oldest]
    air_fresh = snapshot.air_at is not None and snapshot.air_at >= oldest
    return replace(snapshot, values=recent, air=snapshot.air if air_fresh else None)


def _good(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in values if v["quality"] == "good" and v["value"] is not None]


def _worse_than_class(condition: WorseThanClass, snapshot: Snapshot) -> Finding | None:
    station = snapshot.station
    standard = station.get("standard")
    target = station.get("water_target") if condition.klass == "target" else condition.klass
    if standard not in WATER_STANDARDS or target is None:
        return None
    good = _good(snapshot.values or [])
    if not good:
        return None
    values = {v["code"]: v["value"] for v in good}
    when = max(v["time"] for v in good)
    try:
        result = classify(standard, values, target, china_date(when))
    except StandardsError:  # a class of the other standard (a sea class for a river), no standard in force
        return None
    if result is None or result.klass is None or result.meets_target is None:
        return None
    detail = water_detail(standard, result, values, {v["code"]: v["unit"] for v in good})
    measure = max(result.multiples.values()) if result.multiples else None
    return Finding(not result.meets_target, when, measure, detail)


def _exact(value: float) -> Fraction:
    return Fraction(str(value))


def _outside_range(condition: OutsideRange, snapshot: Snapshot) -> Finding | None:
    latest = next((v for v in snapshot.values or [] if v["code"] == condition.factor), None)
    if latest is None or latest["quality"] != "good" or latest["value"] is None:
        return None
    value = _exact(latest["value"])
    below = condition.min is not None and value < _exact(condition.min)
    above = condition.max is not None and value > _exact(condition.max)
    distance = Fraction(0)
    if below:
        distance = _exact(condition.min) - value  # type: ignore[arg-type]
    elif above:
        distance = value - _exact(condition.max)  # type: ignore[arg-type]
    factor = FACTORS[condition.factor]
    detail = {
        "code": condition.factor,
        "property": factor.name,
        "value": latest["value"],
        "unit": latest.get("unit") or factor.unit,
        "min": condition.min,
        "max": condition.max,
        "time": latest["time"].isoformat(),
        "flag": latest["flag"],
    }
    return Finding(below or above, latest["time"], float(distance), detail)


def _aqi_above(condition: AqiAbove, snapshot: Snapshot) -> Finding | None:
    if snapshot.air is None or snapshot.air.get("aqi") is None or snapshot.air_at is None:
        return None
    aqi = int(snapshot.air["aqi"])
    detail = {key: snapshot.air.get(key) for key in AIR_DETAIL_KEYS} | {"threshold": condition.aqi}
    return Finding(aqi > condition.aqi, snapshot.air_at, float(aqi), detail)


def _data_missing(condition: DataMissing, snapshot: Snapshot, now: dt.datetime) -> Finding | None:
    if snapshot.newest is None:  # never reported: nothing has gone missing
        return None
    gap = now - snapshot.newest
    hours = round(gap.total_seconds() / 3600, 1)
    detail = {"last_value_at": snapshot.newest.isoformat(), "hours": condition.hours}
    if gap > condition.window:  # seen missing now (to the minute: a pass every few seconds writes once a minute)
        seen = max(now.replace(second=0, microsecond=0), snapshot.newest + condition.window)
        return Finding(True, seen, hours, detail, since=snapshot.newest + condition.window)
    return Finding(False, snapshot.newest, max(hours, 0.0), detail)


def _logger_flags(condition: LoggerFlags, snapshot: Snapshot) -> Finding | None:
    values = snapshot.values or []
    if not values or snapshot.newest is None:
        return None
    flagged = [v for v in values if v["flag"] in condition.flags]
    detail = {
        "flags": sorted(condition.flags),
        "factors": [
            {"code": v["code"], "property": v["property"], "flag": v["flag"], "time": v["time"].isoformat()}
            for v in sorted(flagged, key=lambda v: v["code"])
        ],
    }
    return Finding(bool(flagged), snapshot.newest, float(len(flagged)), detail)
