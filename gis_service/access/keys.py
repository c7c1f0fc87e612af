"""API keys of machine clients: ``station`` (pushes monitoring data), ``partner`` (reads named layers).

A key is 256 random bits shown once at creation; only its SHA-256 is stored. A worker looks
the hash up once (one indexed query) and keeps the principal until the key expires or an
access change is notified (``gis_service.access.revocation``), so revocation holds at once
on every worker. A partner key may have a shared area (``area``, a multipolygon in EPSG:4326):
its layers are then read only inside it (the ``scopes`` of ``access/rules.yaml``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row

from gis_service.access.principal import KEY_ROLES, Principal, Role
from gis_service.access.tokens import token_hash
from gis_service.errors import InvalidRequest, NotFound, Unauthorized

KEY_PREFIX = "ek_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COLUMNS = (
    "id, name, role, layers, prefix, created_at, created_by, expires_at, revoked_at,"
    " round((ST_Area(area::geography) / 1e6)::numeric, 1)::float8 AS area_km2,"
    " ST_AsGeoJSON(area, 6)::json AS area"
)
ADCODES = re.compile(r"^\d{6}(,\d{6})*$")


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never the key itself)."""

    id: int
    name: str
    role: str
    layers: list[str]
    prefix: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    area_km2: float | None
    """The size of a partner key's shared area (None: no area, its layers are read whole)."""
    area: dict[str, Any] | None
    """The shared area itself (a GeoJSON MultiPolygon, EPSG:4326, 6 decimals), None without one."""


@dataclass(frozen=True)
class KeyArea:
    """A partner key's shared area as given: district adcodes, or a GeoJSON geometry."""

    adcodes: tuple[str, ...] = ()
    geojson: str | None = None
    label: str = "--area"
    """How the input is named in errors (``--area FILE`` on the CLI, ``area`` over HTTP)."""


def parse_area(text: str) -> KeyArea:
    """Read ``--area``: district adcodes (``350203,350206``) or a GeoJSON file (a Polygon or
    MultiPolygon geometry, Feature or FeatureCollection, in EPSG:4326 lon/lat)."""
    text = text.strip()
    if ADCODES.match(text):
        return KeyArea(adcodes=tuple(sorted(set(text.split(",")))))
    path = Path(text)
    if not path.is_file():
        raise InvalidRequest(
            f"--area {text[:200]!r} is neither district adcodes (e.g. 350203,350206) nor a GeoJSON file"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"--area {path}: not readable GeoJSON ({exc})") from None
    return area_of_geojson(document, f"--area {path}")


def area_of(value: str | list[str] | dict[str, Any]) -> KeyArea:
    """Read the ``area`` of a key created over HTTP: district adcodes (``"350203,350206"`` or
    a list of them) or a GeoJSON object (as ``--area`` takes, the document itself)."""
    if isinstance(value, dict):
        return area_of_geojson(value, "area")
    text = ",".join(part.strip() for part in value) if isinstance(value, list) else value.strip()
    if not ADCODES.match(text):
        raise InvalidRequest(
            f'area {text[:200]!r} is not district adcodes: give six-digit codes (e.g. "350203,350206"'
            ' or ["350203", "350206"]) or a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection'
        )
    return KeyArea(adcodes=tuple(sorted(set(text.split(",")))), label="area")


def _is_position(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) in (2, 3)
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
        and -180 <= value[0] <= 180
        and -90 <= value[1] <= 90
    )


def _rings_problem(geometry: dict[str, Any]) -> str | None:
    """What is wrong with a polygon's coordinates (None: nothing)."""
    polygons = geometry.get("coordinates")
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    if not isinstance(polygons, list | tuple) or not polygons:
        return "coordinates must be a list of polygons, each a list of rings"
    for polygon in polygons:
        if not isinstance(polygon, list | tuple) or not polygon:
            return "each polygon must be a non-empty list of rings"
        for ring in polygon:
            if not isinstance(ring, list | tuple) or len(ring) < 4 or not all(map(_is_position, ring)):
                return "each ring must list at least 4 [lon, lat] positions (EPSG:4326 degrees)"
            if list(ring[0][:2]) != list(ring[-1][:2]):
                return "each ring must end where it starts"
    return None


def area_of_geojson(document: Any, label: str) -> KeyArea:
    """A shared area from a GeoJSON document: polygons only (``label`` names the input in errors)."""
    if not isinstance(document, dict):
        raise InvalidRequest(f"{label}: GeoJSON must be an object")
    if document.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in document.get("features") or [] if isinstance(f, dict)]
    elif document.get("type") == "Feature":
        geometries = [document.get("geometry")]
    else:
        geometries = [document]
    polygons = ("Polygon", "MultiPolygon")
    if not geometries or any(not isinstance(g, dict) or g.get("type") not in polygons for g in geometries):
        raise InvalidRequest(f"{label}: the area must be made of Polygon or MultiPolygon geometries")
    for geometry in geometries:
        problem = _rings_problem(geometry)
        if problem is not None:
            raise InvalidRequest(f"{label}: not a valid GeoJSON {geometry['type']}: {problem}")
    return KeyArea(geojson=json.dumps({"type": "GeometryCollection", "geometries": geometries}), label=label)


AREA_SQL = """
    SELECT CASE WHEN NOT ST_IsEmpty(g) THEN g END, (SELECT array_agg(adcode ORDER BY adcode) FROM district)
    FROM (SELECT CASE WHEN %(adcodes)s::text[] IS NOT NULL
                 THEN (SELECT ST_Multi(ST_Union(geom)) FROM district WHERE adcode = ANY(%(adcodes)s::text[]))
                 ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(%(geojson)s), 4326)), 3))
                 END AS g) AS area
"""
"""The area as stored (NULL when empty) and the valid district adcodes."""


def _check(name: str, role: str, layers: list[str], known_layers: Iterable[str] | None) -> None:
    if not NAME_PATTERN.match(name):
        raise InvalidRequest(f"invalid key name {name!r}: use 1-64 letters, digits and . _ -")
    if role not in {r.value for r in KEY_ROLES}:
        raise InvalidRequest(f"unknown key role {role!r}; key roles: {', '.join(r.value for r in KEY_ROLES)}")
    if role == Role.PARTNER and not layers:
        raise InvalidRequest("a partner key needs the layers it may read (--layers a,b)")
    if role == Role.STATION and layers:
        raise InvalidRequest("station keys push data and read no layers: leave --layers out")
    if known_layers is not None:
        known = set(known_layers)
        unknown = [layer for layer in layers if layer not in known]
        if unknown:
            raise InvalidRequest(f"unknown layers {', '.join(unknown)}; valid layers: {', '.join(sorted(known))}")


async def create_key(
    conn: AsyncConnection,
    *,
    name: str,
    role: str,
    created_by: str,
    layers: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    known_layers: Iterable[str] | None = None,
    area: KeyArea | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the secret key (shown once, not stored). ``area``: a
    partner key's shared area (its layers are read only inside it)."""
    layers = sorted(set(layers or []))
    _check(name, role, layers, known_layers)
    if area is not None and role != Role.PARTNER:
        raise InvalidRequest(f"only partner keys have a shared area: leave {area.label.split()[0]} out")
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise InvalidRequest(f"the expiry {expires_at.isoformat()} is in the past")
    geometry = None
    if area is not None:
        params = {"adcodes": list(area.adcodes) or None, "geojson": area.geojson}
        try:
            async with conn.transaction():  # a savepoint: a refused geometry leaves no aborted transaction
                geometry, valid = await (await conn.execute(AREA_SQL, params)).fetchone()  # type: ignore[misc]
        except (psycopg.DataError, psycopg.errors.InternalError) as exc:
            message = (exc.diag.message_primary or str(exc)).strip()
            raise InvalidRequest(
                f"{area.label}: not a valid GeoJSON polygon in EPSG:4326 lon/lat ({message})"
            ) from None
        unknown = sorted(set(area.adcodes) - set(valid or []))
        if unknown:
            raise InvalidRequest(f"unknown district adcodes {', '.join(unknown)}; valid: {', '.join(valid or [])}")
        if geometry is None:
            raise InvalidRequest("the area is empty: give district adcodes or polygons with an area")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            "INSERT INTO api_key (name, role, layers, key_hash, prefix, created_by, expires_at, area)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s::geometry)"
            f" ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}",
            [name, role, layers, token_hash(secret), secret[:10], created_by, expires_at, geometry],
        )
        key = await cur.fetchone()
    if key is None:
        raise InvalidRequest(f"a key named {name!r} exists; choose another name or revoke it first")
    return key, secret


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM api_key ORDER BY name")
        return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, name: str) -> ApiKey:
    """Revoke a key now (refused from the next request on, on every worker)."""
    if not NAME_PATTERN.match(name):
        raise NotFound(f"no API key named {name[:100]!r} (see `ecomap keys list`)")
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s RETURNING {_COLUMNS}",
            [name],
        )
        key = await cur.fetchone()
    if key is None:
        raise NotFound(f"no API key named {name!r} (see `ecomap keys list`)")
    return key


async def key_principal(conn: AsyncConnection, secret: str) -> tuple[Principal, float]:
    """The principal of a presented key and when it expires (Unix seconds, inf: never);
    Unauthorized when unknown, revoked or expired."""
    row = await (
        await conn.execute(
            "SELECT id, name, role, layers, revoked_at IS NOT NULL, expires_at IS NOT NULL AND expires_at <= now(),"
            " coalesce(extract(epoch FROM expires_at)::float8, 'infinity')"
            " FROM api_key WHERE key_hash = %s",
            [token_hash(secret)],
        )
    ).fetchone()
    if row is None:
        raise Unauthorized("the API key (X-API-Key) is not known: check it, or ask an admin for a key")
    key_id, name, role, layers, revoked, expired, expires_at = row
    if revoked:
        raise Unauthorized(f"the API key {name!r} has been revoked: ask an admin for a new key")
    if expired:
        raise Unauthorized(f"the API key {name!r} has expired: ask an admin for a new key")
    principal = Principal(
        kind=role, name=name, role=Role(role), method="api_key", layers=frozenset(layers), key_id=key_id
    )
    return principal, expires_at
