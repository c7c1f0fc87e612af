"""``ecomap observations import``: lab results from CSV and Excel, all or nothing, with a report."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from gis_service.cli import app
from tests.conftest import demo_database, scratch_database_name

runner = CliRunner()


@pytest.fixture(scope="module")
def import_url() -> str:
    previous = os.environ.get("ECOMAP_DEMO_OBSERVATION_DAYS")
    os.environ["ECOMAP_DEMO_OBSERVATION_DAYS"] = "0"  # a store holding only what the tests import
    try:
        return demo_database(scratch_database_name("observations_import"))
    finally:
        if previous is None:
            os.environ.pop("ECOMAP_DEMO_OBSERVATION_DAYS", None)
        else:
            os.environ["ECOMAP_DEMO_OBSERVATION_DAYS"] = previous


def _invoke(url: str, *args: str):
    return runner.invoke(app, ["observations", "import", *args], env={"ECOMAP_DATABASE_URL": url})


def _count(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(*) FROM observation").fetchone()[0]


def _station(url: str) -> tuple[str, str]:
    with psycopg.connect(url) as db:
        return db.execute("SELECT code, mn FROM station WHERE standard = 'river' ORDER BY id LIMIT 1").fetchone()


def test_good_csv_is_imported_with_latest_values(import_url: str, tmp_path: Path) -> None:
    code, mn = _station(import_url)
    path = tmp_path / "lab.csv"
    path.write_text(
        "站点编码,采样时间,监测项目,监测值,单位\n"
        f"{code},2026-03-02 10:00,NH3-N,0.82,mg/L\n"
        f"{mn},2026-03-02 10:00,w21011,0.11,mg/l\n"
        f"{code},2026-04-02T10:00:00+08:00,COD_Mn,4.2,mg/L\n",
        encoding="utf-8",
    )
    result = _invoke(import_url, str(path))
    assert result.exit_code == 0, result.output
    assert "imported 3 observations" in result.output
    with psycopg.connect(import_url) as db:
        rows = db.execute(
            "SELECT d.factor_code, o.phenomenon_time, o.value, o.source, o.quality FROM observation o"
            " JOIN datastream d ON d.id = o.datastream_id JOIN station s ON s.id = d.station_id WHERE s.code = %s"
            " ORDER BY 1",
            (code,),
        ).fetchall()
        assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
            ("w01019", 4.2, "lab", "good"),
            ("w21003", 0.82, "lab", "good"),
            ("w21011", 0.11, "lab", "good"),
        ]
        assert rows[1][1] == dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # China time without a zone
        latest = db.execute(
            "SELECT l.value FROM datastream_latest l JOIN datastream d ON d.id = l.datastream_id"
            " JOIN station s ON s.id = d.station_id WHERE s.code = %s AND d.factor_code = 'w01019'",
            (code,),
        ).fetchone()
        assert latest == (4.2,)
    again = _invoke(import_url, str(path))  # re-imported: nothing duplicated
    assert again.exit_code == 0 and "imported 0 observations (3 already stored" in again.output


def test_bad_file_writes_nothing_and_reports_every_error(import_url: str, tmp_path: Path) -> None:
    code, _ = _station(import_url)
    before = _count(import_url)
    frame = pd.DataFrame(
        {
            "station": [code, "NO-SUCH", code, code, code, code],
            "time": ["2026-05-01 08:00", "2026-05-01 08:00", "yesterday", "2026-05-01 09:00", "2026-05-01 10:00",
                     "2026-05-01 08:00"],
            "factor": ["NH3-N", "NH3-N", "TP", "XYZ", "TP", "NH3-N"],
            "value": ["0.5", "0.5", "0.1", "1", "-3", "0.6"],
            "unit": ["mg/L", "mg/L", "mg/L", "mg/L", "ug/m3", "mg/L"],
        }
    )  # fmt: skip
    path = tmp_path / "bad.xlsx"
    frame.to_excel(path, index=False)
    result = _invoke(import_url, str(path))
    assert result.exit_code == 1
    for code_name in ("unknown_station", "bad_time", "unknown_factor", "bad_value", "wrong_unit", "duplicate"):
        assert code_name in result.output, result.output
    assert "nothing was written" in result.output
    assert _count(import_url) == before  # the good first row was not written either


def test_missing_columns_and_unknown_files_are_usage_errors(import_url: str, tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    result = _invoke(import_url, str(path))
    assert result.exit_code == 2 and "no column for station, time, factor, value" in result.output
    mapped = tmp_path / "mapped.csv"
    code, _ = _station(import_url)
    mapped.write_text(f"site,when,what,conc\n{code},2026-06-01 08:00,pH,7.4\n", encoding="utf-8")
    ok = _invoke(import_url, str(mapped), "--map", "site=station", "--map", "when=time", "--map", "what=factor",
                 "--map", "conc=value", "--dry-run")  # fmt: skip
    assert ok.exit_code == 0 and "dry run: nothing written" in ok.output
    assert _invoke(import_url, str(tmp_path / "none.csv")).exit_code == 2
