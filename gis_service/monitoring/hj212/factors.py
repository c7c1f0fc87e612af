"""HJ 212-2017 monitoring factor codes this service stores, and the data flags' meaning.

Factor codes are those of the standard's code tables as the issue and DOMAIN.md list
them (surface water ``w01xxx``/``w21xxx``, ambient air ``a34xxx``/``a21xxx``/``a05024``);
a code not listed here is refused by the ingest, so a typo never creates a datastream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Factor:
    """One monitoring factor: its HJ 212 code, the observed property and its unit."""

    code: str
    name: str
    unit: str
    medium: str  # "water" or "air"


FACTORS: dict[str, Factor] = {
    f.code: f
    for f in (
        Factor("w01001", "pH", "1", "water"),
        Factor("w01009", "DO", "mg/L", "water"),
        Factor("w01018", "COD", "mg/L", "water"),
        Factor("w01019", "COD_Mn", "mg/L", "water"),
        Factor("w21003", "NH3-N", "mg/L", "water"),
        Factor("w21011", "TP", "mg/L", "water"),
        Factor("w21001", "TN", "mg/L", "water"),
        Factor("a34004", "PM2.5", "ug/m3", "air"),
        Factor("a34002", "PM10", "ug/m3", "air"),
        Factor("a21026", "SO2", "ug/m3", "air"),
        Factor("a21004", "NO2", "ug/m3", "air"),
        Factor("a21005", "CO", "mg/m3", "air"),
        Factor("a05024", "O3", "ug/m3", "air"),
    )
}
"""The factor codes the ingest accepts, by code."""

FLAG_QUALITY: dict[str, str] = {
    "N": "good",  # 正常
    "T": "good",  # 超限: a valid measurement above the instrument's limit setting
    "S": "suspect",  # 手工输入 (manual)
    "F": "invalid",  # 停运 (stopped)
    "M": "invalid",  # 维护 (maintenance)
    "D": "invalid",  # 故障 (fault)
    "C": "invalid",  # 校准 (calibration)
    "B": "invalid",  # 通讯异常 (communication fault)
}
"""HJ 212 data flag -> quality code stored with each observation (statistics use only
``good`` values; ``suspect`` ones are shown but flagged)."""
