"""Reading alerts (a list with filters, one alert with its routing and history) and
acknowledging one. Functions take a connection; access is decided through the policy module:
reading by the workflow's readers, acknowledging by the rules' roles (a chief only an alert
routed to them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.access import audit, policy
from gis_service.access.audit import AuditContext
from gis_service.access.principal import Principal, Role
from gis_service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gis_service.workflow.alerts.lifecycle import notify, record_event
from gis_service.workflow.alerts.rules import AlertRules
from gis_service.workflow.machine import Workflow
from gis_service.workflow.map_layers import ENVELOPE, BBox, view_parameters

MAX_PAGE = 500
State = Literal["open", "resolved"]

ALERT_COLUMNS = """
a.id, a.rule, a.station_id, s.code AS station_code, s.name AS station_name, s.kind AS station_kind,
       a.state, a.severity, a.first_seen, a.last_seen, a.measure, a.peak, a.peak_at, a.detail, a.river_id, a.bay_id,
       a.issue_id, i.state AS issue_state, a.opened_at, a.updated_at, a.resolved_at, a.cleared_at,
       a.acknowledged_at, a.acknowledged_by,
       ARRAY(SELECT c.chief_id FROM workflow_alert_chief AS c WHERE c.alert_id = a.id ORDER BY c.chief_id) AS chiefs
"""
ALERT_FROM = """
FROM workflow_alert AS a JOIN station AS s ON s.id = a.station_id
LEFT JOIN workflow_issue AS i ON i.id = a.issue_id
"""
ALERT_SELECT = "SELECT " + ALERT_COLUMNS + ALERT_FROM
STATION_POINT = ", ST_AsGeoJSON(s.geom, 7)::json AS station_geometry"
"""The station's location, added to a list for the map (``located``)."""


def require_reader(workflow: Workflow, principal: Principal) -> None:
    """Alerts are read by those who read issues (``workflow.yaml`` readers)."""
    policy.require_role(principal, workflow.readers, "reading alerts")


def _labelled(rules: AlertRules, row: dict[str, Any]) -> dict[str, Any]:
    rule = rules.rules.get(row["rule"])
    row["rule_label"] = {"zh": rule.zh, "en": rule.en} if rule else None
    row["measure_name"] = rule.condition.measure if rule else None
    return row


def default_chief(principal: Principal, chief_id: int | None, everyone: bool) -> int | None:
    """The chief whose alerts a list shows: the one asked for; for a chief who asked for none
    (and not for everyone's), their own."""
    if chief_id is None and not everyone and principal.role == Role.CHIEF:
        return principal.chief_id
    return chief_id


async def list_alerts(
    conn: AsyncConnection,
    rules: AlertRules,
    *,
    state: State | None = None,
    station_id: int | None = None,
    river_id: int | None = None,
    bay_id: int | None = None,
    chief_id: int | None = None,
    severity: str | None = None,
    rule: str | None = None,
    since: dt.datetime | None = None,
    bbox: BBox | None = None,
    located: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered (every filter a bound parameter); ``since``: those open at
    some moment since then (still open, or resolved after it); ``bbox``: at stations in the box;
    ``located``: with the station's point (``station_geometry``, GeoJSON)."""
    if since is not None and since.tzinfo is None:
        raise InvalidRequest("since needs a time zone, e.g. 2026-12-01T00:00:00+08:00")
    if rule is not None and rule not in rules.rules:
        raise InvalidRequest(f"rule {rule!r} is not one of {', '.join(rules.rules)} (GET /api/alert-rules)")
    conditions = [
        ("a.state = %(state)s", state),
        ("a.station_id = %(station_id)s", station_id),
        ("a.river_id = %(river_id)s", river_id),
        ("a.bay_id = %(bay_id)s", bay_id),
        ("a.severity = %(severity)s", severity),
        ("a.rule = %(rule)s", rule),
        ("(a.resolved_at IS NULL OR a.resolved_at >= %(since)s)", since),
        (
            "EXISTS (SELECT 1 FROM workflow_alert_chief AS c WHERE c.alert_id = a.id AND c.chief_id = %(chief_id)s)",
            chief_id,
        ),
    ]
    where = [text for text, value in conditions if value is not None]
    if bbox is not None:
        where.append(f"ST_Intersects(s.geom, {ENVELOPE})")
    query = "SELECT " + ALERT_COLUMNS + (STATION_POINT if located else "") + ALERT_FROM
    query += (" WHERE " + " AND ".join(where)) if where else ""
    query += " ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s OFFSET %(offset)s"
    params = {
        "state": state,
        "station_id": station_id,
        "river_id": river_id,
        "bay_id": bay_id,
        "severity": severity,
        "rule": rule,
        "since": since,
        "chief_id": chief_id,
        "limit": limit,
        "offset": offset,
        **view_parameters(bbox),
    }
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return [_labelled(rules, row) for row in await cursor.fetchall()]


async def _fetch(conn: AsyncConnection, rules: AlertRules, alert_id: int, *, lock: bool = False) -> dict[str, Any]:
    cursor = conn.cursor(row_factory=dict_row)
    query = ALERT_SELECT + " WHERE a.id = %s" + (" FOR UPDATE OF a" if lock else "")
    await cursor.execute(query, [alert_id])
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist; GET /api/alerts lists them")
    return _labelled(rules, row)


async def alert_detail(conn: AsyncConnection, rules: AlertRules, alert_id: int) -> dict[str, Any]:
    """One alert with its routing as it was when raised (chiefs, upstream segments and their
    chiefs, candidate sources nearest first), its events and its issue."""
    alert = await _fetch(conn, rules, alert_id)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute("SELECT routing FROM workflow_alert WHERE id = %s", [alert_id])
    routing = (await cursor.fetchone() or {}).get("routing") or {}
    await cursor.execute(
        "SELECT action, severity, observed_at, actor, note, created_at FROM workflow_alert_event"
        " WHERE alert_id = %s ORDER BY id",
        [alert_id],
    )
    events = await cursor.fetchall()
    issue = None
    if alert["issue_id"] is not None:
        await cursor.execute(
            "SELECT id, title, state, severity, category, created_at FROM workflow_issue WHERE id = %s",
            [alert["issue_id"]],
        )
        issue = await cursor.fetchone()
    return {**alert, "routing": routing, "events": events, "issue": issue}


async def acknowledge(
    conn: AsyncConnection,
    rules: AlertRules,
    workflow: Workflow,
    principal: Principal,
    context: AuditContext,
    alert_id: int,
    note: str,
) -> dict[str, Any]:
    """Record that a responsible chief (or an admin) has seen the alert; once only."""
    policy.require_role(principal, rules.acknowledge, "acknowledging an alert")
    async with conn.transaction():
        alert = await _fetch(conn, rules, alert_id, lock=True)
        if principal.role == Role.CHIEF and principal.chief_id not in alert["chiefs"]:
            raise Forbidden(
                f"alert {alert_id} is not routed to you (chief {principal.chief_id}); its chiefs are "
                f"{', '.join(map(str, alert['chiefs'])) or 'none'}"
            )
        if alert["acknowledged_at"] is not None:
            raise Conflict(
                f"alert {alert_id} was acknowledged by {alert['acknowledged_by']} at "
                f"{alert['acknowledged_at'].isoformat()}"
            )
        await conn.execute(
            "UPDATE workflow_alert SET acknowledged_at = now(), acknowledged_by = %s, acknowledged_account_id = %s,"
            " updated_at = now() WHERE id = %s",
            [principal.actor, principal.account_id, alert_id],
        )
        await record_event(
            conn, alert_id, "acknowledged", alert["severity"], None, note, principal.actor, principal.account_id
        )
        await audit.record(conn, context, "alert.acknowledge", target=f"alert:{alert_id}")
        await notify(conn, workflow, "acknowledged", alert_id)
    return await alert_detail(conn, rules, alert_id)
