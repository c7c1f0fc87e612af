"""Standalone HTML pages with folium (Leaflet) maps: the zone-check report and a chief's map.

Both are single files that open in any browser (Leaflet itself loads from its CDN);
feature geometries are clipped to the map view and simplified so pages stay small.
"""

from __future__ import annotations

import base64
import functools
import html
import math
from pathlib import Path
from typing import Any

import anyio.to_thread
import folium
import jinja2
import shapely
from psycopg import AsyncConnection, sql
from shapely.geometry.base import BaseGeometry

from gis_service.access.scopes import FeatureScope
from gis_service.rules import RuleSet
from gis_service.services import chiefs as chief_service
from gis_service.services import report_text
from gis_service.services.layers import layer_states
from gis_service.services.site import Site
from layers import geojson
from layers.catalog import Catalog

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
VERDICT_LABELS = {
    "prohibited": {"zh": "禁止", "en": "Prohibited"},
    "restricted": {"zh": "限制", "en": "Restricted"},
    "caution": {"zh": "需注意", "en": "Caution"},
    "clear": {"zh": "未发现限制", "en": "Clear"},
}
STATION_COLORS = {
    "air_national": "#d95f02",
    "air_local": "#fdae6b",
    "water_auto": "#1b9e77",
    "seawater": "#7570b3",
    "drinking_intake": "#1f78b4",
    "outfall": "#e7298a",
    "section": "#66a61e",
}
SIMPLIFY_DEGREES = 0.00002  # ~2 m: invisible at report scales


def raster_basis(rasters: dict[str, Any] | None) -> dict[str, str]:
    """What the land-cover and terrain statistics of a zone check were measured over, in words."""
    zone = (rasters or {}).get("zone") or {}
    if zone.get("basis") == "buffer":
        metres = f"{zone['buffer_m']:g}"
        return {"zh": f"按拟选址外扩 {metres} m 缓冲区统计", "en": f"Measured over the site buffered by {metres} m"}
    if zone.get("measure") == "count":
        return {"zh": "按点位所在像元统计（占比为点数比例）", "en": "At the cells under the points (shares of points)"}
    if zone.get("measure") == "length":
        return {"zh": "沿线按长度统计", "en": "Along the line (shares of its length)"}
    return {"zh": "按拟选址范围统计（缓冲区不计入）", "en": "Measured over the site itself (not its buffer)"}


def _color(catalog: Catalog, layer_id: str, properties: dict[str, Any]) -> str:
    style = catalog.get(layer_id).style
    if style.categories is not None:
        value = properties.get(style.categories.property)
        if value in style.categories.colors:
            return style.categories.colors[value]
    return style.color


async def _features(
    conn: AsyncConnection, catalog: Catalog, targets: list[tuple[str, int]], view: tuple[float, float, float, float]
) -> list[dict[str, Any]]:
    """GeoJSON features of (layer, id) pairs, clipped to a view box and simplified for display."""
    features: list[dict[str, Any]] = []
    for layer_id in dict.fromkeys(layer for layer, _ in targets):
        layer = catalog.get(layer_id)
        ids = [fid for lid, fid in targets if lid == layer_id]
        props = [
            p for p in (layer.name_property, "segment", "zone", "function_type", "category") if layer.get_property(p)
        ]
        geometry = sql.SQL(
            "ST_SimplifyPreserveTopology(ST_ClipByBox2D({}, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)),"
            " %(tolerance)s)"
        ).format(geojson.column("t", layer.geometry_column))
        properties = geojson.properties_object(
            [
                ("layer", sql.Literal(layer.id)),
                ("id", geojson.column("t", layer.id_column)),
                *((p, geojson.column("t", p)) for p in props),
            ]
        )
        statement = sql.SQL("SELECT {} FROM {} AS t WHERE t.{} = ANY(%(ids)s)").format(
            geojson.feature(geojson.column("t", layer.id_column), geometry, properties),
            sql.Identifier(layer.table),
            sql.Identifier(layer.id_column),
        )
        x0, y0, x1, y1 = view
        params = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "tolerance": SIMPLIFY_DEGREES, "ids": ids}
        cursor = await conn.execute(statement, params)
        features.extend(row[0] for row in await cursor.fetchall())
    return [f for f in features if f["geometry"] is not None]


def _view(
    bounds: tuple[float, float, float, float] | list[float], margin_m: float
) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = bounds
    dy = margin_m / 111_000
    dx = margin_m / 100_000  # generous at Xiamen's latitude
    return (minx - dx, miny - dy, maxx + dx, maxy + dy)


@functools.lru_cache(maxsize=4)
def map_assets(vendor_dir: Path | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Scripts and stylesheets of the folium maps: Leaflet alone (all these maps use), inlined
    as data: URLs from the frontend build's copy (``frontend/dist/vendor/leaflet``) so a saved
    or printed page draws its map without the internet; folium's CDN links without that copy."""
    leaflet = vendor_dir / "leaflet" if vendor_dir else None
    if leaflet is None or not ((leaflet / "leaflet.js").is_file() and (leaflet / "leaflet.css").is_file()):
        return list(folium.Map.default_js), list(folium.Map.default_css)
    js, css = leaflet / "leaflet.js", leaflet / "leaflet.css"

    def inline(path: Path, media_type: str) -> str:
        return f"data:{media_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"

    return [("leaflet", inline(js, "text/javascript"))], [("leaflet_css", inline(css, "text/css"))]


def _new_map(view: tuple[float, float, float, float], vendor_dir: Path | None) -> folium.Map:
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    m.default_js, m.default_css = map_assets(vendor_dir)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(m)
    m.fit_bounds([[view[1], view[0]], [view[3], view[2]]])
    return m


def _add_features(m: folium.Map, catalog: Catalog, features: list[dict[str, Any]]) -> None:
    for layer_id in dict.fromkeys(f["properties"]["layer"] for f in features):
        chosen = [f for f in features if f["properties"]["layer"] == layer_id]
        layer = catalog.get(layer_id)
        group = folium.FeatureGroup(name=f"{layer.title.zh} {layer.title.en}")
        line = layer.geometry_type.endswith("LineString") or layer.style.kind == "line"
        for feature in chosen:
            color = _color(catalog, layer_id, feature["properties"])
            label = " ".join(str(feature["properties"].get(k) or "") for k in ("name", "name_zh", "segment", "zone"))
            folium.GeoJson(
                feature,
                style_function=lambda _f, c=color, is_line=line: {
                    "color": c,
                    "weight": 3 if is_line else 1.5,
                    "fillColor": c,
                    "fillOpacity": 0 if is_line else 0.3,
                },
                tooltip=html.escape(f"{layer.title.zh} {layer.title.en}: {label.strip()}"),
            ).add_to(group)
        group.add_to(m)


def _add_stations(m: folium.Map, stations: list[dict[str, Any]], name: str) -> None:
    group = folium.FeatureGroup(name=name)
    for station in stations:
        distance = f" · {station['distance_m']:.0f} m" if station.get("distance_m") is not None else ""
        folium.CircleMarker(
            location=[station["lat"], station["lon"]],
            radius=6,
            color="#ffffff",
            weight=1.5,
            fill=True,
            fill_color=STATION_COLORS.get(station["kind"], "#636363"),
            fill_opacity=0.95,
            tooltip=html.escape(f"{station['name']} ({station['code']}){distance}"),
        ).add_to(group)
    group.add_to(m)


def _svg_path(geometry: BaseGeometry, project: Any) -> str:
    """SVG path data of a (multi)polygon or (multi)line in map units."""
    parts = []
    for part in shapely.get_parts(geometry):
        rings = [part.exterior, *part.interiors] if part.geom_type == "Polygon" else [part]
        for ring in rings:
            points = project(shapely.get_coordinates(ring))
            if len(points):
                closing = "Z" if part.geom_type == "Polygon" else ""
                parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points) + closing)
    return "".join(parts)


def sketch_svg(
    catalog: Catalog,
    features: list[dict[str, Any]],
    site: BaseGeometry,
    stations: list[dict[str, Any]],
    view: tuple[float, float, float, float],
    width: int = 900,
) -> str:
    """A print-safe sketch map (inline SVG, no basemap): zones, site and stations, with a scale bar.

    It needs no network, unlike the Leaflet map, so the printed report always shows the site.
    """
    x0, y0, x1, y1 = view
    ratio = math.cos(math.radians((y0 + y1) / 2))
    scale = width / ((x1 - x0) * ratio)
    height = max(1, round((y1 - y0) * scale))

    def project(coords: Any) -> Any:
        return [((x - x0) * ratio * scale, (y1 - y) * scale) for x, y in coords]

    shapes = []
    for feature in features:
        layer_id = feature["properties"]["layer"]
        layer = catalog.get(layer_id)
        color = _color(catalog, layer_id, feature["properties"])
        geometry = shapely.geometry.shape(feature["geometry"])
        line = geometry.geom_type.endswith("LineString")
        fill = "none" if line else color
        title = html.escape(f"{layer.title.zh}: {feature['properties'].get('name') or feature['id']}")
        shapes.append(
            f'<path d="{_svg_path(geometry, project)}" fill="{fill}" fill-opacity="0.3" fill-rule="evenodd" '
            f'stroke="{color}" stroke-width="{2.5 if line else 1}"><title>{title}</title></path>'
        )
    if site.geom_type.endswith("Point"):
        for x, y in project(shapely.get_coordinates(site)):
            shapes.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="#ffff00" stroke="#000" stroke-width="2"/>')
    else:
        shapes.append(
            f'<path d="{_svg_path(site, project)}" fill="#000" fill-opacity="0.06" fill-rule="evenodd" stroke="#000" '
            'stroke-width="2.5" stroke-dasharray="8 5"><title>拟选址 Site</title></path>'
        )
    for station in stations:
        ((x, y),) = project([(station["lon"], station["lat"])])
        color = STATION_COLORS.get(station["kind"], "#636363")
        title = html.escape(f"{station['name']} ({station['code']})")
        shapes.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}" stroke="#fff"><title>{title}</title></circle>'
        )
    metres_per_px = 111_320 / scale
    bar_m = next((m for m in (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000) if m / metres_per_px >= 80), 50000)
    bar_px = bar_m / metres_per_px
    label = f"{bar_m // 1000} km" if bar_m >= 1000 else f"{bar_m} m"
    shapes.append(
        f'<g transform="translate(12,{height - 14})"><rect x="-4" y="-16" width="{bar_px + 60:.0f}" height="24" '
        f'fill="#fff" opacity="0.8"/><path d="M0,0H{bar_px:.1f}" stroke="#000" stroke-width="3"/>'
        f'<text x="{bar_px + 6:.1f}" y="4" font-size="12">{label}</text></g>'
        f'<text x="{width - 14}" y="22" font-size="16" text-anchor="end">N ↑</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="sketch" '
        f'role="img" aria-label="Sketch map of the site">'
        f'<rect width="{width}" height="{height}" fill="#f4f8fb"/>{"".join(shapes)}</svg>'
    )


def _map_parts(m: folium.Map) -> dict[str, str]:
    """Header (scripts, styles), body and script of a folium map, to embed in a page."""
    folium.LayerControl(collapsed=False).add_to(m)
    root = m.get_root()
    root.render()
    return {"map_header": root.header.render(), "map_html": root.html.render(), "map_script": root.script.render()}


async def _relations(
    conn: AsyncConnection, catalog: Catalog, site: Site, overlaps: list[dict[str, Any]]
) -> dict[tuple[str, int], str]:
    """How each touching feature relates to the site (within, contains, crosses, overlaps,
    touches), from the DE-9IM matrix of the stored geometry and the site."""
    touching = [(o["layer"], o["id"]) for o in overlaps if o.get("distance_m") is None]
    relations: dict[tuple[str, int], str] = {}
    wkb = shapely.to_wkb(site.geometry, include_srid=False)
    for layer_id in dict.fromkeys(layer for layer, _ in touching):
        layer = catalog.get(layer_id)
        statement = sql.SQL(
            "SELECT t.{id}, ST_Relate(t.{geom}, s.g), ST_Dimension(t.{geom}) "
            "FROM {table} AS t, (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g) AS s WHERE t.{id} = ANY(%(ids)s)"
        ).format(
            id=sql.Identifier(layer.id_column),
            geom=sql.Identifier(layer.geometry_column),
            table=sql.Identifier(layer.table),
        )
        ids = [fid for lid, fid in touching if lid == layer_id]
        cursor = await conn.execute(statement, {"wkb": wkb, "ids": ids})
        for fid, matrix, dimension in await cursor.fetchall():
            relations[(layer_id, fid)] = report_text.relation(matrix, dimension)
    return relations


def _legend(catalog: Catalog, features: list[dict[str, Any]], stations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The legend of what the report's maps draw: each drawn layer (or each of its categories
    drawn), the site, and the kinds of the stations shown."""
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for feature in features:
        layer_id = feature["properties"]["layer"]
        layer = catalog.get(layer_id)
        categories = layer.style.categories
        value = feature["properties"].get(categories.property) if categories else None
        key = (layer_id, str(value) if value in (categories.colors if categories else {}) else "")
        if key in seen:
            continue
        seen.add(key)
        title = report_text.code_title(catalog, layer_id, categories.property, value) if key[1] else None
        entries.append(
            {
                "color": _color(catalog, layer_id, feature["properties"]),
                "kind": "line" if layer.geometry_type.endswith("LineString") else "fill",
                "zh": f"{layer.title.zh}{'：' + title['zh'] if title else ''}",
                "en": f"{layer.title.en}{': ' + title['en'] if title and title['en'] else ''}",
            }
        )
    entries.append({"color": "#000000", "kind": "site", "zh": "拟选址", "en": "Site"})
    kind = catalog.get("station").get_property("kind")
    for code in dict.fromkeys(s["kind"] for s in stations):
        title = kind.value_title(code) if kind is not None else None
        entries.append(
            {
                "color": STATION_COLORS.get(code, "#636363"),
                "kind": "point",
                "zh": title.zh if title else code,
                "en": title.en if title else "",
            }
        )
    return entries


async def zone_check_report(
    conn: AsyncConnection,
    catalog: Catalog,
    site: Site,
    result: dict[str, Any],
    vendor_dir: Path | None = None,
    rules: RuleSet | None = None,
) -> str:
    """The printable zone-check report of a computed result (``vendor_dir``: see ``map_assets``;
    ``rules`` name the properties whose codes are the overlaps' category and zone).

    The features, their relations to the site and the layer states are read here; the page
    (folium map, sketch, template) is CPU work and is rendered in a worker thread."""
    view = _view(site.geometry.bounds, max(result["input"]["buffer_m"], 300.0) + 200.0)
    targets = [(o["layer"], o["id"]) for o in result["overlaps"] if o["layer"] != "district"]
    features = await _features(conn, catalog, targets, view)
    relations = await _relations(conn, catalog, site, result["overlaps"])
    states = await layer_states(conn)
    render = functools.partial(
        _render_zone_check_report, catalog, site, result, features, states, view, vendor_dir, rules, relations
    )
    return await anyio.to_thread.run_sync(render)


async def zone_check_report_data(
    conn: AsyncConnection, catalog: Catalog, site: Site, result: dict[str, Any], rules: RuleSet | None = None
) -> dict[str, Any]:
    """What the report says, as data for a sheet composed elsewhere (the map UI's print tool):
    the same words as the HTML page, each in Chinese and English — the verdict, the reasons, the
    site, the overlaps (relation from DE-9IM, an area for zones and a length for lines), each
    chief once, the stations, local times and whether sample data was used."""
    relations = await _relations(conn, catalog, site, result["overlaps"])
    states = await layer_states(conn)
    kind = catalog.get("station").get_property("kind")
    geometry_type = result["input"]["geometry_type"]
    measure = (
        {"zh": "面积", "en": "Area", "value": report_text.area_text(site.area_m2)}
        if site.dimension == 2
        else {"zh": "长度", "en": "Length", "value": report_text.length_text(site.length_m)}
        if site.dimension == 1
        else None
    )
    rows = report_text.overlap_rows(catalog, rules, result["overlaps"], relations)
    keep = ("layer", "id", "name", "distance_m", "share", "overlap_m2", "overlap_length_m", "relation", "amount")
    return {
        "title": {"zh": "选址生态环境合规初判报告", "en": "Zone check report"},
        "verdict": result["verdict"],
        "verdict_title": VERDICT_LABELS[result["verdict"]],
        "reasons": [
            {"verdict": r.get("verdict"), "title": VERDICT_LABELS.get(r.get("verdict") or ""), "message": r["message"]}
            for r in result["reasons"]
        ],
        "computed_at": result["computed_at"],
        "computed_local": report_text.local_time(result["computed_at"]),
        "timezone": {"zh": "北京时间", "en": "China Standard Time, UTC+8"},
        "site": {
            "geometry_type": geometry_type,
            "geometry_title": report_text.GEOMETRY_TYPES.get(geometry_type),
            "measure": measure,
            "bbox": result["input"]["bbox"],
            "buffer_m": result["input"]["buffer_m"],
        },
        "overlaps": [
            {
                **{k: row.get(k) for k in keep},
                "layer_title": row["layer_title"],
                "category_title": row["category_title"],
                "zone_title": row["zone_title"],
                "relation_title": row["relation_title"],
            }
            for row in rows
        ],
        "chiefs": [
            {k: row[k] for k in ("id", "name", "title", "contact", "post", "dialable", "units")}
            for row in report_text.chief_rows(result["chiefs"], result["overlaps"])
        ],
        "stations": [
            {
                **{k: s[k] for k in ("id", "code", "name", "kind", "distance_m")},
                "kind_title": report_text.code_title(catalog, "station", "kind", s["kind"]) if kind else None,
            }
            for s in result["stations"]
        ],
        "revisions": {
            layer: {"revision": revision, "updated_at": report_text.local_time(states.get(layer, {}).get("updated_at"))}
            for layer, revision in result["revisions"].items()
        },
        "sample_data": any(state.get("sample_data") for state in states.values()),
        "disclaimer": {
            "zh": "依据本系统选址核查规则自动生成的初步判断，不构成法律意见，以主管部门审查为准。",
            "en": "An automatic first screening by the system's site-check rules, not a legal opinion: "
            "the competent authority decides.",
        },
    }


def _render_zone_check_report(
    catalog: Catalog,
    site: Site,
    result: dict[str, Any],
    features: list[dict[str, Any]],
    states: dict[str, Any],
    view: tuple[float, float, float, float],
    vendor_dir: Path | None,
    rules: RuleSet | None = None,
    relations: dict[tuple[str, int], str] | None = None,
) -> str:
    """The report page itself (runs in a worker thread)."""
    m = _new_map(view, vendor_dir)
    _add_features(m, catalog, features)
    folium.GeoJson(
        shapely.geometry.mapping(_display(site.geometry)),
        name="拟选址 Site",
        style_function=lambda _f: {"color": "#000000", "weight": 3, "dashArray": "6 4", "fillOpacity": 0.05},
        marker=folium.CircleMarker(radius=8, color="#000000", fill=True, fill_color="#ffff00", fill_opacity=1),
        tooltip="拟选址 Site",
    ).add_to(m)
    _add_stations(m, result["stations"], "监测站点 Stations")
    revisions = {
        layer: {"revision": revision, "updated_at": report_text.local_time(states.get(layer, {}).get("updated_at"))}
        for layer, revision in result["revisions"].items()
    }
    kind = catalog.get("station").get_property("kind")
    stations = [
        {**s, "kind_title": kind.value_title(s["kind"]) if kind is not None else None} for s in result["stations"]
    ]
    return TEMPLATES.get_template("zone_check_report.html").render(
        **{**result, "revisions": revisions, "stations": stations},
        computed_local=report_text.local_time(result["computed_at"]),
        overlap_rows=report_text.overlap_rows(catalog, rules, result["overlaps"], relations or {}),
        chief_rows=report_text.chief_rows(result["chiefs"], result["overlaps"]),
        legend=_legend(catalog, features, result["stations"]),
        **_map_parts(m),
        sketch=sketch_svg(catalog, features, _display(site.geometry), result["stations"], view),
        verdict_label=VERDICT_LABELS[result["verdict"]],
        verdict_labels=VERDICT_LABELS,
        geometry_title=report_text.GEOMETRY_TYPES.get(result["input"]["geometry_type"]),
        raster_basis=raster_basis(result.get("rasters")),
        layer_titles={layer.id: f"{layer.title.zh} {layer.title.en}" for layer in catalog},
        sample_data=any(state.get("sample_data") for state in states.values()),
    )


def _display(geometry: BaseGeometry) -> BaseGeometry:
    return geometry if shapely.get_num_coordinates(geometry) < 5000 else geometry.simplify(SIMPLIFY_DEGREES)


async def chief_map(
    conn: AsyncConnection,
    catalog: Catalog,
    chief_id: int,
    vendor_dir: Path | None = None,
    scope: FeatureScope | None = None,
) -> str:
    """A standalone folium map of a chief's jurisdiction with its stations, outfalls, red lines
    and protected areas (``vendor_dir``: see ``map_assets``; ``scope``: the caller's, as in
    ``chiefs.chief_detail``)."""
    detail = await chief_service.chief_detail(conn, catalog, chief_id, scope)
    chief = detail["chief"]
    bbox = detail["bbox"] or [117.85, 24.38, 118.45, 24.92]
    view = _view(bbox, 500.0)
    targets = [("redline", r["id"]) for r in detail["redlines"]]
    targets += [("protected_area", p["id"]) for p in detail["protected_areas"]]
    targets += [(j["layer"], j["id"]) for j in detail["jurisdiction"]]
    features = await _features(conn, catalog, targets, view)
    m = _new_map(view, vendor_dir)
    _add_features(m, catalog, features)
    _add_stations(m, detail["stations"], "监测站点 Stations")
    _add_stations(m, detail["outfalls"], "排口 Outfalls")
    post = report_text.chief_post(chief)
    title = f"{chief['name']} · {chief.get('title') or ''} · {post['zh']} {post['en']}"
    units = "、".join(j["name"] for j in detail["jurisdiction"]) or "—"
    panel = (
        '<div style="position:fixed;top:10px;left:50px;z-index:1000;background:#fff;padding:8px 12px;'
        'border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px sans-serif;max-width:420px">'
        f"<b>{html.escape(title)}</b><br>负责 Jurisdiction: {html.escape(units)}<br>"
        f"站点 Stations: {len(detail['stations'])} · 排口 Outfalls: {len(detail['outfalls'])} · "
        f"红线 Red lines: {len(detail['redlines'])} · 保护地 Protected areas: {len(detail['protected_areas'])}"
        "</div>"
    )
    m.get_root().html.add_child(folium.Element(panel))
    m.get_root().header.add_child(folium.Element(f"<title>{html.escape(title)} – EcoMap Xiamen</title>"))
    folium.LayerControl(collapsed=False).add_to(m)
    return m.get_root().render()
