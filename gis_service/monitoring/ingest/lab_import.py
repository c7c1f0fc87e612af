"""Historical lab results from CSV or Excel into the observation store, all or nothing.

Every row is checked before anything is written: the station (its code or MN), the factor (HJ
212 code or name), the time (with a time zone, or China time), the value (a finite number ≥ 0),
the unit (when the file has a unit column: it must be the factor's), the flag (an HJ 212 data
flag, N when absent), and no two rows for one station, factor and time. The findings go into a
validation report like the layer importer's; with any error nothing is written. Otherwise the
rows are written in one transaction (rows already stored for a datastream and time stay as they
are); the insert's trigger (migration 0021) moves ``datastream_latest`` forward, adds hourly values
to the daily sums and announces each station's new observations on ``ecomap_observation`` so the
services refresh the station status.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY
from gis_service.monitoring.store import EARLIEST, FUTURE_SLACK, month_start, next_month
from layers.validation import ValidationReport

CHINA = dt.timezone(dt.timedelta(hours=8))
SOURCE = "lab"
COLUMNS: dict[str, tuple[str, ...]] = {
    # role: names recognised (case-insensitive), first found wins; --map SOURCE=ROLE overrides
    "station": ("station", "station_code", "code", "mn", "站点", "站点编码", "站点编号"),
    "time": ("time", "datetime", "phenomenon_time", "sampled_at", "采样时间", "监测时间", "时间"),
    "factor": ("factor", "factor_code", "property", "parameter", "因子", "监测项目", "指标"),
    "value": ("value", "result", "concentration", "监测值", "浓度", "结果"),
    "unit": ("unit", "单位"),
    "flag": ("flag", "标识", "数据标识"),
}
REQUIRED = ("station", "time", "factor", "value")
UNIT_ALIASES = {"mg/l": "mg/L", "μg/m3": "ug/m3", "µg/m3": "ug/m3", "µg/m³": "ug/m3", "μg/m³": "ug/m3",
                "mg/m³": "mg/m3", "无量纲": "1", "": "1", "-": "1", "ph": "1"}  # fmt: skip


class ImportRejected(Exception):
    """The file cannot be read or its columns cannot be mapped (nothing was written)."""


def read_table(path: Path) -> pd.DataFrame:
    """The rows of a CSV (UTF-8, or GBK as Chinese Excel saves it) or Excel sheet, all as text."""
    if not path.is_file():
        raise ImportRejected(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return pd.read_excel(path, dtype=str, engine="openpyxl").fillna("")
        if suffix == ".csv":
            try:
                return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            except UnicodeDecodeError:
                return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gbk")
    except (ValueError, OSError) as error:
        raise ImportRejected(f"{path}: cannot read it ({error})") from None
    raise ImportRejected(f"{path}: use a .csv or .xlsx file (got {suffix or 'no extension'})")


def map_columns(frame: pd.DataFrame, mapping: dict[str, str] | None = None) -> dict[str, str]:
    """Role -> column of the file, by the recognised names or ``mapping`` (column -> role)."""
    chosen: dict[str, str] = {}
    for column, role in (mapping or {}).items():
        if role not in COLUMNS:
            raise ImportRejected(f"--map {column}={role}: the role must be one of {', '.join(COLUMNS)}")
        if column not in frame.columns:
            raise ImportRejected(f"--map {column}={role}: the file has no column {column!r}")
        chosen[role] = column
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for role, names in COLUMNS.items():
        if role not in chosen:
            found = next((lower[n] for n in names if n in lower), None)
            if found is not None:
                chosen[role] = found
    missing = [r for r in REQUIRED if r not in chosen]
    if missing:
        raise ImportRejected(
            f"no column for {', '.join(missing)} (columns: {', '.join(map(str, frame.columns))});"
            f" name them {' / '.join(COLUMNS[missing[0]][:3])} or use --map COLUMN={missing[0]}"
        )
    return chosen


def _factor(key: str) -> str | None:
    k = key.strip()
    if k.lower() in FACTORS:
        return k.lower()
    return next((code for code, f in FACTORS.items() if f.name.lower() == k.lower()), None)


def _time(raw: str) -> dt.datetime | None:
    try:
        moment = pd.Timestamp(raw.strip()).to_pydatetime()
    except (ValueError, TypeError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return moment


def validate(
    conn: psycopg.Connection, frame: pd.DataFrame, columns: dict[str, str], report: ValidationReport
) -> list[tuple[int, dt.datetime, float, str]]:
    """Check every row (findings into ``report``); the rows as (station id, factor, time, value, flag)."""
    stations: dict[str, int] = {}
    for sid, code, mn in conn.execute("SELECT id, code, mn FROM station").fetchall():
        stations[code] = sid
        if mn:
            stations[mn] = sid
    now = dt.datetime.now(dt.UTC)
    rows: list[Any] = []
    seen: dict[tuple[int, str, dt.datetime], int] = {}
    report.features = len(frame)
    for i, record in enumerate(frame.to_dict("records"), start=1):
        station_key = str(record[columns["station"]]).strip()
        sid = stations.get(station_key)
        if sid is None:
            report.add("error", "unknown_station", "no station has this code or MN", field_name=columns["station"],
                       indices=[i], examples=[station_key])  # fmt: skip
        code = _factor(str(record[columns["factor"]]))
        if code is None:
            report.add("error", "unknown_factor", f"not an HJ 212 factor code or name ({', '.join(FACTORS)})",
                       field_name=columns["factor"], indices=[i], examples=[record[columns["factor"]]])  # fmt: skip
        when = _time(str(record[columns["time"]]))
        if when is None or not EARLIEST <= when <= now + FUTURE_SLACK:
            report.add("error", "bad_time", "not a date-time from 2000 to now (ISO, China time if no zone)",
                       field_name=columns["time"], indices=[i], examples=[record[columns["time"]]])  # fmt: skip
        raw_value = str(record[columns["value"]]).strip()
        try:
            value = float(raw_value)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            report.add("error", "bad_value", "the value must be a number ≥ 0", field_name=columns["value"],
                       indices=[i], examples=[raw_value])  # fmt: skip
        if "unit" in columns and code is not None:
            unit = str(record[columns["unit"]]).strip()
            unit = UNIT_ALIASES.get(unit.lower(), UNIT_ALIASES.get(unit, unit))
            if unit != FACTORS[code].unit:
                report.add("error", "wrong_unit", f"the unit of {code} ({FACTORS[code].name}) is {FACTORS[code].unit}",
                           field_name=columns["unit"], indices=[i], examples=[f"{code}: {unit}"])  # fmt: skip
        flag = str(record[columns["flag"]]).strip().upper() if "flag" in columns else ""
        flag = flag or "N"
        if flag not in FLAG_QUALITY:
            report.add("error", "bad_flag", f"an HJ 212 data flag: {', '.join(FLAG_QUALITY)}",
                       field_name=columns["flag"], indices=[i], examples=[flag])  # fmt: skip
        if sid is not None and code is not None and when is not None:
            key = (sid, code, when)
            if key in seen:
                report.add("error", "duplicate", "two rows for one station, factor and time",
                           indices=[i], examples=[f"rows {seen[key]} and {i}"])  # fmt: skip
            seen[key] = i
            rows.append((sid, code, when, value, flag))
    return rows


def write(conn: psycopg.Connection, rows: list[tuple], aggregation: str) -> tuple[int, int]:
    """Write validated rows in the caller's transaction; (inserted, already stored)."""
    month, last = month_start(min(r[2] for r in rows)), max(r[2] for r in rows)
    while month <= last:
        conn.execute("SELECT observation_ensure_partition(%s)", (month,))
        month = next_month(month)
    codes = sorted({(sid, code) for sid, code, *_ in rows})
    conn.execute(
        "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
        " SELECT s, c, %s, p, u FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[]) AS f(s, c, p, u)"
        " ON CONFLICT (station_id, factor_code, aggregation) DO NOTHING",
        (aggregation, [s for s, _ in codes], [c for _, c in codes], [FACTORS[c].name for _, c in codes],
         [FACTORS[c].unit for _, c in codes]),
    )  # fmt: skip
    params = (
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows], [FLAG_QUALITY[r[4]] for r in rows],
    )  # fmt: skip
    staged = (
        "SELECT d.id AS datastream_id, r.t, r.v, r.f, r.q FROM unnest(%s::int[], %s::text[], %s::timestamptz[],"
        " %s::float8[], %s::text[], %s::text[]) AS r(s, c, t, v, f, q)"
        " JOIN datastream AS d ON d.station_id = r.s AND d.factor_code = r.c AND d.aggregation = %s"
    )
    inserted = conn.execute(
        "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
        f" SELECT datastream_id, t, v, f, q, %s FROM ({staged}) AS x"
        " ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING",
        (SOURCE, *params, aggregation),
    ).rowcount
    return inserted, len(rows) - inserted
