"""The chiefs' work as map layers: the ``f=geojson`` answers of ``/api/issues``, ``/api/alerts``
and ``/api/patrols`` (the same lists, filters and access as their JSON), and the ``bbox`` view
filter they share. Issues are points (a drawn area by a point on its surface, for clustering),
alerts their station's point, patrols their track; every feature carries what the map's symbol
and popup need, labels in Chinese and English."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import mapping, shape

from gis_service.errors import InvalidRequest
from gis_service.services.features import parse_bbox
from gis_service.workflow.machine import Workflow

BBox = tuple[float, float, float, float]
GEOJSON = "application/geo+json"
CHINA = ZoneInfo("Asia/Shanghai")
ENVELOPE = "ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326)"
"""The view box as SQL, its corners bound as parameters (``view_parameters``)."""
BBOX_HELP = "minlon,minlat,maxlon,maxlat (WGS84): only what lies in this box"


def parse_view(text: str | None) -> BBox | None:
    """The ``bbox`` query parameter as a WGS84 box, or None; a 400 saying how to write it."""
    if text is None:
        return None
    box = parse_bbox(text)
    if box[0] < -180 or box[2] > 180:
        raise InvalidRequest("bbox longitudes must lie within -180..180: minlon,minlat,maxlon,maxlat")
    return box


def view_parameters(bbox: BBox | None) -> dict[str, float | None]:
    minx, miny, maxx, maxy = bbox if bbox is not None else (None, None, None, None)
    return {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy}


def _label(codes: dict[str, Any], code: str | None) -> dict[str, str] | None:
    label = codes.get(code) if code is not None else None
    return {"zh": label.zh, "en": label.en} if label is not None else None


def _collection(features: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "limit": limit,
        "offset": offset,
    }


def issue_point(geometry: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Where an issue is drawn: its point, or a point on the surface of its area; and whether it is an area."""
    if geometry["type"] == "Point":
        return geometry, False
    return mapping(shape(geometry).representative_point()), True


def issue_collection(rows: list[dict[str, Any]], workflow: Workflow, limit: int, offset: int) -> dict[str, Any]:
    """Issues as GeoJSON points: state, category and severity with their labels, overdue, area."""
    features = []
    for row in rows:
        point, area = issue_point(row["geometry"])
        properties = {
            "kind": "issue",
            "id": row["id"],
            "title": row["title"],
            "state": row["state"],
            "state_label": _label(workflow.states, row["state"]),
            "category": row["category"],
            "category_label": _label(workflow.categories, row["category"]),
            "severity": row["severity"],
            "severity_label": _label(workflow.severities, row["severity"]),
            "source": row["source"],
            "overdue": row["overdue"],
            "deadline": row["deadline"],
            "department": row["department"],
            "area": area,
            "river_id": row["river_id"],
            "bay_id": row["bay_id"],
            "created_at": row["created_at"],
        }
        features.append({"type": "Feature", "id": row["id"], "geometry": point, "properties": properties})
    return _collection(features, limit, offset)


def alert_collection(rows: list[dict[str, Any]], workflow: Workflow, limit: int, offset: int) -> dict[str, Any]:
    """Alerts as GeoJSON points at their station: rule and factor, severity, state, since when."""
    features = []
    for row in rows:
        properties = {
            "kind": "alert",
            "id": row["id"],
            "rule": row["rule"],
            "rule_label": row["rule_label"],
            "measure": row["measure_name"],
            "severity": row["severity"],
            "severity_label": _label(workflow.severities, row["severity"]),
            "state": row["state"],
            "since": row["first_seen"],
            "last_seen": row["last_seen"],
            "peak": row["peak"],
            "station_id": row["station_id"],
            "station_code": row["station_code"],
            "station_name": row["station_name"],
            "issue_id": row["issue_id"],
            "acknowledged": row["acknowledged_at"] is not None,
        }
        geometry = row["station_geometry"]
        features.append({"type": "Feature", "id": row["id"], "geometry": geometry, "properties": properties})
    return _collection(features, limit, offset)


def patrol_collection(rows: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """Finished patrols as GeoJSON LineStrings: chief, date (China time), length, duration."""
    features = []
    for row in rows:
        started: dt.datetime = row["started_at"]
        properties = {
            "kind": "patrol",
            "id": row["id"],
            "chief_id": row["chief_id"],
            "chief_name": row["chief_name"],
            "date": started.astimezone(CHINA).date(),
            "started_at": started,
            "ended_at": row["ended_at"],
            "length_m": row["length_m"],
            "duration_s": row["duration_s"],
            "origin": row["origin"],
        }
        features.append({"type": "Feature", "id": row["id"], "geometry": row["track"], "properties": properties})
    return _collection(features, limit, offset)
