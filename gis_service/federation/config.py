"""Remote layer declarations: YAML files validated strictly, like the layer catalog.

One file per remote layer (``<id>.yaml`` in ``ECOMAP_FEDERATION__DIR``) names a partner's
OGC API Features collection (its ``/items`` URL), the properties kept (typed and titled as
catalog properties), the geometry type, how often to refresh and, optionally, the name of the
environment variable holding the partner's API key (the secret itself is never in a file or
a log). Each declaration becomes a read-only catalog :class:`~layers.catalog.Layer` of group
``partners`` (``as_layer``), which the map, TileJSON, tiles and the zone check use.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from layers.catalog import (
    Access,
    Catalog,
    CatalogError,
    GeometryType,
    Identifier,
    Layer,
    LayerProperty,
    RemoteOrigin,
    Style,
    Title,
    _read_yaml,
    format_validation_error,
)
from layers.regions import region_names

TABLE = "remote_feature"
"""The one table holding every remote layer's copy (migration 0027)."""
STAFF = Access.model_validate({"class": "internal"})
EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,100}$")]
DEFAULT_STYLES = {
    "Point": Style(kind="circle", color="#7b3294", radius=5, opacity=0.9),
    "MultiPoint": Style(kind="circle", color="#7b3294", radius=5, opacity=0.9),
    "LineString": Style(kind="line", color="#7b3294", width=2, opacity=0.9),
    "MultiLineString": Style(kind="line", color="#7b3294", width=2, opacity=0.9),
    "Polygon": Style(kind="fill", color="#c2a5cf", opacity=0.35, outline_color="#7b3294", dash=[2, 2]),
    "MultiPolygon": Style(kind="fill", color="#c2a5cf", opacity=0.35, outline_color="#7b3294", dash=[2, 2]),
}
"""How remote layers look unless their file says otherwise: purple, dashed outlines (not ours)."""


class FederationError(CatalogError):
    """A remote layer declaration is invalid; the message names the file and the key."""


class RemoteLayer(BaseModel):
    """One partner collection copied here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    title: Title
    description: Title | None = None
    partner: Title = Field(description="Who publishes it, e.g. {zh: 漳州市, en: Zhangzhou}")
    url: str = Field(
        description="The collection's items endpoint, e.g. https://gis.zhangzhou.example/ogc/collections/redline/items"
    )
    api_key_env: EnvName | None = Field(
        default=None, description="Environment variable holding the partner key sent as X-API-Key (never the key)"
    )
    refresh_s: float = Field(default=3600, gt=0, le=30 * 86400, description="Seconds between refreshes")
    geometry_type: GeometryType
    properties: list[LayerProperty] = Field(min_length=1, description="The properties kept (others are dropped)")
    name_property: Identifier = "name"
    region: str | None = Field(
        default=None, description="Region the features must lie in (layers/regions.yaml; default: the service's)"
    )
    max_features: int | None = Field(default=None, ge=1, description="Features at most (default: the setting)")
    order: int = 900
    minzoom: int = Field(default=0, ge=0, le=24)
    maxzoom: int = Field(default=16, ge=0, le=24)
    style: Style | None = None
    access: Access = Field(
        default=STAFF,
        description="Who may read the copy here (default: signed-in staff, `internal`: a partner shares "
        "with the city, not necessarily with the public; say `{class: public}` when it does)",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be an http(s) URL of a collection's items endpoint (got {url!r})")
        if not parts.path.rstrip("/").endswith("/items"):
            raise ValueError(f"url must end in /items (the OGC API Features items endpoint), got {parts.path!r}")
        return url

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str | None) -> str | None:
        if region is not None and region not in region_names():
            raise ValueError(f"unknown region {region!r}; one of {', '.join(region_names())}")
        return region

    @model_validator(mode="after")
    def _as_layer_is_valid(self) -> RemoteLayer:
        as_layer(self)  # the catalog's own checks (name property, style references, zooms)
        return self

    def digest(self) -> str:
        """A digest of what the copy depends on (source, kept properties, geometry type, region): a copy
        made by another declaration is fetched whole again (its ETag says nothing of this one)."""
        shape = self.model_dump(mode="json", include={"url", "properties", "geometry_type", "region", "name_property"})
        return hashlib.blake2b(json.dumps(shape, sort_keys=True).encode(), digest_size=16).hexdigest()

    def api_key(self) -> str | None:
        """The partner key from the environment (None when none is declared)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise FederationError(
                f"remote layer {self.id}: environment variable {self.api_key_env} (its partner key) is not set"
            )
        return key


def as_layer(remote: RemoteLayer) -> Layer:
    """The read-only catalog layer a remote layer is shown as."""
    return Layer(
        id=remote.id,
        title=remote.title,
        description=remote.description,
        group="partners",
        order=remote.order,
        geometry_type=remote.geometry_type,
        table=TABLE,
        name_property=remote.name_property,
        properties=remote.properties,
        minzoom=remote.minzoom,
        maxzoom=remote.maxzoom,
        style=remote.style or DEFAULT_STYLES[remote.geometry_type],
        access=remote.access,
        remote=RemoteOrigin(partner=remote.partner, url=remote.url),
    )


def load_remote_layers(directory: Path | None) -> list[RemoteLayer]:
    """Every ``*.yaml`` declaration of a directory (none when ``directory`` is None)."""
    if directory is None:
        return []
    if not directory.is_dir():
        raise FederationError(f"{directory}: the remote layer directory (ECOMAP_FEDERATION__DIR) does not exist")
    remotes = []
    for path in sorted(directory.glob("*.yaml")):
        raw = _read_yaml(path)
        try:
            remote = RemoteLayer.model_validate(raw)
        except ValidationError as exc:
            raise FederationError(format_validation_error(path, exc)) from None
        except CatalogError as exc:
            raise FederationError(f"{path}: {exc}") from None
        if remote.id != path.stem:
            raise FederationError(f"{path}: id {remote.id!r} must match the file name {path.stem!r}")
        remotes.append(remote)
    return remotes


class RemoteLayers:
    """The remote layers of a service, and the catalog with them (what the map shows)."""

    def __init__(self, remotes: list[RemoteLayer]) -> None:
        self.remotes = {remote.id: remote for remote in remotes}
        self.layers = {remote.id: as_layer(remote) for remote in remotes}
        self._base: Catalog | None = None
        self._with: Catalog | None = None

    def __bool__(self) -> bool:
        return bool(self.remotes)

    def get(self, layer_id: str) -> RemoteLayer:
        """A remote layer by id; KeyError naming the valid ones."""
        try:
            return self.remotes[layer_id]
        except KeyError:
            raise KeyError(
                f"unknown remote layer {layer_id!r}; remote layers: {', '.join(self.remotes) or '(none declared)'}"
            ) from None

    def check_ids(self, catalog: Catalog) -> None:
        """Refuse remote layer ids that are catalog layer or raster ids."""
        clash = sorted(set(self.remotes) & {*catalog.ids, *catalog.raster_ids})
        if clash:
            raise FederationError(f"remote layer ids already used by catalog layers: {', '.join(clash)}")

    def map_catalog(self, catalog: Catalog) -> Catalog:
        """The catalog with the remote layers added (the same object while ``catalog`` is)."""
        if not self.remotes:
            return catalog
        if catalog is not self._base:
            self.check_ids(catalog)
            self._with = Catalog(layers=[*catalog.layers, *self.layers.values()], rasters=catalog.rasters)
            self._base = catalog
        assert self._with is not None  # noqa: S101 - set just above
        return self._with
