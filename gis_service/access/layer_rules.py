"""Layer and property rules of the policy: which layers a principal reads and which of their
properties it sees, from the catalog's ``access`` keys (rules are data, see ``layers/catalog``).

A layer's ``access: {class, roles}`` says who reads it (``policy.LAYER_READERS`` gives the
readers of each class, ``roles`` narrows or names them); a property's ``access`` class says
who sees it (others get the layer without it, as if it did not exist). Partner keys read the
layers named on the key and see their public properties only.

Every route asks ``require_layers`` (401 for anonymous callers, 403 naming the layers for
signed-in ones) and works on ``view(principal, layer)``: the layer as the caller may see it.
``tile_access`` gives tiles the same decision memoized per kind of caller: the layers refused,
the properties hidden (the tile cache's access variant: callers of one class share tiles,
the user is not part of the key) and whether the reply is ``Cache-Control: private``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from psycopg import AsyncConnection

from gis_service.access import audit
from gis_service.access.audit import AuditContext
from gis_service.access.policy import LAYER_READERS
from gis_service.access.principal import Principal, Role
from gis_service.access.state import client_address, request_id
from gis_service.errors import Forbidden, NotFound, Unauthorized
from layers.catalog import Access, Catalog, Layer, RasterLayer


def readers(access: Access) -> frozenset[Role] | None:
    """The roles reading a layer with these rules (None: everyone, anonymous included)."""
    if access.roles is not None:
        return frozenset(Role(role) for role in access.roles)
    return LAYER_READERS[access.access_class]


def can_read(principal: Principal, entry: Layer | RasterLayer) -> bool:
    """Whether the principal may read a vector or raster layer."""
    allowed = readers(entry.access)
    if allowed is None:
        return True
    if principal.role == Role.PARTNER:
        return entry.id in principal.layers
    return principal.role in allowed


def sees_class(principal: Principal, access_class: str) -> bool:
    """Whether the principal sees properties of an access class (partners: public ones only)."""
    allowed = LAYER_READERS[access_class]
    return allowed is None or (principal.role is not None and principal.role in allowed)


def hidden_properties(principal: Principal, layer: Layer) -> frozenset[str]:
    """The properties of a layer the principal does not see."""
    return frozenset(p.name for p in layer.properties if not sees_class(principal, p.access))


def _refuse(principal: Principal, what: str, names: Sequence[str]) -> None:
    listed = ", ".join(map(repr, names))
    if principal.is_anonymous:
        raise Unauthorized(f"{what} {listed} needs you to sign in (POST /api/auth/token, or an X-API-Key)")
    raise Forbidden(f"{what} {listed} may not be read by {principal.actor} (role {principal.role})")


def require_layers(principal: Principal, entries: Iterable[Layer | RasterLayer]) -> None:
    """Raise Unauthorized (anonymous) or Forbidden (signed in), naming every layer the principal
    may not read; return when it may read them all."""
    refused = [entry.id for entry in entries if not can_read(principal, entry)]
    if refused:
        _refuse(principal, "layer" if len(refused) == 1 else "layers", refused)


def require_properties(principal: Principal, layer: Layer, names: Iterable[str]) -> None:
    """Refuse properties the caller asked for by name but may not see (401/403 naming them)."""
    hidden = hidden_properties(principal, layer)
    refused = [name for name in names if name in hidden]
    if refused:
        _refuse(principal, f"property of {layer.id}" if len(refused) == 1 else f"properties of {layer.id}", refused)


_VIEWS: dict[tuple[int, frozenset[str]], tuple[Layer, Layer]] = {}


def _without(layer: Layer, hidden: frozenset[str]) -> Layer:
    key = (id(layer), hidden)
    found = _VIEWS.get(key)
    if found is None or found[0] is not layer:
        data = layer.model_dump(by_alias=True)
        data["properties"] = [p for p in data["properties"] if p["name"] not in hidden]
        found = (layer, Layer.model_validate(data))
        if len(_VIEWS) > 512:
            _VIEWS.clear()
        _VIEWS[key] = found
    return found[1]


def view(principal: Principal, layer: Layer) -> Layer:
    """The layer as the principal sees it: its hidden properties left out (the same object
    when nothing is hidden). Callers check ``require_layers`` first."""
    hidden = hidden_properties(principal, layer)
    return _without(layer, hidden) if hidden else layer


def readable_layers(principal: Principal, catalog: Catalog) -> list[Layer]:
    """The vector layers the principal may read, as it sees them, in catalog order."""
    return [view(principal, layer) for layer in catalog.layers if can_read(principal, layer)]


def readable_rasters(principal: Principal, catalog: Catalog) -> list[RasterLayer]:
    return [raster for raster in catalog.rasters if can_read(principal, raster)]


def hidden_map(principal: Principal, layers: Iterable[Layer]) -> dict[str, frozenset[str]]:
    """The hidden properties of each of these layers that hides any (for the tile engine)."""
    return {layer.id: hidden for layer in layers if (hidden := hidden_properties(principal, layer))}


def is_private(principal: Principal, layers: Iterable[Layer]) -> bool:
    """Whether a reply about these layers holds anything not public (a non-public layer, or a
    non-public property the caller sees): then it is ``Cache-Control: private``."""
    for layer in layers:
        if not layer.access.is_public:
            return True
        if any(p.access != "public" and sees_class(principal, p.access) for p in layer.properties):
            return True
    return False


def depends_on_caller(layers: Iterable[Layer]) -> bool:
    """Whether replies about these layers differ between callers (non-public layer or property)."""
    return any(not layer.access.is_public or any(p.access != "public" for p in layer.properties) for layer in layers)


def readable_layer(principal: Principal, catalog: Catalog, layer_id: str) -> Layer:
    """The layer of an id as the caller sees it: 404 naming the valid layers when unknown,
    401/403 when the caller may not read it."""
    try:
        layer = catalog.get(layer_id)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from None
    require_layers(principal, [layer])
    return view(principal, layer)


def zonal_rasters(catalog: Catalog) -> list[RasterLayer]:
    """The rasters zonal statistics read (first of each role), which their caller must be able to read."""
    return [r for role in ("land_cover", "elevation", "slope") if (r := catalog.raster_for_role(role)) is not None]


@dataclass(frozen=True, slots=True)
class TileAccess:
    """The policy's answer for one kind of caller and a tile's layers, memoized for the hot path."""

    refused: tuple[str, ...]
    """Layers the caller may not read (a tile of them is 401/403)."""
    hidden: dict[str, frozenset[str]]
    """Properties left out, per layer (the tile cache's access variant)."""
    private: bool
    """Whether the tile holds non-public content (``Cache-Control: private``)."""
    per_caller: bool
    """Whether the tile differs between callers (``Vary`` on the credentials)."""


_TILE_ACCESS: dict[tuple, tuple[tuple[Layer, ...], TileAccess]] = {}


def tile_access(principal: Principal, layers: Sequence[Layer]) -> TileAccess:
    """The tile decision for the principal's kind (role and partner layers), not the person:
    computed once per catalog layers and kind (a dictionary look-up on the tile hot path)."""
    key = (tuple(map(id, layers)), principal.role, principal.layers)
    found = _TILE_ACCESS.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], layers, strict=True)):
        return found[1]
    decision = TileAccess(
        refused=tuple(layer.id for layer in layers if not can_read(principal, layer)),
        hidden=hidden_map(principal, layers),
        private=is_private(principal, layers),
        per_caller=depends_on_caller(layers),
    )
    if len(_TILE_ACCESS) > 4096:
        _TILE_ACCESS.clear()
    _TILE_ACCESS[key] = (tuple(layers), decision)  # holding the layers keeps their ids from being reused
    return decision


async def audit_sensitive_read(
    conn: AsyncConnection, request: Request, principal: Principal, layer: Layer, action: str, detail: dict[str, Any]
) -> None:
    """Record in the audit log a read of non-public content (e.g. an export of an internal layer,
    or of a layer with internal properties the caller sees); public reads are not recorded."""
    if is_private(principal, [layer]):
        context = AuditContext.of(principal, client_address(request), request_id(request))
        await audit.record(conn, context, action, target=layer.id, detail=detail)
