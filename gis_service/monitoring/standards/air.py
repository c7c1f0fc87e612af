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
from fractions import Fraction
from typing import Literal

from .errors import NoStandardInForceError, StandardsError, UnknownFactorError, UnverifiedTableError
from .tables import AqiStandard, AqiTable, aqi_standards

Averaging = Literal["1h", "24h"]

# Which table each input key uses, per report type. "1h" is the real-time report (实时报):
# SO2, NO2, CO by their 1-hour tables; PM by the 24-hour table (the caller supplies the
# concentration the report uses). "24h" is the daily report (日报): 24-hour tables, and O3 by
# its daily maximum 1-hour and maximum 8-hour moving means.
_KEYS: dict[str, dict[str, str]] = {
    "1h": {
        "pm25": "pm25_24h",
        "pm10": "pm10_24h",
        "so2": "so2_1h",
        "no2": "no2_1h",
        "co": "co_1h",
        "o3_1h": "o3_1h",
        "o3_8h": "o3_8h",
        "so2_24h": "so2_24h",
    },
    "24h": {
        "pm25": "pm25_24h",
        "pm10": "pm10_24h",
        "so2": "so2_24h",
        "no2": "no2_24h",
        "co": "co_24h",
        "o3_1h": "o3_1h",
        "o3_8h": "o3_8h",
    },
}


@dataclass(frozen=True)
class AqiResult:
    """An AQI with its IAQIs, primary pollutant(s), category and colour, and the standard used.

    ``unverified`` names the tables used whose values are not verified against the text;
    ``notes`` records the special rules that were applied (SO2 1-hour above 800, O3 8-hour
    above 800, a concentration above the table).
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
    allowed = _KEYS[averaging]
    if k in allowed:
        return k
    for pid, p in std.pollutants.items():
        if p.hj212 == k:
            return "o3_1h" if pid == "o3" else pid
    raise UnknownFactorError(
        f"unknown pollutant {key!r} for a {averaging} AQI; use one of {sorted(allowed)} or an HJ 212 code"
        f" ({', '.join(p.hj212 for p in std.pollutants.values())})"
    )


def aqi(
    concentrations: Mapping[str, float],
    *,
    averaging: Averaging = "1h",
    on: dt.date,
    strict: bool = False,
) -> AqiResult:
    """AQI of a set of concentrations (µg/m³; CO mg/m³) observed on ``on``, for the map and summaries.

    ``averaging`` "1h" is the real-time report, "24h" the daily report (see ``_KEYS``). Keys are
    ``pm25 pm10 so2 no2 co o3_1h o3_8h`` (and ``so2_24h`` for the real-time SO2 rule) or HJ 212
    codes. ``strict=True`` refuses tables marked unverified instead of listing them.
    """
    if averaging not in _KEYS:
        raise StandardsError(f"averaging must be '1h' or '24h', got {averaging!r}")
    std = select_aqi_standard(on)
    values: dict[str, float] = {}
    for key, value in concentrations.items():
        k = _resolve(std, averaging, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise StandardsError(f"concentration of {key!r} must be a finite number ≥ 0, got {value!r}")
        if k in values:
            raise StandardsError(f"pollutant {k!r} given twice")
        values[k] = float(value)
    if not values or set(values) == {"so2_24h"}:
        raise StandardsError("give at least one pollutant concentration")

    used: set[str] = set()
    notes: list[str] = []
    result: dict[str, int] = {}

    def compute(key: str, table_id: str) -> int | None:
        used.add(table_id)
        return iaqi(std.tables[table_id], std.iaqi, values[key])

    for key, table_id in _KEYS[averaging].items():
        if key not in values or key == "so2_24h":
            continue
        table = std.tables[table_id]
        value = compute(key, table_id)
        if value is None and table.above_table == "use_24h":
            if "so2_24h" not in values:
                raise StandardsError(
                    f"SO2 1-hour {values[key]} µg/m³ is above {table.breakpoints[-1]}: {std.standard}-{std.version}"
                    " reports SO2 by its 24-hour IAQI then; give so2_24h as well"
                )
            value = compute("so2_24h", "so2_24h")
            notes.append("SO2 1-hour mean above 800 µg/m³: SO2 reported by its 24-hour IAQI")
        elif value is None and table.above_table == "use_1h":
            if "o3_1h" not in values:
                raise StandardsError(
                    f"O3 8-hour {values[key]} µg/m³ is above {table.breakpoints[-1]}: {std.standard}-{std.version}"
                    " reports O3 by its 1-hour IAQI then; give o3_1h as well"
                )
            notes.append("O3 8-hour mean above 800 µg/m³: O3 reported by its 1-hour IAQI")
            continue
        elif value is None:
            value = std.iaqi[len(table.breakpoints) - 1]
            notes.append(f"{key} {values[key]} is above the table's last breakpoint: IAQI set to {value}")
        if value is not None:
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
    return AqiResult(
        top,
        result,
        primary,
        exceeding,
        cat.name,
        cat.level,
        cat.colour,
        std.standard,
        std.version,
        unverified,
        tuple(notes),
    )
