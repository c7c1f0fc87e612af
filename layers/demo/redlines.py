"""Ecological protection red lines (生态保护红线) of the demo, on land and at sea.

Land parcels are irregular shapes around hills, reservoirs and coastal shelter belts,
clipped to dry land; marine parcels are irregular shapes or bands along the shore,
clipped to the sea. Parcels are placed in order and each one gives up what earlier
ones took, so together they form a coverage without overlaps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from layers.demo.geometry import blob, clean_area, lobed, xy
from layers.demo.places import LonLat
from layers.demo.terrain import Terrain

Record = dict[str, Any]

APPROVAL_DOC = "闽政文〔2023〕示例"
VALID_FROM = dt.date(2023, 6, 1)
LAND_RULES = "原则上禁止开发性、生产性建设活动，仅允许法律法规规定的对生态功能不造成破坏的有限人为活动。"
MARINE_RULES = {
    "禁止类": "禁止围填海、采挖海砂、新设排污口等改变海域自然属性或破坏生态功能的活动。",
    "限制类": "严格限制开发强度，禁止围填海和破坏自然岸线，控制养殖规模与入海污染物排放。",
}


@dataclass(frozen=True)
class RedLineSpec:
    name: str
    function_type: str
    anchor: LonLat
    radius_km: float
    protection_target: str
    marine_class: str | None = None
    """禁止类/限制类 for marine parcels; None on land."""
    band_m: float | None = None
    """Width of a band along the shore (None: an irregular parcel around the anchor)."""

    @property
    def domain(self) -> str:
        return "陆域" if self.marine_class is None else "海域"


LAND: list[RedLineSpec] = [
    RedLineSpec("天竺山水源涵养生态保护红线", "水源涵养", (117.928, 24.615), 2.7, "水源涵养林与溪流源头区"),
    RedLineSpec("汀溪水库水源涵养生态保护红线", "水源涵养", (118.145, 24.825), 3.4, "汀溪水库集水区水源涵养林"),
    RedLineSpec("莲花水库水源涵养生态保护红线", "水源涵养", (118.025, 24.825), 3.2, "莲花水库集水区水源涵养林"),
    RedLineSpec("石兜–坂头水库水源涵养生态保护红线", "水源涵养", (117.985, 24.672), 1.9, "石兜、坂头水库集水区"),
    RedLineSpec("同安北部山区水源涵养生态保护红线", "水源涵养", (118.085, 24.872), 2.6, "东西溪上游山地森林"),
    RedLineSpec(
        "北辰山生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.212, 24.790),
        2.0,
        "亚热带常绿阔叶林及野生动植物栖息地",
    ),
    RedLineSpec(
        "大帽山生物多样性维护生态保护红线", "生物多样性维护", (118.298, 24.765), 2.5, "山地森林生态系统与珍稀植物"
    ),
    RedLineSpec(
        "万石山生物多样性维护生态保护红线", "生物多样性维护", (118.110, 24.458), 1.2, "城市山地森林与植物多样性"
    ),
    RedLineSpec("香山生物多样性维护生态保护红线", "生物多样性维护", (118.268, 24.600), 1.0, "低山丘陵森林与鸟类栖息地"),
    RedLineSpec("蔡尖尾山水土保持生态保护红线", "水土保持", (118.030, 24.498), 1.5, "花岗岩丘陵植被与坡面"),
    RedLineSpec("美人山水土保持生态保护红线", "水土保持", (117.965, 24.645), 1.4, "丘陵坡地植被"),
    RedLineSpec("五峰水土保持生态保护红线", "水土保持", (118.185, 24.752), 1.4, "低山丘陵水土保持林"),
    RedLineSpec("内厝水土保持生态保护红线", "水土保持", (118.315, 24.680), 1.6, "台地丘陵植被"),
    RedLineSpec("仙岳山水土保持生态保护红线", "水土保持", (118.118, 24.503), 0.8, "城市山体植被"),
    RedLineSpec("大嶝沿海防风固沙生态保护红线", "防风固沙", (118.345, 24.540), 2.5, "沿海防护林带", band_m=700.0),
    RedLineSpec("莲河沿海防风固沙生态保护红线", "防风固沙", (118.345, 24.598), 2.2, "沿海木麻黄防护林", band_m=600.0),
    RedLineSpec("黄厝沿海土地沙化敏感生态保护红线", "土地沙化敏感", (118.175, 24.440), 2.0, "滨海沙地", band_m=400.0),
    RedLineSpec(
        "欧厝沿海土地沙化敏感生态保护红线", "土地沙化敏感", (118.275, 24.535), 1.8, "滨海沙地与海岸沙丘", band_m=500.0
    ),
    RedLineSpec("同安北部水土流失敏感生态保护红线", "水土流失敏感", (118.205, 24.860), 1.9, "陡坡山地"),
    RedLineSpec("翔安新圩水土流失敏感生态保护红线", "水土流失敏感", (118.255, 24.760), 1.5, "丘陵坡地"),
    RedLineSpec("海沧东孚水土流失敏感生态保护红线", "水土流失敏感", (117.905, 24.575), 1.4, "丘陵坡地"),
    RedLineSpec("同安西北部石漠化敏感生态保护红线", "石漠化敏感", (117.960, 24.815), 1.3, "裸岩山地"),
]

MARINE: list[RedLineSpec] = [
    RedLineSpec(
        "西海域中华白海豚生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.045, 24.470),
        2.2,
        "中华白海豚及其栖息海域",
        "禁止类",
    ),
    RedLineSpec(
        "鸡屿–大屿白鹭生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.030, 24.428),
        1.6,
        "白鹭繁殖岛屿及周边海域",
        "禁止类",
    ),
    RedLineSpec(
        "黄厝文昌鱼生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.185, 24.420),
        2.4,
        "文昌鱼及其砂质栖息地",
        "禁止类",
    ),
    RedLineSpec(
        "厦金海域文昌鱼生物多样性维护生态保护红线", "生物多样性维护", (118.255, 24.475), 2.0, "文昌鱼栖息海域", "限制类"
    ),
    RedLineSpec(
        "小嶝–角屿海域生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.405, 24.545),
        1.8,
        "海岛礁与鱼类产卵场",
        "限制类",
    ),
    RedLineSpec(
        "下潭尾红树林生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.218, 24.652),
        1.8,
        "红树林湿地",
        "禁止类",
        600.0,
    ),
    RedLineSpec(
        "九龙江口红树林生物多样性维护生态保护红线",
        "生物多样性维护",
        (117.958, 24.445),
        2.2,
        "河口红树林与滩涂",
        "禁止类",
        700.0,
    ),
    RedLineSpec(
        "同安湾西岸滨海湿地生物多样性维护生态保护红线",
        "生物多样性维护",
        (118.138, 24.625),
        2.0,
        "滨海湿地与鸟类栖息地",
        "限制类",
        500.0,
    ),
    RedLineSpec(
        "环岛路自然岸线海岸生态稳定生态保护红线",
        "海岸生态稳定",
        (118.150, 24.428),
        3.5,
        "自然沙质岸线",
        "限制类",
        450.0,
    ),
    RedLineSpec(
        "鼓浪屿岸段海岸生态稳定生态保护红线",
        "海岸生态稳定",
        (118.066, 24.446),
        1.5,
        "岛屿自然岸线与沙滩",
        "限制类",
        250.0,
    ),
    RedLineSpec(
        "大嶝岛南岸海岸生态稳定生态保护红线",
        "海岸生态稳定",
        (118.340, 24.530),
        3.0,
        "砂质岸线与潮间带",
        "限制类",
        700.0,
    ),
    RedLineSpec(
        "澳头–刘五店海岸生态稳定生态保护红线",
        "海岸生态稳定",
        (118.212, 24.545),
        2.0,
        "基岩岸线与潮间带",
        "限制类",
        500.0,
    ),
    RedLineSpec(
        "马銮湾海岸生态稳定生态保护红线", "海岸生态稳定", (118.015, 24.560), 1.6, "海湾岸线与滩涂", "限制类", 350.0
    ),
    RedLineSpec(
        "五缘湾–观音山海岸生态稳定生态保护红线", "海岸生态稳定", (118.195, 24.495), 2.5, "砂质岸线", "限制类", 400.0
    ),
    RedLineSpec(
        "东坑湾滨海湿地海岸生态稳定生态保护红线",
        "海岸生态稳定",
        (118.245, 24.545),
        1.5,
        "海湾滩涂湿地",
        "限制类",
        400.0,
    ),
]


def _parcel(spec: RedLineSpec, terrain: Terrain, taken: BaseGeometry, rng: np.random.Generator) -> BaseGeometry:
    region = terrain.dry_land if spec.marine_class is None else terrain.sea
    center, radius = xy(*spec.anchor), spec.radius_km * 1000.0
    if spec.band_m is None:
        shape = lobed(center, radius, rng, irregularity=0.45)
    else:
        along_shore = blob(center, radius, rng, irregularity=0.45, elongation=float(rng.uniform(1.0, 1.7)))
        shape = shapely.intersection(along_shore, shapely.buffer(terrain.coastline, spec.band_m))
    parcel = clean_area(shapely.difference(shapely.intersection(shape, region), taken), min_part=40_000.0)
    if parcel.is_empty:
        raise ValueError(f"red line {spec.name!r} found no room at {spec.anchor}; move its anchor")
    return parcel


def build_redlines(terrain: Terrain, rng: np.random.Generator) -> list[Record]:
    """Red-line records in local metres (area and adcode are filled in by the builder)."""
    records: list[Record] = []
    taken: BaseGeometry = shapely.Polygon()
    for number, spec in enumerate([*LAND, *MARINE], start=1):
        geom = _parcel(spec, terrain, taken, rng)
        taken = shapely.union(taken, geom)
        marine = spec.marine_class is not None
        records.append(
            {
                "id": number,
                "code": f"XM-HLX-{number:03d}",
                "name": spec.name,
                "function_type": spec.function_type,
                "domain": spec.domain,
                "marine_class": spec.marine_class,
                "protection_target": spec.protection_target,
                "control_rules": MARINE_RULES[spec.marine_class] if marine else LAND_RULES,
                "approval_doc": APPROVAL_DOC,
                "valid_from": VALID_FROM,
                "revision": 1,
                "geom": geom,
            }
        )
    return records
