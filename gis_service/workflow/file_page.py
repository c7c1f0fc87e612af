"""The printable page of one file per river and bay (一河一档 / 一湾一档): the JSON of
``files.river_file`` / ``files.bay_file`` rendered bilingual (Chinese, English) with print CSS,
self-contained (inline CSS, no scripts or requests of its own) so it prints as it shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from gis_service.monitoring.status.assess import CHINA, WATER_COLOURS
from gis_service.workflow.machine import Workflow
from layers.catalog import Catalog

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
KINDS = {
    "river": {"zh": "一河一档", "en": "River file"},
    "bay": {"zh": "一湾一档", "en": "Bay file"},
}
ROLES = {"river": {"zh": "河长", "en": "River chief"}, "bay": {"zh": "湾长", "en": "Bay chief"}}
LEVELS = {
    "city": {"zh": "市级", "en": "City"},
    "district": {"zh": "区级", "en": "District"},
    "town": {"zh": "镇（街）级", "en": "Town"},
    "village": {"zh": "村（居）级", "en": "Village"},
}


def local_time(value: dt.datetime | None) -> str:
    """A time as Beijing time, to the minute ("" for none)."""
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else ""


def render_file_page(file: dict[str, Any], workflow: Workflow, catalog: Catalog) -> str:
    """The HTML page of a river's or bay's file (station kinds and statuses named by the catalog)."""
    station = catalog.get("station")
    titles = {name: (station.get_property(name).value_titles or {}) for name in ("kind", "status")}
    return TEMPLATES.get_template("water_file.html").render(
        titles=titles,
        file=file,
        kind=KINDS[file["kind"]],
        roles=ROLES,
        levels=LEVELS,
        states=workflow.states,
        categories=workflow.categories,
        colours=WATER_COLOURS,
        local_time=local_time,
        printed=local_time(dt.datetime.now(CHINA)),
    )
