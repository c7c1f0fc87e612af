"""An alert's life: opened when a rule's condition first holds at a station (routed, with its
issue), updated while it persists (one open alert per station and rule: last seen, measure,
peak), escalated by duration and peak, resolved when the condition clears. Every change of
state is an event of the alert (``workflow_alert_event``) and a notification on the monitoring
event stream (``ecomap_monitoring``, event ``alert``, for the workflow's readers only).

``evaluate_stations`` is one pass of the evaluator: the stations given (those whose latest
values moved) are judged by every rule, the others by the rules that need no values (data
missing); each station's changes are one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from shapely.geometry import Point

from gis_service.access.audit import AuditContext
from gis_service.monitoring.status.service import latest
from gis_service.workflow.alerts.evaluate import Finding, Snapshot, evaluate
from gis_service.workflow.alerts.routing import route
from gis_service.workflow.alerts.rules import AlertRules, Rule
from gis_service.workflow.machine import Workflow
from gis_service.workflow.schemas import NewIssue
from gis_service.workflow.service import record_issue
from layers.catalog import Catalog

logger = logging.getLogger(__name__)

ALERT_ACTOR = "platform:alerts"
"""Who raises, escalates and resolves alerts (and reports their issues) in the records."""
PLATFORM = AuditContext(ALERT_ACTOR, "platform")
EVENT_CHANNEL = "ecomap_monitoring"
"""The monitoring event stream's channel (migration 0011); its route forwards ``alert`` events."""
_STATIONS = "SELECT id, code, name, kind, status, standard, water_target, river_id FROM station ORDER BY id"
_NEWEST = (
    "SELECT d.station_id, max(l.phenomenon_time) FROM datastream AS d"
    " JOIN datastream_latest AS l ON l.datastream_id = d.id GROUP BY d.station_id"
)
_OPEN = "SELECT * FROM workflow_alert WHERE station_id = %s AND state = 'open' FOR UPDATE"


@dataclass
class PassResult:
    """What one evaluation pass did."""

    stations: int = 0
    opened: int = 0
    escalated: int = 0
    resolved: int = 0


async def snapshots(conn: AsyncConnection, full: set[int] | None) -> list[Snapshot]:
    """Every station's snapshot: with its latest values and status for the ``full`` ones (all
    when None), with only the newest time of its values for the others. A station that never
    reported has no values to judge: it is never read value by value (a network of thousands of
    stations not yet connected costs one query, not one per station)."""
    cursor = conn.cursor(row_factory=dict_row)
    stations = await (await cursor.execute(_STATIONS)).fetchall()
    newest = dict(await (await conn.execute(_NEWEST)).fetchall())
    result = []
    for station in stations:
        if (full is not None and station["id"] not in full) or station["id"] not in newest:
            result.append(Snapshot(station, None, newest.get(station["id"])))
            continue
        body = await latest(conn, station["id"])
        air = body if station["standard"] == "air" else None
        result.append(Snapshot(station, body["values"], newest.get(station["id"]), air, body["observed_at"]))
    return result


async def evaluate_stations(
    conn: AsyncConnection,
    catalog: Catalog,
    rules: AlertRules,
    workflow: Workflow,
    now: dt.datetime,
    full: set[int] | None = None,
) -> PassResult:
    """One evaluation pass at ``now``: every rule at the ``full`` stations (all when None), the
    rules needing no values at every station."""
    outcome = PassResult()
    for snapshot in await snapshots(conn, full):
        findings = {
            rule_id: finding
            for rule_id, rule in rules.rules.items()
            if (finding := evaluate(rule, snapshot, now)) is not None
        }
        if findings:
            outcome.stations += 1
            await apply_findings(conn, catalog, rules, workflow, snapshot.station, findings, outcome)
    return outcome


async def apply_findings(
    conn: AsyncConnection,
    catalog: Catalog,
    rules: AlertRules,
    workflow: Workflow,
    station: dict[str, Any],
    findings: dict[str, Finding],
    outcome: PassResult,
) -> None:
    """Open, update, escalate or resolve the station's alerts by the findings, in one transaction."""
    async with conn.transaction():
        cursor = conn.cursor(row_factory=dict_row)
        open_alerts = {a["rule"]: a for a in await (await cursor.execute(_OPEN, (station["id"],))).fetchall()}
        for rule_id, finding in findings.items():
            rule, alert = rules.rules[rule_id], open_alerts.get(rule_id)
            if finding.holds and alert is None:
                outcome.opened += await _open(conn, catalog, rules, workflow, station, rule_id, rule, finding)
            elif finding.holds and alert is not None:
                outcome.escalated += await _update(conn, rules, workflow, alert, rule, finding)
            elif alert is not None:
                await _resolve(conn, workflow, alert, rule, finding)
                outcome.resolved += 1


def _severity(rules: AlertRules, workflow: Workflow, rule: Rule, alert: dict[str, Any] | None, **seen: Any) -> str:
    """The severity the rule gives for the duration and peak, never below the alert's current one."""
    order = list(workflow.severities)
    severity = rules.severity_of(rule, order, seen["last"] - seen["first"], seen["peak"])
    if alert is not None and order.index(alert["severity"]) > order.index(severity):
        return alert["severity"]
    return severity


async def _open(
    conn: AsyncConnection,
    catalog: Catalog,
    rules: AlertRules,
    workflow: Workflow,
    station: dict[str, Any],
    rule_id: str,
    rule: Rule,
    finding: Finding,
) -> int:
    first = min(finding.since or finding.observed_at, finding.observed_at)
    last = finding.observed_at
    severity = _severity(rules, workflow, rule, None, first=first, last=last, peak=finding.measure)
    routing = await route(conn, catalog, station["id"])
    cursor = await conn.execute(
        "INSERT INTO workflow_alert (rule, station_id, state, severity, first_seen, last_seen, measure, peak,"
        " peak_at, detail, river_id, bay_id, routing)"
        " VALUES (%s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (station_id, rule) WHERE state = 'open' DO NOTHING RETURNING id",
        [
            rule_id,
            station["id"],
            severity,
            first,
            last,
            finding.measure,
            finding.measure,
            last if finding.measure is not None else None,
            Jsonb(finding.detail),
            routing["place"]["river_id"],
            routing["place"]["bay_id"],
            Jsonb(routing),
        ],
    )
    row = await cursor.fetchone()
    if row is None:  # another worker opened it a moment ago
        return 0
    alert_id = int(row[0])
    chiefs = [c["id"] for c in routing["chiefs"]]
    await conn.execute(
        "INSERT INTO workflow_alert_chief (alert_id, chief_id) SELECT %s, unnest(%s::int[])", [alert_id, chiefs]
    )
    await record_event(conn, alert_id, "opened", severity, last, summary(rule, station, finding))
    if rule.issue is not None:
        issue_id = await _issue_for(
            conn, catalog, workflow, station, rule_id, rule, finding, alert_id, severity, routing["place"]
        )
        await conn.execute("UPDATE workflow_alert SET issue_id = %s WHERE id = %s", [issue_id, alert_id])
    await notify(conn, workflow, "opened", alert_id)
    return 1


async def _issue_for(
    conn: AsyncConnection,
    catalog: Catalog,
    workflow: Workflow,
    station: dict[str, Any],
    rule_id: str,
    rule: Rule,
    finding: Finding,
    alert_id: int,
    severity: str,
    place: dict[str, Any],
) -> int:
    """The open issue of an earlier alert of the same station and rule (noted there), else a new
    issue (source ``alert``) at the station, its chiefs found as the workflow finds them."""
    cursor = await conn.execute(
        "SELECT i.id FROM workflow_alert AS a JOIN workflow_issue AS i ON i.id = a.issue_id"
        " WHERE a.station_id = %s AND a.rule = %s AND a.id <> %s AND NOT i.state = ANY(%s)"
        " ORDER BY a.opened_at DESC LIMIT 1",
        [station["id"], rule_id, alert_id, list(workflow.final)],
    )
    if (row := await cursor.fetchone()) is not None:
        await _comment(
            conn,
            int(row[0]),
            f"预警再次出现 / the alert is raised again (alert {alert_id}): " + summary(rule, station, finding),
        )
        return int(row[0])
    assert rule.issue is not None  # noqa: S101 - only rules with an issue get here
    point = await _station_point(conn, station["id"])
    issue = NewIssue(
        title=f"{rule.zh}：{station['name']}"[:200],
        description=summary(rule, station, finding)[:4000],
        category=rule.issue.category,
        severity=severity,
        source="alert",
        geometry={"type": "Point", "coordinates": [point.x, point.y]},
        idempotency_key=f"alert-{alert_id:06d}",
    )
    issue_id, _ = await record_issue(conn, catalog, workflow, PLATFORM, issue, point, ALERT_ACTOR, None, place=place)
    return issue_id


async def _station_point(conn: AsyncConnection, station_id: int) -> Point:
    row = await (
        await conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM station WHERE id = %s", [station_id])
    ).fetchone()
    assert row is not None  # noqa: S101 - the station was just read
    return Point(row[0], row[1])


async def _update(
    conn: AsyncConnection, rules: AlertRules, workflow: Workflow, alert: dict[str, Any], rule: Rule, finding: Finding
) -> int:
    """Record that the condition persists; 1 if that escalated the alert."""
    last = max(alert["last_seen"], finding.observed_at)
    peak, peak_at = alert["peak"], alert["peak_at"]
    if finding.measure is not None and (peak is None or finding.measure > peak):
        peak, peak_at = finding.measure, finding.observed_at
    severity = _severity(rules, workflow, rule, alert, first=alert["first_seen"], last=last, peak=peak)
    await conn.execute(
        "UPDATE workflow_alert SET last_seen = %(last)s, measure = %(measure)s, peak = %(peak)s, peak_at = %(peak_at)s,"
        " detail = %(detail)s, severity = %(severity)s, updated_at = now() WHERE id = %(id)s"
        " AND (last_seen, measure, peak, severity, detail)"
        " IS DISTINCT FROM (%(last)s, %(measure)s, %(peak)s, %(severity)s, %(detail)s)",
        {
            "id": alert["id"],
            "last": last,
            "measure": finding.measure,
            "peak": peak,
            "peak_at": peak_at,
            "detail": Jsonb(finding.detail),
            "severity": severity,
        },
    )
    if severity == alert["severity"]:
        return 0
    note = f"{alert['severity']} → {severity}"
    await record_event(conn, alert["id"], "escalated", severity, last, note)
    if alert["issue_id"] is not None:
        await conn.execute(
            "UPDATE workflow_issue SET severity = %s, updated_at = now() WHERE id = %s AND NOT state = ANY(%s)",
            [severity, alert["issue_id"], list(workflow.final)],
        )
        await _comment(conn, alert["issue_id"], f"预警升级 / alert {alert['id']} escalated: {note}")
    await notify(conn, workflow, "escalated", alert["id"])
    return 1


async def _resolve(
    conn: AsyncConnection, workflow: Workflow, alert: dict[str, Any], rule: Rule, finding: Finding
) -> None:
    await conn.execute(
        "UPDATE workflow_alert SET state = 'resolved', resolved_at = now(), cleared_at = %s, updated_at = now()"
        " WHERE id = %s",
        [finding.observed_at, alert["id"]],
    )
    note = f"{rule.zh} 已解除 / cleared at {finding.observed_at.isoformat()}"
    await record_event(conn, alert["id"], "resolved", alert["severity"], finding.observed_at, note)
    if alert["issue_id"] is not None:
        await _comment(conn, alert["issue_id"], f"预警解除 / alert {alert['id']} resolved: {note}")
    await notify(conn, workflow, "resolved", alert["id"])


async def record_event(
    conn: AsyncConnection,
    alert_id: int,
    action: str,
    severity: str,
    observed_at: dt.datetime | None,
    note: str,
    actor: str = ALERT_ACTOR,
    account_id: int | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO workflow_alert_event (alert_id, action, severity, observed_at, actor, account_id, note)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [alert_id, action, severity, observed_at, actor, account_id, note],
    )


async def _comment(conn: AsyncConnection, issue_id: int, body: str) -> None:
    await conn.execute(
        "INSERT INTO workflow_comment (issue_id, actor, body) VALUES (%s, %s, %s)", [issue_id, ALERT_ACTOR, body[:4000]]
    )


async def notify(conn: AsyncConnection, workflow: Workflow, action: str, alert_id: int) -> None:
    """An ``alert`` event on the monitoring stream, delivered at commit, for the workflow's readers."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT a.id, a.rule, a.station_id, a.severity, a.state, a.issue_id,"
        " ARRAY(SELECT c.chief_id FROM workflow_alert_chief AS c WHERE c.alert_id = a.id ORDER BY c.chief_id) AS chiefs"
        " FROM workflow_alert AS a WHERE a.id = %s",
        [alert_id],
    )
    alert = await cursor.fetchone()
    assert alert is not None  # noqa: S101 - written in this transaction
    event = {"event": "alert", "action": action, **alert, "readers": sorted(str(r) for r in workflow.readers)}
    await conn.execute("SELECT pg_notify(%s, %s)", [EVENT_CHANNEL, json.dumps(event)])


def _class_label(klass: str | None) -> str:
    return "" if klass is None else (klass if klass.endswith("类") else f"{klass}类")


def _water_parts(detail: dict[str, Any]) -> list[str]:
    parts = [f"水质 {_class_label(detail['water_class'])}，目标 {_class_label(detail['target'])}"]
    for factor in detail.get("deciding_factors", []):
        multiple = factor.get("exceedance_multiple")
        over = f"，超标 {multiple:g} 倍" if multiple is not None else ""
        limit = f"{_class_label(detail['target'])}限值 {factor['limit']}"
        parts.append(f"{factor['name']} {factor['value']:g} {factor['unit']}（{limit}）{over}")
    return parts


def summary(rule: Rule, station: dict[str, Any], finding: Finding) -> str:
    """One line saying what the rule found at the station (for the alert's issue and events)."""
    detail, parts = finding.detail, [f"{station['name']}（{station['code']}）{rule.zh} / {rule.en}"]
    if "water_class" in detail:
        parts += _water_parts(detail)
    elif "property" in detail and "value" in detail:
        bounds = "～".join("" if b is None else f"{b:g}" for b in (detail["min"], detail["max"]))
        parts.append(f"{detail['property']} {detail['value']:g} {detail['unit']}（范围 {bounds}）")
    elif "aqi" in detail:
        primary = ", ".join(detail.get("primary_pollutant") or []) or "—"
        parts.append(f"AQI {detail['aqi']}（{detail.get('category')}），首要污染物 {primary}")
    elif "last_value_at" in detail:
        parts.append(f"最后一个数据 {detail['last_value_at']}，已 {finding.measure:g} 小时无数据")
    elif "factors" in detail:
        parts.append("数据标记 " + "、".join(f"{f['property']} {f['flag']}" for f in detail["factors"]))
    parts.append(f"监测时间 {finding.observed_at.isoformat()}")
    return "；".join(parts)
