"""The standards engine: water classes (GB 3838-2002, GB 3097-1997), AQI (HJ 633-2012 / 2026), aggregates.

Pure Python, no database. The tables are YAML files in ``data/`` with their source clause and
verification status, validated strictly when first used (``validate_all()`` checks them all).
Every result names the standard and version it was computed by.
"""

from __future__ import annotations

from .aggregates import Aggregate, annual_mean, daily_mean, monthly_mean, o3_8h_moving, o3_daily_max_8h
from .air import AqiResult, aqi, select_aqi_standard
from .errors import (
    NoStandardInForceError,
    StandardDataError,
    StandardsError,
    UnknownFactorError,
    UnverifiedTableError,
)
from .tables import validate_all
from .water import WaterResult, classify_seawater, classify_surface_water

__all__ = [
    "Aggregate",
    "AqiResult",
    "NoStandardInForceError",
    "StandardDataError",
    "StandardsError",
    "UnknownFactorError",
    "UnverifiedTableError",
    "WaterResult",
    "annual_mean",
    "aqi",
    "classify_seawater",
    "classify_surface_water",
    "daily_mean",
    "monthly_mean",
    "o3_8h_moving",
    "o3_daily_max_8h",
    "select_aqi_standard",
    "validate_all",
]
