"""Water-quality classes by the single-factor method: GB 3838-2002 (surface water) and GB 3097-1997 (sea).

A factor's class is the best class whose limit it meets ("≤" for most items, "≥" for dissolved
oxygen in GB 3838, "> " for dissolved oxygen in GB 3097, inside the range for pH); a value that
meets no class is the standard's worse class (劣V, 劣四类). The overall class is the worst factor
class; the deciding factors are those in it. The exceedance multiple (超标倍数) of a factor over
the target class is ``(C - limit) / limit``, computed only for "≤" items (《地表水环境质量评价办法
（试行）》(环办〔2011〕22号): "对于水温、pH值和溶解氧等项目不计算超标倍数"; that method uses class
III as the basis, which is the default target here).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np

from .errors import NoStandardInForceError, StandardsError, UnknownFactorError
from .tables import WaterFactor, WaterStandard, water_standards

WaterBody = Literal["river", "lake"]
Method = Literal["gb3838", "evaluation_2011"]


@dataclass(frozen=True)
class WaterResult:
    """The class of one water sample (or mean) under one standard, with how it was decided.

    ``klass`` is None when no factor could be assessed. ``multiples`` holds the exceedance
    multiple of each "≤" factor above the target class limit. ``missing`` lists the standard's
    factors that were not given; ``not_assessed`` the given ones left out, with the reason;
    ``unverified`` the factors used whose table entry is not verified against the text.
    ``main_pollutants`` (GB 3838 only, when the class is worse than III): up to three factors
    with their multiple over class III, by 《地表水环境质量评价办法（试行）》 三(一)3.
    """

    klass: str | None
    factor_classes: dict[str, str]
    deciding_factors: tuple[str, ...]
    multiples: dict[str, float]
    target: str | None
    meets_target: bool | None
    missing: tuple[str, ...]
    not_assessed: dict[str, str] = field(default_factory=dict)
    unverified: tuple[str, ...] = ()
    standard: str = ""
    version: str = ""
    main_pollutants: tuple[tuple[str, float | None], ...] = ()


def factor_class(std: WaterStandard, factor_id: str, value: float, *, water_body: str) -> str:
    """The class of one value of one factor (the best class whose limit it meets)."""
    f = std.factors[factor_id]
    for i, name in enumerate(std.classes):
        if _meets(f, i, value, water_body):
            return name
    return std.worse_class


def _meets(f: WaterFactor, i: int, value: float, water_body: str) -> bool:
    if f.rule == "range":
        assert f.ranges is not None  # noqa: S101 - guaranteed by the model validator
        lo, hi = f.ranges[i]
        return lo <= value <= hi
    limit = f.limits_for(water_body)[i]  # type: ignore[index]
    if f.rule == "max":
        return value <= limit
    return value > limit if f.strict else value >= limit


def _resolve(std: WaterStandard, key: str) -> str:
    k = key.strip().lower()
    if k in std.factors:
        return k
    for fid, f in std.factors.items():
        if f.hj212 == k:
            return fid
    known = ", ".join(f"{fid} ({f.hj212})" if f.hj212 else fid for fid, f in std.factors.items())
    raise UnknownFactorError(f"unknown factor {key!r} for {std.standard}-{std.version}; use one of: {known}")


def _check_value(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StandardsError(f"value of {key!r} must be a finite number, got {value!r}")
    if value < 0:
        raise StandardsError(f"value of {key!r} must not be negative, got {value!r}")
    return float(value)


def _classify(
    std: WaterStandard,
    values: Mapping[str, float],
    *,
    water_body: str,
    target: str | None,
    on: dt.date | None,
    method: Method = "gb3838",
) -> WaterResult:
    if on is not None and on < std.effective_from:
        raise NoStandardInForceError(
            f"{std.standard}-{std.version} is in force from {std.effective_from}; {on} is before it"
        )
    if target is not None and target not in std.classes:
        raise StandardsError(f"target class {target!r} is not one of {std.classes}")
    resolved: dict[str, float] = {}
    for key, value in values.items():
        fid = _resolve(std, key)
        if fid in resolved:
            raise StandardsError(f"factor {fid!r} given twice (as a name and as its HJ 212 code?)")
        resolved[fid] = _check_value(key, value)

    order = [*std.classes, std.worse_class]
    classes: dict[str, str] = {}
    not_assessed: dict[str, str] = {}
    for fid, value in resolved.items():
        f = std.factors[fid]
        if f.water_bodies is not None and water_body not in f.water_bodies:
            not_assessed[fid] = f"{f.name} is assessed for {'/'.join(f.water_bodies)} only, not {water_body}"
        elif method == "evaluation_2011" and not f.in_evaluation_2011:
            not_assessed[fid] = f"{f.name} is not counted by 地表水环境质量评价办法（试行） 2011"
        else:
            classes[fid] = factor_class(std, fid, value, water_body=water_body)

    applicable = [
        fid
        for fid, f in std.factors.items()
        if (f.water_bodies is None or water_body in f.water_bodies)
        and not (method == "evaluation_2011" and not f.in_evaluation_2011)
    ]
    missing = tuple(fid for fid in applicable if fid not in resolved)
    if not classes:
        return WaterResult(None, {}, (), {}, target, None, missing, not_assessed, (), std.standard, std.version)
    worst = max(classes.values(), key=order.index)
    deciding = tuple(fid for fid, c in classes.items() if c == worst)
    multiples: dict[str, float] = {}
    if target is not None:
        ti = std.classes.index(target)
        for fid in classes:
            f = std.factors[fid]
            if f.rule == "max" and f.multiple:
                limit = f.limits_for(water_body)[ti]  # type: ignore[index]
                if resolved[fid] > limit:
                    multiples[fid] = _multiple(f, resolved[fid], limit)  # type: ignore[assignment]
    meets = None if target is None else order.index(worst) <= order.index(target)
    unverified = tuple(fid for fid in classes if std.factors[fid].status == "unverified")
    main = _main_pollutants(std, resolved, classes, water_body) if "III" in std.classes else ()
    return WaterResult(
        worst,
        classes,
        deciding,
        multiples,
        target,
        meets,
        missing,
        not_assessed,
        unverified,
        std.standard,
        std.version,
        main,
    )


def _multiple(f: WaterFactor, value: float, limit: float) -> float | None:
    if f.rule != "max" or not f.multiple:
        return None
    c, lim = Fraction(str(value)), Fraction(str(limit))
    return float((c - lim) / lim)


def _main_pollutants(
    std: WaterStandard, values: dict[str, float], classes: dict[str, str], water_body: str
) -> tuple[tuple[str, float | None], ...]:
    """主要污染指标: the factors above class III, worst class first, then the larger multiple over
    class III (none for pH and DO), cyanide and heavy metals before all; at most three."""
    order = [*std.classes, std.worse_class]
    iii = std.classes.index("III")
    over = [fid for fid, c in classes.items() if order.index(c) > iii]
    ranked = []
    for fid in over:
        f = std.factors[fid]
        limits = f.limits_for(water_body)
        m = _multiple(f, values[fid], limits[iii]) if limits is not None else None
        ranked.append((not f.main_pollutant_first, -order.index(classes[fid]), -(m or 0.0), fid, m))
    ranked.sort()
    return tuple((fid, m) for *_, fid, m in ranked[:3])


def classify_surface_water(
    values: Mapping[str, float],
    *,
    water_body: WaterBody = "river",
    target: str | None = "III",
    on: dt.date | None = None,
    method: Method = "gb3838",
) -> WaterResult:
    """Class of a surface-water sample under GB 3838-2002 (单因子评价), for the map and 达标 checks.

    ``values`` maps factor ids (``do``, ``codmn``, ``nh3n``, ``tp`` …) or HJ 212 codes
    (``w01009`` …) to concentrations in the table's units (mg/L; pH unitless; fecal coliform
    个/L). ``water_body`` "lake" (湖、库) uses the lake TP limits and assesses TN. ``method``
    "evaluation_2011" leaves out TN and fecal coliform as the 2011 evaluation method does.
    The class is decided by the factors present; the result lists the missing ones.
    """
    std = water_standards()["surface"]
    if water_body not in std.water_bodies:
        raise StandardsError(f"water_body must be one of {std.water_bodies}, got {water_body!r}")
    return _classify(std, values, water_body=water_body, target=target, on=on, method=method)


def classify_seawater(
    values: Mapping[str, float], *, target: str | None = "2", on: dt.date | None = None
) -> WaterResult:
    """Class (1–4 or 劣四类) of a seawater sample under GB 3097-1997, for bays and sea stations.

    Factors: ``ph``, ``do``, ``cod``, ``bod5``, ``din`` (inorganic N), ``phosphate`` (reactive
    phosphate), ``petroleum``; mg/L. Dissolved oxygen must be greater than the limit ("> ").
    """
    std = water_standards()["sea"]
    return _classify(std, values, water_body="sea", target=target, on=on)


def surface_water_classes(
    values: Mapping[str, Sequence[float]],
    targets: Sequence[str | None],
    *,
    water_body: WaterBody = "river",
    on: dt.date | None = None,
) -> tuple[list[str | None], list[bool | None]]:
    """The GB 3838-2002 class and whether it meets its target, for many samples at once (e.g. a
    month of daily means of every section): what ``classify_surface_water`` answers in
    ``klass`` and ``meets_target``, by the same table and the same rule per factor, without the
    rest of its result (deciding factors, multiples, main pollutants) — for when thousands of
    classes are needed and only the classes.

    ``values`` maps factor ids or HJ 212 codes to one value per sample (NaN: not measured);
    ``targets`` holds each sample's target class (None: no target). A sample with no factor
    assessed gets None for both.
    """
    std = water_standards()["surface"]
    if water_body not in std.water_bodies:
        raise StandardsError(f"water_body must be one of {std.water_bodies}, got {water_body!r}")
    if on is not None and on < std.effective_from:
        raise NoStandardInForceError(
            f"{std.standard}-{std.version} is in force from {std.effective_from}; {on} is before it"
        )
    count = len(targets)
    worst = np.full(count, -1, dtype=np.int16)  # per sample: the worst factor class index so far
    classes = len(std.classes)
    for key, column in values.items():
        fid = _resolve(std, key)
        f = std.factors[fid]
        if f.water_bodies is not None and water_body not in f.water_bodies:
            continue
        v = np.asarray(column, dtype=np.float64)
        if v.shape != (count,):
            raise StandardsError(f"{key!r} has {v.size} values for {count} samples")
        given = ~np.isnan(v)
        if (v[given] < 0).any():
            raise StandardsError(f"values of {key!r} must not be negative")
        index = np.full(count, classes, dtype=np.int16)  # the worse class unless a class is met
        for i in reversed(range(classes)):  # the best class met wins
            if f.rule == "range":
                lo, hi = f.ranges[i]  # type: ignore[index]
                meets = (lo <= v) & (v <= hi)
            else:
                limit = f.limits_for(water_body)[i]  # type: ignore[index]
                meets = v <= limit if f.rule == "max" else v > limit if f.strict else v >= limit
            index[meets] = i
        worst = np.where(given, np.maximum(worst, index), worst)
    names = [*std.classes, std.worse_class]
    order = {name: i for i, name in enumerate(names)}
    for target in set(targets):
        if target is not None and target not in std.classes:
            raise StandardsError(f"target class {target!r} is not one of {std.classes}")
    out_classes: list[str | None] = [names[i] if i >= 0 else None for i in worst.tolist()]
    out_meets: list[bool | None] = [
        None if i < 0 or t is None else i <= order[t] for i, t in zip(worst.tolist(), targets, strict=True)
    ]
    return out_classes, out_meets
