"""The monitoring event stream (SSE) over real HTTP, and the demo observations' volume and shape."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable

import httpx
import numpy as np
import psycopg
import pytest

from gis_service.monitoring.hj212 import Reading, build_data_packet, parse_data_packet, parse_frame
from gis_service.monitoring.store import PartitionKeeper, store_packet
from layers.demo.observations import generate_observations, river_distances
from tests.conftest import run_async


def _ingest(url: str, mn: str, when: dt.datetime, readings: list[Reading]) -> None:
    packet = parse_data_packet(parse_frame(build_data_packet(mn=mn, cn="2061", data_time=when, readings=readings)))

    async def main():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await store_packet(conn, packet, PartitionKeeper())

    run_async(main())


def read_events(
    url: str,
    events: list[tuple[str, dict]],
    connected: threading.Event,
    done: Callable[[str, dict], bool],
    headers: dict[str, str] | None = None,
) -> None:
    """Read the event stream at ``url`` into ``events`` (name, data) until ``done`` says so;
    ``connected`` is set once the stream is open."""
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(60.0)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith(": connected"):
                connected.set()
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if done(*events[-1]):
                    return


def test_event_stream_sends_observations_and_status_changes(live_server: str, database_url: str) -> None:
    with psycopg.connect(database_url) as db:
        sid, mn = db.execute(
            "SELECT id, mn FROM station WHERE standard = 'river' AND status = 'active' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        latest = db.execute(
            "SELECT max(l.phenomenon_time) FROM datastream d JOIN datastream_latest l ON l.datastream_id = d.id"
            " WHERE d.station_id = %s",
            (sid,),
        ).fetchone()[0]
    events: list[tuple[str, dict]] = []
    connected = threading.Event()

    def done(name: str, event: dict) -> bool:
        # (the server's start-up refresh may send this station's earlier status first)
        return name == "status" and event["station_id"] == sid and event["water_class"] == "劣V"

    url = f"{live_server}/api/monitoring/events"
    reader = threading.Thread(target=read_events, args=(url, events, connected, done), daemon=True)
    reader.start()
    assert connected.wait(30), "the stream did not open"
    when = latest + dt.timedelta(hours=1)
    _ingest(database_url, mn, when, [Reading("w21003", 2.8, "N"), Reading("w01009", 7.1, "N")])
    reader.join(60)
    observations = [e for n, e in events if n == "observation" and e["station_id"] == sid]
    assert observations and observations[0]["mn"] == mn and observations[0]["inserted"] == 2
    assert dt.datetime.fromisoformat(observations[0]["time"]) == when
    status = [e for n, e in events if n == "status" and e["station_id"] == sid]
    assert status and status[-1]["water_class"] == "劣V" and status[-1]["colour"] == "#FF0000"


@pytest.fixture(scope="module")
def year(demo):
    end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    return generate_observations(demo.layers["station"], demo.layers["river"], end=end, days=365)


def test_demo_year_volume_flags_and_gaps(year, demo) -> None:
    obs = year.observations
    hours = 365 * 24
    # Every datastream's hours, less the gaps, faults and stopped loggers (a few per cent).
    assert 0.9 * len(year.datastreams) * hours < len(obs) <= len(year.datastreams) * hours
    assert year.end - year.start == dt.timedelta(hours=365 * 24 - 1)
    stations = demo.layers["station"]
    assert set(year.datastreams.station_id) == set(stations.id)  # every demo station reports
    per_stream = obs.groupby("datastream_id").size()
    assert per_stream.max() <= 365 * 24 and per_stream.median() > 0.95 * 365 * 24
    assert per_stream.min() < 0.99 * 365 * 24  # gaps
    assert {"N", "D", "M", "C"} <= set(obs.flag)
    again = generate_observations(stations, demo.layers["river"], end=year.end, days=365)
    assert again.observations.equals(obs)  # deterministic


def test_demo_episode_travels_downstream(year, demo) -> None:
    streams = year.datastreams.set_index(["station_id", "factor_code"]).id
    reach = river_distances(demo.layers["river"], demo.layers["station"])
    checked = 0
    for episode in year.episodes:
        stations = sorted(reach[episode.segment_id].items(), key=lambda item: item[1])
        if len(stations) < 2 or stations[-1][1] - stations[0][1] < 10:
            continue
        (up, _), (down, _) = stations[0], stations[-1]
        peaks = []
        for sid in (up, down):
            series = year.observations[year.observations.datastream_id == streams[(sid, "w21003")]]
            hours = ((series.phenomenon_time - year.start) // dt.timedelta(hours=1)).to_numpy()
            window = (hours >= episode.start_hour) & (hours < episode.start_hour + 200)
            values = series.value.to_numpy()[window]
            baseline = np.median(series.value.to_numpy())
            assert values.max() > 2 * baseline  # the episode is visible at both
            peaks.append(hours[window][int(np.argmax(values))])
        assert peaks[1] > peaks[0]  # ... and reaches the downstream station later
        checked += 1
    assert checked >= 1
