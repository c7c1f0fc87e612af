"""Eco-compensation between upstream and downstream cities by the rules (``compensation.yaml``),
and the monthly report per section, city pair and city (JSON, CSV).

Per section and month: each counted factor whose monthly mean exceeds the limit of the
section's target class costs the upstream city, by the tonnes above the limit when the rules
know the section's flow, else by its exceedance multiple; a section meeting its target on every
counted factor (and in its class) earns the upstream city the reward from the downstream one.
Either way at most the cap. A section without enough valid data is not assessed and pays nothing.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
from typing import Any

from psycopg import AsyncConnection

from gis_service.access.scopes import Sources
from gis_service.monitoring.standards.tables import water_standards
from gis_service.region import sections as section_service
from gis_service.region.rules import CompensationRules

MEGA = 1e6
"""g/m³ × m³ -> tonnes."""


def compensate(
    section: dict[str, Any], assessment: dict[str, Any], rules: CompensationRules, first: dt.date
) -> dict[str, Any]:
    """Who pays whom how much (``unit``) for a section's month, factor by factor."""
    upstream, downstream = section["upstream_city"], section["downstream_city"]
    none = {"payer": None, "payee": None, "amount": 0.0, "by_factor": [], "flow_m3s": rules.flow(section["code"])}
    table = water_standards()["surface"]
    target = section["water_target"]
    counted = {f: assessment["factors"].get(f, {}).get("value") for f in rules.factors}
    measured = {f: v for f, v in counted.items() if v is not None}
    if assessment["water_class"] is None or not measured or target not in table.classes:
        return {**none, "outcome": "not_assessed", "missing_factors": sorted(set(counted) - set(measured))}
    flow = rules.flow(section["code"])
    seconds = calendar.monthrange(first.year, first.month)[1] * 86400
    index = table.classes.index(target)
    by_factor = []
    for factor, value in measured.items():
        limit = table.factors[factor].limits_for("river")[index]  # type: ignore[index]
        if value <= limit:
            continue
        rate = rules.factors[factor]
        entry: dict[str, Any] = {"factor": factor, "mean": value, "limit": limit}
        if flow is not None:
            tonnes = (value - limit) * flow * seconds / MEGA
            entry.update(
                excess_tonnes=round(tonnes, 3), rate=rate.rate_per_tonne, amount=round(tonnes * rate.rate_per_tonne, 2)
            )
        else:
            multiple = (value - limit) / limit
            entry.update(exceedance_multiple=round(multiple, 4), rate=rate.rate_per_multiple,
                         amount=round(multiple * rate.rate_per_multiple, 2))  # fmt: skip
        by_factor.append(entry)
    missing = sorted(set(counted) - set(measured))
    if by_factor:
        amount = min(sum(e["amount"] for e in by_factor), rules.cap_per_month)
        return {**none, "outcome": "upstream_pays", "payer": upstream, "payee": downstream,
                "amount": round(amount, 2), "by_factor": by_factor, "method": "flow" if flow else "multiple",
                "missing_factors": missing}  # fmt: skip
    if assessment["meets_target"]:
        amount = round(min(rules.reward_per_month, rules.cap_per_month), 2)
        return {**none, "outcome": "downstream_pays", "payer": downstream, "payee": upstream, "amount": amount,
                "missing_factors": missing}  # fmt: skip
    return {**none, "outcome": "target_missed_uncounted", "missing_factors": missing}


def _pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (upstream, downstream) pair: what each side paid and the net to the downstream city."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["upstream_city"], row["downstream_city"])
        pair = pairs.setdefault(
            key, {"upstream_city": key[0], "downstream_city": key[1], "sections": 0, "assessed": 0,
                  "upstream_pays": 0.0, "downstream_pays": 0.0},
        )  # fmt: skip
        paid = row["compensation"]
        pair["sections"] += 1
        pair["assessed"] += paid["outcome"] != "not_assessed"
        if paid["payer"] == key[0]:
            pair["upstream_pays"] = round(pair["upstream_pays"] + paid["amount"], 2)
        elif paid["payer"] == key[1]:
            pair["downstream_pays"] = round(pair["downstream_pays"] + paid["amount"], 2)
    for pair in pairs.values():
        pair["net_to_downstream"] = round(pair["upstream_pays"] - pair["downstream_pays"], 2)
    return sorted(pairs.values(), key=lambda p: (p["upstream_city"], p["downstream_city"]))


def _cities(rows: list[dict[str, Any]], names: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Per city: what it pays and receives over all sections, and the balance (received − paid)."""
    cities: dict[str, dict[str, Any]] = {}
    for row in rows:
        for city in (row["upstream_city"], row["downstream_city"]):
            cities.setdefault(city, {"city": city, "name": names.get(city), "pays": 0.0, "receives": 0.0})
        paid = row["compensation"]
        if paid["payer"] is not None:
            cities[paid["payer"]]["pays"] = round(cities[paid["payer"]]["pays"] + paid["amount"], 2)
            cities[paid["payee"]]["receives"] = round(cities[paid["payee"]]["receives"] + paid["amount"], 2)
    for city in cities.values():
        city["balance"] = round(city["receives"] - city["pays"], 2)
    return sorted(cities.values(), key=lambda c: c["city"])


async def monthly_report(
    conn: AsyncConnection,
    stations: Sources,
    rules: CompensationRules,
    first: dt.date,
    upstream: str | None = None,
    downstream: str | None = None,
) -> dict[str, Any]:
    """The month's assessment and compensation of every cross-boundary section the caller reads
    (of one city pair if given), with the totals per pair and per city."""
    names = section_service.city_names()
    found = await section_service.cross_boundary_sections(conn, stations, upstream, downstream)
    means = await section_service.monthly_means(conn, [s["id"] for s in found], first)
    rows = []
    for section in found:
        assessment = section_service.assess(section, means.get(section["id"], {}), first)
        rows.append(
            {
                **section,
                "upstream_name": names.get(section["upstream_city"]),
                "downstream_name": names.get(section["downstream_city"]),
                "assessment": assessment,
                "compensation": compensate(section, assessment, rules, first),
            }
        )
    return {
        "month": f"{first:%Y-%m}",
        "rule_set": rules.rule_set.model_dump(),
        "rules_status": rules.status,
        "unit": rules.unit,
        "standard": rules.standard,
        "sections": rows,
        "pairs": _pairs(rows),
        "cities": _cities(rows, names),
    }


CSV_COLUMNS = [
    ("month", "月份", "Month"),
    ("code", "断面编码", "Section code"),
    ("name", "断面名称", "Section"),
    ("upstream_city", "上游城市", "Upstream city"),
    ("downstream_city", "下游城市", "Downstream city"),
    ("water_target", "水质目标", "Target"),
    ("water_class", "水质类别", "Class"),
    ("meets_target", "是否达标", "Meets target"),
    ("outcome", "补偿结果", "Outcome"),
    ("payer", "支付方", "Payer"),
    ("payee", "受偿方", "Payee"),
    ("amount", "补偿金额", "Amount"),
    ("unit", "单位", "Unit"),
]


def as_csv(report: dict[str, Any], factors: list[str]) -> str:
    """One row per section (UTF-8 with BOM so that Excel reads the Chinese headers), with the
    monthly mean of each counted factor."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([f"{zh} ({en})" for _, zh, en in CSV_COLUMNS] + [f"{f} 月均值 (monthly mean)" for f in factors])
    for row in report["sections"]:
        assessment, paid = row["assessment"], row["compensation"]
        flat = {**row, **assessment, **paid, "month": report["month"], "unit": report["unit"]}
        means = [assessment["factors"].get(f, {}).get("value") for f in factors]
        writer.writerow(
            [flat.get(key) for key, _, _ in CSV_COLUMNS] + [None if m is None else round(m, 4) for m in means]
        )
    return out.getvalue()
