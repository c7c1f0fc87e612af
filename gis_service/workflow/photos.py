"""Issue photos: an upload is checked to be an image Pillow can decode (JPEG, PNG or WebP, within
the pixel limit, so no decompression bomb), turned upright by its EXIF orientation, resized
to at most ``MAX_SIDE`` pixels and re-encoded as JPEG (which also drops every EXIF field:
no phone serial or owner leaks), after the time and GPS position it was taken at are read.
The file is kept outside the database under its SHA-256; the database row is written after
the file, so a failed upload leaves no row pointing nowhere."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gis_service.access import audit
from gis_service.access.audit import AuditContext
from gis_service.access.principal import Principal
from gis_service.errors import InvalidRequest, NotFound, PayloadTooLarge, UnsupportedMediaType

FORMATS = {"JPEG", "PNG", "WEBP", "MPO"}
"""What a phone or a camera sends (MPO: multi-picture JPEG of some phones)."""
MAX_SIDE = 2048
MAX_PIXELS = 40_000_000
"""Larger images are refused before they are decoded (a 40 MP photo is a large phone's)."""
JPEG_QUALITY = 85
MEDIA_TYPE = "image/jpeg"


@dataclass(frozen=True)
class Photo:
    """A checked, upright, resized photo and what its EXIF said."""

    data: bytes
    sha256: str
    width: int
    height: int
    taken_at: dt.datetime | None
    lon: float | None
    lat: float | None


def _degrees(value: Any, ref: str) -> float | None:
    try:
        degrees, minutes, seconds = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    return -result if ref in ("S", "W") else result


def _exif_place_and_time(image: Image.Image) -> tuple[float | None, float | None, dt.datetime | None]:
    exif = image.getexif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), str(gps.get(ExifTags.GPS.GPSLatitudeRef, "N")))
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), str(gps.get(ExifTags.GPS.GPSLongitudeRef, "E")))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    taken = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    taken_at = None
    if isinstance(taken, str):
        try:  # EXIF local time without zone: a phone in China is on UTC+8
            taken_at = dt.datetime.strptime(taken.strip(), "%Y:%m:%d %H:%M:%S").replace(
                tzinfo=dt.timezone(dt.timedelta(hours=8))
            )
        except ValueError:
            taken_at = None
    return lon, lat, taken_at


def prepare_photo(content: bytes, max_bytes: int) -> Photo:
    """Check and normalise one uploaded photo; a clear error for anything else."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"the photo has {len(content)} bytes; the limit is {max_bytes // 2**20} MB")
    if not content:
        raise InvalidRequest("the photo file is empty")
    try:
        with Image.open(io.BytesIO(content)) as probe:
            kind = probe.format
            if kind not in FORMATS:
                raise UnsupportedMediaType(f"a {kind} image is not accepted; send a JPEG, PNG or WebP photo")
            if probe.width * probe.height > MAX_PIXELS:
                raise PayloadTooLarge(
                    f"the photo has {probe.width}×{probe.height} pixels; the limit is {MAX_PIXELS // 1_000_000} MP"
                )
            probe.verify()
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            lon, lat, taken_at = _exif_place_and_time(image)
            upright = ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise UnsupportedMediaType("the file is not an image; send a JPEG, PNG or WebP photo") from None
    except Image.DecompressionBombError:
        raise PayloadTooLarge(f"the photo has too many pixels; the limit is {MAX_PIXELS // 1_000_000} MP") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InvalidRequest(f"the photo cannot be decoded ({exc}); send the original file") from None
    upright = upright.convert("RGB")
    upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    data = out.getvalue()
    return Photo(data, hashlib.sha256(data).hexdigest(), upright.width, upright.height, taken_at, lon, lat)


def photo_path(directory: Path, sha256: str) -> Path:
    return directory / sha256[:2] / f"{sha256}.jpg"


def _store_file(directory: Path, photo: Photo) -> None:
    """Write the file atomically under its checksum (an identical photo is stored once)."""
    target = photo_path(directory, photo.sha256)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        tmp.write(photo.data)
    os.replace(tmp.name, target)


PHOTO_COLUMNS = (
    "id, issue_id, sha256, media_type, bytes, width, height, taken_at, caption, actor, created_at,"
    " ST_X(geom) AS lon, ST_Y(geom) AS lat"
)


async def add_photo(
    conn: AsyncConnection,
    directory: Path,
    principal: Principal,
    context: AuditContext,
    issue_id: int,
    photo: Photo,
    caption: str,
) -> tuple[dict[str, Any], bool]:
    """Attach a checked photo to an issue; returns it and whether it is new (the same photo sent
    to the same issue again, as a phone catching up re-sends it, is the one already stored)."""
    cursor = await conn.execute("SELECT 1 FROM workflow_issue WHERE id = %s", [issue_id])
    if await cursor.fetchone() is None:
        raise NotFound(f"issue {issue_id} does not exist; GET /api/issues lists them")
    _store_file(directory, photo)
    async with conn.transaction():
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            "INSERT INTO workflow_photo"
            " (issue_id, sha256, media_type, bytes, width, height, taken_at, geom, caption, actor, account_id)"
            " VALUES (%(issue)s, %(sha)s, %(type)s, %(bytes)s, %(w)s, %(h)s, %(taken)s,"
            " CASE WHEN %(lon)s::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) END,"
            " %(caption)s, %(actor)s, %(account)s)"
            f" ON CONFLICT (issue_id, sha256) DO NOTHING RETURNING {PHOTO_COLUMNS}",
            {
                "issue": issue_id,
                "sha": photo.sha256,
                "type": MEDIA_TYPE,
                "bytes": len(photo.data),
                "w": photo.width,
                "h": photo.height,
                "taken": photo.taken_at,
                "lon": photo.lon,
                "lat": photo.lat,
                "caption": caption,
                "actor": principal.actor,
                "account": principal.account_id,
            },
        )
        row = await cursor.fetchone()
        if row is None:  # the issue has this photo already
            await cursor.execute(
                f"SELECT {PHOTO_COLUMNS} FROM workflow_photo WHERE issue_id = %s AND sha256 = %s",
                [issue_id, photo.sha256],
            )
            existing = await cursor.fetchone()
            assert existing is not None  # noqa: S101 - the conflict names this row
            return existing, False
        await audit.record(conn, context, "issue.photo", target=f"issue:{issue_id}", detail={"sha256": photo.sha256})
    return row, True


async def list_photos(conn: AsyncConnection, issue_id: int) -> list[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(f"SELECT {PHOTO_COLUMNS} FROM workflow_photo WHERE issue_id = %s ORDER BY id", [issue_id])
    return await cursor.fetchall()


async def photo_file(conn: AsyncConnection, directory: Path, issue_id: int, photo_id: int) -> tuple[Path, str]:
    """The stored file of one photo of an issue and its checksum (for the ETag)."""
    cursor = await conn.execute(
        "SELECT sha256 FROM workflow_photo WHERE id = %s AND issue_id = %s", [photo_id, issue_id]
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"issue {issue_id} has no photo {photo_id}")
    path = photo_path(directory, row[0])
    if not path.is_file():
        raise NotFound(f"the file of photo {photo_id} is missing from the photo store; an admin restores it")
    return path, row[0]
