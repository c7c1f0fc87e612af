"""A year of hourly observations for every demo station: seeded, loaded with COPY.

Values follow diurnal and seasonal cycles around levels that depend on the station (water
stations near their section's target, worse downstream in town), with autocorrelated noise.
A few pollution episodes start upstream and travel down the river network (``river.downstream_id``)
at ``FLOW_KM_H``, fading with distance; regional haze episodes raise particulates at every air
station. Loggers have faults: gaps (no data sent), hours flagged D (fault), M (maintenance) or
C (calibration, every week), inactive stations stopped reporting weeks ago.

The same seed and end hour always give the same data. ``ECOMAP_DEMO_OBSERVATION_DAYS``
(default 365) sets the period; the test suite loads a shorter one.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

DEFAULT_DAYS = 365
DAYS_VARIABLE = "ECOMAP_DEMO_OBSERVATION_DAYS"
FLOW_KM_H = 1.8
"""Speed at which an episode's plume travels downstream (~0.5 m/s)."""
CHINA_OFFSET_H = 8

# HJ 212 code: (property, unit, decimals). Property names and units are the ingest's (hj212.factors).
FACTORS: dict[str, tuple[str, str, int]] = {
    "w01001": ("pH", "1", 2),
    "w01009": ("DO", "mg/L", 2),
    "w01018": ("COD", "mg/L", 1),
    "w01019": ("COD_Mn", "mg/L", 2),
    "w21003": ("NH3-N", "mg/L", 3),
    "w21011": ("TP", "mg/L", 3),
    "w21001": ("TN", "mg/L", 2),
    "a34004": ("PM2.5", "ug/m3", 0),
    "a34002": ("PM10", "ug/m3", 0),
    "a21026": ("SO2", "ug/m3", 0),
    "a21004": ("NO2", "ug/m3", 0),
    "a21005": ("CO", "mg/m3", 2),
    "a05024": ("O3", "ug/m3", 0),
}
PROFILES: dict[str, dict[str, tuple[float, float, float, float, float]]] = {
    # code: (level, seasonal amplitude, season peak day, diurnal amplitude, peak hour) — relative amplitudes
    "river": {
        "w01001": (7.3, 0.0, 200, 0.02, 15),
        "w01009": (7.6, -0.18, 200, 0.10, 14),
        "w01019": (3.4, 0.15, 200, 0.04, 10),
        "w21003": (0.55, 0.30, 20, 0.05, 8),
        "w21011": (0.13, 0.20, 200, 0.04, 10),
    },
    "lake": {
        "w01001": (7.6, 0.0, 200, 0.02, 15),
        "w01009": (8.4, -0.15, 200, 0.10, 14),
        "w01019": (2.3, 0.15, 200, 0.03, 10),
        "w21003": (0.20, 0.25, 20, 0.05, 8),
        "w21011": (0.022, 0.25, 200, 0.03, 10),
        "w21001": (0.45, 0.20, 20, 0.03, 8),
    },
    "sea": {
        "w01001": (8.1, 0.0, 200, 0.01, 15),
        "w01009": (7.1, -0.10, 210, 0.06, 14),
        "w01018": (1.6, 0.20, 200, 0.05, 10),
    },
    "outfall": {
        "w01018": (28.0, 0.10, 200, 0.25, 10),
        "w21003": (2.5, 0.15, 20, 0.25, 9),
    },
    "air": {
        "a34004": (26.0, 0.45, 15, 0.12, 21),
        "a34002": (46.0, 0.40, 15, 0.10, 20),
        "a21026": (6.0, 0.25, 15, 0.15, 11),
        "a21004": (24.0, 0.30, 15, 0.30, 20),
        "a21005": (0.62, 0.25, 15, 0.15, 20),
        "a05024": (70.0, 0.30, 150, 0.60, 15),
    },
}
FLAG_QUALITY = {"N": "good", "D": "invalid", "M": "invalid", "C": "invalid"}


@dataclass(frozen=True)
class Episode:
    """A pollution episode released at the top of a river segment."""

    segment_id: int
    start_hour: int
    duration_h: int
    strength: float


@dataclass
class DemoObservations:
    """Datastreams and observations ready for COPY, and the episodes that shaped them."""

    datastreams: pd.DataFrame  # id, station_id, factor_code, aggregation, property, unit
    observations: pd.DataFrame  # datastream_id, phenomenon_time, value, flag, quality
    episodes: list[Episode]
    start: dt.datetime
    end: dt.datetime


def observation_days() -> int:
    """The demo period in days (``ECOMAP_DEMO_OBSERVATION_DAYS``, default a year)."""
    raw = os.environ.get(DAYS_VARIABLE, "")
    return int(raw) if raw.strip() else DEFAULT_DAYS


def _profile(station: pd.Series) -> str | None:
    if station.kind == "outfall":
        return "outfall"
    return station.standard if isinstance(station.standard, str) else None


def _noise(rng: np.random.Generator, n: int, sd: float, memory_h: float = 6.0) -> np.ndarray:
    """Autocorrelated noise (white noise smoothed over ~memory_h hours), standard deviation ~sd."""
    kernel = np.exp(-np.arange(int(memory_h * 4)) / memory_h)
    white = rng.normal(0.0, 1.0, n + len(kernel))
    smooth = np.convolve(white, kernel, mode="full")[len(kernel) : len(kernel) + n]
    return smooth / np.sqrt(np.sum(kernel**2)) * sd


def river_distances(rivers: pd.DataFrame, stations: pd.DataFrame) -> dict[int, dict[int, float]]:
    """For each segment: km downstream from its top to each river station below it (stations on
    the segment itself included), following ``downstream_id``."""
    length = dict(zip(rivers.id, rivers.length_km, strict=True))
    downstream = {
        int(i): (int(d) if pd.notna(d) else None) for i, d in zip(rivers.id, rivers.downstream_id, strict=True)
    }
    lines = dict(zip(rivers.id, rivers.geom, strict=True))
    on_river = stations[stations.river_id.notna() & stations.kind.isin(["water_auto", "section"])]
    offset = {
        int(s.id): float(shapely.line_locate_point(shapely.line_merge(lines[int(s.river_id)]), s.geom, normalized=True))
        * length[int(s.river_id)]
        for s in on_river.itertuples()
    }
    out: dict[int, dict[int, float]] = {}
    for top in length:
        km, seg, reach = 0.0, top, {}
        while seg is not None:
            for s in on_river.itertuples():
                if int(s.river_id) == seg:
                    reach[int(s.id)] = km + offset[int(s.id)]
            km += length[seg]
            seg = downstream[seg]
        out[int(top)] = reach
    return out


def generate_observations(
    stations: pd.DataFrame,
    rivers: pd.DataFrame,
    *,
    end: dt.datetime | None = None,
    days: int | None = None,
    seed: int = 2025,
) -> DemoObservations:
    """Hourly observations of ``days`` days ending at ``end`` (default: the current hour, UTC)."""
    days = observation_days() if days is None else days
    end = (end or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    n = days * 24
    start = end - dt.timedelta(hours=n - 1)
    rng = np.random.default_rng(seed)
    hours = np.arange(n)
    local = (start.hour + CHINA_OFFSET_H + hours) % 24
    day_of_year = (start.timetuple().tm_yday + (start.hour + CHINA_OFFSET_H + hours) / 24.0) % 365.25

    distances = river_distances(rivers, stations)
    tops = [seg for seg, reach in distances.items() if len(reach) >= 2]
    episodes = (
        [
            Episode(
                int(rng.choice(tops)),
                int(rng.integers(0, max(1, n - 72))),
                int(rng.integers(12, 36)),
                float(rng.uniform(3, 6)),
            )
            for _ in range(max(1, days // 90))
        ]
        if tops
        else []
    )
    hazes = [(int(rng.integers(0, max(1, n - 96))), int(rng.integers(36, 96))) for _ in range(max(1, days // 60))]

    frames, streams = [], []
    stream_id = 0
    for station in stations.sort_values("id").itertuples():
        kind = _profile(pd.Series(station._asdict()))
        if kind is None:
            continue
        level = float(rng.uniform(*{"river": (0.7, 1.9), "lake": (0.8, 1.1)}.get(kind, (0.7, 1.35))))
        present = np.ones(n, dtype=bool)
        for _ in range(int(rng.integers(2, 7))):  # gaps: the logger sent nothing
            g = int(rng.integers(0, n))
            present[g : g + int(rng.integers(2, 60))] = False
        if station.status == "inactive":
            present[max(0, n - 24 * int(rng.integers(10, 40))) :] = False
        flags = np.full(n, "N", dtype="<U1")
        flags[(local == 10) & ((hours // 24) % 7 == int(station.id) % 7)] = "C"  # weekly calibration
        flags[rng.random(n) < 0.004] = "D"
        if station.status == "maintenance":
            flags[max(0, n - 36) :] = "M"
        plume = np.zeros(n)
        for ep in episodes:
            km = distances.get(ep.segment_id, {}).get(int(station.id))
            if km is None:
                continue
            arrive = ep.start_hour + round(km / FLOW_KM_H)
            width = ep.duration_h + int(km / 4)
            t = hours - arrive
            pulse = np.where((t >= 0) & (t < width), np.sin(np.pi * np.clip(t, 0, width) / width), 0.0)
            plume += ep.strength * np.exp(-km / 40.0) * pulse
        haze = np.zeros(n)
        for h0, length in hazes:
            t = hours - h0
            haze += np.where((t >= 0) & (t < length), 1.6 * np.sin(np.pi * np.clip(t, 0, length) / length), 0.0)
        for code, (mean, seasonal, peak_day, diurnal, peak_hour) in PROFILES[kind].items():
            stream_id += 1
            prop, unit, decimals = FACTORS[code]
            base = mean * (level if code not in ("w01001", "w01009") else 1.0)
            season = 1 + seasonal * np.cos(2 * np.pi * (day_of_year - peak_day) / 365.25)
            daily = 1 + diurnal * np.cos(2 * np.pi * (local - peak_hour) / 24)
            noise = _noise(rng, n, 0.02 if code == "w01001" else 0.12)
            value = base * season * daily * (1 + noise)
            if code == "w01009":
                value = value - 1.2 * plume / 3
            elif code != "w01001" and kind in ("river", "lake"):
                value = value * (1 + plume * (1.0 if code in ("w21003", "w21011") else 0.4))
            if code in ("a34004", "a34002", "a21005"):
                value = value * (1 + haze)
            value = np.round(np.maximum(value, 10.0**-decimals), decimals)
            mask = present.copy()
            mask[rng.random(n) < 0.002] = False  # single lost packets
            idx = hours[mask]
            streams.append((stream_id, int(station.id), code, "hour", prop, unit))
            frames.append(
                pd.DataFrame({"datastream_id": stream_id, "h": idx, "value": value[mask], "flag": flags[mask]})
            )
    obs = pd.concat(frames, ignore_index=True)
    times = pd.date_range(start, periods=n, freq="h", tz="UTC")
    obs["phenomenon_time"] = times[obs.pop("h").to_numpy()]
    obs["quality"] = obs.flag.map(FLAG_QUALITY)  # as the ingest maps HJ 212 flags (hj212.factors.FLAG_QUALITY)
    columns = ["id", "station_id", "factor_code", "aggregation", "property", "unit"]
    return DemoObservations(
        pd.DataFrame(streams, columns=columns),
        obs[["datastream_id", "phenomenon_time", "value", "flag", "quality"]],
        episodes,
        start,
        end,
    )


def load_observations(cursor, data: DemoObservations) -> int:
    """COPY the datastreams and observations (creating the month partitions first; the insert's
    trigger fills ``datastream_latest`` and ``observation_daily``); returns the number of
    observations. ``cursor`` is a psycopg cursor inside the caller's transaction."""
    month = data.start.replace(day=1, hour=0)
    while month <= data.end:
        cursor.execute("SELECT observation_ensure_partition(%s)", (month,))
        month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    with cursor.copy("COPY datastream (id, station_id, factor_code, aggregation, property, unit) FROM STDIN") as copy:
        for row in data.datastreams.itertuples(index=False):
            copy.write_row(tuple(row))
    cursor.execute("SELECT setval(pg_get_serial_sequence('datastream', 'id'), %s)", (int(data.datastreams.id.max()),))
    obs = data.observations
    hours = (obs.phenomenon_time - pd.Timestamp(data.start)) // pd.Timedelta(hours=1)
    text = io.StringIO()
    pd.DataFrame({"d": obs.datastream_id, "h": hours, "v": obs.value, "f": obs.flag}).to_csv(
        text, sep="\t", header=False, index=False
    )
    cursor.execute("CREATE TEMP TABLE demo_observation (d bigint, h int, v float8, f text) ON COMMIT DROP")
    with cursor.copy("COPY demo_observation FROM STDIN") as copy:
        copy.write(text.getvalue())
    # One statement: the observation trigger (migration 0021) checks the datastreams, fills
    # datastream_latest and the daily sums from all the rows at once.
    cursor.execute(
        "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
        " SELECT d, %s::timestamptz + h * interval '1 hour', v, f, q.quality, 'demo'"
        " FROM demo_observation JOIN unnest(%s::text[], %s::text[]) AS q(flag, quality) ON q.flag = f",
        (data.start, list(FLAG_QUALITY), list(FLAG_QUALITY.values())),
    )
    return len(data.observations)
