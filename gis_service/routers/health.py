"""Liveness and database health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis_service.db import connection
from gis_service.errors import DatabaseUnavailable
from gis_service.services.health import database_status

router = APIRouter(tags=["health"])

HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "database"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "database": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
        },
        "replicas": {
            "type": "object",
            "description": "Read replicas (ECOMAP_DB__REPLICA_URLS) when set: their names and where reads ran",
        },
    },
}


@router.get(
    "/healthz",
    summary="Service and database health",
    responses={
        200: {"content": {"application/json": {"schema": HEALTH_SCHEMA}}},
        503: {
            "description": "The database is unreachable (the service retries by itself), or its schema is"
            " behind this version (`database.detail` says how to migrate it)",
            "content": {"application/json": {"schema": HEALTH_SCHEMA}},
        },
    },
)
async def healthz(request: Request) -> JSONResponse:
    """200 with the PostgreSQL/PostGIS versions and the applied migration when the database
    answers and is migrated to this version; 503 otherwise."""
    try:
        async with connection(request.app.state.pool) as conn:
            database = await database_status(conn)
    except DatabaseUnavailable as exc:
        return JSONResponse({"status": "unavailable", "database": {"status": "down", "detail": str(exc)}}, 503)
    if database["status"] != "ok":
        return JSONResponse({"status": "unavailable", "database": database}, 503)
    body = {"status": "ok", "database": database}
    router = getattr(request.app.state, "read_router", None)
    if router is not None:
        body["replicas"] = router.describe()
    return JSONResponse(body)
