"""Aggregates with data-validity rules, and the strict loading of the standards data files."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gis_service.monitoring.standards import (
    StandardDataError,
    StandardsError,
    annual_mean,
    daily_mean,
    monthly_mean,
    o3_8h_moving,
    o3_daily_max_8h,
    validate_all,
)
from gis_service.monitoring.standards.tables import DATA_DIR, load_aqi_standard, load_water_standard


def test_air_daily_mean_needs_20_valid_hours():
    hours = [float(h) for h in range(24)]
    ok = daily_mean(hours[:20] + [None] * 4)
    assert ok.value == pytest.approx(sum(range(20)) / 20) and ok.valid == 20 and ok.reason is None
    short = daily_mean(hours[:19] + [None] * 5)
    assert short.value is None and short.valid == 19 and short.required == 20
    assert "19 valid values" in short.reason and "at least 20" in short.reason
    assert "GB 3095" in short.clause


def test_water_daily_mean_product_rule():
    assert daily_mean([1.0] * 18 + [None] * 6, medium="water").value == 1.0
    r = daily_mean([1.0] * 17, medium="water")
    assert r.value is None and r.required == 18 and "product choice" in r.clause


def test_more_than_a_day_is_refused():
    with pytest.raises(StandardsError, match="at most 24"):
        daily_mean([1.0] * 25)
    with pytest.raises(StandardsError, match="numbers or None"):
        daily_mean([1.0, float("nan")])


def test_o3_8h_moving_needs_6_of_8():
    hourly = [10.0, 20, 30, 40, 50, 60, 70, 80, None, None, None, 90]
    moving = o3_8h_moving(hourly)
    assert len(moving) == len(hourly) - 7
    assert moving[0].value == pytest.approx(45.0)  # hours 0..7
    assert moving[1].value == pytest.approx((20 + 30 + 40 + 50 + 60 + 70 + 80) / 7)  # 7 valid of 1..8
    assert moving[2].value == pytest.approx((30 + 40 + 50 + 60 + 70 + 80) / 6)  # 6 valid of 2..9
    assert moving[3].value is None and moving[3].valid == 5 and "at least 6" in moving[3].reason


def test_o3_daily_max_8h_needs_14_valid_means():
    hourly = [float(h) for h in range(31)]  # 24 moving means
    moving = o3_8h_moving(hourly)
    assert o3_daily_max_8h(moving).value == pytest.approx(sum(range(23, 31)) / 8)
    few = o3_daily_max_8h(moving[:13])
    assert few.value is None and few.required == 14


@pytest.mark.parametrize(("year", "month", "required"), [(2025, 1, 27), (2025, 2, 25), (2024, 2, 25), (2025, 4, 27)])
def test_monthly_mean_needs_27_days_or_25_in_february(year, month, required):
    enough = monthly_mean([1.0] * required, year=year, month=month)
    assert enough.value == 1.0 and enough.required == required
    short = monthly_mean([1.0] * (required - 1), year=year, month=month)
    assert short.value is None and f"at least {required}" in short.reason


def test_annual_mean_needs_324_days():
    assert annual_mean([2.0] * 324 + [None] * 41, year=2025).value == 2.0
    short = annual_mean([2.0] * 323, year=2025)
    assert short.value is None and short.required == 324
    with pytest.raises(StandardsError, match="at most 366"):
        annual_mean([1.0] * 367, year=2024)


def test_monthly_mean_refuses_more_days_than_the_month():
    with pytest.raises(StandardsError, match="at most 28"):
        monthly_mean([1.0] * 29, year=2025, month=2)


@given(st.lists(st.one_of(st.none(), st.floats(0, 1000)), max_size=24))
def test_daily_mean_is_the_mean_of_valid_values_or_none(values):
    r = daily_mean(values)
    good = [v for v in values if v is not None]
    if len(good) >= 20:
        assert r.value == pytest.approx(math.fsum(good) / len(good))
    else:
        assert r.value is None and r.reason


# --- strict loading of the data files ----------------------------------------------------


def test_all_shipped_files_validate():
    validate_all()


def _copy(tmp_path: Path, name: str, edit) -> Path:
    data = yaml.safe_load((DATA_DIR / name).read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_unknown_key_aborts_naming_file_and_key(tmp_path):
    path = _copy(tmp_path, "gb3838-2002.yaml", lambda d: d["factors"]["do"].update(limt=[1]))
    with pytest.raises(StandardDataError, match=r"gb3838-2002\.yaml: factors\.do\.limt: unknown key"):
        load_water_standard(path)
    path = _copy(tmp_path, "hj633-2012.yaml", lambda d: d.update(colour="red"))
    with pytest.raises(StandardDataError, match=r"hj633-2012\.yaml: colour: unknown key"):
        load_aqi_standard(path)


def test_inconsistent_tables_abort(tmp_path):
    path = _copy(tmp_path, "gb3838-2002.yaml", lambda d: d["factors"]["codmn"].update(limits=[2, 4, 6, 10]))
    with pytest.raises(StandardDataError, match=r"4 values for 5 classes"):
        load_water_standard(path)
    path = _copy(tmp_path, "gb3838-2002.yaml", lambda d: d["factors"]["codmn"].update(limits=[2, 4, 6, 15, 10]))
    with pytest.raises(StandardDataError, match=r"laxer"):
        load_water_standard(path)
    path = _copy(tmp_path, "hj633-2012.yaml", lambda d: d["tables"]["pm25_24h"].update(breakpoints=[0, 35, 30]))
    with pytest.raises(StandardDataError, match=r"must increase"):
        load_aqi_standard(path)
    path = _copy(tmp_path, "hj633-2012.yaml", lambda d: d["tables"]["pm25_24h"].pop("clause"))
    with pytest.raises(StandardDataError, match=r"tables\.pm25_24h\.clause"):
        load_aqi_standard(path)


def test_every_entry_names_its_clause_and_status():
    for name in ("gb3838-2002.yaml", "gb3097-1997.yaml"):
        std = load_water_standard(name)
        assert all(f.clause and f.status for f in std.factors.values())
    for name in ("hj633-2012.yaml", "hj633-2026.yaml"):
        std = load_aqi_standard(name)
        assert all(t.clause and t.status for t in std.tables.values())


def test_broken_yaml_names_the_file(tmp_path):
    shutil.copy(DATA_DIR / "gb3097-1997.yaml", tmp_path / "x.yaml")
    (tmp_path / "x.yaml").write_text("factors: [", encoding="utf-8")
    with pytest.raises(StandardDataError, match=r"x\.yaml: cannot read"):
        load_water_standard(tmp_path / "x.yaml")
