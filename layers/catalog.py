"""The layer catalog: declarative YAML files validated strictly into typed models.

Every part of the product (API, tiles, frontend, import/export) reads layers from
here and nowhere else. SQL identifiers (tables, columns) are only ever taken from a
validated catalog, which restricts them to plain lower-case names.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CATALOG_DIR = Path(__file__).parent / "catalog"

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
PropertyType = Literal["string", "integer", "number", "boolean", "date"]


GROUPS: dict[str, dict[str, str]] = {
    "redline": {"zh": "生态保护红线", "en": "Ecological red lines"},
    "protected": {"zh": "自然保护地", "en": "Protected areas"},
    "water": {"zh": "水源与流域", "en": "Water sources and watersheds"},
    "rivers_bays": {"zh": "河湖海湾", "en": "Rivers and bays"},
    "monitoring": {"zh": "监测站点", "en": "Monitoring stations"},
    "admin": {"zh": "行政区划", "en": "Administrative divisions"},
}
"""Layer groups of the map's layer panel, in display order."""


class CatalogError(ValueError):
    """The catalog on disk is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    """A bilingual label: Chinese first, English for the English UI and APIs."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class LayerProperty(_Strict):
    """An attribute exposed through the API and in tiles."""

    name: Identifier
    type: PropertyType = "string"
    title: Title
    description: str | None = None
    values: list[str] | None = Field(default=None, description="Allowed values for enumerations.")
    required: bool = False
    tile_minzoom: int | None = Field(
        default=None,
        ge=0,
        le=24,
        description="Include in vector tiles from this zoom on (default: at every zoom). Keeps low-zoom tiles "
        "small; clients fetch full attributes by feature id.",
    )


class Categories(_Strict):
    """Distinct colours by the value of one property (e.g. function type, zone)."""

    property: Identifier
    colors: dict[str, HexColor] = Field(min_length=1)


class LabelStyle(_Strict):
    property: Identifier
    minzoom: int = Field(default=11, ge=0, le=24)
    color: HexColor = "#333333"
    size: int = Field(default=12, ge=6, le=32)


class Style(_Strict):
    """Default cartography of a layer, turned into MapLibre style layers by the tiles package."""

    kind: Literal["fill", "line", "circle"]
    color: HexColor
    opacity: float = Field(default=0.5, ge=0, le=1)
    outline_color: HexColor | None = None
    width: float = Field(default=1.0, ge=0, le=20)
    dash: list[float] | None = None
    radius: float = Field(default=5.0, ge=1, le=30)
    categories: Categories | None = None
    label: LabelStyle | None = None


class TileOptions(_Strict):
    """Vector-tile options: MVT extent and buffer (in tile units)."""

    extent: int = Field(default=4096, ge=256, le=16384)
    buffer: int = Field(default=64, ge=0, le=1024)


class Layer(_Strict):
    """One vector layer: where its data lives, what it exposes and how it looks."""

    id: Identifier
    title: Title
    description: Title | None = None
    group: Literal["redline", "protected", "water", "rivers_bays", "monitoring", "admin"]
    order: int = Field(default=100, description="Drawing order: lower values are drawn first.")
    geometry_type: GeometryType
    table: Identifier
    id_column: Identifier = "id"
    geometry_column: Identifier = "geom"
    name_property: Identifier = "name"
    properties: list[LayerProperty] = Field(min_length=1)
    minzoom: int = Field(default=0, ge=0, le=24)
    maxzoom: int = Field(default=16, ge=0, le=24)
    tiles: TileOptions = TileOptions()
    coverage: bool = Field(
        default=False,
        description="Polygons that tile the plane edge to edge (simplified along shared edges).",
    )
    coverage_by: Identifier | None = Field(
        default=None,
        description="Property whose values split the layer into separate coverages (e.g. watershed level).",
    )
    style: Style

    @model_validator(mode="after")
    def _check_consistency(self) -> Layer:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"minzoom {self.minzoom} is greater than maxzoom {self.maxzoom}")
        names = [p.name for p in self.properties]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate properties: {', '.join(duplicates)}")
        reserved = {self.id_column, self.geometry_column}
        if reserved & set(names):
            raise ValueError(f"properties may not reuse the id or geometry column: {sorted(reserved & set(names))}")
        if self.name_property not in names:
            raise ValueError(f"name_property {self.name_property!r} is not among the properties")
        if self.coverage_by and not self.coverage:
            raise ValueError("coverage_by needs coverage: true")
        referenced = {self.style.categories.property} if self.style.categories else set()
        if self.coverage_by:
            referenced.add(self.coverage_by)
        if self.style.label:
            referenced.add(self.style.label.property)
        unknown = referenced - set(names)
        if unknown:
            raise ValueError(f"style or coverage_by refers to unknown properties: {sorted(unknown)}")
        return self

    @cached_property
    def property_names(self) -> list[str]:
        return [p.name for p in self.properties]

    def get_property(self, name: str) -> LayerProperty | None:
        return next((p for p in self.properties if p.name == name), None)

    @property
    def is_polygon(self) -> bool:
        return self.geometry_type in ("Polygon", "MultiPolygon")


class Catalog(_Strict):
    """All layers, in drawing order."""

    layers: list[Layer]

    @field_validator("layers")
    @classmethod
    def _unique_ids(cls, layers: list[Layer]) -> list[Layer]:
        ids = [layer.id for layer in layers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate layer ids: {', '.join(duplicates)}")
        return sorted(layers, key=lambda layer: (layer.order, layer.id))

    def __iter__(self) -> Iterator[Layer]:  # type: ignore[override]
        return iter(self.layers)

    def __contains__(self, layer_id: object) -> bool:
        return any(layer.id == layer_id for layer in self.layers)

    @cached_property
    def ids(self) -> list[str]:
        return [layer.id for layer in self.layers]

    def get(self, layer_id: str) -> Layer:
        """Return a layer by id; raises KeyError naming the valid ids."""
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"unknown layer {layer_id!r}; valid layers: {', '.join(self.ids)}")


def _format_error(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key {location!r}")
        else:
            lines.append(f"{path}: {location}: {item['msg']}")
    return "\n".join(lines)


def load_layer_file(path: Path) -> Layer:
    """Parse and validate one layer YAML file; errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping of layer settings at the top level")
    try:
        layer = Layer.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_format_error(path, exc)) from None
    if layer.id != path.stem:
        raise CatalogError(f"{path}: id {layer.id!r} must match the file name {path.stem!r}")
    return layer


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load every ``*.yaml`` layer file of a directory (default: the bundled catalog)."""
    directory = directory or CATALOG_DIR
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{directory}: no layer files (*.yaml) found")
    layers = [load_layer_file(path) for path in files]
    try:
        return Catalog(layers=layers)
    except ValidationError as exc:
        raise CatalogError(_format_error(directory, exc)) from None
