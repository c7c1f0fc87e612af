"""Assessment (考核) for a period, per chief and per district: patrols done against the number
their level requires, issues reported, closed, handled on time or late (the first time an
issue was handled, against its deadline), and open issues past their deadline; the sections
(water stations with a target) of the jurisdiction or district and, for each month the period
touches (China time), how many had a monthly class and how many met their target; alerts
opened in the period, and alerts unresolved at its end (opened before it ends, not resolved by
then); as JSON, CSV or an Excel workbook (one sheet each)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from gis_service.errors import InvalidRequest
from gis_service.monitoring.status.assess import CHINA
from gis_service.monitoring.status.monthly import monthly_classes
from gis_service.services.chiefs import STATION_KINDS, sections_of_chiefs_sql
from gis_service.workflow import patrols
from gis_service.workflow.machine import Workflow
from layers.catalog import Catalog

MAX_PERIOD = dt.timedelta(days=366)

ISSUE_FACTS = """
WITH issue AS (
  SELECT i.id, i.adcode, i.state, i.deadline, i.created_at,
         (SELECT min(t.created_at) FROM workflow_transition AS t
           WHERE t.issue_id = i.id AND t.to_state = 'handled') AS handled_at
  FROM workflow_issue AS i
  WHERE i.created_at >= %(since)s AND i.created_at < %(until)s
)
"""
COUNTS = """
  count(issue.id)::integer AS issues,
  count(issue.id) FILTER (WHERE issue.state = 'closed')::integer AS closed,
  count(issue.id) FILTER (WHERE issue.handled_at IS NOT NULL
                          AND (issue.deadline IS NULL OR issue.handled_at <= issue.deadline))::integer AS on_time,
  count(issue.id) FILTER (WHERE issue.handled_at > issue.deadline)::integer AS late,
  count(issue.id) FILTER (WHERE issue.handled_at IS NULL AND issue.state IN ('reported', 'assigned')
                          AND issue.deadline < now())::integer AS overdue_open
"""

CHIEF_COLUMNS = [
    ("chief_id", "河湖长编号", "Chief"),
    ("name", "姓名", "Name"),
    ("role", "类型", "Role"),
    ("level", "级别", "Level"),
    ("adcode", "行政区代码", "District code"),
    ("patrols_done", "巡查次数", "Patrols done"),
    ("patrols_required", "应巡次数", "Patrols required"),
    ("patrols_met", "巡查达标", "Patrols met"),
    ("issues", "问题数", "Issues"),
    ("closed", "办结数", "Closed"),
    ("on_time", "按期处理", "Handled on time"),
    ("late", "超期处理", "Handled late"),
    ("overdue_open", "超期未办", "Overdue, open"),
    ("sections", "考核断面数", "Sections"),
    ("section_months", "有效评价断面月数", "Section-months assessed"),
    ("section_months_met", "达标断面月数", "Section-months meeting target"),
    ("alerts", "新增预警", "Alerts opened"),
    ("alerts_unresolved", "未解除预警", "Alerts unresolved"),
]
DISTRICT_COLUMNS = [
    ("adcode", "行政区代码", "District code"),
    ("chiefs", "河湖长数", "Chiefs"),
    ("patrols_done", "巡查次数", "Patrols done"),
    ("patrols_required", "应巡次数", "Patrols required"),
    ("issues", "问题数", "Issues"),
    ("closed", "办结数", "Closed"),
    ("on_time", "按期处理", "Handled on time"),
    ("late", "超期处理", "Handled late"),
    ("overdue_open", "超期未办", "Overdue, open"),
    ("sections", "考核断面数", "Sections"),
    ("section_months", "有效评价断面月数", "Section-months assessed"),
    ("section_months_met", "达标断面月数", "Section-months meeting target"),
    ("alerts", "新增预警", "Alerts opened"),
    ("alerts_unresolved", "未解除预警", "Alerts unresolved"),
]
SECTION_FIELDS = ("sections", "section_months", "section_months_met")
ALERT_FIELDS = ("alerts", "alerts_unresolved")
ALERT_COUNTS = """
  count(*) FILTER (WHERE a.opened_at >= %(since)s)::integer AS alerts,
  count(*) FILTER (WHERE a.resolved_at IS NULL OR a.resolved_at >= %(until)s)::integer AS alerts_unresolved
"""
"""Of the alerts opened before the period ends: those opened in it, those not resolved by its end."""


def period_months(since: dt.datetime, until: dt.datetime) -> tuple[dt.date, int]:
    """The last month (China time) the period touches and how many months it touches."""
    first = since.astimezone(CHINA).date().replace(day=1)
    last = (until - dt.timedelta(microseconds=1)).astimezone(CHINA).date().replace(day=1)
    return last, (last.year - first.year) * 12 + last.month - first.month + 1


async def _section_months(
    conn: AsyncConnection, catalog: Catalog, since: dt.datetime, until: dt.datetime
) -> tuple[dict[int, dict[str, int]], dict[str, dict[str, int]]]:
    """Per chief and per district: sections, section-months with a class, and those meeting the target."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(sections_of_chiefs_sql(catalog), {"kinds": STATION_KINDS})
    by_chief = await cursor.fetchall()
    station = catalog.get("station")
    await cursor.execute(
        sql.SQL(
            "SELECT t.{id} AS id, t.standard, t.water_target, t.adcode FROM {table} AS t"
            " WHERE t.kind = ANY(%(kinds)s) AND t.kind <> 'outfall' AND t.water_target IS NOT NULL"
            " AND t.adcode IS NOT NULL"
        ).format(id=sql.Identifier(station.id_column), table=sql.Identifier(station.table)),
        {"kinds": STATION_KINDS},
    )
    by_district = await cursor.fetchall()
    stations = {row["id"]: row for row in [*by_chief, *by_district]}
    last, months = period_months(since, until)
    trends = await monthly_classes(conn, list(stations.values()), last, months)

    def add(totals: dict[str, int], station_id: int) -> None:
        totals["sections"] += 1
        totals["section_months"] += sum(m["water_class"] is not None for m in trends[station_id])
        totals["section_months_met"] += sum(m["meets_target"] is True for m in trends[station_id])

    chiefs: dict[int, dict[str, int]] = {}
    for row in by_chief:
        add(chiefs.setdefault(row["chief_id"], dict.fromkeys(SECTION_FIELDS, 0)), row["id"])
    districts: dict[str, dict[str, int]] = {}
    for row in by_district:
        add(districts.setdefault(row["adcode"], dict.fromkeys(SECTION_FIELDS, 0)), row["id"])
    return chiefs, districts


async def _alerts(
    conn: AsyncConnection, catalog: Catalog, params: dict[str, Any]
) -> tuple[dict[int, dict[str, int]], dict[str, dict[str, int]]]:
    """Per chief (the chiefs an alert was routed to) and per district (its station's): alert counts."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT c.chief_id, {ALERT_COUNTS} FROM workflow_alert AS a JOIN workflow_alert_chief AS c"
        " ON c.alert_id = a.id WHERE a.opened_at < %(until)s GROUP BY c.chief_id",
        params,
    )
    chiefs = {row.pop("chief_id"): row for row in await cursor.fetchall()}
    station = catalog.get("station")
    await cursor.execute(
        sql.SQL(
            "SELECT t.adcode, " + ALERT_COUNTS + " FROM workflow_alert AS a JOIN {table} AS t ON t.{id} = a.station_id"
            " WHERE a.opened_at < %(until)s AND t.adcode IS NOT NULL GROUP BY t.adcode"
        ).format(id=sql.Identifier(station.id_column), table=sql.Identifier(station.table)),
        params,
    )
    districts = {row.pop("adcode"): row for row in await cursor.fetchall()}
    return chiefs, districts


async def assess(
    conn: AsyncConnection, workflow: Workflow, catalog: Catalog, since: dt.datetime, until: dt.datetime
) -> dict:
    """The assessment of [since, until): one row per chief and one per district."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidRequest("since and until need a time zone, e.g. 2026-11-01T00:00:00+08:00")
    if until <= since:
        raise InvalidRequest("until must come after since")
    if until - since > MAX_PERIOD:
        raise InvalidRequest("the period is longer than a year; assess a year at most")
    params = {"since": since, "until": until}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        ISSUE_FACTS + f"SELECT c.id AS chief_id, {COUNTS} FROM chief AS c"
        " LEFT JOIN workflow_issue_chief AS ic ON ic.chief_id = c.id"
        " LEFT JOIN issue ON issue.id = ic.issue_id GROUP BY c.id",
        params,
    )
    issues_by_chief = {row.pop("chief_id"): row for row in await cursor.fetchall()}
    sections_by_chief, sections_by_district = await _section_months(conn, catalog, since, until)
    alerts_by_chief, alerts_by_district = await _alerts(conn, catalog, params)
    no_sections, no_alerts = dict.fromkeys(SECTION_FIELDS, 0), dict.fromkeys(ALERT_FIELDS, 0)
    chiefs = []
    for row in await patrols.frequency(conn, workflow, since, until):
        chiefs.append(
            {
                "chief_id": row["chief_id"],
                "name": row["name"],
                "role": row["role"],
                "level": row["level"],
                "adcode": row["adcode"],
                "patrols_done": row["done"],
                "patrols_required": row["required"],
                "patrols_met": row["meets"],
                **issues_by_chief[row["chief_id"]],
                **sections_by_chief.get(row["chief_id"], no_sections),
                **alerts_by_chief.get(row["chief_id"], no_alerts),
            }
        )
    await cursor.execute(
        ISSUE_FACTS + f"SELECT issue.adcode, {COUNTS} FROM issue WHERE issue.adcode IS NOT NULL GROUP BY issue.adcode",
        params,
    )
    issues_by_district = {row.pop("adcode"): row for row in await cursor.fetchall()}
    empty = dict.fromkeys(("issues", "closed", "on_time", "late", "overdue_open"), 0)
    districts: dict[str, dict[str, Any]] = {}
    for chief in chiefs:
        if chief["level"] == "city" or not chief["adcode"]:
            continue
        district = districts.setdefault(
            chief["adcode"],
            {
                "adcode": chief["adcode"],
                "chiefs": 0,
                "patrols_done": 0,
                "patrols_required": 0,
                **issues_by_district.get(chief["adcode"], empty),
            },
        )
        district["chiefs"] += 1
        district["patrols_done"] += chief["patrols_done"]
        district["patrols_required"] += chief["patrols_required"]
    for adcode, counts in issues_by_district.items():
        districts.setdefault(
            adcode, {"adcode": adcode, "chiefs": 0, "patrols_done": 0, "patrols_required": 0, **counts}
        )
    for adcode in {*sections_by_district, *alerts_by_district} - set(districts):
        districts[adcode] = {"adcode": adcode, "chiefs": 0, "patrols_done": 0, "patrols_required": 0, **empty}
    for adcode, district in districts.items():
        district.update(sections_by_district.get(adcode, no_sections))
        district.update(alerts_by_district.get(adcode, no_alerts))
    return {
        "since": since,
        "until": until,
        "chiefs": chiefs,
        "districts": sorted(districts.values(), key=lambda d: d["adcode"]),
    }


def _header(columns: list[tuple[str, str, str]]) -> list[str]:
    return [f"{zh} ({en})" for _, zh, en in columns]


def as_csv(assessment: dict) -> str:
    """The per-chief table as CSV (UTF-8 with BOM so that Excel reads the Chinese headers)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(_header(CHIEF_COLUMNS))
    for row in assessment["chiefs"]:
        writer.writerow([row[key] for key, _, _ in CHIEF_COLUMNS])
    return out.getvalue()


def as_xlsx(assessment: dict) -> bytes:
    """A workbook with the per-chief and per-district sheets."""
    book = Workbook()
    for index, (title, columns, rows) in enumerate(
        (
            ("河湖长 Chiefs", CHIEF_COLUMNS, assessment["chiefs"]),
            ("区 Districts", DISTRICT_COLUMNS, assessment["districts"]),
        )
    ):
        sheet = book.active if index == 0 else book.create_sheet()
        sheet.title = title
        sheet.append(_header(columns))
        for row in rows:
            sheet.append([row[key] for key, _, _ in columns])
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
