"""The layer catalog: declarative YAML files validated strictly into typed models.

Every part of the product (API, tiles, frontend, import/export) reads layers from
here and nowhere else. SQL identifiers (tables, columns) are only ever taken from a
validated catalog, which restricts them to plain lower-case names.

Vector layers (PostGIS tables) and raster layers (Cloud-Optimized GeoTIFFs, files with
``kind: raster``) share the catalog directory. ``Catalog.layers`` (and iterating the
catalog) gives the vector layers only; ``Catalog.rasters`` gives the raster layers.
Rasters registered with ``ecomap raster add`` live in an extra directory
(``<raster data dir>/catalog``) passed to :func:`load_catalog` as ``raster_dirs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CATALOG_DIR = Path(__file__).parent / "catalog"

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
PropertyType = Literal["string", "integer", "number", "boolean", "date"]
AccessClass = Literal["public", "internal", "restricted"]
"""Who may read a layer or a property: ``public`` everyone, ``internal`` signed-in staff,
``restricted`` data managers and admins (the readers of each class: ``gis_service.access.policy``)."""
StaffRole = Literal["planner", "chief", "analyst", "data_manager", "admin"]
ACCESS_RANK: dict[str, int] = {"public": 0, "internal": 1, "restricted": 2}


GROUPS: dict[str, dict[str, str]] = {
    "redline": {"zh": "生态保护红线", "en": "Ecological red lines"},
    "protected": {"zh": "自然保护地", "en": "Protected areas"},
    "water": {"zh": "水源与流域", "en": "Water sources and watersheds"},
    "rivers_bays": {"zh": "河湖海湾", "en": "Rivers and bays"},
    "monitoring": {"zh": "监测站点", "en": "Monitoring stations"},
    "admin": {"zh": "行政区划", "en": "Administrative divisions"},
    "land": {"zh": "土地覆被与地形", "en": "Land cover and terrain"},
    "partners": {"zh": "协作城市共享", "en": "Shared by partner cities"},
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


class Access(_Strict):
    """Who may read a layer: its access class and, optionally, the staff roles reading it
    (default: the readers of the class). Partner keys read the layers named on the key."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    access_class: AccessClass = Field(default="public", alias="class")
    roles: list[StaffRole] | None = Field(
        default=None, description="Staff roles that may read it (default: the readers of the class)"
    )

    @model_validator(mode="after")
    def _roles_need_a_class(self) -> Access:
        if self.roles is not None and self.access_class == "public":
            raise ValueError("roles apply to internal or restricted layers (a public layer is read by everyone)")
        if self.roles is not None and not self.roles:
            raise ValueError("roles must name at least one role (or leave roles out for the class's readers)")
        return self

    @property
    def is_public(self) -> bool:
        return self.access_class == "public"


PUBLIC = Access()


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
    access: AccessClass = Field(
        default="public",
        description="Who sees this property: callers who may read layers of this class (others: it is left out)",
    )
    references: Identifier | None = Field(
        default=None,
        description="The layer whose feature id this integer property holds (e.g. a segment's downstream "
        "segment): clients show that feature's name, never the raw id (nothing when that layer is not in "
        "the catalog or not readable).",
    )
    value_titles: dict[str, Title] | None = Field(
        default=None,
        description="What each stored code means, in both languages (e.g. a station kind `air_local`): what "
        "popups, legends and reports show instead of the code.",
    )

    @model_validator(mode="after")
    def _check_reference(self) -> LayerProperty:
        if self.references is not None and self.type != "integer":
            raise ValueError(f"property {self.name!r} references a layer, so it must be an integer (a feature id)")
        if self.value_titles is not None and self.values is not None:
            unknown = sorted(set(self.value_titles) - set(self.values))
            if unknown:
                raise ValueError(f"value_titles of {self.name!r} name values it does not allow: {unknown}")
        return self

    def value_title(self, value: object) -> Title | None:
        """The bilingual title of a stored code, when the catalog gives one."""
        return (self.value_titles or {}).get(str(value)) if value is not None else None


class Categories(_Strict):
    """Distinct colours by the value of one property (e.g. function type, zone)."""

    property: Identifier
    colors: dict[str, HexColor] = Field(min_length=1)


class StatusLegend(_Strict):
    """One scale of the live status colours a layer's tiles carry (``status_colour``: the class of
    GB 3838 or GB 3097, or the HJ 633 AQI category), by its names; the map draws the tiles' colour,
    the legend lists these."""

    title: Title
    colors: dict[str, HexColor] = Field(min_length=1)
    value_titles: dict[str, Title] | None = Field(
        default=None, description="Names of the classes in both languages (default: the class name itself)"
    )

    @model_validator(mode="after")
    def _titles_name_classes(self) -> StatusLegend:
        unknown = sorted(set(self.value_titles or {}) - set(self.colors))
        if unknown:
            raise ValueError(f"value_titles name classes that have no colour: {unknown}")
        return self


class LabelStyle(_Strict):
    property: Identifier
    property_en: Identifier | None = Field(
        default=None,
        description="What English labels show when the layer has no `name_en` (its names exist only in "
        "Chinese): a Latin code, or a coded property whose `value_titles` give the English words.",
    )
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
    status: list[StatusLegend] | None = Field(
        default=None, description="Live status colours of the tiles (stations, river sections, bays) and their legend"
    )
    label: LabelStyle | None = None


class TileOptions(_Strict):
    """Vector-tile options: MVT extent and buffer (in tile units)."""

    extent: int = Field(default=4096, ge=256, le=16384)
    buffer: int = Field(default=64, ge=0, le=1024)


class Temporal(_Strict):
    """The properties holding a feature's time, for OGC API ``datetime`` and the temporal extent.

    ``start`` alone makes each feature an instant (its date, or its year); with ``end`` a
    feature spans ``[start, end]`` and an empty ``end`` leaves it open (still in force).
    Each is a ``date`` property, or an ``integer`` one holding a calendar year.
    """

    start: Identifier
    end: Identifier | None = None


class RemoteOrigin(_Strict):
    """Where a remote layer's copy comes from: the partner and its collection's items URL."""

    partner: Title
    url: str


class Layer(_Strict):
    """One vector layer: where its data lives, what it exposes and how it looks."""

    id: Identifier
    title: Title
    description: Title | None = None
    group: Literal["redline", "protected", "water", "rivers_bays", "monitoring", "admin", "partners"]
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
    temporal: Temporal | None = Field(
        default=None, description="Properties giving each feature's time (OGC API datetime); none by default."
    )
    access: Access = Field(default=PUBLIC, description="Who may read the layer (default: public)")
    remote: RemoteOrigin | None = Field(
        default=None,
        description="Set on remote layers only (a partner's collection copied by gis_service.federation, "
        "read-only): where the copy comes from. Catalog files leave it out.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Layer:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"minzoom {self.minzoom} is greater than maxzoom {self.maxzoom}")
        if self.temporal is not None:
            for key, name in (("start", self.temporal.start), ("end", self.temporal.end)):
                prop = self.get_property(name) if name else None
                if name and (prop is None or prop.type not in ("date", "integer")):
                    raise ValueError(f"temporal.{key} {name!r} must be a date or integer (year) property of the layer")
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
            if self.style.label.property_en:
                referenced.add(self.style.label.property_en)
        unknown = referenced - set(names)
        if unknown:
            raise ValueError(f"style or coverage_by refers to unknown properties: {sorted(unknown)}")
        needed = referenced | {self.name_property}
        if self.temporal is not None:
            needed |= {self.temporal.start, self.temporal.end} - {None}
        rank = ACCESS_RANK[self.access.access_class]
        hidden = sorted(p.name for p in self.properties if p.name in needed and ACCESS_RANK[p.access] > rank)
        if hidden:
            raise ValueError(
                f"properties {hidden} are styled, labelled, named or dated by, so every reader of the layer"
                f" must see them: their access may not be stricter than the layer's ({self.access.access_class})"
            )
        return self

    @cached_property
    def property_names(self) -> list[str]:
        return [p.name for p in self.properties]

    def get_property(self, name: str) -> LayerProperty | None:
        return next((p for p in self.properties if p.name == name), None)

    @property
    def is_polygon(self) -> bool:
        return self.geometry_type in ("Polygon", "MultiPolygon")


class RasterClass(_Strict):
    """One class of a categorical raster: its pixel value, name and colour."""

    value: int = Field(ge=0, le=255, description="Pixel value (categorical rasters are 8-bit)")
    name: Title
    color: HexColor


class ColorRamp(_Strict):
    """Colour stops of a continuous raster, in data values (linear interpolation between stops)."""

    stops: list[tuple[float, HexColor]] = Field(min_length=2)

    @field_validator("stops")
    @classmethod
    def _increasing(cls, stops: list[tuple[float, str]]) -> list[tuple[float, str]]:
        values = [value for value, _ in stops]
        if any(b <= a for a, b in pairwise(values)):
            raise ValueError(f"stop values must increase strictly (got {values})")
        return stops


RasterRole = Literal["land_cover", "elevation", "slope"]
RASTER_FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.tiff?$"


class RasterLayer(_Strict):
    """One raster layer: a single-band Cloud-Optimized GeoTIFF under the raster data directory,
    drawn with a class table (categorical) or a colour ramp over a range (continuous)."""

    kind: Literal["raster"] = "raster"
    id: Identifier
    title: Title
    description: Title | None = None
    group: Literal["redline", "protected", "water", "rivers_bays", "monitoring", "admin", "land"] = "land"
    order: int = Field(default=10, description="Drawing order among rasters: lower values are drawn first.")
    file: str = Field(pattern=RASTER_FILE_PATTERN, description="File name of the COG in the raster data directory")
    band: int = Field(default=1, ge=1, description="Band of the file holding the values (1-based)")
    band_meaning: Title
    unit: str | None = None
    role: RasterRole | None = Field(
        default=None, description="What zonal statistics use it for: land cover, elevation or slope"
    )
    categorical: bool = False
    classes: list[RasterClass] | None = None
    colormap: ColorRamp | None = None
    range: tuple[float, float] | None = Field(
        default=None, description="Value range of the colour ramp and legend (continuous rasters)"
    )
    nodata: float | None = Field(
        default=None, description="No-data value, as written in the file's metadata (drawn transparent)"
    )
    minzoom: int = Field(default=0, ge=0, le=24)
    maxzoom: int = Field(default=18, ge=0, le=24)
    opacity: float = Field(default=0.7, ge=0, le=1, description="Default opacity on the map")
    is_sample: bool = False
    access: Access = Field(default=PUBLIC, description="Who may read the raster (default: public)")

    @model_validator(mode="after")
    def _check_consistency(self) -> RasterLayer:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"minzoom {self.minzoom} is greater than maxzoom {self.maxzoom}")
        if self.categorical:
            if not self.classes:
                raise ValueError("a categorical raster needs classes: [{value, name: {zh, en}, color}, ...]")
            if self.colormap is not None or self.range is not None:
                raise ValueError("a categorical raster takes classes, not colormap/range")
            values = [c.value for c in self.classes]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate class values: {duplicates}")
            if self.nodata is not None and self.nodata in values:
                raise ValueError(f"nodata {self.nodata:g} is also a class value")
        else:
            if self.classes is not None:
                raise ValueError("classes are for categorical rasters (set categorical: true)")
            if self.colormap is None or self.range is None:
                raise ValueError("a continuous raster needs colormap: {stops: [[value, color], ...]} and range")
            if self.range[0] >= self.range[1]:
                raise ValueError(f"range minimum {self.range[0]:g} must be below the maximum {self.range[1]:g}")
        return self

    def path(self, data_dir: Path) -> Path:
        """Where the raster's file lives, given the raster data directory."""
        return data_dir / self.file

    def class_by_value(self) -> dict[int, RasterClass]:
        """Classes of a categorical raster keyed by pixel value (empty for continuous ones)."""
        return {c.value: c for c in self.classes or []}


class Catalog(_Strict):
    """All layers, in drawing order: vector layers in ``layers``, raster layers in ``rasters``."""

    layers: list[Layer]
    rasters: list[RasterLayer] = []

    @field_validator("layers")
    @classmethod
    def _unique_ids(cls, layers: list[Layer]) -> list[Layer]:
        ids = [layer.id for layer in layers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate layer ids: {', '.join(duplicates)}")
        return sorted(layers, key=lambda layer: (layer.order, layer.id))

    @field_validator("rasters")
    @classmethod
    def _unique_raster_ids(cls, rasters: list[RasterLayer]) -> list[RasterLayer]:
        ids = [raster.id for raster in rasters]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate raster ids: {', '.join(duplicates)}")
        return sorted(rasters, key=lambda raster: (raster.order, raster.id))

    @model_validator(mode="after")
    def _distinct_kinds(self) -> Catalog:
        shared = sorted({layer.id for layer in self.layers} & {raster.id for raster in self.rasters})
        if shared:
            raise ValueError(f"ids used by both a vector and a raster layer: {', '.join(shared)}")
        return self

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

    @cached_property
    def raster_ids(self) -> list[str]:
        return [raster.id for raster in self.rasters]

    def get_raster(self, raster_id: str) -> RasterLayer:
        """Return a raster layer by id; raises KeyError naming the valid raster ids."""
        for raster in self.rasters:
            if raster.id == raster_id:
                return raster
        raise KeyError(f"unknown raster {raster_id!r}; valid rasters: {', '.join(self.raster_ids) or '(none)'}")

    def raster_for_role(self, role: str) -> RasterLayer | None:
        """The first raster (in order) playing a role (land_cover, elevation, slope), if any."""
        return next((raster for raster in self.rasters if raster.role == role), None)


def format_validation_error(path: Path, error: ValidationError) -> str:
    """One line per problem, naming the file and the key (``unknown key 'style.glow'``)."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key {location!r}")
        else:
            lines.append(f"{path}: {location}: {item['msg']}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping of layer settings at the top level")
    return raw


_Entry = TypeVar("_Entry", Layer, RasterLayer)


def _validated(path: Path, model: type[_Entry], raw: dict) -> _Entry:
    try:
        entry = model.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(path, exc)) from None
    if entry.id != path.stem:
        raise CatalogError(f"{path}: id {entry.id!r} must match the file name {path.stem!r}")
    return entry


def load_layer_file(path: Path) -> Layer | RasterLayer:
    """Parse and validate one layer YAML file (vector, or ``kind: raster``); errors name the file and the key."""
    raw = _read_yaml(path)
    kind = raw.pop("kind", "vector")
    if kind == "raster":
        return _validated(path, RasterLayer, raw)
    if kind != "vector":
        raise CatalogError(f"{path}: kind: Input should be 'vector' or 'raster' (got {kind!r})")
    return _validated(path, Layer, raw)


def load_raster_file(path: Path) -> RasterLayer:
    """Parse and validate one raster layer YAML file (``kind: raster``)."""
    raw = _read_yaml(path)
    if raw.get("kind") != "raster":
        raise CatalogError(f"{path}: kind: a raster layer file needs `kind: raster` (got {raw.get('kind')!r})")
    return _validated(path, RasterLayer, raw)


def load_catalog(directory: Path | None = None, raster_dirs: Iterable[Path] = ()) -> Catalog:
    """Load every ``*.yaml`` layer file of a directory (default: the bundled catalog).

    Args:
        directory: the catalog directory (vector layers and ``kind: raster`` files).
        raster_dirs: extra directories of raster layer files (e.g. rasters registered with
            ``ecomap raster add`` in ``<raster data dir>/catalog``); missing ones are skipped.
    """
    directory = directory or CATALOG_DIR
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{directory}: no layer files (*.yaml) found")
    entries = [load_layer_file(path) for path in files]
    origin = {entry.id: path for entry, path in zip(entries, files, strict=True)}
    for extra in raster_dirs:
        for path in sorted(extra.glob("*.yaml")) if extra.is_dir() else []:
            raster = load_raster_file(path)
            if raster.id in origin:
                raise CatalogError(f"{path}: id {raster.id!r} is already declared in {origin[raster.id]}")
            origin[raster.id] = path
            entries.append(raster)
    layers = [entry for entry in entries if isinstance(entry, Layer)]
    rasters = [entry for entry in entries if isinstance(entry, RasterLayer)]
    try:
        return Catalog(layers=layers, rasters=rasters)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(directory, exc)) from None


logger = logging.getLogger(__name__)


class LiveCatalog:
    """The catalog of a running service, following the raster registry.

    Rasters registered or removed with ``ecomap raster add/remove`` (YAML files in
    ``registry``) show up without a restart: ``current()`` looks at the registry at most
    once per ``check_s`` and re-reads the rasters when a file was added, changed or removed.
    The vector layers stay as loaded (tile queries, triggers and generalization are built
    from them). A registry that no longer validates is logged and the rasters stay as they
    were.
    """

    def __init__(self, directory: Path | None, registry: Path, check_s: float = 1.0) -> None:
        self._directory = directory
        self._registry = registry
        self._check_s = check_s
        self._stamp = self._registry_stamp()
        self._checked = time.monotonic()
        self._catalog = load_catalog(directory, raster_dirs=[registry])

    def current(self) -> Catalog:
        """The catalog, with the rasters registered now."""
        now = time.monotonic()
        if now - self._checked >= self._check_s:
            self._checked = now
            stamp = self._registry_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    rasters = load_catalog(self._directory, raster_dirs=[self._registry]).rasters
                except CatalogError as exc:
                    logger.error("raster registry not reloaded, its rasters stay as they were: %s", exc)
                else:
                    self._catalog = Catalog(layers=self._catalog.layers, rasters=rasters)
                    logger.info("raster registry reloaded: %s", ", ".join(r.id for r in rasters))
        return self._catalog

    def _registry_stamp(self) -> tuple[tuple[str, int], ...]:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self._registry.glob("*.yaml")))
        except OSError:  # a file removed while listing: look again next time
            return (("?", time.monotonic_ns()),)
