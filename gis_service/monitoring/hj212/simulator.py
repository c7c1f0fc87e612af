"""Simulated station data loggers: real HJ 212-2017 packets with plausible values, for demos and benchmarks.

Water stations send pH, DO, COD_Mn, NH3-N, TP and TN; air stations PM2.5, PM10, SO2,
NO2, CO and O3, with a diurnal cycle (O3 peaks in the afternoon, DO in the day, PM in
the morning and evening) and noise. Flags: mostly N; now and then D (fault), M
(maintenance) or C (calibration), T when a value exceeds the instrument's limit; and
once in a while a packet is corrupted in transit (a bad CRC, which the receiver must
refuse and the logger would send again).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gis_service.monitoring.hj212.codec import CHINA_TIME, Reading, build_data_packet

WATER_PROFILE = {  # code: (mean, diurnal amplitude, noise sd, instrument limit)
    "w01001": (7.4, 0.3, 0.1, 9.0),
    "w01009": (7.0, 1.2, 0.4, 20.0),
    "w01019": (3.5, 0.4, 0.6, 15.0),
    "w21003": (0.5, 0.1, 0.15, 2.0),
    "w21011": (0.12, 0.02, 0.03, 0.4),
    "w21001": (1.4, 0.1, 0.3, 5.0),
}
SEA_PROFILE = {**WATER_PROFILE, "w01001": (8.1, 0.1, 0.05, 9.0)}
AIR_PROFILE = {
    "a34004": (32.0, 10.0, 8.0, 250.0),
    "a34002": (55.0, 15.0, 12.0, 420.0),
    "a21026": (8.0, 2.0, 2.0, 800.0),
    "a21004": (28.0, 10.0, 6.0, 1200.0),
    "a21005": (0.7, 0.2, 0.1, 60.0),
    "a05024": (90.0, 55.0, 15.0, 800.0),
}
FAULT_FLAGS = [("D", 0.004), ("M", 0.003), ("C", 0.002)]
CORRUPT_SHARE = 0.002
EPISODE_SHARE = 0.01
"""Share of packets carrying a pollution episode (values several times the mean)."""


@dataclass(frozen=True)
class SimulatedStation:
    mn: str
    kind: str


@dataclass
class SimulationReport:
    """What a simulation sent and what the receiver acknowledged."""

    sent: int = 0
    acknowledged: int = 0
    corrupted: int = 0
    observations: int = 0
    flags: Counter[str] = field(default_factory=Counter)


def profile_for(kind: str) -> dict[str, tuple[float, float, float, float]]:
    """The factors a station of this kind measures, with their value model."""
    if kind.startswith("air"):
        return AIR_PROFILE
    if kind == "seawater":
        return SEA_PROFILE
    return WATER_PROFILE


def readings_for(kind: str, moment: datetime, rng: random.Random) -> list[Reading]:
    """Plausible values for one station at ``moment`` (Beijing time drives the diurnal cycle)."""
    local = moment.astimezone(CHINA_TIME)
    hour = local.hour + local.minute / 60
    episode = rng.random() < EPISODE_SHARE
    readings = []
    for code, (mean, amplitude, noise, limit) in profile_for(kind).items():
        phase = {"a05024": 15.0, "w01009": 14.0}.get(code, 8.0)  # hour of the daily maximum
        value = mean + amplitude * math.cos((hour - phase) / 24 * 2 * math.pi) + rng.gauss(0, noise)
        if episode and code not in ("w01001", "w01009"):
            value *= rng.uniform(2.0, 5.0)
        value = max(value, 0.0 if code != "w01001" else 5.5)
        flag = "T" if value > limit else "N"
        draw = rng.random()
        for fault, share in FAULT_FLAGS:
            if draw < share:
                flag = fault
                break
            draw -= share
        readings.append(Reading(code, round(value, 3 if mean < 1 else 2), flag))
    return readings


def _corrupt(packet: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(6, len(packet) - 6)
    data = bytearray(packet)
    data[position] = ord("#") if data[position] != ord("#") else ord("$")
    return bytes(data)


async def _logger(
    station: SimulatedStation,
    host: str,
    port: int,
    interval_s: float,
    deadline: float,
    report: SimulationReport,
    rng: random.Random,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    last = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    try:
        next_send = time.monotonic()
        while time.monotonic() < deadline:
            moment = max(datetime.now(UTC).replace(microsecond=0), last + timedelta(seconds=1))
            last = moment
            readings = readings_for(station.kind, moment, rng)
            st = "22" if station.kind.startswith("air") else "21"
            packet = build_data_packet(mn=station.mn, cn="2011", st=st, data_time=moment, readings=readings)
            corrupted = rng.random() < CORRUPT_SHARE
            writer.write(_corrupt(packet, rng) if corrupted else packet)
            await writer.drain()
            report.sent += 1
            if corrupted:
                report.corrupted += 1  # refused by the receiver: no reply to wait for
            else:
                await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
                report.acknowledged += 1
                report.observations += len(readings)
                report.flags.update(r.flag for r in readings)
            next_send += interval_s
            await asyncio.sleep(max(0.0, next_send - time.monotonic()))
    finally:
        writer.close()
        await writer.wait_closed()


async def simulate(
    stations: list[SimulatedStation],
    *,
    host: str,
    port: int,
    rate: float,
    duration_s: float,
    seed: int = 212,
) -> SimulationReport:
    """Connect one logger per station and send ``rate`` packets per second in all, for ``duration_s``."""
    if not stations:
        raise ValueError("no station to simulate: load the demo data (stations with an mn)")
    report = SimulationReport()
    interval = len(stations) / rate
    deadline = time.monotonic() + duration_s
    rngs = [random.Random(seed + i) for i in range(len(stations))]  # noqa: S311 - simulated values, not secrets
    await asyncio.gather(
        *(_logger(s, host, port, interval, deadline, report, rng) for s, rng in zip(stations, rngs, strict=True))
    )
    return report
