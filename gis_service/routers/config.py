"""Client configuration the map needs at start-up (basemaps and their keys, links)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gis_service.settings import BasemapSettings

router = APIRouter(prefix="/api", tags=["layers"])


def vector_basemap(basemap: BasemapSettings) -> dict[str, Any] | None:
    """Where the browser reads the deployment's vector basemap (a PMTiles archive) and how to
    draw it; None when the deployment has none."""
    if basemap.pmtiles_archive:
        url = f"archives/{basemap.pmtiles_archive}.pmtiles"  # relative: served by this app
    elif basemap.pmtiles_url:
        url = basemap.pmtiles_url
    else:
        return None
    return {"url": url, "flavor": basemap.flavor, "attribution": basemap.attribution}


@router.get("/config", summary="Client configuration for the map")
async def client_config(request: Request) -> dict[str, Any]:
    """Settings the frontend reads at start-up: the Tianditu key (null when not configured,
    which disables that basemap), the deployment's vector basemap (``basemap.vector``: the URL of
    its PMTiles archive, relative when the app serves it, its Protomaps flavor and attribution;
    null when there is none), the basemap to open with (``basemap.default``), the service
    version, and the single sign-on start URL (``sso_login``, relative; null when single sign-on
    is not configured)."""
    settings = request.app.state.settings
    sso = "api/auth/sso/login" if settings.oidc.issuer and settings.oidc.client_id else None
    return {
        "tianditu_key": settings.tianditu_key,
        "basemap": {"default": settings.basemap.default, "vector": vector_basemap(settings.basemap)},
        "version": request.app.version,
        "sso_login": sso,
    }
