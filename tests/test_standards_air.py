"""HJ 633 IAQI/AQI: breakpoints transcribed here from HJ 633-2012 表1, expected values by hand.

Each expected IAQI is computed in the test from the published formula
IAQI = (IAQI_Hi - IAQI_Lo) / (BP_Hi - BP_Lo) * (C - BP_Lo) + IAQI_Lo, rounded up, with exact
fractions, independently of the engine.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis_service.monitoring.standards import (
    NoStandardInForceError,
    StandardsError,
    UnknownFactorError,
    aqi,
    select_aqi_standard,
)

LEVELS = [0, 50, 100, 150, 200, 300, 400, 500]
# HJ 633-2012 表1 (µg/m³; CO mg/m³).
T2012 = {
    ("pm25", "24h"): [0, 35, 75, 115, 150, 250, 350, 500],
    ("pm10", "24h"): [0, 50, 150, 250, 350, 420, 500, 600],
    ("so2", "24h"): [0, 50, 150, 475, 800, 1600, 2100, 2620],
    ("so2", "1h"): [0, 150, 500, 650, 800],
    ("no2", "24h"): [0, 40, 80, 180, 280, 565, 750, 940],
    ("no2", "1h"): [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    ("co", "24h"): [0, 2, 4, 14, 24, 36, 48, 60],
    ("co", "1h"): [0, 5, 10, 35, 60, 90, 120, 150],
    ("o3_1h", "1h"): [0, 160, 200, 300, 400, 800, 1000, 1200],
    ("o3_8h", "24h"): [0, 100, 160, 215, 265, 800],
}
D2025 = dt.date(2025, 7, 1)
D2026 = dt.date(2026, 7, 1)


def by_hand(bps: list[float], c: float) -> int:
    """The published formula, rounded up (向上进位取整数), in exact arithmetic."""
    cf = Fraction(str(c))
    for i in range(1, len(bps)):
        lo, hi = Fraction(str(bps[i - 1])), Fraction(str(bps[i]))
        if cf <= hi:
            return math.ceil(Fraction(LEVELS[i] - LEVELS[i - 1]) / (hi - lo) * (cf - lo) + LEVELS[i - 1])
    raise ValueError("above the table")


def edges():
    for (key, averaging), bps in T2012.items():
        for i, bp in enumerate(bps):
            yield key, averaging, bps, i, bp


@pytest.mark.parametrize(("key", "averaging", "bps", "i", "bp"), list(edges()))
def test_every_breakpoint_edge_2012(key, averaging, bps, i, bp):
    r = aqi({key: bp}, averaging=averaging, on=D2025)
    assert r.iaqi[key] == LEVELS[i]  # on a breakpoint: exactly its IAQI, no floating residue
    if i + 1 < len(bps):
        above = math.nextafter(bp, math.inf)
        assert aqi({key: above}, averaging=averaging, on=D2025).iaqi[key] == LEVELS[i] + 1
        mid = (bp + bps[i + 1]) / 2
        assert aqi({key: mid}, averaging=averaging, on=D2025).iaqi[key] == by_hand(bps, mid)


def test_worked_example_daily_report():
    # A day: PM2.5 80, PM10 120, SO2 10, NO2 30, CO 0.8 mg/m³, O3 max 8-hour 100, max 1-hour 150.
    conc = {"pm25": 80, "pm10": 120, "so2": 10, "no2": 30, "co": 0.8, "o3_8h": 100, "o3_1h": 150}
    r = aqi(conc, averaging="24h", on=D2025)
    # PM2.5: 50/40*(80-75)+100 = 106.25 -> 107; PM10: 50/100*(120-50)+50 = 85; SO2: 10;
    # NO2: 50/40*30 = 37.5 -> 38; CO: 50/2*0.8 = 20; O3 8h: 50 (breakpoint); O3 1h: 50/160*150 = 46.875 -> 47.
    assert r.iaqi == {"pm25": 107, "pm10": 85, "so2": 10, "no2": 38, "co": 20, "o3_1h": 47, "o3_8h": 50}
    assert r.aqi == 107 and r.primary == ("pm25",) and r.exceeding == ("pm25",)
    assert (r.category, r.level, r.colour) == ("轻度污染", "三级", "#FF7E00")
    assert (r.standard, r.version, r.unverified) == ("HJ 633", "2012", ())


def test_so2_24h_is_not_the_1h_table():
    # A known public bug puts SO2 1-hour breakpoints in the 24-hour table. 24-hour SO2 200:
    # correct 50/325*(200-150)+100 = 107.69 -> 108 (the bug gives 50/350*50+50 -> 58).
    assert aqi({"so2": 200}, averaging="24h", on=D2025).iaqi["so2"] == 108
    assert aqi({"so2": 200}, averaging="1h", on=D2025).iaqi["so2"] == by_hand(T2012[("so2", "1h")], 200) == 58


def test_so2_1h_above_800_uses_the_24h_value():
    r = aqi({"so2": 900, "so2_24h": 300}, averaging="1h", on=D2025)
    assert r.iaqi["so2"] == by_hand(T2012[("so2", "24h")], 300) == 124
    assert any("so2_24h" in n for n in r.notes)
    assert aqi({"so2": 800, "so2_24h": 300}, averaging="1h", on=D2025).iaqi["so2"] == 200  # 800 itself is in the table
    with pytest.raises(StandardsError, match="give so2_24h"):
        aqi({"so2": 900}, averaging="1h", on=D2025)


def test_o3_8h_above_800_uses_the_1h_value():
    r = aqi({"o3_8h": 850, "o3_1h": 900}, averaging="24h", on=D2025)
    assert "o3_8h" not in r.iaqi and r.iaqi["o3_1h"] == by_hand(T2012[("o3_1h", "1h")], 900) == 350
    assert r.aqi == 350 and r.primary == ("o3_1h",) and r.category == "严重污染"
    with pytest.raises(StandardsError, match="give o3_1h"):
        aqi({"o3_8h": 850}, averaging="24h", on=D2025)


def test_co_in_mg_per_cubic_metre():
    assert aqi({"co": 10}, averaging="1h", on=D2025).iaqi["co"] == 100
    assert aqi({"co": 4}, averaging="24h", on=D2025).iaqi["co"] == 100


def test_primary_pollutants_ties_and_none_when_good():
    # PM2.5 75 and PM10 150 both give IAQI 100 (24-hour, 2012): tied primary pollutants.
    r = aqi({"pm25": 75, "pm10": 150, "no2": 10}, averaging="24h", on=D2025)
    assert r.aqi == 100 and set(r.primary) == {"pm25", "pm10"} and r.category == "良" and r.exceeding == ()
    good = aqi({"pm25": 35, "no2": 40}, averaging="24h", on=D2025)
    assert good.aqi == 50 and good.primary == () and good.category == "优" and good.colour == "#00E400"


@pytest.mark.parametrize(
    ("pm25", "category", "colour"),
    [
        (35, "优", "#00E400"),
        (75, "良", "#FFFF00"),
        (115, "轻度污染", "#FF7E00"),
        (150, "中度污染", "#FF0000"),
        (250, "重度污染", "#99004C"),
        (251, "严重污染", "#7E0023"),
    ],
)
def test_categories_and_colours(pm25, category, colour):
    r = aqi({"pm25": pm25}, averaging="24h", on=D2025)
    assert (r.category, r.colour) == (category, colour)


def test_switch_to_2026_on_1_march_2026():
    # PM2.5 70: 2012 50/40*(70-35)+50 = 93.75 -> 94 (良); 2026 (above 60) 50/55*(70-60)+100 = 109.09 -> 110 (轻度污染).
    before = aqi({"pm25": 70}, averaging="24h", on=dt.date(2026, 2, 28))
    after = aqi({"pm25": 70}, averaging="24h", on=dt.date(2026, 3, 1))
    assert (before.aqi, before.version, before.category) == (94, "2012", "良")
    assert (after.aqi, after.version, after.category) == (110, "2026", "轻度污染")
    assert select_aqi_standard(dt.date(2026, 3, 1)).version == "2026"


# HJ 633-2026 表3: as 2012 but PM10 IAQI-100 at 120 and PM2.5 at 60; keys per report (4.2.2, 4.2.3).
T2026 = {
    ("pm25", "24h"): [0, 35, 60, 115, 150, 250, 350, 500],
    ("pm10", "24h"): [0, 50, 120, 250, 350, 420, 500, 600],
    ("pm25", "1h"): [0, 35, 60, 115, 150, 250, 350, 500],  # 4.2.4: PM 1-hour uses the daily values
    ("so2", "24h"): T2012[("so2", "24h")],
    ("so2", "1h"): T2012[("so2", "1h")],
    ("no2", "24h"): T2012[("no2", "24h")],
    ("no2", "1h"): T2012[("no2", "1h")],
    ("co", "24h"): T2012[("co", "24h")],
    ("co", "1h"): T2012[("co", "1h")],
    ("o3_1h", "1h"): T2012[("o3_1h", "1h")],
    ("o3_8h", "24h"): T2012[("o3_8h", "24h")],
}


def edges_2026():
    for (key, averaging), bps in T2026.items():
        for i, bp in enumerate(bps):
            yield key, averaging, bps, i, bp


@pytest.mark.parametrize(("key", "averaging", "bps", "i", "bp"), list(edges_2026()))
def test_every_breakpoint_edge_2026(key, averaging, bps, i, bp):
    assert aqi({key: bp}, averaging=averaging, on=D2026).iaqi[key] == LEVELS[i]
    if i + 1 < len(bps):
        # Concentrations are rounded first (integers; CO one decimal), so step by one unit.
        step = 0.1 if key == "co" else 1
        above = round(bp + step, 1)
        got = aqi({key: above}, averaging=averaging, on=D2026).iaqi[key]
        assert got == by_hand(bps, above) and got > LEVELS[i]


def test_2026_pm_breakpoints():
    assert aqi({"pm25": 60}, averaging="24h", on=D2026).aqi == 100
    # Above 60 the 2026 PM2.5 segment runs 60..115 for IAQI 100..150: 50/55*(80-60)+100 = 118.18 -> 119.
    assert aqi({"pm25": 80}, averaging="24h", on=D2026).aqi == 119
    r = aqi({"pm10": 120, "pm25": 20}, averaging="24h", on=D2026)
    assert r.iaqi["pm10"] == 100 and r.unverified == ()
    # PM10 150 (the 2012 IAQI-100 point): 50/130*(150-120)+100 = 111.5 -> 112.
    assert aqi({"pm10": 150}, averaging="24h", on=D2026, strict=True).aqi == 112


def test_2026_concentrations_rounded_by_gb_t_8170_first():
    # 4.2.2: integers (CO one decimal), round half to even, then the IAQI.
    r = aqi({"pm25": 60.5}, averaging="24h", on=D2026)
    assert r.concentrations == {"pm25": 60.0} and r.aqi == 100
    assert aqi({"pm25": 61.5}, averaging="24h", on=D2026).aqi == math.ceil(Fraction(50, 55) * 2 + 100) == 102
    assert aqi({"co": 4.05}, averaging="24h", on=D2026).iaqi["co"] == 100  # 4.05 -> 4.0
    assert aqi({"co": 4.15}, averaging="24h", on=D2026).iaqi["co"] == 101  # 4.15 -> 4.2: 5*0.2+100
    # 2012 has no such rule: 60.5 is used as is, 50/40*(60.5-35)+50 = 81.875 -> 82.
    assert aqi({"pm25": 60.5}, averaging="24h", on=D2025).aqi == 82


def test_2026_above_800_rules_count_fixed_iaqi():
    r = aqi({"so2": 900}, averaging="1h", on=D2026)
    assert r.iaqi["so2"] == 200 and r.notes
    assert aqi({"o3_8h": 850}, averaging="24h", on=D2026).iaqi["o3_8h"] == 300


def test_2026_reports_take_their_own_indicators():
    with pytest.raises(UnknownFactorError, match="unknown pollutant 'o3_1h' for a 24h report of HJ 633-2026"):
        aqi({"o3_1h": 100}, averaging="24h", on=D2026)
    with pytest.raises(UnknownFactorError, match="o3_8h"):
        aqi({"o3_8h": 100}, averaging="1h", on=D2026)
    assert set(aqi({"a05024": 100}, averaging="24h", on=D2026).iaqi) == {"o3_8h"}
    assert set(aqi({"a05024": 100}, averaging="1h", on=D2026).iaqi) == {"o3_1h"}


def test_2026_incomplete_report_publishes_aqi_only_above_100():
    full = {"so2": 5, "no2": 20, "co": 0.5, "o3_8h": 90, "pm10": 40}
    r = aqi(full, averaging="24h", on=D2026)
    assert r.missing == ("pm25",) and r.aqi == 45 and r.publishable is False  # 5.3.1
    r = aqi({**full, "o3_8h": 200}, averaging="24h", on=D2026)
    # O3 8-hour 200: 50/55*(200-160)+100 = 136.36 -> 137, above 100: published although PM2.5 is missing.
    assert r.aqi == 137 and r.publishable is True
    complete = aqi({**full, "pm25": 20}, averaging="24h", on=D2026)
    assert complete.missing == () and complete.publishable is True
    assert aqi({"pm25": 20}, averaging="24h", on=D2025).publishable is True  # 2012: report the missing items


def test_dates_outside_the_implemented_versions_are_refused():
    with pytest.raises(NoStandardInForceError, match="2015-12-31"):
        aqi({"pm25": 20}, averaging="24h", on=dt.date(2015, 12, 31))
    # HJ 633-2026's table has no phases: 2031 (GB 3095-2026 phase 2) still uses it.
    assert aqi({"pm25": 20}, averaging="24h", on=dt.date(2031, 1, 1)).version == "2026"


def test_hj212_codes_and_unknown_pollutants():
    r = aqi({"a34004": 80, "a21026": 10}, averaging="1h", on=D2025)
    assert set(r.iaqi) == {"pm25", "so2"}
    with pytest.raises(UnknownFactorError, match="ambiguous"):
        aqi({"a05024": 150}, averaging="1h", on=D2025)  # 2012 real-time has both O3 1-hour and 8-hour
    with pytest.raises(UnknownFactorError, match="unknown pollutant 'nox'"):
        aqi({"nox": 10}, averaging="1h", on=D2025)
    with pytest.raises(StandardsError, match="finite number"):
        aqi({"pm25": -1}, averaging="1h", on=D2025)
    with pytest.raises(StandardsError, match="averaging"):
        aqi({"pm25": 1}, averaging="8h", on=D2025)  # type: ignore[arg-type]


def test_above_the_table_is_capped_and_noted():
    r = aqi({"pm25": 600}, averaging="24h", on=D2025)
    assert r.aqi == 500 and r.notes


KEYS = st.sampled_from(["pm25", "pm10", "so2", "no2", "co", "o3_1h"])


@given(st.dictionaries(KEYS, st.floats(0, 100), min_size=1))
def test_aqi_is_the_max_iaqi(conc):
    r = aqi(conc, averaging="24h", on=D2025)
    assert r.aqi == max(r.iaqi.values())
    assert (r.aqi > 50) == bool(r.primary)
    assert all(r.iaqi[p] == r.aqi for p in r.primary)


@given(st.floats(0, 500), st.floats(0, 500))
def test_iaqi_is_monotone_and_rounded_up(a, b):
    lo, hi = sorted((a, b))
    ilo = aqi({"pm25": lo}, averaging="24h", on=D2025).aqi
    ihi = aqi({"pm25": hi}, averaging="24h", on=D2025).aqi
    assert ilo <= ihi
    assert ilo == by_hand(T2012[("pm25", "24h")], lo)


KEYS_2026 = st.sampled_from(["pm25", "pm10", "so2", "no2", "co", "o3_8h"])


@given(st.dictionaries(KEYS_2026, st.floats(0, 900), min_size=1))
def test_2026_aqi_is_the_max_iaqi_of_rounded_concentrations(conc):
    r = aqi(conc, averaging="24h", on=D2026)
    assert r.aqi == max(r.iaqi.values()) and (r.aqi > 50) == bool(r.primary)
    for key, value in r.concentrations.items():
        assert value == round(value, 1 if key == "co" else 0)
        if key == "pm25" and value <= 500:
            assert r.iaqi[key] == by_hand(T2026[("pm25", "24h")], value)
