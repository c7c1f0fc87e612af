"""AQI and IAQI by HJ 633: the version in force on the observation date, its tables and rules.

IAQI_P = (IAQI_Hi - IAQI_Lo) / (BP_Hi - BP_Lo) * (C_P - BP_Lo) + IAQI_Lo between the two
breakpoints around C_P, rounded up to an integer (向上进位取整数); AQI = max IAQI; when AQI > 50
the pollutant(s) with the largest IAQI are primary (ties are all listed). Arithmetic is exact
(fractions of the decimal values), so a concentration on a breakpoint gives that breakpoint's
IAQI and never one more from a floating-point residue.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Literal

from .errors import NoStandardInForceError, StandardsError, UnknownFactorError, UnverifiedTableError
from .tables import AqiStandard, AqiTable, aqi_standards

Averaging = Literal["1h", "24h"]


@dataclass(frozen=True)
class AqiResult:
    """An AQI with its IAQIs, primary pollutant(s), category and colour, and the standard used.

    ``concentrations`` are the values the IAQIs were computed from (rounded where the version
    says so); ``missing`` the report's indicators not given; ``publishable`` is False when the
    version withholds the AQI of an incomplete report (HJ 633-2026 5.3.1). ``unverified`` names
    the tables used whose values are not verified against the text; ``notes`` records the special
    rules applied (SO2 1-hour above 800, O3 8-hour above 800, a value above the table).
    """

    aqi: int
    iaqi: dict[str, int]
    primary: tuple[str, ...]
    exceeding: tuple[str, ...]
    category: str
    level: str
    colour: str
    standard: str
    version: str
    concentrations: dict[str, float]
    missing: tuple[str, ...] = ()
    publishable: bool = True
    unverified: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def select_aqi_standard(on: dt.date) -> AqiStandard:
    """The HJ 633 version in force on a date (2012 before 2026-03-01, 2026 from it)."""
    for std in aqi_standards():
        if std.effective_from <= on and (std.effective_until is None or on <= std.effective_until):
            return std
    spans = "; ".join(f"{s.standard}-{s.version}: {s.effective_from} to {s.effective_until}" for s in aqi_standards())
    raise NoStandardInForceError(f"no implemented AQI standard covers {on} ({spans})")


def iaqi(table: AqiTable, levels: list[int], concentration: float) -> int | None:
    """IAQI of one concentration by one table, rounded up; None above the table's last breakpoint."""
    c = Fraction(str(concentration))
    bps = [Fraction(str(b)) for b in table.breakpoints]
    if c > bps[-1]:
        return None
    for i in range(1, len(bps)):
        if c <= bps[i]:
            lo, hi = bps[i - 1], bps[i]
            value = Fraction(levels[i] - levels[i - 1]) / (hi - lo) * (c - lo) + levels[i - 1]
            return math.ceil(value)
    raise AssertionError("unreachable: c <= last breakpoint")  # pragma: no cover


def _resolve(std: AqiStandard, averaging: str, key: str) -> str:
    k = key.strip().lower()
    report = std.reports[averaging]  # type: ignore[index]
    allowed = {**report.keys, **report.companions}
    if k in allowed:
        return k
    for pid, p in std.pollutants.items():
        if p.hj212 == k:
            candidates = [key for key, tid in report.keys.items() if std.tables[tid].pollutant == pid]
            if len(candidates) == 1:
                return candidates[0]
            raise UnknownFactorError(
                f"HJ 212 code {key!r} is ambiguous in a {averaging} report of {std.standard}-{std.version};"
                f" use one of {candidates}"
            )
    raise UnknownFactorError(
        f"unknown pollutant {key!r} for a {averaging} report of {std.standard}-{std.version} ({report.clause});"
        f" use one of {sorted(allowed)} or an HJ 212 code ({', '.join(p.hj212 for p in std.pollutants.values())})"
    )


def _round(std: AqiStandard, pollutant: str, value: float) -> float:
    rule = std.concentration_rounding
    if rule is None or pollutant not in rule.digits:
        return value
    quantum = Decimal(1).scaleb(-rule.digits[pollutant])
    return float(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_EVEN))


def aqi(
    concentrations: Mapping[str, float],
    *,
    averaging: Averaging = "1h",
    on: dt.date,
    strict: bool = False,
) -> AqiResult:
    """AQI of a set of concentrations (µg/m³; CO mg/m³) observed on ``on``, for the map and summaries.

    ``averaging`` "24h" is the daily report (日报), "1h" the real-time report (实时报); which
    indicators each takes is the version's (``reports`` in its YAML): HJ 633-2012 daily
    ``pm25 pm10 so2 no2 co o3_1h o3_8h`` (O3 daily maxima), real-time the same with 1-hour
    gases, PM 24-hour moving means and ``so2_24h`` for its SO2 rule; HJ 633-2026 daily
    ``pm25 pm10 so2 no2 co o3_8h``, real-time ``pm25 pm10 so2 no2 co o3_1h`` (all 1-hour).
    HJ 212 codes are accepted. ``strict=True`` refuses tables marked unverified.
    """
    if averaging not in ("1h", "24h"):
        raise StandardsError(f"averaging must be '1h' or '24h', got {averaging!r}")
    std = select_aqi_standard(on)
    report = std.reports[averaging]
    lookup = {**report.keys, **report.companions}
    values: dict[str, float] = {}
    for key, value in concentrations.items():
        k = _resolve(std, averaging, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise StandardsError(f"concentration of {key!r} must be a finite number ≥ 0, got {value!r}")
        if k in values:
            raise StandardsError(f"pollutant {k!r} given twice")
        values[k] = _round(std, std.tables[lookup[k]].pollutant, float(value))
    if not set(values) & set(report.keys):
        raise StandardsError(f"give at least one of {sorted(report.keys)}")

    used: set[str] = set()
    notes: list[str] = []
    result: dict[str, int] = {}
    for key, table_id in report.keys.items():
        if key not in values:
            continue
        table = std.tables[table_id]
        used.add(table_id)
        value = iaqi(table, std.iaqi, values[key])
        rule = table.above_table
        if value is None and rule is not None and rule.iaqi is not None:
            value = rule.iaqi
            notes.append(
                f"{key} {values[key]} above {table.breakpoints[-1]}: IAQI counted as {rule.iaqi} ({rule.clause})"
            )
        elif value is None and rule is not None:
            other = next(k for k, t in lookup.items() if t == rule.use)
            if other not in values:
                raise StandardsError(
                    f"{key} {values[key]} is above {table.breakpoints[-1]}: {std.standard}-{std.version} then reports"
                    f" by the {rule.use} IAQI ({rule.clause}); give {other} as well"
                )
            notes.append(f"{key} {values[key]} above {table.breakpoints[-1]}: reported by {rule.use} ({rule.clause})")
            if other in report.keys:  # e.g. O3: the 1-hour IAQI is already part of the report
                continue
            used.add(rule.use)
            value = iaqi(std.tables[rule.use], std.iaqi, values[other])
        if value is None:
            value = std.iaqi[len(table.breakpoints) - 1]
            notes.append(f"{key} {values[key]} is above the table's last breakpoint: IAQI set to {value}")
        result[key] = value

    unverified = tuple(sorted(t for t in used if std.tables[t].status == "unverified"))
    if strict and unverified:
        raise UnverifiedTableError(
            f"{std.standard}-{std.version} tables {', '.join(unverified)} are not verified against the text;"
            " call with strict=False to use them (the result lists them)"
        )
    top = max(result.values())
    primary = tuple(k for k, v in result.items() if v == top) if top > std.primary_above else ()
    exceeding = tuple(k for k, v in result.items() if v > 100)
    cat = next(c for c in std.categories if c.max_aqi is None or top <= c.max_aqi)
    missing = tuple(k for k in report.keys if k not in values)
    publishable = not missing or std.publish_incomplete_above is None or top > std.publish_incomplete_above
    return AqiResult(
        aqi=top,
        iaqi=result,
        primary=primary,
        exceeding=exceeding,
        category=cat.name,
        level=cat.level,
        colour=cat.colour,
        standard=std.standard,
        version=std.version,
        concentrations=dict(values),
        missing=missing,
        publishable=publishable,
        unverified=unverified,
        notes=tuple(notes),
    )
