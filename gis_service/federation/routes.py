"""HTTP routes of the remote layers: their state for data managers, and a refresh on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from psycopg import AsyncConnection

from gis_service.access import policy
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal, Role
from gis_service.errors import NotFound
from gis_service.federation import store
from gis_service.federation.config import RemoteLayer, RemoteLayers
from gis_service.federation.refresh import http_client, refresh_layer
from gis_service.routers.deps import get_connection

router = APIRouter(prefix="/api/federation", tags=["federation"])

MANAGERS = (Role.DATA_MANAGER, Role.ADMIN)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Needs a signed-in data manager or admin"},
    403: {"description": "The caller is not a data manager or admin"},
}
LayerId = Annotated[str, Path(description="A remote layer id", pattern=r"^[a-z][a-z0-9_]{0,62}$")]


def _remotes(request: Request) -> RemoteLayers:
    return request.app.state.remote_layers


def describe_remote(remote: RemoteLayer, state: store.RemoteState) -> dict[str, Any]:
    """A remote layer's declaration (never its key, only the variable's name) and its state."""
    return {
        "id": remote.id,
        "title": remote.title.model_dump(),
        "partner": remote.partner.model_dump(),
        "url": remote.url,
        "api_key_env": remote.api_key_env,
        "refresh_s": remote.refresh_s,
        "geometry_type": remote.geometry_type,
        "properties": [prop.name for prop in remote.properties],
        "region": remote.region,
        "state": {key: value for key, value in state.to_dict().items() if key != "layer"},
    }


@router.get("/layers", summary="Remote layers and the state of their copies", responses=ERRORS)
async def remote_layers(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Every declared remote layer (a partner's OGC API Features collection copied here): its
    partner, items URL, refresh interval and kept properties, and the state of the copy —
    `checked_at` (last asked), `fetched_at` (last confirmed current), `changed_at`, the `etag`,
    `feature_count`, `last_error` (kept until a refresh succeeds) and `errors` (failed refreshes
    in a row). For data managers and admins."""
    policy.require_role(principal, MANAGERS, "listing remote layers")
    known = await store.states(conn)
    remotes = _remotes(request).remotes.values()
    return {"layers": [describe_remote(r, known.get(r.id) or store.RemoteState(r.id)) for r in remotes]}


@router.post(
    "/layers/{layer}/refresh",
    summary="Refresh a remote layer now",
    responses={**ERRORS, 404: {"description": "No such remote layer"}},
)
async def refresh_now(
    layer: LayerId,
    request: Request,
    force: Annotated[bool, Query(description="Fetch the collection whole, without `If-None-Match`")] = False,
    conn: AsyncConnection = Depends(get_connection),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Ask the partner now (with `If-None-Match`), validate and write the copy: `outcome` is
    `updated` (with `inserted`/`deleted` rows), `unchanged` (304 or the same content), `busy`
    (another instance is refreshing it) or `failed` (`error`, and the validation `findings`; the
    previous copy is kept). A failed refresh still answers 200: the refresh ran, the partner failed."""
    policy.require_role(principal, MANAGERS, "refreshing a remote layer")
    try:
        remote = _remotes(request).get(layer)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from None
    settings = request.app.state.settings
    async with http_client(settings.federation) as client:
        result = await refresh_layer(conn, client, remote, settings.federation, settings.region, force=force)
    return result.to_dict()
