"""Named places of the demo: waters, bays, reservoirs, streams and their watersheds.

Coordinates are WGS84 lon/lat, approximate (±1–2 km) and only meant to make the demo
plausible at the real places; they are not official boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LonLat = tuple[float, float]

# --- sea ---------------------------------------------------------------------------

SEA_OUTLINE: list[LonLat] = [
    # Starts on 海沧 land, runs through the 九龙江 estuary, south of 鼓浪屿 and 厦门岛
    # (mid-channel towards 漳州港尾), west and north of 金门 (mid-channel), around 大嶝
    # into 围头湾 and back over 翔安/同安/集美 land (the land part is cut away).
    (117.970, 24.470),
    (117.945, 24.456),
    (117.936, 24.432),
    (117.948, 24.410),
    (117.990, 24.396),
    (118.030, 24.391),
    (118.090, 24.388),
    (118.140, 24.382),
    (118.190, 24.391),
    (118.214, 24.415),
    (118.213, 24.450),
    (118.226, 24.476),
    (118.262, 24.490),
    (118.300, 24.503),
    (118.350, 24.513),
    (118.390, 24.526),
    (118.422, 24.533),
    (118.442, 24.550),
    (118.432, 24.580),
    (118.400, 24.608),
    (118.362, 24.624),
    (118.330, 24.632),
    (118.250, 24.622),
    (118.120, 24.612),
    (118.020, 24.572),
]

INNER_WATERS: dict[str, list[LonLat]] = {
    # Waters inside the district boundaries (the districts include these bays).
    "同安湾": [
        (118.175, 24.552),
        (118.150, 24.583),
        (118.138, 24.597),
        (118.131, 24.612),
        (118.133, 24.628),
        (118.142, 24.640),
        (118.140, 24.652),
        (118.150, 24.662),
        (118.160, 24.675),
        (118.170, 24.690),
        (118.182, 24.688),
        (118.190, 24.680),
        (118.197, 24.668),
        (118.207, 24.662),
        (118.220, 24.665),
        (118.228, 24.656),
        (118.222, 24.645),
        (118.212, 24.640),
        (118.213, 24.625),
        (118.220, 24.610),
        (118.222, 24.590),
        (118.217, 24.574),
        (118.222, 24.560),
        (118.215, 24.540),
        (118.195, 24.545),
    ],
    "东坑湾": [
        (118.236, 24.512),
        (118.233, 24.525),
        (118.229, 24.540),
        (118.233, 24.556),
        (118.242, 24.566),
        (118.251, 24.562),
        (118.256, 24.548),
        (118.255, 24.530),
        (118.258, 24.514),
    ],
    "杏林湾": [
        (118.062, 24.560),
        (118.055, 24.575),
        (118.054, 24.590),
        (118.058, 24.603),
        (118.066, 24.613),
        (118.075, 24.607),
        (118.079, 24.592),
        (118.077, 24.575),
        (118.070, 24.563),
    ],
    "马銮湾": [
        (117.985, 24.546),
        (117.990, 24.558),
        (118.004, 24.567),
        (118.024, 24.566),
        (118.038, 24.557),
        (118.041, 24.545),
        (118.031, 24.537),
        (118.012, 24.534),
        (117.995, 24.537),
    ],
    "西海域": [
        # The Haicang district boundary takes in half of the western harbour.
        (118.050, 24.430),
        (118.038, 24.446),
        (118.035, 24.462),
        (118.040, 24.478),
        (118.043, 24.492),
        (118.047, 24.505),
        (118.052, 24.518),
        (118.057, 24.530),
        (118.064, 24.540),
        (118.076, 24.546),
        (118.088, 24.547),
        (118.090, 24.538),
        (118.078, 24.500),
        (118.070, 24.470),
        (118.062, 24.440),
    ],
}


@dataclass(frozen=True)
class BayInfo:
    name_en: str
    target_class: str


BAYS: dict[str, BayInfo] = {
    "同安湾": BayInfo("Tong'an Bay", "二类"),
    "西海域": BayInfo("Western Sea Area", "三类"),
    "东南部海域": BayInfo("Southeastern Sea Area", "一类"),
    "大嶝海域": BayInfo("Dadeng Sea Area", "二类"),
    "九龙江口": BayInfo("Jiulong River Estuary (Xiamen)", "四类"),
    "马銮湾": BayInfo("Maluan Bay", "四类"),
    "杏林湾": BayInfo("Xinglin Bay", "三类"),
    "东坑湾": BayInfo("Dongkeng Bay", "三类"),
}
BAY_ORDER = list(BAYS)

BAY_SEEDS: dict[str, list[LonLat]] = {
    # The open sea is split among the units by nearest seed.
    "九龙江口": [(117.950, 24.430), (117.966, 24.410)],
    "西海域": [(118.030, 24.432), (118.050, 24.455), (118.062, 24.490), (118.066, 24.530), (118.075, 24.552)],
    "东南部海域": [(118.100, 24.405), (118.150, 24.402), (118.195, 24.420), (118.208, 24.455), (118.240, 24.488)],
    "同安湾": [(118.170, 24.555), (118.192, 24.535)],
    "大嶝海域": [(118.295, 24.506), (118.340, 24.520), (118.390, 24.535), (118.420, 24.556), (118.400, 24.595)],
}


# --- reservoirs and streams --------------------------------------------------------------


@dataclass(frozen=True)
class Reservoir:
    name: str
    center: LonLat
    radius_m: float
    elongation: float
    angle_deg: float
    intake: LonLat


RESERVOIRS: dict[str, Reservoir] = {
    "汀溪水库": Reservoir("汀溪水库", (118.132, 24.803), 520.0, 2.2, 70.0, (118.128, 24.797)),
    "莲花水库": Reservoir("莲花水库", (118.030, 24.801), 480.0, 2.0, 35.0, (118.034, 24.797)),
    "石兜水库": Reservoir("石兜水库", (117.985, 24.672), 380.0, 1.8, 120.0, (117.988, 24.669)),
    "坂头水库": Reservoir("坂头水库", (118.006, 24.651), 430.0, 2.0, 150.0, (118.011, 24.647)),
    "上李水库": Reservoir("上李水库", (118.139, 24.497), 230.0, 1.5, 20.0, (118.140, 24.495)),
}

WATER_SOURCES: dict[str, list[str]] = {
    # Drinking-water source (protected as one unit) -> its reservoirs, main one first.
    "汀溪水库": ["汀溪水库"],
    "莲花水库": ["莲花水库"],
    "石兜–坂头水库": ["坂头水库", "石兜水库"],
}


@dataclass(frozen=True)
class Segment:
    key: str
    segment: str
    waypoints: list[LonLat]
    target_class: str = "III"


@dataclass(frozen=True)
class Stream:
    """A named stream as a chain of chief-managed segments, source first."""

    name: str
    name_en: str
    segments: list[Segment]
    joins: str | None = None
    """Key of the segment this stream flows into (None: it ends in a bay)."""
    bay: str | None = None
    length_km: float | None = None
    """Published length, when known: the meanders are scaled to match it."""


STREAMS: list[Stream] = [
    Stream(
        "东西溪",
        "Dongxi River",
        [
            Segment(
                "dxx-1",
                "西溪源头–莲花水库段",
                [(118.000, 24.866), (118.012, 24.838), (118.024, 24.815), (118.030, 24.801)],
                "II",
            ),
            Segment(
                "dxx-2",
                "莲花水库–五显段",
                [(118.030, 24.801), (118.047, 24.789), (118.066, 24.780), (118.090, 24.766)],
                "II",
            ),
            Segment(
                "dxx-3", "五显–双溪口段", [(118.090, 24.766), (118.108, 24.757), (118.126, 24.745), (118.146, 24.735)]
            ),
            Segment("dxx-4", "双溪口–同安城区段", [(118.146, 24.735), (118.152, 24.722), (118.160, 24.708)]),
            Segment(
                "dxx-5",
                "同安城区–入海口段",
                [(118.160, 24.708), (118.166, 24.697), (118.171, 24.690), (118.176, 24.685)],
            ),
        ],
        bay="同安湾",
        length_km=34.0,
    ),
    Stream(
        "东溪",
        "Dongxi (East Creek)",
        [
            Segment(
                "dx-1",
                "东溪源头–汀溪水库段",
                [(118.168, 24.872), (118.152, 24.846), (118.140, 24.820), (118.132, 24.803)],
                "II",
            ),
            Segment(
                "dx-2",
                "汀溪水库–双溪口段",
                [(118.132, 24.803), (118.138, 24.782), (118.142, 24.760), (118.146, 24.735)],
                "II",
            ),
        ],
        joins="dxx-4",
    ),
    Stream(
        "官浔溪",
        "Guanxun Creek",
        [
            Segment("gx-1", "官浔溪上游段", [(118.058, 24.722), (118.074, 24.706), (118.092, 24.690)]),
            Segment(
                "gx-2",
                "官浔溪下游段",
                [(118.092, 24.690), (118.112, 24.672), (118.130, 24.658), (118.147, 24.645)],
                "IV",
            ),
        ],
        bay="同安湾",
    ),
    Stream(
        "九溪",
        "Jiuxi Creek",
        [
            Segment(
                "jx-1",
                "九溪源头–新圩段",
                [(118.292, 24.792), (118.283, 24.766), (118.276, 24.740), (118.270, 24.720)],
                "II",
            ),
            Segment(
                "jx-2", "新圩–马巷段", [(118.270, 24.720), (118.262, 24.700), (118.252, 24.684), (118.240, 24.668)]
            ),
            Segment(
                "jx-3",
                "马巷–东咀港段",
                [(118.240, 24.668), (118.236, 24.666), (118.228, 24.662), (118.217, 24.657)],
                "IV",
            ),
        ],
        bay="同安湾",
    ),
    Stream(
        "后溪",
        "Houxi River",
        [
            Segment(
                "hx-1",
                "后溪源头–石兜水库段",
                [(117.966, 24.712), (117.973, 24.694), (117.981, 24.680), (117.985, 24.672)],
                "II",
            ),
            Segment(
                "hx-2",
                "石兜–坂头水库段",
                [(117.985, 24.672), (117.993, 24.664), (118.000, 24.657), (118.006, 24.651)],
                "II",
            ),
            Segment(
                "hx-3",
                "坂头水库–后溪镇段",
                [(118.006, 24.651), (118.016, 24.642), (118.028, 24.634), (118.040, 24.626)],
            ),
            Segment(
                "hx-4",
                "后溪镇–杏林湾段",
                [(118.040, 24.626), (118.050, 24.620), (118.058, 24.613), (118.065, 24.603)],
                "IV",
            ),
        ],
        bay="杏林湾",
    ),
    Stream(
        "许溪",
        "Xuxi Creek",
        [
            Segment("xx-1", "许溪上游段", [(118.024, 24.702), (118.030, 24.688), (118.035, 24.672)]),
            Segment("xx-2", "许溪下游段", [(118.035, 24.672), (118.039, 24.656), (118.041, 24.640), (118.040, 24.626)]),
        ],
        joins="hx-4",
    ),
    Stream(
        "深青溪",
        "Shenqing Creek",
        [
            Segment(
                "sq-1", "深青溪上游段", [(117.966, 24.670), (117.968, 24.652), (117.975, 24.634), (117.983, 24.618)]
            ),
            Segment(
                "sq-2",
                "灌口–马銮湾段",
                [(117.983, 24.618), (117.992, 24.603), (117.998, 24.588), (118.003, 24.572), (118.008, 24.558)],
                "IV",
            ),
        ],
        bay="马銮湾",
    ),
    Stream(
        "过芸溪",
        "Guoyun Creek",
        [
            Segment(
                "gy-1",
                "天竺山–东孚段",
                [
                    (117.927, 24.625),
                    (117.925, 24.612),
                    (117.935, 24.607),
                    (117.945, 24.596),
                    (117.950, 24.586),
                    (117.962, 24.580),
                ],
                "II",
            ),
            Segment(
                "gy-2",
                "东孚–马銮湾段",
                [(117.962, 24.580), (117.968, 24.569), (117.978, 24.563), (117.984, 24.554), (117.992, 24.550)],
                "IV",
            ),
        ],
        bay="马銮湾",
        length_km=15.1,
    ),
]


@dataclass(frozen=True)
class WatershedSpec:
    name: str
    name_en: str
    level: str
    segments: list[str] = field(default_factory=list)
    """Stream segments whose catchment forms this unit (small/sub-basin leaves)."""
    children: list[WatershedSpec] = field(default_factory=list)


def _sub(name: str, name_en: str, segments: list[str]) -> WatershedSpec:
    return WatershedSpec(name, name_en, "sub_basin", segments)


WATERSHEDS: list[WatershedSpec] = [
    # basin -> sub_basin -> small; a unit's area is the union of its segments' catchments.
    WatershedSpec(
        "东西溪流域",
        "Dongxi River Basin",
        "basin",
        children=[
            WatershedSpec(
                "西溪子流域",
                "Xixi Sub-basin",
                "sub_basin",
                children=[
                    WatershedSpec("莲花水库小流域", "Lianhua Reservoir Catchment", "small", ["dxx-1"]),
                    WatershedSpec("五显小流域", "Wuxian Catchment", "small", ["dxx-2"]),
                    WatershedSpec("西溪下游小流域", "Lower Xixi Catchment", "small", ["dxx-3"]),
                ],
            ),
            WatershedSpec(
                "东溪子流域",
                "Dongxi (East Creek) Sub-basin",
                "sub_basin",
                children=[
                    WatershedSpec("汀溪水库小流域", "Tingxi Reservoir Catchment", "small", ["dx-1"]),
                    WatershedSpec("东溪下游小流域", "Lower East Creek Catchment", "small", ["dx-2"]),
                ],
            ),
            _sub("东西溪干流子流域", "Dongxi Main Stem Sub-basin", ["dxx-4", "dxx-5"]),
        ],
    ),
    WatershedSpec(
        "后溪流域",
        "Houxi River Basin",
        "basin",
        children=[
            WatershedSpec(
                "后溪干流子流域",
                "Houxi Main Stem Sub-basin",
                "sub_basin",
                children=[
                    WatershedSpec(
                        "石兜–坂头水库小流域", "Shidou-Bantou Reservoirs Catchment", "small", ["hx-1", "hx-2"]
                    ),
                    WatershedSpec("后溪中下游小流域", "Lower Houxi Catchment", "small", ["hx-3", "hx-4"]),
                ],
            ),
            _sub("许溪子流域", "Xuxi Sub-basin", ["xx-1", "xx-2"]),
        ],
    ),
    WatershedSpec(
        "九溪流域",
        "Jiuxi Creek Basin",
        "basin",
        children=[
            _sub("九溪上游子流域", "Upper Jiuxi Sub-basin", ["jx-1"]),
            _sub("九溪下游子流域", "Lower Jiuxi Sub-basin", ["jx-2", "jx-3"]),
        ],
    ),
    WatershedSpec("官浔溪流域", "Guanxun Creek Basin", "basin", ["gx-1", "gx-2"]),
    WatershedSpec("深青溪流域", "Shenqing Creek Basin", "basin", ["sq-1", "sq-2"]),
    WatershedSpec("过芸溪流域", "Guoyun Creek Basin", "basin", ["gy-1", "gy-2"]),
]

COASTAL_CATCHMENT_SEEDS: list[LonLat] = [
    # Land draining straight to the sea (island, coastal strips, other small streams):
    # these seeds keep the stream catchments from spreading over the whole city.
    (118.100, 24.480),
    (118.160, 24.480),
    (118.130, 24.530),
    (118.030, 24.470),
    (118.000, 24.440),
    (118.045, 24.515),
    (117.935, 24.530),
    (117.905, 24.580),
    (118.090, 24.600),
    (118.110, 24.630),
    (118.200, 24.580),
    (118.280, 24.560),
    (118.330, 24.560),
    (118.330, 24.610),
    (118.250, 24.525),
    (118.195, 24.640),
]

CATCHMENT_EXTRA_SEEDS: dict[str, list[LonLat]] = {
    # Unmapped tributaries that widen a catchment (东西溪 drains ~494 km²).
    "dx-1": [(118.200, 24.830)],
    "dx-2": [(118.205, 24.775)],
    "dxx-4": [(118.200, 24.738)],
}
