"""Registering a user's GeoTIFF as a catalog raster: check, convert to a COG, declare in YAML.

``register_raster`` backs ``ecomap raster add``. The GeoTIFF is checked first (readable, a
CRS, the band, a nodata value), the catalog entry is validated like any other, then the COG
and the YAML file are written to temporary names and renamed into place only when both are
complete: a refusal or a failure leaves the data directory exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from pydantic import ValidationError

from layers.catalog import CatalogError, RasterLayer, format_validation_error, load_catalog
from layers.rasters import RasterFileError, inspect_geotiff, translate_to_cog

SAMPLE_CELLS = 4_000_000
"""At most this many cells are read to find the value range or the classes present."""

DEFAULT_RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
"""Viridis at five stops: the default colours of a continuous raster."""


class RegistrationError(ValueError):
    """The raster cannot be registered; the message says why and what to do."""


@dataclass(frozen=True)
class Registration:
    """What ``register_raster`` wrote."""

    layer: RasterLayer
    cog: Path
    yaml: Path
    replaced: bool
    unclassified_values: list[int]
    """Values found in a categorical raster that no class names (drawn transparent)."""


def read_classes(path: Path) -> list[dict[str, Any]]:
    """Read a class table: a YAML/JSON list of ``{value, name: {zh, en}, color}`` (or ``{classes: [...]}``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistrationError(f"{path}: cannot read the class table ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RegistrationError(f"{path}: the class table is not valid YAML/JSON: {exc}") from None
    if isinstance(raw, dict) and "classes" in raw:
        raw = raw["classes"]
    if not isinstance(raw, list) or not raw:
        raise RegistrationError(
            f"{path}: expected a list of classes, each like "
            "`- {value: 1, name: {zh: 林地, en: Forest}, color: '#1b7837'}`"
        )
    return raw


def _sample(dataset: rasterio.io.DatasetReader, band: int, nodata: float | None) -> np.ndarray:
    """Valid values of a band, read decimated to at most ``SAMPLE_CELLS`` cells."""
    step = max(1.0, float(np.sqrt(dataset.width * dataset.height / SAMPLE_CELLS)))
    shape = (max(1, int(dataset.height / step)), max(1, int(dataset.width / step)))
    values = dataset.read(band, out_shape=shape, resampling=rasterio.enums.Resampling.nearest)
    valid = np.ones(values.shape, dtype=bool) if nodata is None else values != nodata
    if values.dtype.kind == "f":
        valid &= np.isfinite(values)
    return values[valid]


def _entry(
    layer_id: str,
    options: dict[str, Any],
    source: Path,
    dataset: rasterio.io.DatasetReader,
    band: int,
    nodata: float,
    classes_file: Path | None,
) -> tuple[dict[str, Any], list[int]]:
    """The catalog entry (before validation) and the unclassified values found."""
    values = _sample(dataset, band, nodata)
    entry: dict[str, Any] = {"kind": "raster", "id": layer_id, "file": f"{layer_id}.tif", "band": 1, **options}
    entry["nodata"] = nodata
    unclassified: list[int] = []
    if classes_file is not None:
        if np.dtype(dataset.dtypes[band - 1]).kind not in "ui":
            raise RegistrationError(
                f"{source}: a categorical raster needs integer cells, this band is {dataset.dtypes[band - 1]}"
            )
        entry["categorical"] = True
        entry["classes"] = read_classes(classes_file)
        named = {c.get("value") for c in entry["classes"] if isinstance(c, dict)}
        unclassified = sorted(int(v) for v in np.unique(values) if int(v) not in named)
    else:
        entry["categorical"] = False
        if entry.get("range") is None:
            if values.size == 0:
                raise RegistrationError(f"{source}: every cell is nodata ({nodata:g}); nothing to draw")
            low, high = float(values.min()), float(values.max())
            entry["range"] = [low, high if high > low else low + 1]
        low, high = entry["range"]
        positions = np.linspace(low, high, len(DEFAULT_RAMP))
        entry.setdefault("colormap", {"stops": [[float(p), c] for p, c in zip(positions, DEFAULT_RAMP, strict=True)]})
    return entry, unclassified


def register_raster(
    layer_id: str,
    source: Path,
    data_dir: Path,
    *,
    band: int = 1,
    nodata: float | None = None,
    classes_file: Path | None = None,
    replace: bool = False,
    catalog_dir: Path | None = None,
    **options: Any,
) -> Registration:
    """Check ``source``, write it as ``<data_dir>/<id>.tif`` (COG) and ``<data_dir>/catalog/<id>.yaml``.

    Args:
        layer_id: the new raster's id (lower-case letters, digits, underscores).
        source: a GeoTIFF with a CRS.
        data_dir: the raster data directory (``Settings.rasters.data_dir``).
        band: the band holding the values.
        nodata: the value of empty cells when the file defines none (or to override it).
        classes_file: a class table: makes the raster categorical.
        replace: replace a raster registered earlier under the same id.
        catalog_dir: the main catalog directory (default: the bundled one), for id clashes.
        options: further catalog fields (title, band_meaning, unit, role, range, opacity...).

    Raises:
        RegistrationError, RasterFileError: nothing was written.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", layer_id):
        raise RegistrationError(
            f"invalid raster id {layer_id!r}: use lower-case letters, digits and underscores, starting with a letter"
        )
    registry = data_dir / "catalog"
    yaml_path = registry / f"{layer_id}.yaml"
    cog_path = data_dir / f"{layer_id}.tif"
    try:
        catalog = load_catalog(catalog_dir, raster_dirs=[registry])
    except CatalogError as exc:
        raise RegistrationError(f"the catalog is invalid, fix it first:\n{exc}") from None
    if layer_id in catalog.ids or (layer_id in catalog.raster_ids and not yaml_path.is_file()):
        raise RegistrationError(f"{layer_id!r} is a layer of the bundled catalog; choose another id")
    if layer_id in catalog.raster_ids and not replace:
        raise RegistrationError(f"raster {layer_id!r} is already registered ({yaml_path}); add --replace to replace it")
    info = inspect_geotiff(source, band, nodata)
    assert info.nodata is not None  # noqa: S101 - inspect_geotiff refuses files without one
    with rasterio.open(source) as dataset:
        entry, unclassified = _entry(layer_id, options, source, dataset, band, info.nodata, classes_file)
        try:
            layer = RasterLayer.model_validate(entry)
        except ValidationError as exc:
            raise RegistrationError(format_validation_error(classes_file or source, exc)) from None
        registry.mkdir(parents=True, exist_ok=True)
        yaml_tmp = yaml_path.with_name(f".{yaml_path.name}.{os.getpid()}.tmp")
        cog_written = False
        try:
            translate_to_cog(
                dataset,
                cog_path.with_name(f".{cog_path.name}.staged"),
                band=band,
                nodata=info.nodata,
                categorical=layer.categorical,
                tags={"ECOMAP_SOURCE": source.name},
            )
            cog_written = True
            document = layer.model_dump(mode="json", exclude_defaults=True)
            document = {"kind": "raster", **document}
            header = f"# Registered with `ecomap raster add` from {source.name} ({info.crs}).\n"
            yaml_tmp.write_text(header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
            os.replace(cog_path.with_name(f".{cog_path.name}.staged"), cog_path)
            os.replace(yaml_tmp, yaml_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                yaml_tmp.unlink()
            if cog_written:
                with contextlib.suppress(FileNotFoundError):
                    cog_path.with_name(f".{cog_path.name}.staged").unlink()
    return Registration(layer, cog_path, yaml_path, replace and layer_id in catalog.raster_ids, unclassified)


def unregister_raster(layer_id: str, data_dir: Path) -> list[Path]:
    """Remove a raster registered with ``register_raster`` (its YAML and its COG); returns what went."""
    yaml_path = data_dir / "catalog" / f"{layer_id}.yaml"
    if not yaml_path.is_file():
        raise RegistrationError(
            f"no registered raster {layer_id!r} in {yaml_path.parent} (bundled rasters cannot be removed)"
        )
    try:
        layer = load_catalog(raster_dirs=[yaml_path.parent]).get_raster(layer_id)
        targets = [yaml_path, layer.path(data_dir)]
    except (CatalogError, KeyError):
        targets = [yaml_path]
    removed = []
    for path in targets:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


__all__ = [
    "RasterFileError",
    "Registration",
    "RegistrationError",
    "read_classes",
    "register_raster",
    "unregister_raster",
]
