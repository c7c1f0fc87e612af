"""Client configuration the map needs at start-up (basemap keys, links)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/config", summary="Client configuration for the map")
async def client_config(request: Request) -> dict[str, Any]:
    """Settings the frontend reads at start-up: the Tianditu key (null when not configured,
    which disables that basemap) and the service version."""
    settings = request.app.state.settings
    return {"tianditu_key": settings.tianditu_key, "version": request.app.version}
