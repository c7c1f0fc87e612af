"""Real clients and validators against the live service: GDAL (OAPIF, OGCAPI, the TMS parser),
the official TileJSON 3.0.0 JSON Schema and the MapLibre style validator.

Nothing is mocked: GDAL's command-line tools, node with ``@maplibre/maplibre-gl-style-spec``
(frontend/node_modules, from ``npm ci``) and ``jsonschema`` run against the uvicorn subprocess
of ``live_server``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import httpx
import jsonschema
import mapbox_vector_tile
import pytest

from layers.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
TILEJSON_SCHEMA = json.loads((ROOT / "tests" / "data" / "tilejson-3.0.0.schema.json").read_text())
STYLE_VALIDATOR = (
    ROOT / "frontend" / "node_modules" / "@maplibre" / "maplibre-gl-style-spec" / "dist" / "gl-style-validate.mjs"
)
FETCH = re.compile(r"HTTP: Fetch\((\S+)\)")


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: apt-get install gdal-bin", pytrace=False)
    return path


def _gdal(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a GDAL command with its debug log (CPL_DEBUG) on stderr."""
    env = {**os.environ, "CPL_DEBUG": "ON", "GDAL_HTTP_TIMEOUT": "60"}
    return subprocess.run([_require(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout, env=env)


def _fetched(log: str) -> list[str]:
    return [unquote(url) for url in FETCH.findall(log)]


def test_gdal_pushes_a_where_filter_to_the_server(live_server: str) -> None:
    """GDAL's OAPIF driver sends `-where` as a query parameter when the OpenAPI document lists the
    collection's queryables as parameters of /collections/redline/items (else it downloads every
    feature and filters on the client)."""
    result = _gdal("ogrinfo", "-ro", "-al", "-so", f"OAPIF:{live_server}/ogc", "redline", "-where", "domain = '海域'")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr
    assert "Full filter will be evaluated on client side" not in log, log[-3000:]
    items = [url for url in _fetched(log) if "/collections/redline/items" in url]
    filtered = [url for url in items if "domain=海域" in url or "filter=" in url]
    assert filtered, f"no items request carried the filter: {items}"
    everything = httpx.get(f"{live_server}/ogc/collections/redline/items", params={"limit": 10000}, timeout=60).json()
    expected = sum(1 for feature in everything["features"] if feature["properties"]["domain"] == "海域")
    assert 0 < expected < len(everything["features"])
    assert f"Feature Count: {expected}" in result.stdout, result.stdout


def test_gdal_ogcapi_follows_the_typed_tiling_scheme_link(live_server: str) -> None:
    """GDAL's OGCAPI driver needs the tileset's tiling-scheme link to be typed application/json;
    without it, it stops with "Cannot find …/tiling-scheme" before reading the tile matrix set.
    (Debian's GDAL 3.6 build has the driver's vector-tile reader compiled out, so it cannot go on
    to list MVT layers; the matrix set itself is checked with GDAL's parser below.)"""
    result = _gdal("ogrinfo", "-ro", "-so", f"OGCAPI:{live_server}/ogc/collections/redline")
    log = result.stderr
    assert "Cannot find http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme" not in log, log[-2000:]
    assert f"{live_server}/ogc/tileMatrixSets/WebMercatorQuad" in _fetched(log), log[-2000:]


def test_gdal_reads_the_tile_matrix_set_as_its_own_web_mercator_grid(live_server: str, tmp_path: Path) -> None:
    """GDAL's TileMatrixSet parser (here through the COG driver's TILING_SCHEME) reads the served
    WebMercatorQuad and lays out exactly the grid of its built-in GoogleMapsCompatible."""
    (tmp_path / "tms.json").write_text(httpx.get(f"{live_server}/ogc/tileMatrixSets/WebMercatorQuad", timeout=30).text)
    source = tmp_path / "source.tif"
    created = _gdal(
        "gdal_create", "-of", "GTiff", "-outsize", "64", "64", "-bands", "1", "-burn", "7",
        "-a_srs", "EPSG:4326", "-a_ullr", "118.0", "24.6", "118.1", "24.5", str(source),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]
    grids = {}
    for name, scheme in (("served", str(tmp_path / "tms.json")), ("builtin", "GoogleMapsCompatible")):
        target = tmp_path / f"{name}.tif"
        run = _gdal("gdal_translate", "-q", "-of", "COG", "-co", f"TILING_SCHEME={scheme}", "-co", "ZOOM_LEVEL=12",
                    str(source), str(target))  # fmt: skip
        assert run.returncode == 0, (name, run.stderr[-2000:])
        info = json.loads(_gdal("gdalinfo", "-json", str(target)).stdout)
        grids[name] = (info["size"], info["geoTransform"], info["coordinateSystem"]["wkt"])
    assert grids["served"] == grids["builtin"]


def test_tileset_metadata_is_complete_and_valid(live_server: str) -> None:
    for layer in load_catalog():
        tileset = httpx.get(f"{live_server}/ogc/collections/{layer.id}/tiles/WebMercatorQuad", timeout=30).json()
        assert all("type" in link for link in tileset["links"]), tileset["links"]
        ids = [entry["id"] for entry in tileset["layers"]]
        tilejson = httpx.get(f"{live_server}/tiles/{layer.id}.json", timeout=30).json()
        assert ids == [entry["id"] for entry in tilejson["vector_layers"]]  # the MVT layers the tiles carry
        if layer.is_polygon and layer.style.label is not None:
            assert f"{layer.id}_label" in ids
        for entry in tileset["layers"]:
            schema = entry["propertiesSchema"]
            jsonschema.Draft202012Validator.check_schema(schema)
            for prop, prop_schema in schema["properties"].items():
                assert prop_schema["type"] in ("string", "integer", "number", "boolean"), (layer.id, prop)
                if layer.get_property(prop).type == "date":
                    assert prop_schema == prop_schema | {"type": "string", "format": "date"}
    # The MVT layers a real tile carries are the ones the tileset lists, label points included.
    tileset = httpx.get(f"{live_server}/ogc/collections/redline/tiles/WebMercatorQuad", timeout=30).json()
    tile = httpx.get(f"{live_server}/ogc/collections/redline/tiles/WebMercatorQuad/12/1760/3391", timeout=30)
    assert tile.status_code == 200
    decoded = mapbox_vector_tile.decode(tile.content)
    assert set(decoded) == {entry["id"] for entry in tileset["layers"]} == {"redline", "redline_label"}
    listed = {entry["id"]: set(entry["propertiesSchema"]["properties"]) for entry in tileset["layers"]}
    for name, layer in decoded.items():
        carried = {key for feature in layer["features"] for key in feature["properties"]}
        assert carried <= listed[name], (name, carried - listed[name])
    listing = httpx.get(f"{live_server}/ogc/collections/redline/tiles", timeout=30).json()
    links = listing["links"] + [link for tileset in listing["tilesets"] for link in tileset["links"]]
    assert links and all("type" in link for link in links)


def _published_tilejsons(live_server: str) -> dict[str, dict]:
    catalog = load_catalog()
    urls = [f"/tiles/{layer.id}.json" for layer in catalog] + [f"/tiles/{','.join(catalog.ids)}.json"]
    urls += [raster["tilejson"].removeprefix(live_server) for raster in httpx.get(f"{live_server}/api/rasters").json()]
    documents = {}
    for url in urls:
        response = httpx.get(live_server + url, timeout=30)
        assert response.status_code == 200, (url, response.text[:300])
        documents[url] = response.json()
    return documents


def test_every_published_tilejson_passes_the_official_tilejson_3_schema(live_server: str) -> None:
    validator = jsonschema.Draft202012Validator(TILEJSON_SCHEMA)
    documents = _published_tilejsons(live_server)
    assert any(url.startswith("/tiles/raster/") for url in documents)
    for url, document in documents.items():
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, (url, errors)
        assert document["tilejson"] == "3.0.0"
    assert list(validator.iter_errors({"tilejson": "3.0.0", "tiles": "not a list"}))  # the schema does check


def _validate_style(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not STYLE_VALIDATOR.is_file():
        pytest.fail(
            f"the MapLibre style validator is missing ({STYLE_VALIDATOR}): run `cd frontend && npm ci`", pytrace=False
        )
    return subprocess.run([node, str(STYLE_VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)


def test_the_published_style_passes_the_maplibre_style_validator(live_server: str, tmp_path: Path) -> None:
    style = httpx.get(f"{live_server}/styles/default.json", timeout=30).json()
    (tmp_path / "style.json").write_text(json.dumps(style))
    result = _validate_style(tmp_path / "style.json")
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    broken = {**style, "layers": [*style["layers"], {"id": "broken", "type": "fill", "source": "nowhere"}]}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    refused = _validate_style(tmp_path / "broken.json")
    assert refused.returncode != 0 and "nowhere" in refused.stdout + refused.stderr  # the validator does check
