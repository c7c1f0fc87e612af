"""The gazetteer: named places the search finds (lakes, reservoirs, islands, mountains, towns,
villages, universities, ports, landmarks), read from a UTF-8 CSV file and written to ``place``
(migration 0022).

File format (a header row, then one place per row; README "Gazetteer"):

``name_zh,name_en,kind,lon,lat`` are required; ``pinyin`` (toneless syllables separated by
spaces, e.g. ``chang tai`` where the automatic reading of a polyphonic character is wrong),
``aliases`` (other names separated by ``|``), ``adcode``, ``approximate`` (true/false, default
true) and ``source`` are optional. Coordinates are WGS84/CGCS2000 longitude and latitude.
Without a ``pinyin`` column or value the pinyin is derived with pypinyin.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypinyin import Style, lazy_pinyin

from layers.regions import Region, get_region

KINDS = ("lake", "reservoir", "bay", "island", "mountain", "district", "town", "subdistrict", "village",
         "university", "port", "landmark", "station")  # fmt: skip
"""Kinds of place (the ``kind`` column; migration 0022 checks the same list, the UI titles them)."""

REQUIRED = ("name_zh", "name_en", "kind", "lon", "lat")
OPTIONAL = ("pinyin", "aliases", "adcode", "approximate", "source")
DEMO_GAZETTEER = Path(__file__).with_name("demo") / "data" / "gazetteer.csv"
"""The Xiamen demo gazetteer (coordinates approximate, from general knowledge of the city)."""

_SYLLABLES = re.compile(r"^[a-z]+( [a-z]+)*$")


class GazetteerError(ValueError):
    """A gazetteer file that cannot be imported; the message lists each problem and its line."""


@dataclass(frozen=True)
class Place:
    """One gazetteer entry, checked."""

    name_zh: str
    name_en: str | None
    kind: str
    lon: float
    lat: float
    pinyin: str
    aliases: tuple[str, ...] = ()
    adcode: str | None = None
    approximate: bool = True
    source: str | None = None

    @property
    def initials(self) -> str:
        return "".join(syllable[0] for syllable in self.pinyin.split())


def to_pinyin(text: str) -> str:
    """Toneless pinyin of a name, syllables separated by spaces (ü as v); Latin letters and
    digits are kept as words, other characters dropped: ``筼筜湖`` → ``yun dang hu``."""
    words = []
    for part in lazy_pinyin(text, style=Style.NORMAL, errors=lambda chars: re.split(r"[^A-Za-z]+", chars)):
        words += [w for w in re.split(r"[^a-z]+", part.lower().replace("ü", "v")) if w]
    return " ".join(words)


def initials_of(text: str) -> str:
    """The first letters of a text's pinyin syllables: ``筼筜湖`` → ``ydh``."""
    return "".join(syllable[0] for syllable in to_pinyin(text).split())


@dataclass
class _Reader:
    region: Region
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int, text: str) -> None:
        self.problems.append(f"line {line}: {text}")

    def place(self, line: int, row: dict[str, str]) -> Place | None:
        value = {k: (row.get(k) or "").strip() for k in (*REQUIRED, *OPTIONAL)}
        if not value["name_zh"]:
            self.problem(line, "name_zh is empty")
            return None
        if value["kind"] not in KINDS:
            self.problem(line, f"kind {value['kind']!r} is not one of {', '.join(KINDS)}")
            return None
        try:
            lon, lat = float(value["lon"]), float(value["lat"])
        except ValueError:
            self.problem(line, f"lon/lat {value['lon']!r}, {value['lat']!r} are not numbers (decimal degrees)")
            return None
        if not bool(self.region.contains(lon, lat)):
            self.problem(line, f"{value['name_zh']} at {lon}, {lat} is outside {self.region.describe()}")
            return None
        pinyin = " ".join(value["pinyin"].lower().split()) or to_pinyin(value["name_zh"])
        if not _SYLLABLES.match(pinyin):
            self.problem(line, f"pinyin {value['pinyin']!r} must be toneless syllables a-z separated by spaces")
            return None
        if value["adcode"] and not re.fullmatch(r"[0-9]{6}", value["adcode"]):
            self.problem(line, f"adcode {value['adcode']!r} must be six digits")
            return None
        flag = value["approximate"].lower()
        if flag not in ("", "true", "false", "1", "0", "yes", "no"):
            self.problem(line, f"approximate {value['approximate']!r} must be true or false")
            return None
        return Place(
            name_zh=value["name_zh"],
            name_en=value["name_en"] or None,
            kind=value["kind"],
            lon=lon,
            lat=lat,
            pinyin=pinyin,
            aliases=tuple(a.strip() for a in value["aliases"].split("|") if a.strip()),
            adcode=value["adcode"] or None,
            approximate=flag not in ("false", "0", "no"),
            source=value["source"] or None,
        )


def read_places(text: str, region: Region | None = None) -> list[Place]:
    """The places of a gazetteer CSV (text), checked; GazetteerError listing every problem."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise GazetteerError(f"the header lacks {', '.join(missing)}; a gazetteer has columns {', '.join(REQUIRED)}")
    check = _Reader(region or get_region())
    places: list[Place] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(reader, start=2):
        place = check.place(line, row)
        if place is None:
            continue
        key = (place.name_zh, place.kind)
        if key in seen:
            check.problem(line, f"{place.name_zh} ({place.kind}) is also on line {seen[key]}")
            continue
        seen[key] = line
        places.append(place)
    if check.problems:
        raise GazetteerError("; ".join(check.problems))
    if not places:
        raise GazetteerError("the file holds no places")
    return places


_UPSERT = """
INSERT INTO place (name_zh, name_en, pinyin, initials, aliases, kind, adcode, approximate, source, geom)
VALUES (%(name_zh)s, %(name_en)s, %(pinyin)s, %(initials)s, %(aliases)s, %(kind)s, %(adcode)s, %(approximate)s,
        %(source)s, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
ON CONFLICT (name_zh, kind) DO UPDATE SET
    name_en = excluded.name_en, pinyin = excluded.pinyin, initials = excluded.initials, aliases = excluded.aliases,
    adcode = excluded.adcode, approximate = excluded.approximate, source = excluded.source, geom = excluded.geom
"""


def write_places(conn: Any, places: list[Place], *, replace: bool = False) -> int:
    """Write places on a psycopg connection, in the caller's transaction: update those of the same
    name and kind, add the others; with ``replace`` remove every other place first."""
    if replace:
        conn.execute("DELETE FROM place")
    rows = [{**place.__dict__, "aliases": list(place.aliases), "initials": place.initials} for place in places]
    with conn.cursor() as cursor:
        cursor.executemany(_UPSERT, rows)
    return len(rows)


def import_places(conn: Any, path: str | Path, *, replace: bool = False, region: Region | None = None) -> int:
    """Read a gazetteer file and write it in one transaction (nothing is written when a row is wrong)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GazetteerError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from None
    places = read_places(text, region)
    with conn.transaction():
        return write_places(conn, places, replace=replace)
