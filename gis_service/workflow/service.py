"""Issues and their workflow: report (with the river, bay, watershed, district and chiefs found
spatially), list, read, move through the workflow and comment. Functions take a connection;
every write is one transaction with its audit entry."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from shapely import to_wkb
from shapely.geometry.base import BaseGeometry

from gis_service.access import audit, policy
from gis_service.access.audit import AuditContext
from gis_service.access.principal import Principal, Role
from gis_service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gis_service.services.site import check_site, geometry_from_geojson
from gis_service.workflow.machine import Workflow
from gis_service.workflow.map_layers import ENVELOPE, BBox, view_parameters
from gis_service.workflow.photos import list_photos
from gis_service.workflow.schemas import NewComment, NewIssue, TransitionRequest
from layers.catalog import Catalog
from layers.regions import Region

RIVER_SEARCH_M = 500
"""A point reported by a river is assigned the nearest segment within this distance."""
OPEN_STATES = ("reported", "assigned", "handled", "verified")
MAX_PAGE = 500

ISSUE_SELECT = """
SELECT i.id, i.title, i.description, i.category, i.severity, i.source, i.hotline_ref, i.state,
       ST_AsGeoJSON(i.geom, 7)::json AS geometry, i.river_id, i.bay_id, i.watershed_id, i.adcode,
       i.department, i.deadline, i.reporter, i.created_at, i.updated_at, i.closed_at,
       (i.deadline IS NOT NULL AND i.deadline < now() AND i.state IN ('reported', 'assigned')) AS overdue,
       ARRAY(SELECT c.chief_id FROM workflow_issue_chief AS c WHERE c.issue_id = i.id ORDER BY c.chief_id) AS chiefs
FROM workflow_issue AS i
"""


def check_codes(workflow: Workflow, issue: NewIssue) -> None:
    for field, value, known in (
        ("category", issue.category, workflow.categories),
        ("severity", issue.severity, workflow.severities),
        ("source", issue.source, workflow.sources),
    ):
        if value not in known:
            raise InvalidRequest(f"{field} {value!r} is not one of {', '.join(known)} (GET /api/workflow)")


def _located_sql(catalog: Catalog) -> sql.Composed:
    """River segment (nearest within RIVER_SEARCH_M), bay, finest watershed and district of a geometry."""
    river, bay, shed, district = (catalog.get(i) for i in ("river", "bay", "watershed", "district"))

    return sql.SQL(
        """
        SELECT
          (SELECT r.{r_id} FROM {r_table} AS r
            WHERE ST_DWithin(r.{r_geom}::geography, g.geom::geography, {radius})
            ORDER BY r.{r_geom} <-> g.geom LIMIT 1) AS river_id,
          (SELECT b.{b_id} FROM {b_table} AS b WHERE ST_Intersects(b.{b_geom}, g.geom)
            ORDER BY ST_Area(b.{b_geom}) LIMIT 1) AS bay_id,
          (SELECT w.{w_id} FROM {w_table} AS w WHERE ST_Intersects(w.{w_geom}, g.geom)
            ORDER BY ST_Area(w.{w_geom}) LIMIT 1) AS watershed_id,
          (SELECT d.adcode FROM {d_table} AS d WHERE ST_Intersects(d.{d_geom}, g.geom)
            ORDER BY ST_Area(ST_Intersection(d.{d_geom}, g.geom)) DESC LIMIT 1) AS adcode,
          ARRAY(SELECT w.{w_id} FROM {w_table} AS w WHERE ST_Intersects(w.{w_geom}, g.geom)) AS watersheds
        FROM (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS geom) AS g
        """
    ).format(
        r_id=sql.Identifier(river.id_column),
        r_table=sql.Identifier(river.table),
        r_geom=sql.Identifier(river.geometry_column),
        radius=sql.Literal(RIVER_SEARCH_M),
        b_id=sql.Identifier(bay.id_column),
        b_table=sql.Identifier(bay.table),
        b_geom=sql.Identifier(bay.geometry_column),
        w_id=sql.Identifier(shed.id_column),
        w_table=sql.Identifier(shed.table),
        w_geom=sql.Identifier(shed.geometry_column),
        d_table=sql.Identifier(district.table),
        d_geom=sql.Identifier(district.geometry_column),
    )


CHIEFS_OF_PLACE = (
    "(a.layer = 'river' AND a.feature_id = %(river)s) OR (a.layer = 'bay' AND a.feature_id = %(bay)s)"
    " OR (a.layer = 'watershed' AND a.feature_id = ANY(%(watersheds)s))"
)
"""The chief assignments (``chief_assignment AS a``) that make a chief responsible for a place:
its river segment, its bay or any watershed it lies in (parameters: ``place_parameters``)."""


def place_parameters(place: dict[str, Any]) -> dict[str, Any]:
    return {"river": place["river_id"], "bay": place["bay_id"], "watersheds": place["watersheds"]}


async def locate(conn: AsyncConnection, catalog: Catalog, geometry: BaseGeometry) -> dict[str, Any]:
    """Where a geometry lies: ``river_id`` (the nearest segment within RIVER_SEARCH_M), ``bay_id``,
    ``watershed_id`` (the finest), ``adcode`` and ``watersheds`` (every one it lies in)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_located_sql(catalog), {"wkb": to_wkb(geometry)})
    place = await cursor.fetchone()
    assert place is not None  # noqa: S101 - a SELECT without FROM filter returns one row
    return place


async def _fetch(conn: AsyncConnection, issue_id: int) -> dict[str, Any]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(ISSUE_SELECT + " WHERE i.id = %s", [issue_id])
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"issue {issue_id} does not exist; GET /api/issues lists them")
    return row


async def report_issue(
    conn: AsyncConnection,
    catalog: Catalog,
    region: Region,
    workflow: Workflow,
    principal: Principal,
    context: AuditContext,
    issue: NewIssue,
) -> tuple[dict[str, Any], bool]:
    """Record a new issue in the initial state; returns it and whether it is new (a re-sent
    report with the same idempotency key returns the first one)."""
    check_codes(workflow, issue)
    source = workflow.sources[issue.source]
    policy.require_role(principal, source.roles, f"reporting an issue from source {issue.source!r}")
    geometry = check_location(issue.geometry, region)
    issue_id, created = await record_issue(
        conn, catalog, workflow, context, issue, geometry, principal.actor, principal.account_id
    )
    return await _fetch(conn, issue_id), created


async def record_issue(
    conn: AsyncConnection,
    catalog: Catalog,
    workflow: Workflow,
    context: AuditContext,
    issue: NewIssue,
    geometry: BaseGeometry,
    reporter: str,
    account_id: int | None,
    *,
    contact: str | None = None,
    code_hash: str | None = None,
    place: dict[str, Any] | None = None,
) -> tuple[int, bool]:
    """Store a checked report with its place and chiefs in one transaction; returns its id and
    whether it is new (a report already stored under the same idempotency key is returned).
    ``place`` (as ``locate`` finds it) is found from the geometry unless given."""
    select_existing = "SELECT id FROM workflow_issue WHERE reporter = %s AND idempotency_key = %s"
    if issue.idempotency_key is not None:
        cursor = await conn.execute(select_existing, [reporter, issue.idempotency_key])
        if (row := await cursor.fetchone()) is not None:
            return int(row[0]), False
    async with conn.transaction():
        place = place or await locate(conn, catalog, geometry)
        cursor = await conn.execute(
            "INSERT INTO workflow_issue (title, description, category, severity, source, hotline_ref, state, geom,"
            " river_id, bay_id, watershed_id, adcode, reporter, reporter_account_id, reporter_contact,"
            " public_code_hash, idempotency_key)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, ST_GeomFromWKB(%s, 4326), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (reporter, idempotency_key) DO NOTHING RETURNING id",
            [
                issue.title,
                issue.description,
                issue.category,
                issue.severity,
                issue.source,
                issue.hotline_ref,
                workflow.initial,
                to_wkb(geometry),
                place["river_id"],
                place["bay_id"],
                place["watershed_id"],
                place["adcode"],
                reporter,
                account_id,
                contact,
                code_hash,
                issue.idempotency_key,
            ],
        )
        inserted = await cursor.fetchone()
        if inserted is None:  # the same report arrived twice at once: the other one won
            existing = await conn.execute(select_existing, [reporter, issue.idempotency_key])
            row = await existing.fetchone()
            assert row is not None  # noqa: S101
            return int(row[0]), False
        issue_id = int(inserted[0])
        await conn.execute(
            "INSERT INTO workflow_issue_chief (issue_id, chief_id)"
            f" SELECT DISTINCT %(issue)s, a.chief_id FROM chief_assignment AS a WHERE {CHIEFS_OF_PLACE}",
            {"issue": issue_id, **place_parameters(place)},
        )
        await conn.execute(
            "INSERT INTO workflow_transition (issue_id, from_state, to_state, actor, account_id, note, request_id)"
            " VALUES (%s, NULL, %s, %s, %s, %s, %s)",
            [issue_id, workflow.initial, reporter, account_id, issue.description, context.request_id],
        )
        await audit.record(
            conn, context, "issue.report", target=f"issue:{issue_id}", detail={"category": issue.category}
        )
    return issue_id, True


def check_location(geometry: dict[str, Any], region: Region) -> BaseGeometry:
    """A point or an area (EPSG:4326) within the region, valid; else a 400 saying what to fix."""
    site = check_site(geometry_from_geojson(geometry), "EPSG:4326", region)
    if site.dimension == 1:
        raise InvalidRequest("the location must be a point or an area (a Polygon), not a line")
    return site.geometry


def require_reader(workflow: Workflow, principal: Principal) -> None:
    policy.require_role(principal, workflow.readers, "reading issues")


async def list_issues(
    conn: AsyncConnection,
    *,
    state: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    chief_id: int | None = None,
    river_id: int | None = None,
    bay_id: int | None = None,
    overdue: bool | None = None,
    open_only: bool = False,
    bbox: BBox | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Issues, newest first, filtered (every filter a bound parameter); ``bbox``: those whose
    point or area meets the box."""
    conditions = [
        ("i.state = %(state)s", state),
        ("i.category = %(category)s", category),
        ("i.severity = %(severity)s", severity),
        ("i.source = %(source)s", source),
        ("i.river_id = %(river_id)s", river_id),
        ("i.bay_id = %(bay_id)s", bay_id),
        (
            "EXISTS (SELECT 1 FROM workflow_issue_chief AS c WHERE c.issue_id = i.id AND c.chief_id = %(chief_id)s)",
            chief_id,
        ),
    ]
    where = [text for text, value in conditions if value is not None]
    if open_only:
        where.append("i.state = ANY(%(open)s)")
    if overdue is not None:
        test = "(i.deadline IS NOT NULL AND i.deadline < now() AND i.state IN ('reported', 'assigned'))"
        where.append(test if overdue else f"NOT {test}")
    if bbox is not None:
        where.append(f"ST_Intersects(i.geom, {ENVELOPE})")
    query = ISSUE_SELECT + (" WHERE " + " AND ".join(where) if where else "")
    query += " ORDER BY i.created_at DESC, i.id DESC LIMIT %(limit)s OFFSET %(offset)s"
    params = {
        "state": state,
        "category": category,
        "severity": severity,
        "source": source,
        "river_id": river_id,
        "bay_id": bay_id,
        "chief_id": chief_id,
        "open": list(OPEN_STATES),
        "limit": limit,
        "offset": offset,
        **view_parameters(bbox),
    }
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, params)
    return await cursor.fetchall()


def next_steps(workflow: Workflow, principal: Principal, issue: dict[str, Any]) -> list[dict[str, Any]]:
    """The transitions the principal may take now (what the UI offers)."""
    steps = []
    for transition in workflow.transitions_from(issue["state"]):
        if principal.role in transition.roles and _in_scope(principal, issue):
            steps.append(
                {
                    "to": transition.to,
                    "label": {"zh": transition.zh, "en": transition.en},
                    "requires": list(transition.requires),
                }
            )
    return steps


def _in_scope(principal: Principal, issue: dict[str, Any]) -> bool:
    """Chiefs act on the issues of their jurisdiction; other roles city-wide."""
    return principal.role != Role.CHIEF or principal.chief_id in issue["chiefs"]


async def issue_detail(conn: AsyncConnection, workflow: Workflow, principal: Principal, issue_id: int) -> dict:
    """One issue with its history, comments and the steps the caller may take."""
    issue = await _fetch(conn, issue_id)
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT from_state, to_state, actor, note, department, deadline, created_at"
        " FROM workflow_transition WHERE issue_id = %s ORDER BY id",
        [issue_id],
    )
    history = await cursor.fetchall()
    await cursor.execute(
        "SELECT id, actor, body, created_at FROM workflow_comment WHERE issue_id = %s ORDER BY id", [issue_id]
    )
    comments = await cursor.fetchall()
    if principal.role in workflow.contact_readers:
        cursor = await conn.execute("SELECT reporter_contact FROM workflow_issue WHERE id = %s", [issue_id])
        row = await cursor.fetchone()
        issue["contact"] = row[0] if row else None
    return {
        **issue,
        "history": history,
        "comments": comments,
        "photos": await list_photos(conn, issue_id),
        "actions": next_steps(workflow, principal, issue),
    }


async def transition_issue(
    conn: AsyncConnection,
    workflow: Workflow,
    principal: Principal,
    context: AuditContext,
    issue_id: int,
    step: TransitionRequest,
) -> dict[str, Any]:
    """Move an issue to another state, if the workflow allows that step from its current state,
    the caller's role may take it, the issue is in a chief's jurisdiction and the step's
    required fields are given."""
    if step.to not in workflow.states:
        raise InvalidRequest(f"to {step.to!r} is not a state; the states are {', '.join(workflow.states)}")
    async with conn.transaction():
        cursor = await conn.execute("SELECT state FROM workflow_issue WHERE id = %s FOR UPDATE", [issue_id])
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"issue {issue_id} does not exist; GET /api/issues lists them")
        issue = await _fetch(conn, issue_id)
        current = issue["state"]
        transition = workflow.transition(current, step.to)
        if transition is None:
            possible = ", ".join(t.to for t in workflow.transitions_from(current)) or "none (it is final)"
            raise Conflict(f"issue {issue_id} is {current}; it cannot go to {step.to} from there. Allowed: {possible}")
        policy.require_role(principal, transition.roles, f"moving an issue from {current} to {step.to}")
        if not _in_scope(principal, issue):
            raise Forbidden(
                f"issue {issue_id} is outside your jurisdiction (chief {principal.chief_id}); its chiefs are "
                f"{', '.join(map(str, issue['chiefs'])) or 'none'}"
            )
        missing = [field for field in transition.requires if not getattr(step, field)]
        if missing:
            raise InvalidRequest(f"moving to {step.to} needs {', '.join(missing)}")
        if step.deadline is not None and step.deadline.tzinfo is None:
            raise InvalidRequest("deadline needs a time zone, e.g. 2026-12-31T18:00:00+08:00")
        if step.deadline is not None and step.deadline <= dt.datetime.now(dt.UTC):
            raise InvalidRequest("deadline must lie in the future")
        final = step.to in workflow.final
        await conn.execute(
            "UPDATE workflow_issue SET state = %s, updated_at = now(),"
            " department = coalesce(%s, department), deadline = coalesce(%s, deadline),"
            " closed_at = CASE WHEN %s THEN now() ELSE NULL END WHERE id = %s",
            [step.to, step.department, step.deadline, final, issue_id],
        )
        await conn.execute(
            "INSERT INTO workflow_transition"
            " (issue_id, from_state, to_state, actor, account_id, note, department, deadline, request_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                issue_id,
                current,
                step.to,
                principal.actor,
                principal.account_id,
                step.note,
                step.department,
                step.deadline,
                context.request_id,
            ],
        )
        await audit.record(
            conn, context, "issue.transition", target=f"issue:{issue_id}", detail={"from": current, "to": step.to}
        )
    return await issue_detail(conn, workflow, principal, issue_id)


async def add_comment(
    conn: AsyncConnection, principal: Principal, context: AuditContext, issue_id: int, comment: NewComment
) -> dict[str, Any]:
    await _fetch(conn, issue_id)
    async with conn.transaction():
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            "INSERT INTO workflow_comment (issue_id, actor, account_id, body) VALUES (%s, %s, %s, %s)"
            " RETURNING id, actor, body, created_at",
            [issue_id, principal.actor, principal.account_id, comment.body],
        )
        row = await cursor.fetchone()
        await audit.record(conn, context, "issue.comment", target=f"issue:{issue_id}")
    assert row is not None  # noqa: S101
    return row
