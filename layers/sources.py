"""Reading import files: format, layer, CRS, text encoding, and chunks of features.

Shapefiles (.shp or inside a .zip), GeoPackage, GeoJSON, KML and CSV with lon/lat
columns are read through pyogrio, for the importer and for files uploaded to the service
(``read_upload``: the zone check), with the same CRS and encoding detection; uploads are
read within caps on their unzipped size (counted while extracting, never trusted from
the archive) and vertex count. A shapefile's attribute table without a .cpg (common
for official data in GBK) has its encoding detected from the raw .dbf bytes, so
Chinese names are not silently garbled; ``--encoding`` overrides. Features are read in
chunks sized by vertex count, so memory stays bounded for large files.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyproj
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from tqdm import tqdm

from layers.catalog import Layer

DRIVERS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".kml": "KML", ".kmz": "KML", ".csv": "CSV"}  # fmt: skip
CSV_OPTIONS = {
    "X_POSSIBLE_NAMES": "lon,lng,long,longitude,x,经度",
    "Y_POSSIBLE_NAMES": "lat,latitude,y,纬度",
    "KEEP_GEOM_COLUMNS": "NO",
}
TARGET_VERTICES_PER_CHUNK = 1_000_000
"""Chunks are sized to about this many vertices (memory stays well under 1 GB)."""


class ImportFailed(Exception):
    """The file cannot be imported; the message says what and where, and how to fix it."""


@dataclass
class Source:
    """An opened input: what GDAL reads, and what the file declared."""

    display: str
    dataset: str
    layer: str
    driver: str
    crs: pyproj.CRS | None
    encoding: str | None
    encoding_note: str
    count: int
    fields: list[str]
    files: list[Path]
    options: dict[str, str] = field(default_factory=dict)
    temporary: Path | None = None

    def read(self, skip: int, count: int) -> Any:
        """Features ``skip`` to ``skip + count`` as a GeoDataFrame."""
        return pyogrio.read_dataframe(
            self.dataset, layer=self.layer, encoding=self.encoding, skip_features=skip, max_features=count,
            **self.options,
        )  # fmt: skip

    def read_geometries(self, skip: int, count: int) -> Any:
        """The geometries only (no attributes) of features ``skip`` to ``skip + count``."""
        return pyogrio.read_dataframe(
            self.dataset, layer=self.layer, columns=[], skip_features=skip, max_features=count, **self.options
        )

    def close(self) -> None:
        """Remove temporary files made while opening the source."""
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None

    def checksum(self) -> str:
        """SHA-256 of the file (a shapefile: of its .shp/.shx/.dbf/.prj/.cpg in name order)."""
        digest = hashlib.sha256()
        for path in self.files:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        return digest.hexdigest()


def _looks_utf8(data: bytes) -> bool:
    for cut in range(4):  # a value may have been truncated inside a multi-byte character
        try:
            data[: len(data) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def detect_encoding(samples: list[bytes]) -> str | None:
    """UTF-8 or GB18030 (a superset of GBK) for non-ASCII text samples; None if all ASCII or unknown."""
    texts = [s for s in samples if any(b >= 0x80 for b in s)]
    if not texts:
        return None
    if all(_looks_utf8(s) for s in texts):
        return "UTF-8"
    try:
        for s in texts:
            s.decode("gb18030")
    except UnicodeDecodeError:
        return None
    return "GB18030"


def dbf_text_samples(dbf: bytes, max_records: int = 20_000) -> list[bytes]:
    """Raw bytes of the character fields of a dBase table (the attribute table of a shapefile)."""
    if len(dbf) < 32:
        return []
    records = int.from_bytes(dbf[4:8], "little")
    header = int.from_bytes(dbf[8:10], "little")
    length = int.from_bytes(dbf[10:12], "little")
    fields, pos, offset = [], 32, 1
    while pos + 32 <= min(header, len(dbf)) and dbf[pos] != 0x0D:
        width = dbf[pos + 16]
        if chr(dbf[pos + 11]) == "C":
            fields.append((offset, width))
        offset, pos = offset + width, pos + 32
    samples = []
    for r in range(min(records, max_records)):
        record = dbf[header + r * length : header + (r + 1) * length]
        if len(record) < length:
            break
        samples.extend(record[o : o + w].rstrip(b" \x00") for o, w in fields)
    return samples


def _shapefile_encoding(shp: str, open_member: Any, names: set[str]) -> tuple[str | None, str]:
    """Encoding to pass for a shapefile: None when its .cpg or LDID says it, else detected."""
    stem = shp[:-4]
    if any(n.lower() == (stem + ".cpg").lower() for n in names):
        return None, "from the .cpg file"
    dbf_name = next((n for n in names if n.lower() == (stem + ".dbf").lower()), None)
    if dbf_name is None:
        raise ImportFailed(f"{shp}: the attribute table {Path(stem).name}.dbf is missing next to the .shp")
    with open_member(dbf_name) as handle:
        head = handle.read(32)
        ldid = head[29] if len(head) > 29 else 0
        data = head + handle.read(32 * 1024 * 1024)
    if ldid not in (0, 0x57):
        return None, f"from the .dbf language driver id {ldid}"
    detected = detect_encoding(dbf_text_samples(data))
    if detected is None:
        return None, "ASCII or unknown (no .cpg); pass --encoding if names look wrong"
    return detected, f"{detected} detected (no .cpg)"


def _sidecars(shp: Path) -> list[Path]:
    found = []
    for sibling in sorted(shp.parent.glob(shp.stem + ".*")):
        if sibling.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            found.append(sibling)
    return found


def _csv_as_utf8(read: Any, name: str, encoding: str) -> Path:
    """Transcode a CSV to UTF-8 in a temporary directory (GDAL reads CSV as UTF-8 only)."""
    directory = Path(tempfile.mkdtemp(prefix="ecomap-import-"))
    target = directory / Path(name).name
    decoder = codecs.getincrementaldecoder(encoding)()
    with read() as raw, target.open("w", encoding="utf-8") as out:
        while block := raw.read(1 << 20):
            out.write(decoder.decode(block))
        out.write(decoder.decode(b"", final=True))
    return target


def _choose_layer(dataset: str, display: str, layer_name: str | None) -> str:
    listed = pyogrio.list_layers(dataset)
    layers = [str(row[0]) for row in listed]
    if layer_name is not None:
        if layer_name not in layers:
            raise ImportFailed(f"{display} has no layer {layer_name!r}; its layers are: {', '.join(layers)}")
        return layer_name
    if len(layers) == 1:
        return layers[0]
    spatial = [str(row[0]) for row in listed if row[1] is not None]
    if len(spatial) != 1:
        raise ImportFailed(f"{display} has several layers ({', '.join(layers)}); choose one with --layer-name")
    return spatial[0]


def open_source(path: str | Path, layer_name: str | None = None, encoding: str | None = None) -> Source:
    """Open an input file (or the dataset inside a .zip) and read what it declares.

    The caller closes the source (a CSV in another encoding than UTF-8 is read from a
    transcoded temporary copy).

    Raises:
        ImportFailed: the file is missing, of an unknown format, unreadable (truncated or
            corrupt), has several layers and none was chosen, or lacks the chosen one.
    """
    file = Path(path)
    display = str(path)
    if not file.is_file():
        raise ImportFailed(f"{display}: no such file")
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFailed(f"unknown encoding {encoding!r}; use e.g. gbk, gb18030 or utf-8") from None
    suffix = file.suffix.lower()
    files = [file]
    if suffix == ".zip":
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile:
            raise ImportFailed(f"{display}: not a valid zip archive (truncated or corrupt?)") from None
        names = set(archive.namelist())
        members = sorted(n for n in names if Path(n).suffix.lower() in DRIVERS and "__MACOSX" not in n)
        if layer_name and len(members) > 1:
            members = [m for m in members if Path(m).stem == layer_name] or members
        if len(members) != 1:
            archive.close()
            found = ", ".join(members) or "no .shp, .gpkg, .geojson, .kml or .csv file"
            raise ImportFailed(f"{display} holds {found}; zip exactly one dataset or choose it with --layer-name")
        member = members[0]
        dataset, display, opener = f"/vsizip/{file.resolve()}/{member}", f"{display}!{member}", archive.open
    elif suffix in DRIVERS:
        member, dataset, archive = str(file), str(file), None
        if suffix == ".shp":
            files = _sidecars(file)
        names = {str(f) for f in files}
        opener = lambda name: open(name, "rb")  # noqa: E731, SIM115
    else:
        raise ImportFailed(
            f"{display}: unsupported file type {suffix or '(none)'}; import a .shp, .zip, .gpkg, .geojson, .kml or .csv"
        )
    inner = Path(member).suffix.lower()
    chosen_encoding, note = (encoding, f"{encoding} (given)") if encoding else (None, "")
    temporary = None
    try:
        if inner == ".shp" and not encoding:
            chosen_encoding, note = _shapefile_encoding(member, opener, names)
        if inner == ".csv":
            if not encoding:
                with opener(member) as handle:
                    chosen_encoding = detect_encoding([handle.read(1 << 20).removeprefix(codecs.BOM_UTF8)])
                note = f"{chosen_encoding or 'UTF-8'} (detected)"
            if chosen_encoding and codecs.lookup(chosen_encoding).name != "utf-8":
                temporary = _csv_as_utf8(lambda: opener(member), member, chosen_encoding)
                dataset, chosen_encoding = str(temporary), None
    finally:
        if archive is not None:
            archive.close()
    source = Source(
        display=display, dataset=dataset, layer="", driver="", crs=None, encoding=chosen_encoding,
        encoding_note=note, count=0, fields=[], files=files, options=dict(CSV_OPTIONS) if inner == ".csv" else {},
        temporary=temporary.parent if temporary else None,
    )  # fmt: skip
    try:
        source.layer = _choose_layer(dataset, display, layer_name)
        info = pyogrio.read_info(
            dataset, layer=source.layer, encoding=chosen_encoding, force_feature_count=True, **source.options
        )
    except (DataSourceError, DataLayerError) as exc:
        source.close()
        raise ImportFailed(f"cannot read {display}: {exc} (is the file complete and not corrupt?)") from None
    except UnicodeDecodeError as exc:
        source.close()
        raise ImportFailed(f"cannot decode the text of {display} ({exc}); pass --encoding gbk or utf-8") from None
    except ImportFailed:
        source.close()
        raise
    if not info.get("geometry_type"):
        source.close()
        hint = (
            " (name the coordinate columns lon/lat, x/y or 经度/纬度, or give a WKT column)" if inner == ".csv" else ""
        )
        raise ImportFailed(f"{display}: layer {source.layer!r} has no geometry{hint}")
    source.driver = str(info.get("driver"))
    source.crs = pyproj.CRS.from_user_input(info["crs"]) if info.get("crs") else None
    source.encoding_note = note or str(info.get("encoding") or "")
    source.count = int(info["features"])
    source.fields = [str(f) for f in info["fields"]]
    return source


def resolve_mapping(
    fields: list[str], layer: Layer, explicit: dict[str, str] | None
) -> tuple[dict[str, str], list[str]]:
    """Source field -> layer property: ``--map`` pairs first, then same names (ignoring case)
    and names cut to 10 characters by the shapefile format (``function_t`` -> ``function_type``).

    Returns the mapping and the source fields left unused.
    """
    explicit = dict(explicit or {})
    props = layer.property_names
    for src, dst in explicit.items():
        if src not in fields:
            raise ImportFailed(f"--map {src}={dst}: the file has no field {src!r}; its fields: {', '.join(fields)}")
        if dst not in props:
            raise ImportFailed(
                f"--map {src}={dst}: layer {layer.id} has no property {dst!r}; use one of {', '.join(props)}"
            )
    mapping = dict(explicit)
    taken = set(mapping.values())
    for src in fields:
        if src in mapping:
            continue
        name = src.lower()
        match = [p for p in props if p == name and p not in taken]
        if not match and len(src) == 10:
            match = [p for p in props if p.startswith(name) and p not in taken]
        if len(match) == 1:
            mapping[src] = match[0]
            taken.add(match[0])
    return mapping, [f for f in fields if f not in mapping]


def read_chunks(source: Source, progress: bool = False, first_chunk: int = 500) -> Iterator[tuple[int, Any]]:
    """Yield ``(start index, GeoDataFrame)`` chunks sized to about TARGET_VERTICES_PER_CHUNK vertices."""
    start, size = 0, first_chunk
    with tqdm(total=source.count, unit="feature", disable=not progress, desc=Path(source.display).name) as bar:
        while start < source.count:
            try:
                frame = source.read(start, size)
            except (DataSourceError, DataLayerError) as exc:
                raise ImportFailed(
                    f"cannot read {source.display} at feature {start}: {exc} (truncated or corrupt file?)"
                ) from None
            except UnicodeDecodeError as exc:
                raise ImportFailed(
                    f"{source.display}, feature {start}: undecodable text ({exc}); pass --encoding"
                ) from None
            if len(frame) == 0:
                break
            yield start, frame
            vertices = max(int(shapely.get_num_coordinates(np.asarray(frame.geometry.values)).sum()), 1)
            start += len(frame)
            bar.update(len(frame))
            size = int(np.clip(TARGET_VERTICES_PER_CHUNK * len(frame) / vertices, 100, 100_000))


# --- uploads: one reader for files sent to the service (zone check) -------------------

UPLOAD_SUFFIXES = {"zip": ".zip", "gpkg": ".gpkg", "geojson": ".geojson", "kml": ".kml"}
_ZIP_DATASETS = (".shp", ".gpkg", ".geojson", ".json", ".kml")
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


class FileTooLarge(ImportFailed):
    """A file, its unzipped content or its vertex count exceeds the caller's cap."""


class UnsupportedFile(ImportFailed):
    """Not a geo-file this reader takes, or one it cannot read."""


def sniff_format(head: bytes) -> str | None:
    """``zip`` (zipped Shapefile, KMZ…), ``gpkg``, ``geojson`` or ``kml`` from a file's first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "geojson"
    if text.startswith(b"<") and b"<kml" in head[:4096].lower():
        return "kml"
    return None


def extract_zip(archive: zipfile.ZipFile, directory: Path, *, max_bytes: int) -> Path:
    """Extract the one dataset of a zip (a Shapefile with its sidecar files, a GeoPackage, a
    GeoJSON, or the KML of a KMZ) into ``directory``; returns its path.

    Members are streamed and the bytes actually decompressed are counted: extraction stops
    as soon as they exceed ``max_bytes``, whatever sizes the archive declares (zip bombs).
    """
    members = [m for m in archive.infolist() if not m.is_dir() and "__MACOSX" not in m.filename]
    datasets = [m for m in members if Path(m.filename).suffix.lower() in _ZIP_DATASETS]
    shapefiles = [m for m in datasets if m.filename.lower().endswith(".shp")]
    if len(shapefiles) > 1:
        raise UnsupportedFile(f"the zip holds {len(shapefiles)} Shapefiles; upload one dataset per file")
    if shapefiles:
        stem = shapefiles[0].filename[:-4]
        wanted = [m for m in members if m.filename[: -len(Path(m.filename).suffix) or None] == stem
                  and Path(m.filename).suffix.lower() in _SHAPEFILE_PARTS]  # fmt: skip
        missing = {".shp", ".shx", ".dbf"} - {Path(m.filename).suffix.lower() for m in wanted}
        if missing:
            raise UnsupportedFile(f"the Shapefile in the zip lacks its {', '.join(sorted(missing))} part(s)")
    elif len(datasets) == 1:
        wanted = datasets
    else:
        found = ", ".join(m.filename for m in datasets[:5]) or "none"
        raise UnsupportedFile(
            f"the zip holds no single dataset (found: {found}); zip one Shapefile (.shp with .shx and .dbf), "
            "GeoPackage, GeoJSON or KML"
        )
    total, target = 0, directory
    for member in wanted:
        suffix = Path(member.filename).suffix.lower()
        path = directory / f"upload{suffix}"  # never the archive's own path (no ../ escapes)
        try:
            with archive.open(member) as source, path.open("wb") as out:
                while block := source.read(1 << 16):
                    total += len(block)
                    if total > max_bytes:
                        raise FileTooLarge(f"the unzipped file is larger than {max_bytes // 2**20} MB")
                    out.write(block)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, EOFError) as exc:
            raise UnsupportedFile(f"cannot unzip {member.filename}: {exc}") from None
        if suffix in _ZIP_DATASETS:
            target = path
    return target


def _read_geometries(path: Path, max_vertices: int) -> tuple[list[Any], pyproj.CRS | None]:
    """The geometries of every spatial layer of a dataset, and the first layer's CRS; stops
    reading as soon as more than ``max_vertices`` vertices were read."""
    try:
        listed = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError) as exc:
        raise UnsupportedFile(f"the file cannot be read: {str(exc).split(';')[0]}") from None
    shapes: list[Any] = []
    crs: pyproj.CRS | None = None
    vertices = 0
    for name, geometry_type in listed:
        if geometry_type is None:
            continue
        try:
            source = open_source(path, layer_name=str(name))
        except ImportFailed as exc:
            raise UnsupportedFile(str(exc).replace(str(path), "the file")) from None
        try:
            crs = crs or source.crs
            start = 0
            while start < source.count:
                frame = source.read_geometries(start, 1_000)
                if len(frame) == 0:
                    break
                geoms = [g for g in frame.geometry.values if g is not None]
                vertices += int(shapely.get_num_coordinates(np.asarray(geoms, dtype=object)).sum()) if geoms else 0
                if vertices > max_vertices:
                    raise FileTooLarge(f"the file has more than {max_vertices} vertices; simplify it")
                shapes.extend(geoms)
                start += len(frame)
        except (DataSourceError, DataLayerError, pyogrio.errors.GeometryError) as exc:
            raise UnsupportedFile(f"the file cannot be read: {str(exc).split(';')[0]}") from None
        finally:
            source.close()
    return shapes, crs


def read_upload(
    content: bytes, *, max_unzipped_bytes: int, max_vertices: int
) -> tuple[list[Any], pyproj.CRS | None, str]:
    """Read an uploaded geo-file (GeoJSON, zipped Shapefile, GeoPackage, KML or KMZ) into its
    geometries, the CRS it declares (None if none) and its kind — with the importer's reader
    (CRS and attribute encoding detection), within the caller's caps.

    Raises:
        UnsupportedFile: not one of those formats, or unreadable. FileTooLarge: a cap is exceeded.
    """
    kind = sniff_format(content[:4096])
    if kind is None:
        raise UnsupportedFile(
            "unsupported file: upload a GeoJSON file (.geojson), a zipped Shapefile (.zip holding .shp, .shx, .dbf "
            "and .prj), a GeoPackage (.gpkg), or a KML/KMZ file"
        )
    with tempfile.TemporaryDirectory(prefix="ecomap-upload-") as tmp:
        directory = Path(tmp)
        if kind == "zip":
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as archive:
                    path = extract_zip(archive, directory, max_bytes=max_unzipped_bytes)
            except (zipfile.BadZipFile, OSError) as exc:
                raise UnsupportedFile(f"the zip file cannot be opened ({exc}); zip the dataset again") from None
        else:
            path = directory / f"upload{UPLOAD_SUFFIXES[kind]}"
            path.write_bytes(content)
        shapes, crs = _read_geometries(path, max_vertices)
    return shapes, crs, kind
