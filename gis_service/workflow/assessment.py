"""Assessment (考核) for a period, per chief and per district: patrols done against the number
their level requires, issues reported, closed, handled on time or late (the first time an
issue was handled, against its deadline), and open issues past their deadline; as JSON, CSV or
an Excel workbook (one sheet each)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.errors import InvalidRequest
from gis_service.workflow import patrols
from gis_service.workflow.machine import Workflow

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
]


async def assess(conn: AsyncConnection, workflow: Workflow, since: dt.datetime, until: dt.datetime) -> dict:
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
