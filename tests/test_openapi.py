"""The OpenAPI document clients depend on, and HEAD wherever GET is served.

- /openapi.json (and the OGC API's own /ogc/api) pass openapi-spec-validator and are the
  OpenAPI version the landing page and the conformance declaration announce (3.0);
- operation ids are unique, readable and stable;
- every operation documents the error statuses the service answers, with the shared
  ``Error`` schema (and never FastAPI's 422, which the service does not use);
- each collection has its own items path, with its queryable properties as typed parameters;
- HEAD answers the GET's status and headers, without a body.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from gis_service import create_app
from gis_service.settings import Settings
from layers.catalog import load_catalog

OAS30_CONFORMANCE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def openapi(live_server: str) -> dict:
    return httpx.get(f"{live_server}/openapi.json", timeout=30).json()


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_openapi_json_validates_and_is_the_announced_version(live_server: str, openapi: dict) -> None:
    validate(openapi)  # raises with the first error (duplicate operationIds on the old code)
    landing = httpx.get(f"{live_server}/ogc", timeout=30).json()
    (service_desc,) = [link for link in landing["links"] if link["rel"] == "service-desc"]
    announced = re.search(r"version=(\d+\.\d+)", service_desc["type"])
    assert announced, service_desc
    described = httpx.get(service_desc["href"], timeout=30)
    assert described.status_code == 200
    assert described.headers["content-type"] == service_desc["type"]
    version = described.json()["openapi"]
    assert version.startswith(announced.group(1) + "."), (version, service_desc["type"])
    assert openapi["openapi"] == version
    conformance = httpx.get(f"{live_server}/ogc/conformance", timeout=30).json()["conformsTo"]
    assert OAS30_CONFORMANCE in conformance and version.startswith("3.0.")


def test_ogc_api_document_validates_with_paths_relative_to_the_landing_page(live_server: str, openapi: dict) -> None:
    document = httpx.get(f"{live_server}/ogc/api", timeout=30).json()
    validate(document)
    assert document["servers"] == [{"url": f"{live_server}/ogc", "description": "The OGC API landing page"}]
    ogc_paths = {
        path.removeprefix("/ogc") or "/" for path in openapi["paths"] if path == "/ogc" or path.startswith("/ogc/")
    }
    assert set(document["paths"]) == ogc_paths
    assert "/collections/redline/items" in document["paths"]
    assert "/tiles/{layers}.json" not in document["paths"]


def test_operation_ids_are_unique_readable_and_stable(openapi: dict) -> None:
    ids = [op["operationId"] for _, _, op in _operations(openapi)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    by_route = {(method, path): op["operationId"] for method, path, op in _operations(openapi)}
    assert by_route["get", "/tiles/{layers}/{z}/{x}/{y}.pbf"] == "tiles_vector_tile"
    assert by_route["get", "/tiles/raster/{raster_id}/{z}/{x}/{y}.{image_format}"] == "rasters_raster_tile"
    assert by_route["get", "/ogc/collections/{layer}/items"] == "ogc_items"
    assert by_route["get", "/ogc/collections/redline/items"] == "ogc_items_redline"
    assert not any(method == "head" for method, _, _ in _operations(openapi))  # HEAD is implied by GET


def test_every_operation_documents_its_error_statuses_with_the_error_schema(openapi: dict) -> None:
    error = openapi["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"] and error["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for method, path, op in _operations(openapi):
        responses = op["responses"]
        assert "422" not in responses, f"{method} {path}: validation errors answer 400"
        expected = {"503"}
        if op.get("parameters") or op.get("requestBody"):
            expected.add("400")
        if "{" in path or any(p["name"] == "revision" for p in op.get("parameters", [])):
            expected.add("404")
        if op.get("requestBody"):
            expected |= {"413", "415"}
        assert expected <= set(responses), f"{method} {path} documents {sorted(responses)}"
        retry_after = responses["503"]["headers"]["Retry-After"]
        assert retry_after["schema"]["type"] == "integer" and not retry_after.get("required", False), (method, path)
        for status, response in responses.items():
            if status[0] in "45" and path != "/healthz":
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (path, status)


def test_a_refused_request_answers_a_documented_status_with_the_error_body(client: TestClient, openapi: dict) -> None:
    response = client.get("/ogc/collections/redline/items", params={"limit": "0"})
    assert response.status_code == 400
    assert "limit" in response.json()["detail"]
    assert "400" in openapi["paths"]["/ogc/collections/redline/items"]["get"]["responses"]
    missing = client.get("/ogc/collections/nowhere/items")
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


def test_each_collection_has_an_items_path_with_its_queryables_as_typed_parameters(openapi: dict) -> None:
    catalog = load_catalog()
    assert "/ogc/collections/{layer}/items" in openapi["paths"]  # the templated path stays
    json_types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "date": "string"}
    for layer in catalog:
        operation = openapi["paths"][f"/ogc/collections/{layer.id}/items"]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert all(p["in"] == "query" for p in parameters.values()), layer.id
        assert {"filter", "filter-lang", "datetime", "bbox", "limit", "sortby", "properties", "crs"} <= set(parameters)
        assert parameters["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql2-json"]
        assert parameters["properties"]["schema"]["items"]["enum"] == layer.property_names
        for prop in layer.properties:
            schema = parameters[prop.name]["schema"]
            assert schema["type"] == json_types[prop.type], (layer.id, prop.name)
            if prop.type == "date":
                assert schema["format"] == "date"
            if prop.values:
                assert schema["enum"] == prop.values


HEAD_PATHS = [
    "/ogc",
    "/ogc/collections",
    "/ogc/collections/redline",
    "/ogc/collections/redline/items?limit=3",
    "/ogc/collections/redline/queryables",
    "/tiles/redline.json",
    "/styles/default.json",
    "/tiles/redline/12/3391/1760.pbf",
    "/ogc/collections/redline/tiles/WebMercatorQuad/12/1760/3391",
    "/healthz",
    "/api/layers",
    "/openapi.json",
]


@pytest.mark.parametrize("path", HEAD_PATHS)
def test_head_answers_the_status_and_headers_of_get_without_a_body(live_server: str, path: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as http:
        get = http.get(path)
        head = http.head(path)
    assert get.status_code == 200, (path, get.status_code, get.text[:200])
    assert len(get.content) > 0
    assert head.status_code == get.status_code, (path, head.status_code, head.text[:200])
    assert head.content == b""
    differing = {"date", "x-request-id"}  # per response
    assert {k: v for k, v in head.headers.items() if k not in differing} == {
        k: v for k, v in get.headers.items() if k not in differing
    }
    assert int(head.headers["content-length"]) == int(get.headers["content-length"])


def test_head_of_an_unknown_resource_is_the_get_404(live_server: str) -> None:
    head = httpx.head(f"{live_server}/ogc/collections/nowhere", timeout=30)
    get = httpx.get(f"{live_server}/ogc/collections/nowhere", timeout=30)
    assert head.status_code == get.status_code == 404
    assert head.content == b"" and head.headers["content-length"] == get.headers["content-length"]


def test_docs_pages_load_their_scripts_from_the_service(client: TestClient) -> None:
    for page, script in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert any(source.endswith(script) for source in sources), (page, sources)
        assert all(source.startswith("/") for source in sources), (page, sources)
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html


def test_docs_say_how_to_build_their_assets_when_the_frontend_build_lacks_them(tmp_path: Path) -> None:
    app = create_app(Settings(frontend_dir=tmp_path))  # no lifespan: these pages need no database
    http = TestClient(app)
    for page in ("/docs", "/redoc"):
        response = http.get(page)
        assert response.status_code == 503
        assert "npm run build" in response.json()["detail"]


def test_the_documents_clients_parse_have_response_schemas(openapi: dict, live_server: str) -> None:
    """The fuzz test validates answers against these; here: they are declared, and hold for real answers."""
    by_id = {op["operationId"]: (path, op) for _, path, op in _operations(openapi)}
    expected = {
        "ogc_landing": "LandingPage",
        "ogc_items": "FeatureCollection",
        "ogc_items_redline": "FeatureCollection",
    }
    expected |= {
        "ogc_tiles_layer_tileset": "TileSet",
        "tiles_layer_tilejson": "TileJSON",
        "rasters_tilejson": "TileJSON",
    }
    for operation_id, name in expected.items():
        ok = by_id[operation_id][1]["responses"]["200"]["content"]
        machine = [media["schema"] for media_type, media in ok.items() if media_type != "text/html"]  # + HTML view
        assert machine == [{"$ref": f"#/components/schemas/{name}"}], operation_id
    feature_collection = openapi["components"]["schemas"]["FeatureCollection"]
    page = httpx.get(f"{live_server}/ogc/collections/redline/items?limit=2", timeout=30).json()
    assert set(feature_collection["required"]) <= set(page) and page["type"] == "FeatureCollection"
    link = openapi["components"]["schemas"]["Link"]
    assert all(set(link["required"]) <= set(item) for item in page["links"])
