"""OGC API – Features (Part 1 Core + GeoJSON + HTML, Part 2 CRS, Part 3 CQL2 filtering, sorting) under ``/ogc``.

Works unchanged with GDAL's OAPIF driver, OWSLib and QGIS; browsers get HTML views
(``f=html`` or their ``Accept``). Query parameters that are not part of the API (nor a
property of the collection, for equality filters) are refused with 400, as Part 1 requires.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from psycopg import AsyncConnection

from gis_service.access import layer_rules, policy
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.access.scopes import FeatureScope
from gis_service.errors import InvalidRequest
from gis_service.routers import ogc_html
from gis_service.routers.deps import base_url, get_catalog, get_connection, get_read_connection
from gis_service.routers.ogc_tiles import CONFORMANCE as TILES_CONFORMANCE
from gis_service.services import features, resolve
from layers.catalog import Catalog, Layer

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = ogc_html.HTML
SCHEMA_JSON = "application/schema+json"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
OAS30 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    *TILES_CONFORMANCE,
]
"""Conformance classes. The OpenAPI class of Part 1 (``conf/oas30``) is declared only when the
service's API definition really is OpenAPI 3.0 (see :func:`_openapi_version`); FastAPI writes
3.1, for which Part 1 defines no class."""

ITEMS_PARAMETERS = {"limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs"}
ITEMS_PARAMETERS |= {"properties", "skipGeometry", "sortby", "f", "datetime", "revision", "asof"}

Format = Annotated[
    Literal["json", "geojson", "html"] | None,
    Query(
        description="Output format: `json` (GeoJSON for features, the default for API clients) or `html` "
        "(the default for browsers, by their Accept header)"
    ),
]
LayerId = Annotated[str, Path(description="Collection (layer) id, e.g. `redline`", examples=["redline"])]


def _json(document: dict[str, Any], media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(document, ensure_ascii=False), media_type=media_type, headers=headers)


def _link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": media_type}
    if title:
        link["title"] = title
    return link


def _self_links(href: str, media_type: str = JSON) -> list[dict[str, str]]:
    """``self`` in JSON and its ``alternate`` HTML view."""
    return [
        _link(href, "self", media_type, "This document"),
        _link(ogc_html.with_format(href, "html"), "alternate", HTML, "This document as HTML"),
    ]


def _reply(
    request: Request,
    f: str | None,
    base: str,
    document: dict[str, Any],
    template: str,
    media_type: str = JSON,
    **context: Any,
) -> Response:
    """The document as JSON, or as its HTML view when the request asks for HTML."""
    if ogc_html.wants_html(request, f):
        query = f"?{request.url.query}" if request.url.query else ""
        here = f"{base}{request.url.path}{query}"
        return ogc_html.render(template, doc=document, root=f"{base}/ogc", self_href=here, **context)
    return _json(document, media_type, headers={"Vary": "Accept"})


def _openapi_version(request: Request) -> str:
    """The major.minor version of the OpenAPI document the service publishes (gis_service.openapi)."""
    return ".".join(str(request.app.openapi_version).split(".")[:2])


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


RESPONSES_JSON = {200: {"content": {JSON: {}, HTML: {}}}}
NOT_FOUND = {404: {"description": "No such collection"}}


@router.get("/", include_in_schema=False, response_class=Response)
@router.get("", summary="OGC API landing page", response_class=Response, responses=RESPONSES_JSON)
async def landing(request: Request, base: str = Depends(base_url), f: Format = None) -> Response:
    """Links to the API definition, the conformance declaration and the collections."""
    root = f"{base}/ogc"
    openapi = f"application/vnd.oai.openapi+json;version={_openapi_version(request)}"
    document = {
        "title": "EcoMap Xiamen – OGC API Features",
        "description": "Ecological red lines, protected areas, water-source zones, watersheds, rivers, bays, "
        "stations and districts of Xiamen (生态环境一张图). Demo data is flagged is_sample.",
        "links": [
            *_self_links(root),
            _link(f"{root}/api", "service-desc", openapi, "The API definition (paths relative to /ogc)"),
            _link(f"{base}/docs", "service-doc", HTML, "The API documentation"),
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
    return _reply(request, f, base, document, "landing.html", title="EcoMap Xiamen OGC API")


@router.get("/conformance", summary="Conformance declaration", response_class=Response, responses=RESPONSES_JSON)
async def conformance(request: Request, base: str = Depends(base_url), f: Format = None) -> Response:
    """The OGC conformance classes this API implements."""
    classes = list(CONFORMANCE)
    if _openapi_version(request) == "3.0":  # Part 1 defines an OpenAPI class for 3.0 only
        classes.insert(2, OAS30)
    return _reply(request, f, base, {"conformsTo": classes}, "conformance.html", title="Conformance")


async def _collection_document(
    conn: AsyncConnection, layer: Layer, base: str, scope: FeatureScope | None = None
) -> dict[str, Any]:
    url = f"{base}/ogc/collections/{layer.id}"
    extent: dict[str, Any] = {}
    bbox = await features.layer_extent(conn, layer, scope)
    if bbox is not None:
        extent["spatial"] = {"bbox": [bbox], "crs": features.CRS84}
    interval = await features.temporal_extent(conn, layer, scope)
    if interval is not None:
        extent["temporal"] = {"interval": [interval], "trs": features.TRS_GREGORIAN}
    document: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.title.zh} {layer.title.en}",
        "description": layer.description.en if layer.description else layer.title.en,
        "itemType": "feature",
        "crs": list(features.SUPPORTED_CRS),
        "storageCrs": features.CRS84,
        "links": [
            *_self_links(url),
            _link(f"{url}/items", "items", GEOJSON, "Features as GeoJSON"),
            _link(f"{url}/queryables", REL_QUERYABLES, SCHEMA_JSON, "Queryable properties"),
            _link(f"{url}/sortables", REL_SORTABLES, SCHEMA_JSON, "Sortable properties"),
            _link(f"{url}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", JSON, "Vector tilesets"),
        ],
    }
    if extent:
        document["extent"] = extent
    return document


@router.get("/collections", summary="The collections (layers)", response_class=Response, responses=RESPONSES_JSON)
async def collections(
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """Every layer the caller may read as a feature collection, with its extent and links."""
    readable = layer_rules.readable_layers(principal, catalog)
    scope = await policy.scope_on(conn, catalog, principal)
    documents = [await _collection_document(conn, layer, base, scope) for layer in readable]
    document = {"links": _self_links(f"{base}/ogc/collections"), "collections": documents}
    return _reply(request, f, base, document, "collections.html", title="Collections")


@router.get(
    "/collections/{layer}",
    summary="One collection",
    response_class=Response,
    responses={**RESPONSES_JSON, **NOT_FOUND},
)
async def collection(
    layer: LayerId,
    request: Request,
    conn: AsyncConnection = Depends(get_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """A collection's description: title, spatial and temporal extent computed from its data (for a
    caller scoped to an area, from the features inside it), CRSs, links."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    document = await _collection_document(conn, chosen, base, await policy.scope_on(conn, catalog, principal))
    return _reply(request, f, base, document, "collection.html", title=document["title"])


SCHEMA_RESPONSES = {200: {"content": {SCHEMA_JSON: {}, HTML: {}}}, **NOT_FOUND}


@router.get(
    "/collections/{layer}/queryables",
    summary="Queryable properties (JSON Schema)",
    response_class=Response,
    responses=SCHEMA_RESPONSES,
)
async def queryables(
    layer: LayerId,
    request: Request,
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """The properties usable in `filter` and as `?property=value` equality filters."""
    explanation = "properties usable in filter (CQL2) and as ?property=value equality filters"
    return _schema_reply(
        request, f, base, layer_rules.readable_layer(principal, catalog, layer), "queryables", explanation
    )


@router.get(
    "/collections/{layer}/sortables",
    summary="Sortable properties (JSON Schema)",
    response_class=Response,
    responses=SCHEMA_RESPONSES,
)
async def sortables(
    layer: LayerId,
    request: Request,
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
    f: Format = None,
) -> Response:
    """The properties usable in `sortby` (OGC API – Features Part 8, Sorting)."""
    explanation = "properties usable in sortby (e.g. sortby=-area_km2,name)"
    return _schema_reply(
        request, f, base, layer_rules.readable_layer(principal, catalog, layer), "sortables", explanation
    )


def _schema_reply(request: Request, f: str | None, base: str, chosen: Layer, kind: str, explanation: str) -> Response:
    """The queryables or sortables JSON Schema of a collection, or its HTML view."""
    build = features.queryables_schema if kind == "queryables" else features.sortables_schema
    schema = build(chosen, f"{base}/ogc/collections/{chosen.id}/{kind}")
    title = f"{kind.capitalize()} of {chosen.id}"
    return _reply(request, f, base, schema, "schema.html", SCHEMA_JSON, title=title, explanation=explanation)


def _items_query(
    request: Request, layer: Layer, catalog: Catalog, limit: int, offset: int, revision: int | None
) -> features.ItemsQuery:
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
    crs = features.parse_crs(params.get("crs"))
    bbox_crs = features.parse_crs(params.get("bbox-crs"), "bbox-crs")
    filter_crs = features.parse_crs(params.get("filter-crs"), "filter-crs")
    bbox = features.parse_bbox(params["bbox"], bbox_crs) if params.get("bbox") else None
    language = features.filter_language(params.get("filter-lang"))
    compiled = None
    if params.get("filter"):
        compiled = features.parse_items_filter(params["filter"], layer, language, filter_crs)
    interval = None
    if params.get("datetime"):
        interval = features.parse_items_datetime(params["datetime"], layer, list(catalog))
    properties = features.parse_properties(params["properties"], layer) if "properties" in params else None
    sortby = features.parse_sortby(params["sortby"], layer) if params.get("sortby") else []
    return features.ItemsQuery(
        limit=min(limit, features.MAX_LIMIT),
        offset=offset,
        bbox=bbox,
        equals=equals,
        filter=compiled,
        properties=properties,
        skip_geometry=params.get("skipGeometry") == "true",  # true or false (checked by the route)
        sortby=sortby,
        crs=crs,
        revision=revision,
        datetime=interval,
    )


def _page_url(request: Request, url: str, offset: int, limit: int) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit", "f")]
    pairs += [("limit", str(limit)), ("offset", str(offset))]
    return f"{url}?{urlencode(pairs)}"


ITEMS_DESCRIPTION = f"""A page of features. Other query parameters named after a property filter by equality
(e.g. `?zone=核心区`).

`datetime` (an instant `2023-06-01`, an interval `2023-01-01/2023-12-31`, or open `2023-01-01/..`,
`../2023-12-31`) selects the features whose time intersects it, on collections with a temporal
property (red lines: `valid_from`; protected areas: the year `established`); a feature's time
is its calendar day or year, date-times count by their UTC day.

`numberMatched` is on every page: exact when any filter, `bbox`, `datetime`, equality filter or
`revision`/`asof` is given (a `COUNT` of the filtered query, or known from the last page); for an
unfiltered collection exact up to {features.EXACT_COUNT_ROWS:,} rows and the planner's estimate
(`pg_class.reltuples`, refreshed by ANALYZE) for larger tables.

`filter` is CQL2 text (`filter-lang=cql2-text`, the default) or CQL2-JSON (`filter-lang=cql2-json`);
values are checked against the property types (see `/queryables`). Coordinates in a filter are
CRS84 lon/lat, or lat/lon with `filter-crs=http://www.opengis.net/def/crs/EPSG/0/4490`."""


ETAG_DESCRIPTION = (
    "A weak ETag of the page's content and of the layer's revision: it changes when anything in the "
    "collection does, so a federating partner asking the first page with `If-None-Match` learns whether "
    "the whole collection changed (304: it did not)"
)


@router.get(
    "/collections/{layer}/items",
    summary="Features of a collection (GeoJSON)",
    description=ITEMS_DESCRIPTION,
    response_class=Response,
    responses={
        200: {
            "content": {GEOJSON: {}, HTML: {}},
            "description": "A GeoJSON FeatureCollection with paging links",
            "headers": {"ETag": {"description": ETAG_DESCRIPTION, "schema": {"type": "string"}}},
        },
        304: {"description": "`If-None-Match` holds the page's ETag: nothing changed (no body)"},
        400: {"description": "A malformed parameter, unknown property or invalid CQL2 filter"},
        404: {"description": "No such collection, or a revision that does not exist"},
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
    datetime: Annotated[
        str | None,
        Query(
            description="An instant (`2023-06-01`) or interval (`2023-01-01/2023-12-31`, `2023-01-01/..`, "
            "`../2023-12-31`) the features' time must intersect",
            max_length=100,
        ),
    ] = None,
    crs: Annotated[
        str | None,
        Query(description=f"Output CRS: {features.CRS84} (default) or {features.CGCS2000} (lat/lon)", max_length=200),
    ] = None,
    filter_text: Annotated[
        str | None,
        Query(alias="filter", description="CQL2 text, e.g. `zone = '核心区'`, or CQL2-JSON", max_length=4000),
    ] = None,
    filter_lang: Annotated[
        str | None,
        Query(alias="filter-lang", description="`cql2-text` (default) or `cql2-json`", max_length=40),
    ] = None,
    filter_crs: Annotated[
        str | None,
        Query(
            alias="filter-crs",
            description=f"CRS of the coordinates in filter: {features.CRS84} (default, lon/lat) or "
            f"{features.CGCS2000} (lat/lon)",
            max_length=200,
        ),
    ] = None,
    properties: Annotated[
        str | None, Query(description="Comma-separated properties to return", max_length=2000)
    ] = None,
    skip_geometry: Annotated[
        Literal["true", "false"] | None,
        Query(
            alias="skipGeometry",
            description="`true`: every feature with a null geometry and its `bbox` (in the output `crs`'s axis "
            "order, rounded as coordinates are) instead: the attributes of many features at a fraction of the size",
        ),
    ] = None,
    sortby: Annotated[
        str | None,
        Query(description="e.g. `name,-area_km2` (`-` descending; see /sortables); ties by id", max_length=400),
    ] = None,
    revision: Annotated[
        int | None, Query(ge=0, description="Features as of this revision (red lines, protected areas)")
    ] = None,
    asof: Annotated[
        str | None, Query(description="Features as of a date or time, e.g. 2025-06-30", max_length=40)
    ] = None,
    f: Format = None,
    conn: AsyncConnection = Depends(get_read_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
) -> Response:
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    selected_revision = await resolve.revision(conn, chosen, revision, asof)
    query = _items_query(request, chosen, catalog, limit, offset, selected_revision)
    query = dataclasses.replace(query, scope=await policy.scope_on(conn, catalog, principal))
    page = await features.fetch_items(conn, chosen, query)
    url = f"{base}/ogc/collections/{chosen.id}/items"
    here = _page_url(request, url, query.offset, query.limit)
    links = [
        _link(here, "self", GEOJSON, "This page"),
        _link(ogc_html.with_format(here, "html"), "alternate", HTML, "This page as HTML"),
        _link(f"{base}/ogc/collections/{chosen.id}", "collection", JSON, "The collection"),
    ]
    if page.has_more:
        links.append(_link(_page_url(request, url, query.offset + query.limit, query.limit), "next", GEOJSON, "Next"))
    if query.offset > 0:
        previous = max(0, query.offset - query.limit)
        links.append(_link(_page_url(request, url, previous, query.limit), "prev", GEOJSON, "Previous page"))
    head: dict[str, Any] = {"type": "FeatureCollection", "numberMatched": page.number_matched}
    head.update(numberReturned=len(page.features), timeStamp=_timestamp(), links=links)
    if ogc_html.wants_html(request, f):
        columns = query.properties if query.properties is not None else chosen.property_names
        return ogc_html.render(
            "items.html",
            headers={"Content-Crs": f"<{query.crs}>"},
            doc=head,
            features=[json.loads(feature) for feature in page.features],
            columns=columns,
            title=f"{chosen.title.zh} {chosen.title.en}",
            root=f"{base}/ogc",
            self_href=here,
            items_href=url,
            collection_href=f"{base}/ogc/collections/{chosen.id}",
        )
    prefix = json.dumps(head, ensure_ascii=False)[:-1]
    body = prefix + ',"features":[' + ",".join(page.features) + "]}"
    etag = await features.items_etag(conn, chosen, head, page.features)
    headers = {"Content-Crs": f"<{query.crs}>", "Vary": "Accept", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{layer}/items/{feature_id}",
    summary="One feature (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, HTML: {}}}, 404: {"description": "No such collection or feature"}},
)
async def item(
    layer: LayerId,
    request: Request,
    feature_id: Annotated[str, Path(description="Feature id", max_length=40)],
    crs: Annotated[str | None, Query(description="Output CRS (see items)", max_length=200)] = None,
    f: Format = None,
    conn: AsyncConnection = Depends(get_read_connection),
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
    base: str = Depends(base_url),
) -> Response:
    """A single feature by its stable id."""
    chosen = layer_rules.readable_layer(principal, catalog, layer)
    output_crs = features.parse_crs(crs)
    scope = await policy.scope_on(conn, catalog, principal)
    feature = await features.fetch_item(conn, chosen, feature_id, output_crs, scope)
    url = f"{base}/ogc/collections/{chosen.id}"
    here = f"{url}/items/{feature_id}"
    links = [
        _link(here, "self", GEOJSON, "This feature"),
        _link(ogc_html.with_format(here, "html"), "alternate", HTML, "This feature as HTML"),
        _link(url, "collection", JSON, "The collection"),
    ]
    if ogc_html.wants_html(request, f):
        document = json.loads(feature)
        return ogc_html.render(
            "item.html",
            headers={"Content-Crs": f"<{output_crs}>"},
            doc=document,
            geometry_text=json.dumps(document.get("geometry"), ensure_ascii=False)[:20000],
            title=f"{chosen.title.en} {feature_id}",
            root=f"{base}/ogc",
            self_href=here,
            collection_href=url,
        )
    body = feature[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{output_crs}>", "Vary": "Accept"})
