"""Client configuration the map needs at start-up (basemap keys, links)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/config", summary="Client configuration for the map")
async def client_config(request: Request) -> dict[str, Any]:
    """Settings the frontend reads at start-up: the Tianditu key (null when not configured,
    which disables that basemap), the service version, and the single sign-on start URL
    (``sso_login``, relative; null when single sign-on is not configured)."""
    settings = request.app.state.settings
    sso = "api/auth/sso/login" if settings.oidc.issuer and settings.oidc.client_id else None
    return {"tianditu_key": settings.tianditu_key, "version": request.app.version, "sso_login": sso}
