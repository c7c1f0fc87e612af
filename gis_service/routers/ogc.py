"""OGC API – Features (Part 1 Core + GeoJSON, Part 2 CRS, Part 3 CQL2 text filtering) under ``/ogc``.

Works unchanged with GDAL's OAPIF driver, OWSLib and QGIS. Query parameters that are not
part of the API (nor a property of the collection, for equality filters) are refused with
400, as Part 1 requires.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from psycopg import AsyncConnection

from gis_service.errors import InvalidRequest, NotFound
from gis_service.routers.deps import base_url, get_catalog, get_connection
from gis_service.routers.ogc_tiles import CONFORMANCE as TILES_CONFORMANCE
from gis_service.services import features
from layers.catalog import Catalog, Layer
from layers.filters import FilterError, parse_filter
from layers.history import HistoryError, parse_asof, require_history

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    *TILES_CONFORMANCE,
]

ITEMS_PARAMETERS = {"limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs"}
ITEMS_PARAMETERS |= {"properties", "sortby", "f", "datetime", "revision", "asof"}

Format = Annotated[
    str | None,
    Query(description="Output format: `json` (GeoJSON for features); the default", pattern="^(json|geojson)$"),
]
LayerId = Annotated[str, Path(description="Collection (layer) id, e.g. `redline`", examples=["redline"])]


def _layer(catalog: Catalog, layer_id: str) -> Layer:
    if layer_id not in catalog:
        raise NotFound(f"collection {layer_id!r} does not exist; collections: {', '.join(catalog.ids)}")
    return catalog.get(layer_id)


def _json(document: dict[str, Any], media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(document, ensure_ascii=False), media_type=media_type, headers=headers)


def _link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": media_type}
    if title:
        link["title"] = title
    return link


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.get("/", include_in_schema=False, response_class=Response)
@router.get("", summary="OGC API landing page", response_class=Response, responses={200: {"content": {JSON: {}}}})
async def landing(base: str = Depends(base_url), f: Format = None) -> Response:
    """Links to the API definition, the conformance declaration and the collections."""
    root = f"{base}/ogc"
    return _json(
        {
            "title": "EcoMap Xiamen – OGC API Features",
            "description": "Ecological red lines, protected areas, water-source zones, watersheds, rivers, bays, "
            "stations and districts of Xiamen (生态环境一张图). Demo data is flagged is_sample.",
            "links": [
                _link(root, "self", JSON, "This document"),
                _link(f"{root}/api", "service-desc", OPENAPI, "The API definition"),
                _link(f"{base}/docs", "service-doc", "text/html", "The API documentation"),
                _link(f"{root}/conformance", "conformance", JSON, "Conformance classes"),
                _link(f"{root}/collections", "data", JSON, "The collections"),
                _link(
                    f"{root}/tileMatrixSets",
                    "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                    JSON,
                    "Tile matrix sets (OGC API - Tiles)",
                ),
            ],
        }
    )


@router.get(
    "/conformance", summary="Conformance declaration", response_class=Response, responses={200: {"content": {JSON: {}}}}
)
async def conformance(f: Format = None) -> Response:
    """The OGC conformance classes this API implements."""
    return _json({"conformsTo": CONFORMANCE})


async def _collection_document(conn: AsyncConnection, layer: Layer, base: str) -> dict[str, Any]:
    url = f"{base}/ogc/collections/{layer.id}"
    extent = await features.layer_extent(conn, layer)
    document: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.title.zh} {layer.title.en}",
        "description": layer.description.en if layer.description else layer.title.en,
        "itemType": "feature",
        "crs": list(features.SUPPORTED_CRS),
        "storageCrs": features.CRS84,
        "links": [
            _link(url, "self", JSON, "This collection"),
            _link(f"{url}/items", "items", GEOJSON, "Features as GeoJSON"),
            _link(f"{url}/queryables", REL_QUERYABLES, SCHEMA_JSON, "Queryable properties"),
            _link(f"{url}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON, "Vector tilesets"),
        ],
    }
    if extent is not None:
        document["extent"] = {"spatial": {"bbox": [extent], "crs": features.CRS84}}
    return document


@router.get(
    "/collections",
    summary="The collections (layers)",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}},
)
async def collections(
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """Every catalog layer as a feature collection, with its extent and links."""
    documents = [await _collection_document(conn, layer, base) for layer in catalog]
    return _json({"links": [_link(f"{base}/ogc/collections", "self", JSON, "This document")], "collections": documents})


@router.get(
    "/collections/{layer}",
    summary="One collection",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, 404: {"description": "No such collection"}},
)
async def collection(
    layer: LayerId,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """A collection's description: title, extent computed from its data, CRSs, links."""
    return _json(await _collection_document(conn, _layer(catalog, layer), base))


@router.get(
    "/collections/{layer}/queryables",
    summary="Queryable properties (JSON Schema)",
    response_class=Response,
    responses={200: {"content": {SCHEMA_JSON: {}}}, 404: {"description": "No such collection"}},
)
async def queryables(
    layer: LayerId, catalog: Catalog = Depends(get_catalog), base: str = Depends(base_url), f: Format = None
) -> Response:
    """The properties usable in `filter` and as `?property=value` equality filters."""
    chosen = _layer(catalog, layer)
    schema = features.queryables_schema(chosen, f"{base}/ogc/collections/{chosen.id}/queryables")
    return _json(schema, SCHEMA_JSON)


def _items_query(request: Request, layer: Layer, limit: int, offset: int) -> features.ItemsQuery:
    """Validate the items query string (unknown parameters are refused)."""
    params = request.query_params
    equals: dict[str, Any] = {}
    for key in params:
        if key in ITEMS_PARAMETERS:
            continue
        prop = layer.get_property(key)
        if prop is None:
            raise InvalidRequest(
                f"unknown query parameter {key!r}; use {', '.join(sorted(ITEMS_PARAMETERS))} "
                f"or a property of {layer.id} for equality filters: {', '.join(layer.property_names)}"
            )
        equals[key] = features.coerce_value(prop, params[key])
    if params.get("datetime"):
        raise InvalidRequest(f"collection {layer.id} has no temporal property: remove the datetime parameter")
    crs = features.parse_crs(params.get("crs"))
    bbox_crs = features.parse_crs(params.get("bbox-crs"), "bbox-crs")
    features.parse_crs(params.get("filter-crs"), "filter-crs")
    bbox = features.parse_bbox(params["bbox"], bbox_crs) if params.get("bbox") else None
    compiled = None
    if params.get("filter"):
        language = params.get("filter-lang", "cql2-text")
        if language != "cql2-text":
            raise InvalidRequest(f"filter-lang {language!r} is not supported; use filter-lang=cql2-text")
        try:
            compiled = parse_filter(params["filter"], layer)
        except FilterError as exc:
            raise InvalidRequest(str(exc)) from None
    properties = features.parse_properties(params["properties"], layer) if "properties" in params else None
    sortby = features.parse_sortby(params["sortby"], layer) if params.get("sortby") else []
    revision = int(params["revision"]) if params.get("revision") else None  # validated by the route (ge=0)
    asof = params.get("asof") or None
    if revision is not None or asof is not None:
        try:
            require_history(layer)
            if revision is not None and asof is not None:
                raise HistoryError("give either revision or asof, not both")
            if asof is not None:
                parse_asof(asof)
        except HistoryError as exc:
            raise InvalidRequest(str(exc)) from None
    return features.ItemsQuery(
        limit=min(limit, features.MAX_LIMIT),
        offset=offset,
        bbox=bbox,
        equals=equals,
        filter=compiled,
        properties=properties,
        sortby=sortby,
        crs=crs,
        revision=revision,
        asof=asof,
    )


def _page_url(request: Request, url: str, offset: int, limit: int) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    pairs += [("limit", str(limit)), ("offset", str(offset))]
    return f"{url}?{urlencode(pairs)}"


@router.get(
    "/collections/{layer}/items",
    summary="Features of a collection (GeoJSON)",
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}}, "description": "A GeoJSON FeatureCollection with paging links"},
        400: {"description": "A malformed parameter, unknown property or invalid CQL2 filter"},
        404: {"description": "No such collection"},
    },
)
async def items(
    layer: LayerId,
    request: Request,
    limit: Annotated[
        int, Query(ge=1, description=f"Features per page (default 100; above {features.MAX_LIMIT} the maximum is used)")
    ] = features.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**53, description="Features to skip (use the `next` link)")] = 0,
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat (in bbox-crs; CRS84 by default)", max_length=400)
    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS of bbox", max_length=200)] = None,
    crs: Annotated[
        str | None,
        Query(description=f"Output CRS: {features.CRS84} (default) or {features.CGCS2000} (lat/lon)", max_length=200),
    ] = None,
    filter_text: Annotated[
        str | None, Query(alias="filter", description="CQL2 text, e.g. `zone = '核心区'`", max_length=4000)
    ] = None,
    filter_lang: Annotated[
        str | None, Query(alias="filter-lang", description="Only `cql2-text`", max_length=40)
    ] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="Only CRS84", max_length=200)] = None,
    properties: Annotated[
        str | None, Query(description="Comma-separated properties to return", max_length=2000)
    ] = None,
    sortby: Annotated[
        str | None, Query(description="e.g. `name,-area_km2` (`-` descending); ties by id", max_length=400)
    ] = None,
    revision: Annotated[
        int | None, Query(ge=0, description="Features as of this revision (red lines, protected areas)")
    ] = None,
    asof: Annotated[
        str | None, Query(description="Features as of a date or time, e.g. 2025-06-30", max_length=40)
    ] = None,
    f: Format = None,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
) -> Response:
    """A page of features. Other query parameters named after a property filter by equality
    (e.g. `?zone=核心区`). `numberMatched` is given only when the last page is reached."""
    chosen = _layer(catalog, layer)
    query = _items_query(request, chosen, limit, offset)
    page = await features.fetch_items(conn, chosen, query)
    url = f"{base}/ogc/collections/{chosen.id}/items"
    links = [
        _link(_page_url(request, url, query.offset, query.limit), "self", GEOJSON, "This page"),
        _link(f"{base}/ogc/collections/{chosen.id}", "collection", JSON, "The collection"),
    ]
    if page.has_more:
        links.append(_link(_page_url(request, url, query.offset + query.limit, query.limit), "next", GEOJSON, "Next"))
    if query.offset > 0:
        previous = max(0, query.offset - query.limit)
        links.append(_link(_page_url(request, url, previous, query.limit), "prev", GEOJSON, "Previous page"))
    head: dict[str, Any] = {"type": "FeatureCollection"}
    matched = page.number_matched(query.offset)
    if matched is not None:
        head["numberMatched"] = matched
    head.update(numberReturned=len(page.features), timeStamp=_timestamp(), links=links)
    prefix = json.dumps(head, ensure_ascii=False)[:-1]
    body = prefix + ',"features":[' + ",".join(page.features) + "]}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{query.crs}>"})


@router.get(
    "/collections/{layer}/items/{feature_id}",
    summary="One feature (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, 404: {"description": "No such collection or feature"}},
)
async def item(
    layer: LayerId,
    feature_id: Annotated[str, Path(description="Feature id", max_length=40)],
    crs: Annotated[str | None, Query(description="Output CRS (see items)", max_length=200)] = None,
    f: Format = None,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
) -> Response:
    """A single feature by its stable id."""
    chosen = _layer(catalog, layer)
    output_crs = features.parse_crs(crs)
    feature = await features.fetch_item(conn, chosen, feature_id, output_crs)
    url = f"{base}/ogc/collections/{chosen.id}"
    links = [
        _link(f"{url}/items/{feature_id}", "self", GEOJSON, "This feature"),
        _link(url, "collection", JSON, "The collection"),
    ]
    body = feature[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{output_crs}>"})
