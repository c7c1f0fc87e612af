"""The SensorThings API with the real ``frost-sta-client`` (unchanged) against the live server over TCP.

The client's only extension point for credentials is its ``AuthHandler`` (a ``requests`` auth);
the station key goes in ``X-API-Key`` through it. Data the test writes is on a datastream it
creates on the session database and removes at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import frost_sta_client as fsc
import psycopg
import pytest
import requests
from frost_sta_client.model.ext.data_array_document import DataArrayDocument
from frost_sta_client.model.ext.data_array_value import DataArrayValue
from frost_sta_client.service.auth_handler import AuthHandler

from tests.test_sta import sta_key

START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


class KeyAuth(AuthHandler):
    """Sends a station API key in X-API-Key (the client's AuthHandler hook)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def add_auth_header(self):  # a requests auth callable
        def auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["X-API-Key"] = self.key
            return request

        return auth


@pytest.fixture(scope="module")
def stream(database_url: str) -> Iterator[tuple[int, int]]:
    """A datastream (station, id) with 24 hourly values 0..23 from START."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A station with no minute DO stream of its own (the demo's loggers have one).
        station = conn.execute(
            "SELECT max(s.id) FROM station s WHERE NOT EXISTS (SELECT 1 FROM datastream d"
            " WHERE d.station_id = s.id AND d.factor_code = 'w01009' AND d.aggregation = 'minute')"
        ).fetchone()[0]
        conn.execute("SELECT observation_ensure_partition(%s)", [START])
        ident = conn.execute(
            "INSERT INTO datastream (station_id, factor_code, aggregation, property, unit)"
            " VALUES (%s, 'w01009', 'minute', 'DO', 'mg/L') RETURNING id",
            [station],
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO observation (datastream_id, phenomenon_time, value, flag, quality, source)"
            " SELECT %s, %s + g * interval '1 hour', g, 'N', 'good', 'test' FROM generate_series(0, 23) g",
            [ident, START],
        )
    yield station, ident
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM datastream WHERE id = %s", [ident])


def test_frost_client_reads(live_server: str, database_url: str, stream: tuple[int, int]) -> None:
    station, ident = stream
    service = fsc.SensorThingsService(f"{live_server}/sta/v1.1")
    with psycopg.connect(database_url) as conn:
        expected = conn.execute("SELECT count(*) FROM station").fetchone()[0]
    things = service.things().query().count().top(1000).list()
    assert things.count == expected and len(things.entities) == expected
    thing = service.things().find(station)
    datastreams = service.datastreams().query().filter(f"Thing/id eq {station}").list()
    assert ident in [d.id for d in datastreams.entities]
    assert thing.name
    datastream = service.datastreams().find(ident)
    assert datastream.unit_of_measurement.symbol == "mg/L"
    query = (
        service.observations()
        .query()
        .filter(
            f"Datastream/id eq {ident} and phenomenonTime ge 2026-09-01T10:00:00Z"
            " and phenomenonTime lt 2026-09-01T20:00:00Z"
        )
        .orderby("phenomenonTime", "ASC")
        .count()
    )
    observations = query.list()
    assert observations.count == 10
    assert [o.result for o in observations.entities] == [float(h) for h in range(10, 20)]
    expanded = (
        service.things()
        .query()
        .filter(f"id eq {station}")
        .expand(f"Datastreams($filter=id eq {ident};$expand=Observations($top=3))")
        .list()
    )
    assert [o.result for o in expanded.entities[0].datastreams.entities[0].observations.entities] == [0.0, 1.0, 2.0]


def test_frost_client_creates(live_server: str, database_url: str, stream: tuple[int, int]) -> None:
    _, ident = stream
    key = sta_key(database_url, "sta-frost-client")
    service = fsc.SensorThingsService(f"{live_server}/sta/v1.1", auth_handler=KeyAuth(key))
    datastream = service.datastreams().find(ident)
    observation = fsc.Observation(result=7.25, phenomenon_time="2026-09-02T00:00:00Z", datastream=datastream)
    service.create(observation)
    assert service.observations().find(observation.id).result == 7.25
    values = DataArrayValue()
    values.datastream = datastream
    values.components = {DataArrayValue.Property.PHENOMENON_TIME, DataArrayValue.Property.RESULT}
    values.add_observation(fsc.Observation(result=8.5, phenomenon_time="2026-09-02T01:00:00Z", datastream=datastream))
    values.add_observation(fsc.Observation(result=9.5, phenomenon_time="2026-09-02T02:00:00Z", datastream=datastream))
    array = DataArrayDocument()
    array.add_data_array_value(values)
    links = service.observations().create(array)
    assert len(links) == 2
    again = service.observations().create(array)  # re-sent: nothing new
    assert [o.self_link for o in again] == [o.self_link for o in links]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT value FROM observation WHERE datastream_id = %s AND phenomenon_time >= '2026-09-02Z'"
            " ORDER BY phenomenon_time",
            [ident],
        ).fetchall()
        latest = conn.execute("SELECT value FROM datastream_latest WHERE datastream_id = %s", [ident]).fetchone()
    assert rows == [(7.25,), (8.5,), (9.5,)] and latest == (9.5,)
    anonymous = fsc.SensorThingsService(f"{live_server}/sta/v1.1")
    with pytest.raises(Exception, match="401"):
        anonymous.create(fsc.Observation(result=1.0, phenomenon_time="2026-09-03T00:00:00Z", datastream=datastream))
