"""The alert rules (gis_service/workflow/alerts/rules.yaml) judged on values whose classes,
exceedance multiples and AQI categories are worked out here by hand from the standards'
tables, and the rules file validated strictly. No database: evaluation is pure."""

from __future__ import annotations

import datetime as dt

import pytest

from gis_service.workflow.alerts.evaluate import Snapshot, evaluate
from gis_service.workflow.alerts.rules import RULES_FILE, AlertRulesFileError, load_rules, parse_rules
from gis_service.workflow.machine import load_workflow

RULES = load_rules()
WORKFLOW = load_workflow()
SEVERITIES = list(WORKFLOW.severities)
NOW = dt.datetime(2026, 6, 15, 4, 0, tzinfo=dt.UTC)  # 12:00 in China
UNITS = {"w01001": "1", "w01009": "mg/L", "w01019": "mg/L", "w21003": "mg/L", "w21011": "mg/L", "w21001": "mg/L"}
NAMES = {"w01001": "pH", "w01009": "DO", "w01019": "COD_Mn", "w21003": "NH3-N", "w21011": "TP", "w21001": "TN"}


def station(kind: str = "section", standard: str = "river", target: str | None = "III", status: str = "active"):
    return {"id": 1, "code": "T-1", "name": "测试断面", "kind": kind, "status": status, "standard": standard,
            "water_target": target}  # fmt: skip


def values(readings: dict[str, float], *, when: dt.datetime = NOW, flags: dict[str, str] | None = None):
    flags = flags or {}
    quality = {"N": "good", "T": "good", "S": "suspect"}
    return [
        {
            "code": code,
            "property": NAMES.get(code, code),
            "unit": UNITS.get(code, "mg/L"),
            "time": when,
            "value": value,
            "flag": flags.get(code, "N"),
            "quality": quality.get(flags.get(code, "N"), "invalid"),
        }
        for code, value in readings.items()
    ]


def judge(rule_id: str, row: dict, readings: list[dict] | None, newest: dt.datetime | None = NOW, **extra):
    return evaluate(RULES.rules[rule_id], Snapshot(row, readings, newest, **extra), NOW)


CLEAN_III = {"w01001": 7.5, "w01009": 6.5, "w01019": 5.0, "w21003": 0.8, "w21011": 0.15}
"""GB 3838-2002 表1, river: pH 6–9 (I), DO 6.5 ≥ 6 (II), COD_Mn 5.0 ≤ 6 (III), NH3-N 0.8 ≤ 1.0 (III),
TP 0.15 ≤ 0.2 (III): class III."""


def test_a_section_at_its_target_raises_nothing() -> None:
    finding = judge("section_off_target", station(target="III"), values(CLEAN_III))
    assert finding is not None and not finding.holds
    assert finding.detail["water_class"] == "III" and finding.detail["meets_target"] is True


def test_a_section_worse_than_its_target_with_the_deciding_factor_and_multiple() -> None:
    # NH3-N 1.8: ≤ 2.0 is class V (IV ≤ 1.5); over the class III limit 1.0 by (1.8 − 1.0) / 1.0 = 0.8.
    finding = judge("section_off_target", station(target="III"), values({**CLEAN_III, "w21003": 1.8}))
    assert finding is not None and finding.holds
    assert finding.detail["water_class"] == "V" and finding.detail["target"] == "III"
    [deciding] = finding.detail["deciding_factors"]
    assert (deciding["code"], deciding["value"], deciding["limit"]) == ("w21003", 1.8, 1.0)
    assert deciding["exceedance_multiple"] == pytest.approx(0.8)
    assert finding.measure == pytest.approx(0.8) and finding.observed_at == NOW


def test_the_measure_is_the_largest_multiple_over_the_target() -> None:
    # NH3-N 2.6 > 2.0 and TP 0.45 > 0.4: both 劣V; over class III: (2.6 − 1)/1 = 1.6, (0.45 − 0.2)/0.2 = 1.25.
    finding = judge("section_off_target", station(), values({**CLEAN_III, "w21003": 2.6, "w21011": 0.45}))
    assert finding is not None and finding.holds and finding.detail["water_class"] == "劣V"
    assert {f["code"] for f in finding.detail["deciding_factors"]} == {"w21003", "w21011"}
    assert finding.measure == pytest.approx(1.6)
    # Over a class II target (COD_Mn ≤ 4, NH3-N ≤ 0.5, TP ≤ 0.1) the three class III factors exceed by
    # (5 − 4)/4 = 0.25, (0.8 − 0.5)/0.5 = 0.6 and (0.15 − 0.1)/0.1 = 0.5: the measure is 0.6.
    stricter = judge("section_off_target", station(target="II"), values(CLEAN_III))
    assert stricter is not None and stricter.holds and stricter.detail["water_class"] == "III"
    multiples = {f["code"]: f["exceedance_multiple"] for f in stricter.detail["deciding_factors"]}
    assert multiples == pytest.approx({"w01019": 0.25, "w21003": 0.6, "w21011": 0.5})
    assert stricter.measure == pytest.approx(0.6)


def test_dissolved_oxygen_deciding_has_no_multiple() -> None:
    # DO 2.5 ≥ 2 is class V (IV ≥ 3): worse than III, but no 超标倍数 is computed for DO.
    finding = judge("section_off_target", station(), values({**CLEAN_III, "w01009": 2.5}))
    assert finding is not None and finding.holds and finding.detail["water_class"] == "V"
    assert finding.measure is None


def test_an_intake_off_its_class_ii_target_by_the_lake_tp_limit() -> None:
    # Lake TP 0.03: II ≤ 0.025, III ≤ 0.05 → III; over II by (0.03 − 0.025) / 0.025 = 0.2. TN 0.4 ≤ 0.5 (II).
    readings = {"w01001": 7.6, "w01009": 8.0, "w01019": 2.0, "w21003": 0.2, "w21011": 0.03, "w21001": 0.4}
    intake = station(kind="drinking_intake", standard="lake", target="II")
    finding = judge("intake_off_standard", intake, values(readings))
    assert finding is not None and finding.holds and finding.detail["water_class"] == "III"
    assert finding.measure == pytest.approx(0.2)
    assert judge("section_off_target", intake, values(readings)) is None  # not a section: that rule does not watch it


def test_seawater_worse_than_its_target() -> None:
    # GB 3097-1997: DO 4.5 > 4 is 三类 (二类 > 5); COD 3.6 ≤ 4 is 三类, over 二类 (3) by 0.6 / 3 = 0.2.
    sea = station(kind="seawater", standard="sea", target="二类")
    finding = judge("sea_off_target", sea, values({"w01001": 8.1, "w01009": 4.5, "w01018": 3.6}))
    assert finding is not None and finding.holds and finding.detail["water_class"] == "三类"
    assert finding.detail["target"] == "二类" and finding.measure == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("rule_id", "code", "value", "holds", "distance"),
    [
        ("ph_out_of_range", "w01001", 9.4, True, 0.4),
        ("ph_out_of_range", "w01001", 9.0, False, 0.0),  # 6–9 includes its ends
        ("ph_out_of_range", "w01001", 5.5, True, 0.5),
        ("do_low", "w01009", 1.6, True, 0.4),  # class V needs DO ≥ 2
        ("do_low", "w01009", 2.0, False, 0.0),
    ],
)
def test_ph_and_do_out_of_range(rule_id: str, code: str, value: float, holds: bool, distance: float) -> None:
    finding = judge(rule_id, station(), values({**CLEAN_III, code: value}))
    assert finding is not None and finding.holds is holds
    assert finding.measure == distance  # exact: the distance is computed on the decimal values
    assert finding.detail["value"] == value


def test_a_value_flagged_invalid_or_too_old_decides_nothing() -> None:
    flagged = values({**CLEAN_III, "w01001": 10.5}, flags={"w01001": "D"})
    assert judge("ph_out_of_range", station(), flagged) is None
    old = values({**CLEAN_III, "w01001": 10.5}, when=NOW - dt.timedelta(hours=25))
    assert judge("ph_out_of_range", station(), old) is None  # older than max_age_hours (24)
    assert judge("section_off_target", station(), old) is None


def test_aqi_over_the_threshold_and_its_escalation() -> None:
    air = station(kind="air_national", standard="air", target=None)
    for aqi, holds in ((150, False), (151, True), (180, True)):
        detail = {"aqi": aqi, "primary_pollutant": ["pm25"], "category": "中度污染"}
        finding = judge("air_polluted", air, [], air=detail, air_at=NOW)
        assert finding is not None and finding.holds is holds and finding.measure == aqi
    rule = RULES.rules["air_polluted"]
    zero = dt.timedelta(0)
    # HJ 633: 151–200 中度污染, 201–300 重度, > 300 严重 — the rule's severities step with them.
    assert [RULES.severity_of(rule, SEVERITIES, zero, peak) for peak in (151, 200, 201, 300, 301)] == [
        "medium", "medium", "high", "high", "critical",
    ]  # fmt: skip


def test_data_missing_after_the_rules_hours() -> None:
    last = NOW - dt.timedelta(hours=7)
    finding = judge("data_missing", station(), None, newest=last)
    assert finding is not None and finding.holds
    assert finding.since == last + dt.timedelta(hours=6) and finding.measure == 7.0
    recent = judge("data_missing", station(), None, newest=NOW - dt.timedelta(hours=5))
    assert recent is not None and not recent.holds
    assert judge("data_missing", station(), None, newest=None) is None  # never reported
    assert judge("data_missing", station(status="maintenance"), None, newest=last) is None  # not expected to report


def test_a_logger_reporting_faults() -> None:
    readings = values(CLEAN_III, flags={"w21003": "D", "w21011": "M"})  # D 故障 counts, M 维护 does not
    finding = judge("logger_fault", station(), readings)
    assert finding is not None and finding.holds and finding.measure == 1
    assert [f["code"] for f in finding.detail["factors"]] == ["w21003"]
    assert not judge("logger_fault", station(), values(CLEAN_III)).holds


def test_severity_rises_with_duration_and_peak_and_never_below_the_rules() -> None:
    rule = RULES.rules["section_off_target"]
    hours = [dt.timedelta(hours=h) for h in (0, 23, 24, 71, 72)]
    assert [RULES.severity_of(rule, SEVERITIES, h, 0.3) for h in hours] == [
        "medium", "medium", "high", "high", "critical",
    ]  # fmt: skip
    assert RULES.severity_of(rule, SEVERITIES, hours[0], 1.0) == "high"  # 超标 1 倍
    assert RULES.severity_of(rule, SEVERITIES, hours[0], None) == "medium"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("severity: medium\n", "severity: urgent\n"), "urgent"),
        (("{after_hours: 24, severity: high}", "{after_hours: 24, severity: low}"), "does not rise"),
        (("category: water_quality}", "category: noise}"), "noise"),
        (("factor: w01001", "factor: w99999"), "w99999"),
        (("type: data_missing", "type: data_gone"), "data_gone"),
        (("flags: [D, F, B]", "flags: [D, X]"), "X"),
        (("acknowledge: [chief, admin]", "acknowledge: [station]"), "machine keys"),
        (("{after_hours: 12, severity: high}", "{after_hours: 12, measure_at_least: 1, severity: high}"), "exactly"),
        (("stations: {kinds: [water_auto, section]}", "stations: {kinds: [river]}"), "kinds"),
        (("    issue: null", "    issue: null\n    colour: red"), "colour"),
    ],
)
def test_the_rules_file_is_validated_strictly(change: tuple[str, str], expected: str) -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    with pytest.raises(AlertRulesFileError, match=r"test\.yaml") as raised:
        parse_rules(text.replace(change[0], change[1], 1), "test.yaml", WORKFLOW)
    assert expected in str(raised.value)
