"""MapLibre style and TileJSON documents generated from the layer catalog."""

from __future__ import annotations

from typing import Any

from layers.catalog import Catalog, Layer
from tiles.sql import label_properties
from tiles.status import status_fields

XIAMEN_BOUNDS = (117.85, 24.38, 118.45, 24.93)
XIAMEN_CENTER = (118.10, 24.60, 10)
FONT = ["Noto Sans Regular"]
BACKGROUND = "#eceae4"


def _color_expression(layer: Layer) -> Any:
    style = layer.style
    if not style.categories:
        return style.color
    expression: list[Any] = ["match", ["get", style.categories.property]]
    for value, color in style.categories.colors.items():
        expression += [value, color]
    return [*expression, style.color]


def _live_color(layer: Layer, color: Any) -> Any:
    """The colour of a feature: its live status colour when its tiles carry one (``tiles.status``)."""
    return ["coalesce", ["get", "status_colour"], color] if layer.style.status else color


def style_layers(layer: Layer, source: str = "ecomap") -> list[dict[str, Any]]:
    """The MapLibre style layers drawing one catalog layer (hover via feature-state)."""
    style = layer.style
    common = {
        "source": source,
        "source-layer": layer.id,
        "minzoom": layer.minzoom,
        "metadata": {"ecomap:layer": layer.id, "ecomap:group": layer.group},
    }
    base = _color_expression(layer)
    color = _live_color(layer, base)
    classed = ["has", "status_colour"]
    hover = ["boolean", ["feature-state", "hover"], False]
    result: list[dict[str, Any]] = []
    if style.kind == "fill":
        result.append(
            {
                "id": f"{layer.id}-fill",
                "type": "fill",
                **common,
                "paint": {
                    "fill-color": color,
                    "fill-opacity": ["case", hover, min(1.0, style.opacity + 0.3), style.opacity],
                },
            }
        )
        result.append(
            {
                "id": f"{layer.id}-outline",
                "type": "line",
                **common,
                "paint": {
                    "line-color": style.outline_color or style.color,
                    "line-width": ["case", hover, style.width * 2.5, style.width],
                },
            }
        )
    elif style.kind == "line":
        width: Any = ["case", classed, style.width * 1.75, style.width] if style.status else style.width
        paint: dict[str, Any] = {
            "line-color": color,
            "line-opacity": style.opacity,
            "line-width": ["case", hover, style.width * 2.5, width],
        }
        if style.dash:
            paint["line-dasharray"] = style.dash
        result.append(
            {"id": f"{layer.id}-line", "type": "line", **common, "layout": {"line-join": "round"}, "paint": paint}
        )
    else:
        result.append(
            {
                "id": f"{layer.id}-circle",
                "type": "circle",
                **common,
                "paint": {
                    "circle-color": color,
                    "circle-opacity": style.opacity,
                    "circle-radius": ["case", hover, style.radius * 1.6, style.radius],
                    # Classed stations: the fill is the class / AQI colour, the ring the kind's colour.
                    "circle-stroke-color": ["case", classed, base, style.outline_color or "#ffffff"]
                    if style.status
                    else style.outline_color or "#ffffff",
                    "circle-stroke-width": ["case", classed, 2, 1] if style.status else 1,
                },
            }
        )
    if style.label:
        label = style.label
        layout: dict[str, Any] = {
            "text-field": ["get", label.property],
            "text-font": FONT,
            "text-size": label.size,
            "text-max-width": 8,
        }
        if style.kind == "line":
            layout["symbol-placement"] = "line"
        elif style.kind == "circle":
            layout.update({"text-offset": [0, 1.2], "text-anchor": "top", "text-optional": True})
        source_layer = f"{layer.id}_label" if layer.is_polygon else layer.id  # polygons: one point each
        result.append(
            {
                "id": f"{layer.id}-label",
                "type": "symbol",
                **{**common, "source-layer": source_layer, "minzoom": max(layer.minzoom, label.minzoom)},
                "layout": layout,
                "paint": {"text-color": label.color, "text-halo-color": "#ffffff", "text-halo-width": 1.5},
            }
        )
    return result


def _attribution(layers: list[Layer]) -> str:
    """Our attribution, and the partners whose copies a tile holds (remote layers)."""
    text = "EcoMap Xiamen 生态环境一张图 (demo data is sample data, not official boundaries)"
    partners = dict.fromkeys(
        f"{layer.remote.partner.zh} {layer.remote.partner.en}" for layer in layers if layer.remote is not None
    )
    return text + "".join(f"; 来源 Source: {partner}" for partner in partners)


def tilejson(catalog: Catalog, layer_ids: list[str], base_url: str) -> dict[str, Any]:
    """TileJSON 3.0.0 for one layer or a composite of layers."""
    chosen = [catalog.get(i) for i in layer_ids]
    path = ",".join(layer_ids)
    return {
        "tilejson": "3.0.0",
        "name": path,
        "description": " / ".join(layer.title.zh for layer in chosen),
        "attribution": _attribution(chosen),
        "scheme": "xyz",
        "tiles": [f"{base_url}/tiles/{path}/{{z}}/{{x}}/{{y}}.pbf"],
        "minzoom": min(layer.minzoom for layer in chosen),
        "maxzoom": max(layer.maxzoom for layer in chosen),
        "bounds": list(XIAMEN_BOUNDS),
        "center": list(XIAMEN_CENTER),
        "vector_layers": vector_layers(chosen),
    }


def vector_layers(layers: list[Layer]) -> list[dict[str, Any]]:
    """TileJSON ``vector_layers`` of some catalog layers, with their label-point layers."""
    described = [
        {
            "id": layer.id,
            "description": layer.title.en,
            "minzoom": layer.minzoom,
            "maxzoom": layer.maxzoom,
            "fields": {p.name: p.title.en for p in layer.properties} | status_fields(layer),
        }
        for layer in layers
    ]
    for layer in layers:
        if layer.is_polygon and layer.style.label is not None:
            described.append(
                {
                    "id": f"{layer.id}_label",
                    "description": f"Label points of {layer.title.en}",
                    "minzoom": max(layer.minzoom, layer.style.label.minzoom),
                    "maxzoom": layer.maxzoom,
                    "fields": {name: layer.get_property(name).title.en for name in label_properties(layer)},
                }
            )
    return described


def _inline_source(document: dict[str, Any]) -> dict[str, Any]:
    keys = ("tiles", "minzoom", "maxzoom", "bounds", "attribution", "vector_layers")
    return {"type": "vector", **{key: document[key] for key in keys}}


def default_style(catalog: Catalog, base_url: str) -> dict[str, Any]:
    """A MapLibre style drawing every catalog layer from one composite vector source."""
    return {
        "version": 8,
        "name": "EcoMap Xiamen 生态环境一张图",
        "metadata": {"ecomap:layers": catalog.ids},
        "center": list(XIAMEN_CENTER[:2]),
        "zoom": XIAMEN_CENTER[2],
        "glyphs": f"{base_url}/fonts/{{fontstack}}/{{range}}.pbf",
        # The source is inlined (not a TileJSON url): one round trip less before the first tiles.
        "sources": {"ecomap": _inline_source(tilejson(catalog, catalog.ids, base_url))},
        "layers": [
            # Neutral: outside the districts may be land or sea; the map's offline basemap draws the sea.
            {"id": "background", "type": "background", "paint": {"background-color": BACKGROUND}},
            *(style_layer for layer in catalog for style_layer in style_layers(layer)),
        ],
    }
