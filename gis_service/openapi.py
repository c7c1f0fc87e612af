"""The OpenAPI document clients read, and the offline API documentation pages.

FastAPI generates an OpenAPI 3.1 document; this module turns it into what the clients
depend on:

- **OpenAPI 3.0.3**, the version the OGC landing page and the ``oas30`` conformance class
  announce (3.1 JSON Schema constructs are rewritten: ``anyOf [X, null]`` → ``nullable``,
  ``examples`` → ``example``, ``const`` → ``enum`` …);
- **unique, stable operation ids**: ``<router module>_<function>`` (e.g. ``ogc_items``);
- **the statuses the API really returns** (400/404/413/415/503 with the shared ``Error``
  schema ``{"detail": string}``; validation errors answer 400, never FastAPI's 422);
- **response schemas** of the documents clients parse (``gis_service.openapi_schemas``);
- **a path per collection** (``/ogc/collections/redline/items`` …) listing its queryable
  properties as typed query parameters and ``filter-lang`` as an enum, as pygeoapi does: GDAL's
  OAPIF driver reads these to decide which ``-where`` clauses it can send to the server.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts from ``/vendor`` (copied
into the frontend build by ``frontend/scripts/copy-vendor.mjs``), so they work offline.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from gis_service.openapi_schemas import add_response_schemas
from gis_service.routers.deps import base_url, get_vendor_dir
from gis_service.services import features
from layers.catalog import Catalog, Layer, LayerProperty

OPENAPI_VERSION = "3.0.3"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
OGC_ROOT = "/ogc"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "description": "What went wrong and how to fix it",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "A message saying what to change"}},
}
ERROR_DESCRIPTIONS = {
    "400": "A malformed, out-of-range or unknown parameter; `detail` says what to fix",
    "401": "Not signed in, or the credentials are invalid or expired (`WWW-Authenticate` says how to sign in)",
    "403": "Signed in, but this role may not do this; `detail` gives the reason",
    "404": "No such resource (layer, feature, revision…); `detail` names the valid ones",
    "413": "The input exceeds a size limit (bytes, vertices, area); `detail` gives the limit",
    "415": "The uploaded file is of a format the service cannot read",
    "429": "Too many attempts; retry after `Retry-After` seconds",
    "503": "The database is unreachable right now (the service recovers by itself); retry later",
}
RETRY_AFTER = {
    "description": "Seconds after which the request may succeed (when the service can tell)",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
}
FILTER_LANGUAGES = ["cql2-text", "cql2-json"]
DATETIME_PARAMETER = {
    "name": "datetime",
    "in": "query",
    "required": False,
    "description": "Features valid at an instant or in an interval (RFC 3339; open ends `..`), e.g. `2025-01-01/..`",
    "schema": {"type": "string", "maxLength": 100},
    "style": "form",
    "explode": False,
}
INT32 = {"format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
# JSON Schema keywords an OpenAPI 3.0 Schema Object allows (others are 3.1-only and dropped).
SCHEMA_30_KEYS = {
    "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
    "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
    "required", "enum", "type", "not", "allOf", "oneOf", "anyOf", "items", "properties",
    "additionalProperties", "description", "format", "default", "nullable", "discriminator", "readOnly",
    "writeOnly", "example", "externalDocs", "deprecated", "xml", "$ref",
}  # fmt: skip


def operation_id(route: APIRoute) -> str:
    """A readable operation id that stays the same between releases: ``<module>_<function>``."""
    module = route.endpoint.__module__.rsplit(".", 1)[-1]
    return f"{module}_{route.name}"


def install_openapi(app: FastAPI, catalog: Callable[[], Catalog]) -> None:
    """Make ``app.openapi()`` build the document described above (once, from the catalog)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, catalog())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.openapi_version = OPENAPI_VERSION  # what the OGC landing page and conformance announce


def build_openapi(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the app's routes and the catalog's collections."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=OPENAPI_VERSION,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["schemas"] = {name: _schema_30(schema) for name, schema in schemas.items()}
    components["schemas"]["Error"] = ERROR_SCHEMA
    for operations in document["paths"].values():
        for operation in operations.values():
            _convert_operation(operation)
            _document_errors(operation)
    add_response_schemas(document)
    _add_collection_paths(document, catalog)
    _check_unique_operation_ids(document)
    return document


def _convert_operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if "schema" in parameter:
            parameter["schema"] = _schema_30(parameter["schema"])
    for container in [operation.get("requestBody", {}), *operation.get("responses", {}).values()]:
        for media in container.get("content", {}).values():
            if "schema" in media:
                media["schema"] = _schema_30(media["schema"])


def _schema_30(schema: Any) -> Any:
    """An OpenAPI 3.0 Schema Object equivalent to a 3.1 (JSON Schema 2020-12) one."""
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    nullable = False
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option != {"type": "null"}]
            nullable = nullable or len(options) < len(schema[key])
            if len(options) == 1:
                del schema[key]
                only = options[0]
                schema = {**schema, **({"allOf": [only]} if "$ref" in only else only)}
            else:
                schema[key] = options
    if isinstance(schema.get("type"), list):
        types = [name for name in schema["type"] if name != "null"]
        nullable = nullable or len(types) < len(schema["type"])
        if len(types) == 1:
            schema["type"] = types[0]
        else:
            del schema["type"]
            schema["anyOf"] = [{"type": name} for name in types]
    if schema.get("type") == "null":
        del schema["type"]
        nullable = True
    if "examples" in schema:
        examples = schema.pop("examples")
        if isinstance(examples, list) and examples:
            schema.setdefault("example", examples[0])
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(schema.get(bound), int | float) and not isinstance(schema[bound], bool):
            schema[limit] = schema[bound]
            schema[bound] = True
    if schema.get("contentMediaType") and schema.get("type") == "string":
        schema.setdefault("format", "binary")
    if nullable:
        schema["nullable"] = True
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties",):
            converted[key] = {name: _schema_30(sub) for name, sub in value.items()}
        elif key in ("items", "not", "additionalProperties"):
            converted[key] = _schema_30(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            converted[key] = [_schema_30(sub) for sub in value]
        elif key in SCHEMA_30_KEYS or key.startswith("x-"):
            converted[key] = value
    return converted


def _document_errors(operation: dict[str, Any]) -> None:
    """Declare the error statuses an operation can answer, each with the ``Error`` schema."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # request validation errors answer 400 (gis_service.errors)
    parameters = operation.get("parameters", [])
    statuses = {"503"}
    if parameters or "requestBody" in operation:
        statuses.add("400")
    if any(p["in"] == "path" for p in parameters) or any(p["name"] == "revision" for p in parameters):
        statuses.add("404")  # an unknown id in the path, or a revision that does not exist
    if "requestBody" in operation:
        statuses |= {"413", "415"}
    if operation.get("security"):  # asks gis_service.access.policy who the caller is
        statuses |= {"401", "403"}
    for status in statuses:
        responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
    for status in ("429", "503"):
        if status in responses:
            responses[status].setdefault("headers", {"Retry-After": RETRY_AFTER})
    for status, response in responses.items():
        if status[0] in "45":
            content = response.setdefault("content", {})
            if not content:
                content["application/json"] = {"schema": ERROR_REF}
            for media in content.values():
                if not media.get("schema"):
                    media["schema"] = ERROR_REF


def _property_parameter(prop: LayerProperty) -> dict[str, Any]:
    schema: dict[str, Any]
    if prop.type == "date":
        schema = {"type": "string", "format": "date"}
    elif prop.type == "integer":
        schema = {"type": "integer", **INT32}
    else:
        schema = {"type": prop.type}
    if prop.values:
        schema["enum"] = list(prop.values)
    return {
        "name": prop.name,
        "in": "query",
        "required": False,
        "description": f"Only features whose {prop.title.en} ({prop.title.zh}) equals this value",
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _collection_items(template: dict[str, Any], layer: Layer) -> dict[str, Any]:
    """The items operation of one collection: the template's parameters, typed for this layer."""
    operation = copy.deepcopy(template)
    operation["operationId"] = f"ogc_items_{layer.id}"
    operation["summary"] = f"Features of {layer.id}: {layer.title.en} ({layer.title.zh})"
    parameters = [p for p in operation.get("parameters", []) if p["in"] != "path"]
    names = {p["name"] for p in parameters}
    for parameter in parameters:
        name = parameter["name"]
        if name == "filter-lang":
            parameter["schema"] = {"type": "string", "enum": FILTER_LANGUAGES, "default": FILTER_LANGUAGES[0]}
        elif name == "properties":
            parameter["schema"] = {"type": "array", "items": {"type": "string", "enum": layer.property_names}}
            parameter.update(style="form", explode=False)
        elif name in ("crs", "bbox-crs", "filter-crs"):
            parameter["schema"] = {"type": "string", "enum": list(features.SUPPORTED_CRS), "format": "uri"}
    if "datetime" not in names:  # read from the query string by the route; OGC API Features Part 1 names it
        parameters.append(DATETIME_PARAMETER)
    parameters += [_property_parameter(prop) for prop in layer.properties if prop.name not in names]
    operation["parameters"] = parameters
    return operation


def _add_collection_paths(document: dict[str, Any], catalog: Catalog) -> None:
    """``/ogc/collections/<id>/items`` for each collection, after the templated path."""
    paths = document["paths"]
    template_path = next(
        (path for path in paths if path.startswith("/ogc/collections/{") and path.endswith("}/items")), None
    )
    if template_path is None:
        return
    template = paths[template_path]["get"]
    ordered: dict[str, Any] = {}
    for path, item in paths.items():
        ordered[path] = item
        if path == template_path:
            for layer in catalog:
                ordered[f"/ogc/collections/{layer.id}/items"] = {"get": _collection_items(template, layer)}
    document["paths"] = ordered


def ogc_api_document(document: dict[str, Any], base: str) -> dict[str, Any]:
    """The OpenAPI of the OGC API alone, its paths relative to the landing page ``/ogc``.

    OGC clients look operations up by the path relative to the landing page: GDAL's OAPIF driver
    reads ``paths["/collections/<id>/items"]`` of the landing page's ``service-desc`` to learn the
    queryables it may send to the server.
    """
    prefix = OGC_ROOT + "/"
    paths = {path[len(OGC_ROOT) :]: item for path, item in document["paths"].items() if path.startswith(prefix)}
    if OGC_ROOT in document["paths"]:
        paths = {"/": document["paths"][OGC_ROOT], **paths}
    return {
        **document,
        "info": {**document["info"], "title": f"{document['info']['title']} – OGC API"},
        "servers": [{"url": f"{base}{OGC_ROOT}", "description": "The OGC API landing page"}],
        "paths": paths,
    }


def _check_unique_operation_ids(document: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            previous = seen.setdefault(operation["operationId"], label)
            if previous != label:
                raise ValueError(f"operationId {operation['operationId']!r} of {label} is also that of {previous}")


def add_documentation_routes(app: FastAPI, vendor_url: str = "/vendor") -> None:
    """``/ogc/api`` (the OGC API's own OpenAPI document), and ``/docs`` (Swagger UI) and ``/redoc``
    (ReDoc) from the service's own copies of their scripts."""
    title = f"{app.title} – documentation"
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(f"{OGC_ROOT}/api", include_in_schema=False)
    async def ogc_openapi(base: str = Depends(base_url)) -> JSONResponse:
        return JSONResponse(ogc_api_document(app.openapi(), base), media_type=OPENAPI_MEDIA_TYPE)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(vendor: Path = Depends(get_vendor_dir)) -> Response:
        if not (vendor / "swagger-ui-dist" / "swagger-ui-bundle.js").is_file():
            return _assets_missing(vendor, "Swagger UI")
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{vendor_url}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor_url}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{vendor_url}/swagger-ui-dist/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from the online validator
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(vendor: Path = Depends(get_vendor_dir)) -> Response:
        if not (vendor / "redoc" / "redoc.standalone.js").is_file():
            return _assets_missing(vendor, "ReDoc")
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{vendor_url}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{vendor_url}/swagger-ui-dist/favicon-32x32.png",
            with_google_fonts=False,
        )


def _assets_missing(vendor: Path, name: str) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"{name} is not in the frontend build ({vendor}): build it with "
            "`cd frontend && npm ci && npm run build` (scripts/bootstrap.sh does); /openapi.json works meanwhile"
        },
        status_code=503,
    )
