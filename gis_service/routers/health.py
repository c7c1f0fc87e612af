"""Liveness and database health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis_service.db import connection
from gis_service.errors import DatabaseUnavailable
from gis_service.services.health import database_status

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Service and database health",
    responses={503: {"description": "The database is unreachable; the service retries by itself"}},
)
async def healthz(request: Request) -> JSONResponse:
    """200 with the PostgreSQL/PostGIS versions when the database answers, 503 otherwise."""
    try:
        async with connection(request.app.state.pool) as conn:
            database = await database_status(conn)
    except DatabaseUnavailable as exc:
        return JSONResponse({"status": "unavailable", "database": {"status": "down", "detail": str(exc)}}, 503)
    return JSONResponse({"status": "ok", "database": database})
