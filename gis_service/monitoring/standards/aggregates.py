"""Means with the data-validity rules (GB 3095 表4, HJ 663; a product rule for water daily means).

Every function takes values in time order with ``None`` for a missing or invalid value (a
quality flag other than normal), and returns an :class:`Aggregate`: the mean, or no value
and the reason when too few values are valid. Means are not rounded here.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import StandardsError
from .tables import validity_rules


@dataclass(frozen=True)
class Aggregate:
    """A mean (or None), how many values were valid and needed, the rule and why it has no value."""

    value: float | None
    valid: int
    required: int
    rule: str
    clause: str
    reason: str | None = None


def _valid(values: Sequence[float | None]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise StandardsError(f"values must be numbers or None, got {v!r}")
        out.append(float(v))
    return out


def _mean(values: Sequence[float | None], rule_id: str, required: int, *, window: int) -> Aggregate:
    rule = validity_rules()[rule_id]
    if len(values) > window:
        raise StandardsError(f"{rule_id}: at most {window} values, got {len(values)}")
    good = _valid(values)
    if len(good) < required:
        return Aggregate(
            None,
            len(good),
            required,
            rule_id,
            rule.clause,
            f"{len(good)} valid values of {window}; {rule.description} needs at least {required}",
        )
    return Aggregate(math.fsum(good) / len(good), len(good), required, rule_id, rule.clause)


def daily_mean(hourly: Sequence[float | None], *, medium: Literal["air", "water"] = "air") -> Aggregate:
    """Daily mean of one day's hourly values (at most 24): air needs 20 valid hours, water 18."""
    rule_id = "air_24h" if medium == "air" else "water_daily"
    rule = validity_rules()[rule_id]
    return _mean(hourly, rule_id, rule.min_valid, window=24)


def o3_8h_moving(hourly: Sequence[float | None]) -> list[Aggregate]:
    """O3 8-hour moving means: one per hour from the 8th value on, over that hour and the 7 before."""
    rule = validity_rules()["o3_8h"]
    return [_mean(hourly[i - 7 : i + 1], "o3_8h", rule.min_valid, window=8) for i in range(7, len(hourly))]


def o3_daily_max_8h(moving: Sequence[Aggregate]) -> Aggregate:
    """Daily maximum 8-hour O3 from one day's moving means (at most 24; 14 must be valid)."""
    rule = validity_rules()["o3_daily_max_8h"]
    if len(moving) > 24:
        raise StandardsError(f"o3_daily_max_8h: at most 24 moving means, got {len(moving)}")
    good = [m.value for m in moving if m.value is not None]
    if len(good) < rule.min_valid:
        return Aggregate(
            None,
            len(good),
            rule.min_valid,
            "o3_daily_max_8h",
            rule.clause,
            f"{len(good)} valid 8-hour means; the daily maximum needs at least {rule.min_valid}",
        )
    return Aggregate(max(good), len(good), rule.min_valid, "o3_daily_max_8h", rule.clause)


def annual_mean(daily: Sequence[float | None], *, year: int) -> Aggregate:
    """Annual mean of daily means: 324 valid days needed."""
    rule = validity_rules()["air_annual"]
    days = 366 if calendar.isleap(year) else 365
    return _mean(daily, "air_annual", rule.min_valid, window=days)


def monthly_mean(daily: Sequence[float | None], *, year: int, month: int) -> Aggregate:
    """Monthly mean of daily means: 27 valid days needed (25 in February)."""
    rule = validity_rules()["air_monthly"]
    days = calendar.monthrange(year, month)[1]
    required = rule.min_valid_february if month == 2 and rule.min_valid_february else rule.min_valid
    return _mean(daily, "air_monthly", required, window=days)
