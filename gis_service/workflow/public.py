"""Public reports (公众参与): anyone may report pollution at a place, with a photo, and follow
it with the tracking code they get back — and nothing else: the code opens only the state of
their own report; the contact they leave is shown only to the staff who handle it. Reports
enter the workflow in its initial state (上报) with source ``public``. The route is
rate-limited per address (``ECOMAP_LIMITS__PUBLIC_REPORT``)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.access.audit import AuditContext
from gis_service.access.principal import ANONYMOUS
from gis_service.errors import InvalidRequest, NotFound
from gis_service.workflow import photos, service
from gis_service.workflow.machine import Workflow
from gis_service.workflow.schemas import NewIssue
from layers.catalog import Catalog
from layers.regions import Region

REPORTER = "public"
"""How public reports name their reporter (no account; the contact is kept apart)."""
CODE_BYTES = 12


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def report(
    conn: AsyncConnection,
    catalog: Catalog,
    region: Region,
    workflow: Workflow,
    context: AuditContext,
    issue: NewIssue,
    contact: str | None,
    photo: photos.Photo | None,
    photo_dir: Path,
) -> dict[str, Any]:
    """Record a public report; returns its receipt with the tracking code (shown once)."""
    service.check_codes(workflow, issue)
    if issue.source != "public":
        raise InvalidRequest("a public report has source 'public'")
    geometry = service.check_location(issue.geometry, region)
    code = secrets.token_urlsafe(CODE_BYTES)
    issue_id, created = await service.record_issue(
        conn, catalog, workflow, context, issue, geometry, REPORTER, None, contact=contact, code_hash=code_hash(code)
    )
    if not created:
        raise InvalidRequest("this report was sent already (same idempotency_key); follow it with its first code")
    if photo is not None:
        await photos.add_photo(conn, photo_dir, ANONYMOUS, context, issue_id, photo, "")
    return {"id": issue_id, "tracking_code": code, "state": workflow.initial, "label": workflow.label(workflow.initial)}


async def status(conn: AsyncConnection, workflow: Workflow, code: str) -> dict[str, Any]:
    """What the holder of a tracking code may know: their report's state and its dates."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, title, category, state, created_at, updated_at, closed_at FROM workflow_issue"
        " WHERE public_code_hash = %s",
        [code_hash(code)],
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound("no report has this tracking code; check it (it is case-sensitive)")
    return {**row, "label": workflow.label(row["state"])}
