"""River and bay chiefs (河长/湾长) of the demo and what each is responsible for.

City chiefs cover the basins and all bays, district chiefs the segments and bays in
or along their district, town and village chiefs their local segments and shores.
Upstream, Zhangzhou and Longyan have city-level chiefs for their Jiulong segments and
watersheds (``upstream.chief_plan``). Names are generated; contacts are masked office
numbers with the city's area code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from layers.demo import places
from layers.demo.hydro import Hydrology
from layers.demo.terrain import Terrain
from layers.demo.upstream import Upstream, chief_plan

Record = dict[str, Any]

CITY_ADCODE = "350200"
AREA_CODES = {"350200": "0592", "350600": "0596", "350800": "0597"}
"""Telephone area codes of the cities, for the masked contacts."""
SURNAMES = list("陈林黄张李王吴刘蔡杨许郑谢洪郭曾苏叶庄吕")
GIVEN = list("志明建华文国伟海峰丽芳春晓东勇斌红秀英晖辉强平杰婷燕涛鹏")
RIVER_DISTRICTS = ("350205", "350211", "350212", "350213")
"""Districts with managed streams (the island districts 思明/湖里 have none in the demo)."""


@dataclass(frozen=True)
class LocalChief:
    unit: str
    adcode: str
    title: str
    role: str
    level: str
    targets: list[str]
    """Segment keys (river chiefs) or bay names (bay chiefs)."""


LOCAL_CHIEFS: list[LocalChief] = [
    LocalChief("莲花镇", "350212", "莲花镇镇长", "river", "town", ["dxx-1", "dxx-2"]),
    LocalChief("五显镇", "350212", "五显镇镇长", "river", "town", ["dxx-3"]),
    LocalChief("汀溪镇", "350212", "汀溪镇镇长", "river", "town", ["dx-1", "dx-2"]),
    LocalChief("大同街道", "350212", "大同街道办事处主任", "river", "town", ["dxx-4", "dxx-5"]),
    LocalChief("西柯街道", "350212", "西柯街道办事处主任", "river", "town", ["gx-1", "gx-2"]),
    LocalChief("新圩镇", "350213", "新圩镇镇长", "river", "town", ["jx-1", "jx-2"]),
    LocalChief("马巷街道", "350213", "马巷街道办事处主任", "river", "town", ["jx-3"]),
    LocalChief("后溪镇", "350211", "后溪镇镇长", "river", "town", ["hx-1", "hx-2", "hx-3", "hx-4", "xx-1", "xx-2"]),
    LocalChief("灌口镇", "350211", "灌口镇镇长", "river", "town", ["sq-1", "sq-2"]),
    LocalChief("东孚街道", "350205", "东孚街道办事处主任", "river", "town", ["gy-1", "gy-2"]),
    LocalChief("军营村", "350212", "军营村党支部书记", "river", "village", ["dxx-1"]),
    LocalChief("大嶝街道", "350213", "大嶝街道办事处主任", "bay", "town", ["大嶝海域"]),
    LocalChief("新店街道", "350213", "新店街道办事处主任", "bay", "town", ["同安湾", "东坑湾"]),
    LocalChief("嵩屿街道", "350205", "嵩屿街道办事处主任", "bay", "town", ["西海域", "九龙江口"]),
    LocalChief("澳头社区", "350213", "澳头社区居委会主任", "bay", "village", ["东坑湾"]),
]


class _Roster:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.chiefs: list[Record] = []
        self.assignments: list[Record] = []
        self._names: set[str] = set()

    def _name(self) -> str:
        while True:
            given = "".join(self.rng.choice(GIVEN, size=int(self.rng.integers(1, 3))))
            name = str(self.rng.choice(SURNAMES)) + given
            if name not in self._names:
                self._names.add(name)
                return name

    def _contact(self, adcode: str) -> str:
        digits = self.rng.integers(0, 10, size=4)
        area = AREA_CODES[adcode[:4] + "00"]
        return f"{area}-{int(self.rng.integers(2, 8))}{digits[0]}***{digits[1]}{digits[2]}"

    def chief(self, role: str, level: str, adcode: str, title: str) -> int:
        chief_id = len(self.chiefs) + 1
        self.chiefs.append(
            {
                "id": chief_id,
                "name": self._name(),
                "role": role,
                "level": level,
                "adcode": adcode,
                "title": title,
                "contact": self._contact(adcode),
            }
        )
        return chief_id

    def assign(self, chief_id: int, layer: str, feature_ids: list[int]) -> None:
        known = {(a["chief_id"], a["layer"], a["feature_id"]) for a in self.assignments}
        for feature_id in feature_ids:
            if (chief_id, layer, feature_id) not in known:
                known.add((chief_id, layer, feature_id))
                self.assignments.append(
                    {"id": len(self.assignments) + 1, "chief_id": chief_id, "layer": layer, "feature_id": feature_id}
                )


def build_chiefs(
    terrain: Terrain, hydro: Hydrology, bay_ids: dict[str, int], rng: np.random.Generator, upstream: Upstream
) -> tuple[list[Record], list[Record]]:
    """Chief records and their assignments (river segments, bays, basins), Xiamen's first."""
    roster = _Roster(rng)
    district_names = {d.adcode: d.name_zh for d in terrain.districts}
    basins = [w["id"] for w in hydro.watersheds if w["level"] == "basin"]
    main_stem = [hydro.segment_ids[s.key] for s in places.STREAMS[0].segments]

    roster.assign(roster.chief("river", "city", CITY_ADCODE, "厦门市市长"), "watershed", basins)
    roster.assign(roster.chief("river", "city", CITY_ADCODE, "厦门市副市长"), "river", main_stem)
    roster.assign(roster.chief("bay", "city", CITY_ADCODE, "厦门市副市长"), "bay", list(bay_ids.values()))

    segment_district = {
        key: terrain.district_at(line.interpolate(0.5, normalized=True)) for key, line in hydro.segment_lines.items()
    }
    for adcode in RIVER_DISTRICTS:
        chief_id = roster.chief("river", "district", adcode, f"{district_names[adcode]}副区长")
        keys = [k for k, a in segment_district.items() if a == adcode]
        roster.assign(chief_id, "river", [hydro.segment_ids[k] for k in keys])
    for district, geom in zip(terrain.districts, terrain.district_geoms, strict=True):
        chief_id = roster.chief("bay", "district", district.adcode, f"{district.name_zh}副区长")
        near = [bay_ids[name] for name, bay in terrain.bays.items() if shapely.distance(bay, geom) < 300.0]
        roster.assign(chief_id, "bay", near)
    for local in LOCAL_CHIEFS:
        chief_id = roster.chief(local.role, local.level, local.adcode, local.title)
        if local.role == "river":
            roster.assign(chief_id, "river", [hydro.segment_ids[k] for k in local.targets])
        else:
            roster.assign(chief_id, "bay", [bay_ids[name] for name in local.targets])
    for adcode, title, role, targets in chief_plan(upstream):
        chief_id = roster.chief(role, "city", adcode, title)
        for layer, feature_id in targets:
            roster.assign(chief_id, layer, [feature_id])
    return roster.chiefs, roster.assignments
