"""Response schemas (OpenAPI 3.0 Schema Objects) of the documents clients parse: OGC API
landing page, conformance, collections, GeoJSON features, tilesets, TileJSON; and the
headers clients rely on (tiles: ``ETag``/``Cache-Control``; features: ``Content-Crs``).

They say what every answer holds (the members a client relies on, with their types) and
leave the rest open, so that schemathesis's response-schema check can hold the service to
them. Links must carry a media ``type`` (OGC API Common recommends it; GDAL needs it).
"""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _links() -> dict[str, Any]:
    return {"type": "array", "items": _ref("Link")}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Link": {
        "type": "object",
        "required": ["href", "rel", "type"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
            "templated": {"type": "boolean"},
        },
    },
    "LandingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {"title": {"type": "string"}, "description": {"type": "string"}, "links": _links()},
    },
    "ConformanceDeclaration": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    },
    "Collection": {
        "type": "object",
        "required": ["id", "links"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "itemType": {"type": "string"},
            "crs": {"type": "array", "items": {"type": "string"}},
            "storageCrs": {"type": "string"},
            "extent": {
                "type": "object",
                "properties": {
                    "spatial": {
                        "type": "object",
                        "properties": {
                            "bbox": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                            },
                            "crs": {"type": "string"},
                        },
                    },
                },
            },
            "links": _links(),
        },
    },
    "Collections": {
        "type": "object",
        "required": ["links", "collections"],
        "properties": {"links": _links(), "collections": {"type": "array", "items": _ref("Collection")}},
    },
    "Feature": {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "geometry": {"type": "object", "nullable": True, "required": ["type"]},
            "properties": {"type": "object", "nullable": True},
            "links": _links(),
        },
    },
    "FeatureCollection": {
        "type": "object",
        "required": ["type", "features", "links", "numberReturned"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": _ref("Feature")},
            "numberReturned": {"type": "integer", "minimum": 0},
            "numberMatched": {"type": "integer", "minimum": 0},
            "timeStamp": {"type": "string", "format": "date-time"},
            "links": _links(),
        },
    },
    "TileSet": {
        "type": "object",
        "required": ["dataType", "crs", "links", "tileMatrixSetURI"],
        "properties": {
            "title": {"type": "string"},
            "dataType": {"type": "string", "enum": ["vector", "map", "coverage"]},
            "crs": {"type": "string"},
            "tileMatrixSetURI": {"type": "string"},
            "layers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "dataType"],
                    "properties": {
                        "id": {"type": "string"},
                        "dataType": {"type": "string"},
                        "geometryDimension": {"type": "integer", "minimum": 0, "maximum": 3},
                        "propertiesSchema": {"type": "object"},
                    },
                },
            },
            "links": _links(),
        },
    },
    "TileSets": {
        "type": "object",
        "required": ["tilesets"],
        "properties": {"links": _links(), "tilesets": {"type": "array", "items": _ref("TileSetSummary")}},
    },
    "TileSetSummary": {
        "type": "object",
        "required": ["dataType", "crs", "links"],
        "properties": {"dataType": {"type": "string"}, "crs": {"type": "string"}, "links": _links()},
    },
    "TileJSON": {  # TileJSON 3.0.0 (the official JSON Schema, in OpenAPI 3.0 terms)
        "type": "object",
        "required": ["tilejson", "tiles", "vector_layers"],
        "properties": {
            "tilejson": {"type": "string", "pattern": r"^\d+\.\d+\.\d+\w?[\w\d]*$"},
            "tiles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "vector_layers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "fields"],
                    "properties": {
                        "id": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                        "description": {"type": "string"},
                        "minzoom": {"type": "integer"},
                        "maxzoom": {"type": "integer"},
                    },
                },
            },
            "name": {"type": "string"},
            "description": {"type": "string"},
            "attribution": {"type": "string"},
            "scheme": {"type": "string"},
            "bounds": {"type": "array", "items": {"type": "number"}},
            "center": {"type": "array", "items": {"type": "number"}},
            "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
            "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
        },
    },
}

# The 200 response schema of each operation (by operation id) that answers one of these documents.
RESPONSES: dict[str, str] = {
    "ogc_landing": "LandingPage",
    "ogc_conformance": "ConformanceDeclaration",
    "ogc_collections": "Collections",
    "ogc_collection": "Collection",
    "ogc_items": "FeatureCollection",
    "ogc_item": "Feature",
    "ogc_tiles_layer_tilesets": "TileSets",
    "ogc_tiles_layer_tileset": "TileSet",
    "tiles_layer_tilejson": "TileJSON",
    "rasters_tilejson": "TileJSON",
    "archives_archive_tilejson": "TileJSON",
}

TILE_HEADERS = {
    "ETag": {"description": "Strong validator of the tile (send it as `If-None-Match`)", "required": True,
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "`no-cache` (revalidate) or `public, max-age=N`", "required": True,
                      "schema": {"type": "string"}},
}  # fmt: skip
CRS_HEADER = {
    "Content-Crs": {"description": "The CRS of the coordinates, e.g. `<http://www.opengis.net/def/crs/OGC/1.3/CRS84>`",
                    "required": True, "schema": {"type": "string", "pattern": "^<.+>$"}},
}  # fmt: skip
# The headers each listed operation's answers always carry, by status.
HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    **{tile: {"200": TILE_HEADERS, "204": TILE_HEADERS, "304": TILE_HEADERS} for tile in (
        "tiles_vector_tile", "ogc_tiles_layer_tile", "rasters_raster_tile", "archives_archive_tile")},
    "ogc_items": {"200": CRS_HEADER},
    "ogc_item": {"200": CRS_HEADER},
}  # fmt: skip


def add_response_schemas(document: dict[str, Any]) -> None:
    """Declare the schemas above, give each listed operation's 200 response its schema (in every
    JSON media type it declares) and its responses their headers."""
    document["components"]["schemas"].update(SCHEMAS)
    for item in document["paths"].values():
        for operation in item.values():
            for status, headers in HEADERS.get(operation["operationId"], {}).items():
                if status in operation.get("responses", {}):
                    operation["responses"][status].setdefault("headers", {}).update(headers)
            name = RESPONSES.get(operation["operationId"])
            ok = operation.get("responses", {}).get("200")
            if name is None or ok is None:
                continue
            for media_type, media in ok.setdefault("content", {"application/json": {}}).items():
                if "json" in media_type:
                    media["schema"] = _ref(name)
