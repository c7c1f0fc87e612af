"""The vector basemap as configuration: /api/config names the PMTiles archive, and the app
serves the archive itself to range requests (what the `pmtiles` protocol sends)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pmtiles.reader import MemorySource, Reader

from gis_service import create_app
from gis_service.settings import BasemapSettings, TileSettings
from tests.basemap_archive import MAXZOOM, write_basemap_archive
from tests.conftest import make_settings


def test_config_and_range_requests(database_url: str, tmp_path: Path) -> None:
    archive = write_basemap_archive(tmp_path / "basemap.pmtiles")
    settings = make_settings(
        database_url,
        tiles=TileSettings(archive_dir=tmp_path),
        basemap=BasemapSettings(pmtiles_archive="basemap", flavor="grayscale", default="vector"),
    )
    with TestClient(create_app(settings)) as client:
        config = client.get("/api/config").json()
        assert config["basemap"] == {
            "default": "vector",
            "vector": {
                "url": "archives/basemap.pmtiles",
                "flavor": "grayscale",
                "attribution": "© OpenStreetMap contributors",
            },
        }
        head = client.get("/archives/basemap.pmtiles", headers={"Range": "bytes=0-126"})
        assert head.status_code == 206
        assert head.content == archive.read_bytes()[:127]
        assert head.content.startswith(b"PMTiles")
        whole = client.get("/archives/basemap.pmtiles")
        assert whole.status_code == 200
        assert Reader(MemorySource(whole.content)).header()["max_zoom"] == MAXZOOM
        missing = client.get("/archives/nothing.pmtiles")
        assert missing.status_code == 404
        assert "basemap" in missing.json()["detail"]


def test_no_vector_basemap_without_an_archive(client: TestClient) -> None:
    assert client.get("/api/config").json()["basemap"] == {"default": "none", "vector": None}
