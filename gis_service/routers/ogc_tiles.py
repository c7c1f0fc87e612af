"""OGC API – Tiles (Core, TileSet, TileMatrixSet) over the same tile engine as ``/tiles``.

Note the OGC order of the tile path: ``{tileMatrix}/{tileRow}/{tileCol}`` = z/y/x.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from gis_service.access import layer_rules
from gis_service.access.policy import current_principal
from gis_service.access.principal import Principal
from gis_service.errors import NotFound
from gis_service.routers.deps import base_url, get_catalog
from gis_service.routers.tiles import AsOfParam, FilterParam, PropertiesParam, RevisionParam, serve_tile
from gis_service.services.features import property_schema
from gis_service.services.resolve import layer as resolve_layer
from gis_service.tile_http import MVT_MEDIA_TYPE
from layers.catalog import Catalog, Layer, LayerProperty
from tiles.grid import TMS
from tiles.sql import label_properties
from tiles.style import XIAMEN_BOUNDS

router = APIRouter(prefix="/ogc", tags=["OGC API - Tiles"])

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
]
JSON = "application/json"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
GEOMETRY_DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1}


def _check_tms(tile_matrix_set: str) -> None:
    if tile_matrix_set != TMS_ID:
        raise NotFound(f"unknown tile matrix set {tile_matrix_set!r}; available: {TMS_ID}")


@router.get("/tileMatrixSets", summary="Tile matrix sets")
async def tile_matrix_sets(base: str = Depends(base_url)) -> dict[str, Any]:
    return {
        "tileMatrixSets": [
            {
                "id": TMS_ID,
                "title": "Google Maps Compatible for the World",
                "uri": TMS_URI,
                "links": [{"rel": "self", "href": f"{base}/ogc/tileMatrixSets/{TMS_ID}", "type": JSON}],
            }
        ]
    }


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="A tile matrix set definition")
async def tile_matrix_set(tileMatrixSetId: str) -> dict[str, Any]:
    _check_tms(tileMatrixSetId)
    return tile_matrix_set_document()


def tile_matrix_set_document() -> dict[str, Any]:
    """WebMercatorQuad as OGC TMS 2.0 JSON, with the TMS 1.0 names of the same values as well
    (``identifier``, ``supportedCRS``, ``boundingBox`` corners, ``topLeftCorner``): GDAL up to
    3.6 reads only those, newer GDAL and other clients read the 2.0 ones."""
    document = TMS.model_dump(mode="json", exclude_none=True)
    west, south, east, north = TMS.xy_bbox
    document["identifier"] = document["id"]
    document["supportedCRS"] = document["crs"]
    document["boundingBox"] = {
        "crs": document["crs"],
        "lowerLeft": [west, south],
        "upperRight": [east, north],
        "lowerCorner": [west, south],
        "upperCorner": [east, north],
    }
    for matrix in document["tileMatrices"]:
        matrix["identifier"] = matrix["id"]
        matrix["topLeftCorner"] = matrix["pointOfOrigin"]
    return document


def _properties_schema(properties: list[LayerProperty]) -> dict[str, Any]:
    return {"type": "object", "properties": {prop.name: property_schema(prop) for prop in properties}}


def tileset_layers(layer: Layer) -> list[dict[str, Any]]:
    """The MVT layers a layer's tiles carry: its features, and the label points of a labelled
    polygon layer (``<id>_label``, from the label's minzoom on; see ``tiles.sql``)."""
    described = [
        {
            "id": layer.id,
            "title": layer.title.en,
            "description": layer.title.zh,
            "dataType": "vector",
            "geometryDimension": GEOMETRY_DIMENSION.get(layer.geometry_type, 2),
            "minTileMatrix": str(layer.minzoom),
            "maxTileMatrix": str(layer.maxzoom),
            "propertiesSchema": _properties_schema(list(layer.properties)),
        }
    ]
    if layer.is_polygon and layer.style.label is not None:
        described.append(
            {
                "id": f"{layer.id}_label",
                "title": f"Label points of {layer.title.en}",
                "description": f"{layer.title.zh}注记点",
                "dataType": "vector",
                "geometryDimension": 0,
                "minTileMatrix": str(max(layer.minzoom, layer.style.label.minzoom)),
                "maxTileMatrix": str(layer.maxzoom),
                "propertiesSchema": _properties_schema([layer.get_property(name) for name in label_properties(layer)]),
            }
        )
    return described


def _tileset_links(layer: Layer, base: str) -> list[dict[str, Any]]:
    return [
        {"rel": "self", "href": f"{base}/ogc/collections/{layer.id}/tiles/{TMS_ID}", "type": JSON},
        {"rel": REL_TILING_SCHEME, "href": f"{base}/ogc/tileMatrixSets/{TMS_ID}", "type": JSON},
        {"rel": REL_GEODATA, "href": f"{base}/ogc/collections/{layer.id}", "type": JSON},
    ]


def _tileset(layer: Layer, base: str) -> dict[str, Any]:
    return {
        "title": layer.title.en,
        "description": layer.title.zh,
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "boundingBox": {
            "lowerLeft": list(XIAMEN_BOUNDS[:2]),
            "upperRight": list(XIAMEN_BOUNDS[2:]),
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "tileMatrixSetLimits": [
            {
                "tileMatrix": str(z),
                "minTileRow": 0,
                "maxTileRow": (1 << z) - 1,
                "minTileCol": 0,
                "maxTileCol": (1 << z) - 1,
            }
            for z in range(layer.minzoom, layer.maxzoom + 1)
        ],
        "layers": tileset_layers(layer),
        "links": [
            *_tileset_links(layer, base),
            {
                "rel": "item",
                "href": f"{base}/ogc/collections/{layer.id}/tiles/{TMS_ID}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
                "type": MVT_MEDIA_TYPE,
                "templated": True,
            },
        ],
    }


@router.get("/collections/{layer_id}/tiles", summary="Tilesets of a layer")
async def layer_tilesets(
    layer_id: str,
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    layer = layer_rules.readable_layer(principal, catalog, layer_id)
    tileset = _tileset(layer, base)
    return {
        "links": [{"rel": "self", "href": f"{base}/ogc/collections/{layer.id}/tiles", "type": JSON}],
        "tilesets": [
            {
                "title": tileset["title"],
                "dataType": "vector",
                "crs": tileset["crs"],
                "tileMatrixSetURI": TMS_URI,
                "links": _tileset_links(layer, base)[:2],
            }
        ],
    }


@router.get("/collections/{layer_id}/tiles/{tileMatrixSetId}", summary="A layer's tileset (TileSet metadata)")
async def layer_tileset(
    layer_id: str,
    tileMatrixSetId: str,
    catalog: Catalog = Depends(get_catalog),
    base: str = Depends(base_url),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    _check_tms(tileMatrixSetId)
    return _tileset(layer_rules.readable_layer(principal, catalog, layer_id), base)


@router.get(
    "/collections/{layer_id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile (OGC order: zoom/row/column = z/y/x)",
    response_class=Response,
    responses={200: {"content": {MVT_MEDIA_TYPE: {}}}, 204: {"description": "Empty tile"}},
)
async def layer_tile(
    request: Request,
    layer_id: str,
    tileMatrixSetId: str,
    tileMatrix: Annotated[int, Path(ge=0, le=24)],
    tileRow: Annotated[int, Path(ge=0)],
    tileCol: Annotated[int, Path(ge=0)],
    filter_text: FilterParam = None,
    properties: PropertiesParam = None,
    revision: RevisionParam = None,
    asof: AsOfParam = None,
    catalog: Catalog = Depends(get_catalog),
    principal: Principal = Depends(current_principal),
) -> Response:
    """The same tile as `/tiles/{layer}/{z}/{x}/{y}.pbf`; an empty tile answers 204."""
    _check_tms(tileMatrixSetId)
    layer = resolve_layer(catalog, layer_id)
    engine = request.app.state.tile_engine
    return await serve_tile(
        request,
        engine,
        [layer],
        (tileMatrix, tileCol, tileRow),
        properties,
        filter_text,
        revision,
        asof,
        principal=principal,
    )
