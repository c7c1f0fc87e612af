"""GB 3838-2002 and GB 3097-1997 single-factor classes, checked against the tables as printed.

The expected limits below are transcribed here from the standards' tables (GB 3838-2002 表1,
GB 3097-1997 表1), independently of the engine's YAML, so a transcription error in either
shows up as a failing edge.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis_service.monitoring.standards import (
    NoStandardInForceError,
    StandardsError,
    UnknownFactorError,
    classify_seawater,
    classify_surface_water,
)

CLASSES = ["I", "II", "III", "IV", "V"]
# GB 3838-2002 表1, "≤" items (mg/L; fecal coliform 个/L).
GB3838_MAX = {
    "codmn": [2, 4, 6, 10, 15],
    "cod": [15, 15, 20, 30, 40],
    "bod5": [3, 3, 4, 6, 10],
    "nh3n": [0.15, 0.5, 1.0, 1.5, 2.0],
    "cu": [0.01, 1.0, 1.0, 1.0, 1.0],
    "zn": [0.05, 1.0, 1.0, 2.0, 2.0],
    "fluoride": [1.0, 1.0, 1.0, 1.5, 1.5],
    "se": [0.01, 0.01, 0.01, 0.02, 0.02],
    "as": [0.05, 0.05, 0.05, 0.1, 0.1],
    "hg": [0.00005, 0.00005, 0.0001, 0.001, 0.001],
    "cd": [0.001, 0.005, 0.005, 0.005, 0.01],
    "cr6": [0.01, 0.05, 0.05, 0.05, 0.1],
    "pb": [0.01, 0.01, 0.05, 0.05, 0.1],
    "cn": [0.005, 0.05, 0.2, 0.2, 0.2],
    "phenol": [0.002, 0.002, 0.005, 0.01, 0.1],
    "petroleum": [0.05, 0.05, 0.05, 0.5, 1.0],
    "las": [0.2, 0.2, 0.2, 0.3, 0.3],
    "sulfide": [0.05, 0.1, 0.2, 0.5, 1.0],
    "fecal_coliform": [200, 2000, 10000, 20000, 40000],
}
TP_RIVER = [0.02, 0.1, 0.2, 0.3, 0.4]
TP_LAKE = [0.01, 0.025, 0.05, 0.1, 0.2]
TN_LAKE = [0.2, 0.5, 1.0, 1.5, 2.0]
DO_MIN = [7.5, 6, 5, 3, 2]
ON = dt.date(2025, 6, 1)


def expected_max_class(limits: list[float], value: float) -> str:
    """Best class whose limit the value does not exceed ("≤"), else 劣V."""
    for name, limit in zip(CLASSES, limits, strict=True):
        if value <= limit:
            return name
    return "劣V"


def one(factor: str, value: float, **kw) -> str:
    return classify_surface_water({factor: value}, on=ON, **kw).factor_classes[factor]


def _edges(table: dict[str, list[float]]):
    for factor, limits in table.items():
        for limit in sorted(set(limits)):
            yield factor, limits, limit


@pytest.mark.parametrize(("factor", "limits", "limit"), list(_edges(GB3838_MAX)))
def test_every_max_edge_belongs_to_the_better_class(factor, limits, limit):
    # "≤": a value equal to the limit meets it; the next float above does not.
    assert one(factor, limit) == expected_max_class(limits, limit)
    above = math.nextafter(limit, math.inf)
    assert one(factor, above) == expected_max_class(limits, above)
    assert one(factor, above) != one(factor, limit)


@pytest.mark.parametrize(("water_body", "limits"), [("river", TP_RIVER), ("lake", TP_LAKE)])
def test_total_phosphorus_edges_river_and_lake(water_body, limits):
    for limit in limits:
        assert one("tp", limit, water_body=water_body) == expected_max_class(limits, limit)
        assert one("tp", math.nextafter(limit, math.inf), water_body=water_body) == expected_max_class(
            limits, math.nextafter(limit, math.inf)
        )


def test_lake_and_river_tp_differ():
    # 0.05 mg/L TP: river class II (≤ 0.1), lake class III (≤ 0.05); 0.06: lake IV.
    assert one("tp", 0.05, water_body="river") == "II"
    assert one("tp", 0.05, water_body="lake") == "III"
    assert one("tp", 0.06, water_body="lake") == "IV"
    assert one("tp", 0.21, water_body="lake") == "劣V"


def test_total_nitrogen_only_for_lakes():
    lake = classify_surface_water({"tn": 1.2, "do": 8}, water_body="lake", on=ON)
    assert lake.factor_classes["tn"] == "IV" and lake.klass == "IV" and lake.deciding_factors == ("tn",)
    river = classify_surface_water({"tn": 1.2, "do": 8}, water_body="river", on=ON)
    assert "tn" not in river.factor_classes and river.klass == "I"
    assert "lake" in river.not_assessed["tn"]
    for limit in TN_LAKE:
        assert one("tn", limit, water_body="lake") == expected_max_class(TN_LAKE, limit)


@pytest.mark.parametrize(("i", "limit"), list(enumerate(DO_MIN)))
def test_dissolved_oxygen_is_inverted_on_both_sides(i, limit):
    # "≥": equal to the limit meets the class, a hair below falls to the next one.
    assert one("do", limit) == CLASSES[i]
    below = math.nextafter(limit, -math.inf)
    assert one("do", below) == (CLASSES[i + 1] if i + 1 < 5 else "劣V")


def test_do_high_is_class_one_and_low_is_worse_than_five():
    assert one("do", 12.0) == "I"
    assert one("do", 1.0) == "劣V"


@pytest.mark.parametrize(("ph", "klass"), [(6, "I"), (9, "I"), (7.4, "I"), (5.99, "劣V"), (9.01, "劣V"), (0, "劣V")])
def test_ph_inside_or_outside_6_to_9(ph, klass):
    assert one("ph", ph) == klass


def test_overall_class_is_worst_factor_with_deciding_factors_and_multiples():
    values = {"do": 5.5, "codmn": 6.9, "nh3n": 1.8, "tp": 0.35, "ph": 7.2}
    r = classify_surface_water(values, target="III", on=ON)
    assert r.factor_classes == {"do": "III", "codmn": "IV", "nh3n": "V", "tp": "V", "ph": "I"}
    assert r.klass == "V" and set(r.deciding_factors) == {"nh3n", "tp"}
    # 超标倍数 = (C - class III limit) / class III limit, by hand: NH3-N (1.8-1.0)/1.0 = 0.8,
    # TP (0.35-0.2)/0.2 = 0.75, CODMn (6.9-6)/6 = 0.15; none for DO or pH.
    assert r.multiples == pytest.approx({"nh3n": 0.8, "tp": 0.75, "codmn": 0.15}, rel=1e-12)
    assert r.meets_target is False and r.standard == "GB 3838" and r.version == "2002"


def test_multiple_against_another_target():
    r = classify_surface_water({"codmn": 6.9}, target="II", on=ON)
    assert r.multiples == pytest.approx({"codmn": (6.9 - 4) / 4})
    assert classify_surface_water({"codmn": 3.9}, target="II", on=ON).meets_target is True


def test_missing_factors_are_listed_and_class_is_from_what_is_present():
    r = classify_surface_water({"w21003": 0.4}, on=ON)
    assert r.klass == "II" and r.factor_classes == {"nh3n": "II"}
    assert "do" in r.missing and "tp" in r.missing and "nh3n" not in r.missing
    assert "tn" not in r.missing  # TN does not apply to rivers
    empty = classify_surface_water({}, on=ON)
    # 表1 has 24 items: water temperature (a change limit, not a class) is not classed, TN is lakes only.
    assert empty.klass is None and empty.meets_target is None and len(empty.missing) == 22


def test_hj212_codes_map_to_factors():
    codes = {"w01001": "ph", "w01009": "do", "w01019": "codmn", "w01018": "cod", "w21003": "nh3n", "w21011": "tp"}
    r = classify_surface_water(dict.fromkeys(codes, 0.01) | {"w01001": 7.0, "w01009": 9.0}, on=ON)
    assert set(r.factor_classes) == set(codes.values())
    lake = classify_surface_water({"w21001": 0.3}, water_body="lake", on=ON)
    assert lake.factor_classes == {"tn": "II"}


def test_unknown_factor_is_refused_with_the_known_ones():
    with pytest.raises(UnknownFactorError, match=r"unknown factor 'w99999'.*codmn \(w01019\)"):
        classify_surface_water({"w99999": 1.0}, on=ON)
    with pytest.raises(StandardsError, match="given twice"):
        classify_surface_water({"do": 5, "w01009": 5}, on=ON)
    with pytest.raises(StandardsError, match="finite number"):
        classify_surface_water({"do": float("nan")}, on=ON)
    with pytest.raises(StandardsError, match="target class"):
        classify_surface_water({"do": 5}, target="VI", on=ON)


def test_evaluation_2011_leaves_out_tn_and_fecal_coliform():
    r = classify_surface_water(
        {"tn": 3.0, "fecal_coliform": 50000, "do": 8}, water_body="lake", on=ON, method="evaluation_2011"
    )
    assert r.klass == "I" and set(r.not_assessed) == {"tn", "fecal_coliform"}


def test_date_before_the_standard_is_refused():
    with pytest.raises(NoStandardInForceError, match="2002-06-01"):
        classify_surface_water({"do": 8}, on=dt.date(2001, 1, 1))


@given(st.sampled_from(sorted(GB3838_MAX)), st.floats(0, 1e5), st.floats(0, 1e5))
def test_class_is_monotone_in_concentration(factor, a, b):
    lo, hi = sorted((a, b))
    order = [*CLASSES, "劣V"]
    assert order.index(one(factor, lo)) <= order.index(one(factor, hi))


@given(st.floats(0, 20), st.floats(0, 20))
def test_do_class_is_antitone(a, b):
    lo, hi = sorted((a, b))
    order = [*CLASSES, "劣V"]
    assert order.index(one("do", hi)) <= order.index(one("do", lo))


@given(st.dictionaries(st.sampled_from(sorted(GB3838_MAX)), st.floats(0, 1e4), min_size=1))
def test_overall_class_is_the_worst_factor_class(values):
    r = classify_surface_water(values, on=ON)
    order = [*CLASSES, "劣V"]
    assert r.klass == max(r.factor_classes.values(), key=order.index)
    assert all(r.factor_classes[f] == r.klass for f in r.deciding_factors)


# GB 3097-1997 表1 (mg/L): DO "> ", the rest "≤".
SEA_CLASSES = ["1", "2", "3", "4"]
SEA_MAX = {
    "cod": [2, 3, 4, 5],
    "din": [0.20, 0.30, 0.40, 0.50],
    "phosphate": [0.015, 0.030, 0.030, 0.045],
    "bod5": [1, 3, 4, 5],
    "petroleum": [0.05, 0.05, 0.30, 0.50],
}
SEA_DO = [6, 5, 4, 3]


@pytest.mark.parametrize(("factor", "limits", "limit"), list(_edges(SEA_MAX)))
def test_seawater_max_edges(factor, limits, limit):
    def expected(v: float) -> str:
        return next((c for c, lim in zip(SEA_CLASSES, limits, strict=True) if v <= lim), "劣四类")

    assert classify_seawater({factor: limit}).factor_classes[factor] == expected(limit)
    above = math.nextafter(limit, math.inf)
    assert classify_seawater({factor: above}).factor_classes[factor] == expected(above)


@pytest.mark.parametrize(("i", "limit"), list(enumerate(SEA_DO)))
def test_seawater_do_strictly_greater(i, limit):
    # "> 6": exactly 6 is not class 1; a hair above is.
    at = classify_seawater({"do": limit}).factor_classes["do"]
    assert at == (SEA_CLASSES[i + 1] if i + 1 < 4 else "劣四类")
    assert classify_seawater({"do": math.nextafter(limit, math.inf)}).factor_classes["do"] == SEA_CLASSES[i]


@pytest.mark.parametrize(
    ("ph", "klass"),
    [(7.8, "1"), (8.5, "1"), (7.79, "3"), (8.6, "3"), (6.8, "3"), (8.8, "3"), (6.79, "劣四类"), (8.81, "劣四类")],
)
def test_seawater_ph_ranges(ph, klass):
    assert classify_seawater({"ph": ph}).factor_classes["ph"] == klass


def test_seawater_overall_and_unverified_listed():
    r = classify_seawater({"do": 5.5, "din": 0.45, "phosphate": 0.02, "petroleum": 0.04}, target="2")
    assert r.klass == "4" and r.deciding_factors == ("din",) and r.meets_target is False
    assert r.multiples == pytest.approx({"din": (0.45 - 0.30) / 0.30})
    assert r.unverified == ()
    assert classify_seawater({"bod5": 2}).unverified == ("bod5",)  # only one source for its table entry
    assert r.standard == "GB 3097" and r.version == "1997"


def test_main_pollutants_by_the_2011_method():
    # 三(一)3: above class III, worst class first, equal classes by the multiple over class III,
    # at most three; cyanide and heavy metals first. Pb 0.06 is class V, (0.06-0.05)/0.05 = 0.2.
    r = classify_surface_water({"do": 1.5, "codmn": 6.9, "nh3n": 1.8, "tp": 0.35, "pb": 0.06, "ph": 7}, on=ON)
    assert r.klass == "劣V"
    assert [f for f, _ in r.main_pollutants] == ["pb", "do", "nh3n"]  # NH3-N 0.8 beats TP 0.75
    assert dict(r.main_pollutants)["pb"] == pytest.approx(0.2) and dict(r.main_pollutants)["do"] is None
    assert classify_surface_water({"codmn": 5.9, "nh3n": 0.9}, on=ON).main_pollutants == ()  # class III: none
    assert classify_seawater({"din": 0.6}).main_pollutants == ()


# The batch classifier (surface_water_classes) against the one-sample engine: any mix of
# factors, values on and beside every limit of the text's tables (above), pH in and out of
# range, targets per sample.
_LIMITS = {**GB3838_MAX, "tp": TP_RIVER + TP_LAKE, "tn": TN_LAKE, "do": DO_MIN}
_VALUE = {
    factor: st.one_of(
        st.sampled_from(sorted(set(limits))),
        st.sampled_from(sorted(set(limits))).map(lambda x: x * 1.0001),
        st.floats(0, max(limits) * 2, allow_nan=False),
    )
    for factor, limits in _LIMITS.items()
}
_VALUE["ph"] = st.sampled_from([5.99, 6.0, 7.2, 9.0, 9.01, 10.0])
_SAMPLE = st.fixed_dictionaries({}, optional=_VALUE)


@given(
    st.lists(st.tuples(_SAMPLE, st.sampled_from([None, *CLASSES])), min_size=1, max_size=30),
    st.sampled_from(["river", "lake"]),
)
def test_batch_classes_equal_the_one_sample_classes(samples, water_body) -> None:
    from gis_service.monitoring.standards.water import surface_water_classes

    factors = sorted({f for values, _ in samples for f in values})
    columns = {f: [values.get(f, math.nan) for values, _ in samples] for f in factors}
    targets = [target for _, target in samples]
    classes, meets = surface_water_classes(columns, targets, water_body=water_body, on=ON)
    for (values, target), klass, met in zip(samples, classes, meets, strict=True):
        one_sample = classify_surface_water(values, water_body=water_body, target=target, on=ON)
        assert (klass, met) == (one_sample.klass, one_sample.meets_target), (values, target)


def test_batch_classes_refuse_what_the_engine_refuses() -> None:
    from gis_service.monitoring.standards.water import surface_water_classes

    with pytest.raises(UnknownFactorError):
        surface_water_classes({"nonsense": [1.0]}, ["III"])
    with pytest.raises(StandardsError, match="target class"):
        surface_water_classes({"do": [5.0]}, ["VI"])
    with pytest.raises(StandardsError, match="negative"):
        surface_water_classes({"nh3n": [-1.0]}, ["III"])
    with pytest.raises(StandardsError, match="2 values for 1 samples"):
        surface_water_classes({"nh3n": [1.0, 2.0]}, ["III"])
    with pytest.raises(NoStandardInForceError):
        surface_water_classes({"nh3n": [1.0]}, ["III"], on=dt.date(2001, 1, 1))
