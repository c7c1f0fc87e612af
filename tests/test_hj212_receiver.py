"""The HJ 212 receiver in the running app, fed by real TCP clients, checked in PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from gis_service.app import create_app
from gis_service.monitoring.hj212 import FACTORS, Reading, build_data_packet, build_frame, parse_frame
from gis_service.monitoring.hj212.codec import CHINA_TIME
from gis_service.monitoring.ingest.hj212_receiver import HJ212Receiver
from gis_service.settings import HJ212Settings
from layers import db as layer_db
from tests.conftest import free_port, make_settings, recreate_database, run_async, scratch_database_name

WATER = ["w01001", "w01009", "w01019", "w21003", "w21011", "w21001"]


@pytest.fixture(scope="module")
def app_client(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, hj212=HJ212Settings(host="127.0.0.1", port=0))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def receiver(app_client: TestClient) -> HJ212Receiver:
    receiver = app_client.app.state.hj212_receiver
    assert isinstance(receiver, HJ212Receiver), "the receiver did not start with the app"
    return receiver


@pytest.fixture(scope="module")
def stations(database_url: str) -> dict[str, tuple[int, str]]:
    """One station per kind: kind -> (id, mn)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT DISTINCT ON (kind) kind, id, mn FROM station ORDER BY kind, id").fetchall()
    assert all(mn for _, _, mn in rows), "every demo station has an HJ 212 device code"
    return {kind: (ident, mn) for kind, ident, mn in rows}


def connect(receiver: HJ212Receiver) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", receiver.port), timeout=30)
    return sock


def read_reply(sock: socket.socket) -> bytes:
    """One reply packet (up to CRLF), waiting up to the socket's timeout."""
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"connection closed before a reply; got {data!r}")
        data += chunk
    return data


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")


def after_the_demo(hours: int) -> datetime:
    """A data time after the demo's observations (which end at the current hour), so the
    latest values asserted are the test's: at most a day ahead, as the receiver accepts."""
    return datetime.now(CHINA_TIME).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)


def water_readings(i: int = 0, flag: str = "N") -> list[Reading]:
    values = [7.2, 6.8, 3.1, 0.42, 0.11, 1.3]
    return [Reading(code, round(v + i / 1000, 4), flag) for code, v in zip(WATER, values, strict=True)]


def observations(db: psycopg.Connection, station_id: int, when: datetime) -> list[tuple]:
    return db.execute(
        "SELECT d.factor_code, d.aggregation, d.unit, o.value, o.value_min, o.value_max, o.flag, o.quality, o.source"
        " FROM observation o JOIN datastream d ON d.id = o.datastream_id"
        " WHERE d.station_id = %s AND o.phenomenon_time = %s ORDER BY d.aggregation, d.factor_code",
        (station_id, when),
    ).fetchall()


def test_every_data_command_is_stored_and_acknowledged(receiver: HJ212Receiver, stations, db) -> None:
    station_id, mn = stations["water_auto"]
    when = after_the_demo(hours=2)
    with connect(receiver) as sock:
        for n, cn in enumerate(["2011", "2051", "2061", "2031"]):
            readings = [
                Reading(
                    "w01001", 7.25, "N", minimum=7.1 if cn != "2011" else None, maximum=7.4 if cn != "2011" else None
                ),
                Reading("w21003", 0.5 + n, "T"),
                Reading("w01009", 5.5, "D"),
            ]
            qn = f"2026030410000000{n}"
            sock.sendall(build_data_packet(mn=mn, cn=cn, data_time=when, readings=readings, qn=qn))
            reply = parse_frame(read_reply(sock))
            assert (reply.cn, reply.st, reply.qn, reply.mn, reply.flag) == ("9014", "91", qn, mn, 4)
    rows = observations(db, station_id, when.astimezone(UTC))
    expected = []
    for n, aggregation in [(3, "day"), (2, "hour"), (1, "minute"), (0, "rtd")]:
        low, high = (None, None) if aggregation == "rtd" else (7.1, 7.4)
        expected += [
            ("w01001", aggregation, "1", 7.25, low, high, "N", "good", "hj212"),
            ("w01009", aggregation, "mg/L", 5.5, None, None, "D", "invalid", "hj212"),
            ("w21003", aggregation, "mg/L", 0.5 + n, None, None, "T", "good", "hj212"),
        ]
    assert sorted(rows) == sorted(expected)
    latest = db.execute(
        "SELECT d.aggregation, l.value, l.flag, l.phenomenon_time FROM datastream_latest l JOIN datastream d"
        " ON d.id = l.datastream_id WHERE d.station_id = %s AND d.factor_code = 'w21003' ORDER BY 1",
        (station_id,),
    ).fetchall()
    assert latest == [
        ("day", 3.5, "T", when),
        ("hour", 2.5, "T", when),
        ("minute", 1.5, "T", when),
        ("rtd", 0.5, "T", when),
    ]


def test_latest_only_moves_forward(receiver: HJ212Receiver, stations, db) -> None:
    station_id, mn = stations["section"]
    newer = after_the_demo(hours=3)
    older = newer - timedelta(hours=5)
    with connect(receiver) as sock:
        for when, value in [(newer, 1.5), (older, 9.9)]:
            sock.sendall(build_data_packet(mn=mn, cn="2061", data_time=when, readings=[Reading("w21011", value, "N")]))
            read_reply(sock)
    row = db.execute(
        "SELECT l.value, l.phenomenon_time FROM datastream_latest l JOIN datastream d ON d.id = l.datastream_id"
        " WHERE d.station_id = %s AND d.factor_code = 'w21011' AND d.aggregation = 'hour'",
        (station_id,),
    ).fetchone()
    assert row == (1.5, newer)
    assert [r[3] for r in observations(db, station_id, older)] == [9.9]  # the older value is stored all the same


def test_refused_packets_store_nothing_and_get_no_reply(receiver: HJ212Receiver, stations, db) -> None:
    station_id, mn = stations["outfall"]
    when = datetime(2026, 4, 1, 8, 0, tzinfo=CHINA_TIME)
    good = build_data_packet(mn=mn, cn="2061", data_time=when, readings=water_readings(), qn="20260401080000999")
    bad_crc = good[:-6] + (b"0000" if good[-6:-2] != b"0000" else b"1111") + b"\r\n"
    bad_length = b"##%04d" % (int(good[2:6]) - 3) + good[6:]  # announces less than it holds
    unknown_mn = build_data_packet(mn="NO-SUCH-LOGGER", cn="2061", data_time=when, readings=water_readings())
    segment = good[6:-6].decode().replace("w21001-", "w99999-")
    unknown_factor = build_frame(segment)
    future = build_data_packet(
        mn=mn, cn="2061", data_time=datetime.now(CHINA_TIME) + timedelta(days=30), readings=water_readings()
    )
    before = dict(receiver.rejected)
    with connect(receiver) as sock:
        for packet in (bad_crc, bad_length, unknown_mn, unknown_factor, future):
            sock.sendall(packet)
        sock.sendall(good)  # replies come in order: the first reply must be this packet's
        reply = parse_frame(read_reply(sock))
        assert reply.qn == "20260401080000999"
    after = receiver.rejected
    for kind in ("crc", "length", "mn", "factor", "time"):
        assert after[kind] == before.get(kind, 0) + 1, kind
    rows = observations(db, station_id, when)
    assert len(rows) == len(WATER)  # the good packet only, once
    assert not db.execute("SELECT 1 FROM observation WHERE phenomenon_time > now() + interval '1 day'").fetchall()


def test_resent_packets_never_duplicate(receiver: HJ212Receiver, stations, db) -> None:
    station_id, mn = stations["air_national"]
    start = datetime(2025, 6, 1, 0, 0, tzinfo=CHINA_TIME)
    codes = ["a34004", "a34002", "a21026", "a21004", "a21005", "a05024"]
    packets = [
        build_data_packet(
            mn=mn,
            cn="2061",
            st="22",
            data_time=start + timedelta(hours=i),
            readings=[Reading(c, 10.0 + i % 50 + k, "N") for k, c in enumerate(codes)],
            qn=f"2025{i:013d}",
        )
        for i in range(1000)
    ]
    duplicates_before = receiver.duplicates
    for _ in range(2):
        with connect(receiver) as sock:
            sock.sendall(b"".join(packets))
            qns = [parse_frame(read_reply(sock)).qn for _ in packets]
        assert qns == [f"2025{i:013d}" for i in range(1000)]
    count, distinct = db.execute(
        "SELECT count(*), count(DISTINCT (o.datastream_id, o.phenomenon_time)) FROM observation o"
        " JOIN datastream d ON d.id = o.datastream_id WHERE d.station_id = %s AND o.phenomenon_time >= %s"
        " AND o.phenomenon_time < %s",
        (station_id, start, start + timedelta(hours=1000)),
    ).fetchone()
    assert count == distinct == 1000 * len(codes)
    assert receiver.duplicates - duplicates_before == 1000 * len(codes)
    months = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'observation'::regclass"
        " AND inhrelid::regclass::text IN ('observation_y2025m05', 'observation_y2025m06', 'observation_y2025m07')"
    ).fetchone()[0]
    assert months == 3  # 1000 hours from 1 June Beijing time: 31 May 16:00 UTC to mid-July


def test_ack_only_after_commit(receiver: HJ212Receiver, stations, database_url: str, db) -> None:
    station_id, mn = stations["seawater"]
    when = datetime(2026, 5, 20, 9, 0, tzinfo=CHINA_TIME)
    packet = build_data_packet(mn=mn, cn="2011", data_time=when, readings=[Reading("w01001", 8.1, "N")], qn="Q-LOCKED")
    # Make sure the month's partition exists, so the held lock is the only thing the packet waits for.
    db.execute("SELECT observation_ensure_partition(%s)", (when,))
    with psycopg.connect(database_url) as locker, connect(receiver) as sock:
        locker.execute("LOCK TABLE observation IN SHARE MODE")  # inserts wait until this transaction ends
        sock.sendall(packet)
        wait_until(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ecomap'"
                    " AND wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                    " AND query LIKE '%%INSERT INTO observation%%'"
                ).fetchone()[0]
                > 0
            ),
            what="the receiver's insert waiting on the lock",
        )
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # the packet is not committed: no reply yet
        sock.setblocking(True)
        assert observations(db, station_id, when) == []
        locker.rollback()  # release the lock: the insert commits, then the reply comes
        assert parse_frame(read_reply(sock)).qn == "Q-LOCKED"
        assert [r[3] for r in observations(db, station_id, when)] == [8.1]


def test_disconnect_mid_packet_loses_nothing_committed(receiver: HJ212Receiver, stations, db) -> None:
    station_id, mn = stations["drinking_intake"]
    first = datetime(2026, 6, 1, 0, 0, tzinfo=CHINA_TIME)
    second = first + timedelta(hours=1)
    whole = build_data_packet(mn=mn, cn="2061", data_time=first, readings=water_readings(), qn="Q-WHOLE")
    cut = build_data_packet(mn=mn, cn="2061", data_time=second, readings=water_readings(1), qn="Q-CUT")
    with connect(receiver) as sock:
        sock.sendall(whole)
        assert parse_frame(read_reply(sock)).qn == "Q-WHOLE"
        sock.sendall(cut[: len(cut) // 2])
    wait_until(lambda: receiver.partial_disconnects > 0, what="the receiver noticing the cut packet")
    assert len(observations(db, station_id, first)) == len(WATER)
    assert observations(db, station_id, second) == []
    # The logger re-sends the cut packet on a new connection: stored once.
    with connect(receiver) as sock:
        sock.sendall(cut)
        assert parse_frame(read_reply(sock)).qn == "Q-CUT"
    assert [r[3] for r in observations(db, station_id, second)] == [
        r.value for r in sorted(water_readings(1), key=lambda r: r.code)
    ]


def test_many_concurrent_loggers(receiver: HJ212Receiver, stations, db) -> None:
    used = [ident for ident, _ in stations.values()]  # by the other tests
    rows = db.execute(
        "SELECT id, mn FROM station WHERE kind IN ('water_auto', 'section', 'outfall') AND id <> ALL(%s) ORDER BY id",
        (used,),
    ).fetchall()
    loggers = [rows[i % len(rows)] for i in range(50)]
    start = datetime(2026, 7, 1, 0, 0, tzinfo=CHINA_TIME)
    per_logger = 20

    async def logger_session(index: int, mn: str) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        packets = [
            build_data_packet(
                mn=mn,
                cn="2051",
                # Loggers sharing a station send different minutes.
                data_time=start + timedelta(minutes=index * per_logger + k),
                readings=water_readings(k),
                qn=f"L{index:02d}-{k:02d}",
            )
            for k in range(per_logger)
        ]
        data = b"".join(packets)
        for offset in range(0, len(data), 1000):  # frames split across writes
            writer.write(data[offset : offset + 1000])
            await writer.drain()
        try:
            replies = [parse_frame(await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)).qn for _ in packets]
        except TimeoutError:
            raise AssertionError(
                f"logger {index}: no reply within 60 s; refused {dict(receiver.rejected)}, failed {receiver.failed}"
            ) from None
        writer.close()
        await writer.wait_closed()
        return replies

    async def run_all() -> list[list[str]]:
        return await asyncio.gather(*(logger_session(i, mn) for i, (_, mn) in enumerate(loggers)))

    results = run_async(run_all())
    assert results == [[f"L{i:02d}-{k:02d}" for k in range(per_logger)] for i in range(50)]
    count = db.execute(
        "SELECT count(*) FROM observation o JOIN datastream d ON d.id = o.datastream_id"
        " WHERE d.aggregation = 'minute' AND o.phenomenon_time >= %s AND o.phenomenon_time < %s",
        (start, start + timedelta(minutes=50 * per_logger)),
    ).fetchone()[0]
    assert count == 50 * per_logger * len(WATER)


def test_receiver_disabled_by_setting(database_url: str) -> None:
    settings = make_settings(database_url, hj212=HJ212Settings(enabled=False))
    with TestClient(create_app(settings)) as client:
        assert client.app.state.hj212_receiver is None
    assert set(FACTORS) >= set(WATER)


def test_simulator_packets_are_stored(receiver: HJ212Receiver, database_url: str, db) -> None:
    started = db.execute("SELECT date_trunc('second', now())").fetchone()[0]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gis_service.cli",
            "hj212",
            "simulate",
            "--stations",
            "20",
            "--rate",
            "40",
            "--port",
            str(receiver.port),
            "--duration",
            "2",
        ],
        env={**os.environ, "ECOMAP_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(
        r"20 loggers: (\d+) packets sent, (\d+) acknowledged, (\d+) corrupted .*, (\d+) observations", result.stdout
    )
    assert match, result.stdout
    sent, acked, corrupted, stored = map(int, match.groups())
    assert sent > 0 and acked + corrupted == sent
    mns = [r[0] for r in db.execute("SELECT mn FROM station WHERE kind <> 'outfall' ORDER BY id LIMIT 20").fetchall()]
    count, kinds = db.execute(
        "SELECT count(*), count(DISTINCT d.factor_code) FROM observation o JOIN datastream d ON d.id = o.datastream_id"
        " JOIN station s ON s.id = d.station_id WHERE s.mn = ANY(%s) AND d.aggregation = 'rtd'"
        " AND o.phenomenon_time >= %s - interval '2 seconds' AND o.phenomenon_time < %s + interval '10 minutes'",
        (mns, started, started),  # (the tests above store data hours ahead)
    ).fetchone()
    assert count == stored
    assert kinds == 12  # 16 air stations (six air factors), then 4 water ones (six water factors)


def test_a_taken_port_leaves_the_http_service_running(database_url: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        settings = make_settings(database_url, hj212=HJ212Settings(host="127.0.0.1", port=taken))
        with TestClient(create_app(settings)) as client:
            assert client.app.state.hj212_receiver is None
            assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------- group commit


@pytest.fixture(scope="module")
def group_url() -> str:
    """A private migrated database with 30 stations that have device codes (G01…G30)."""
    url = recreate_database(scratch_database_name("group_commit"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO station (code, name, kind, mn, geom) SELECT 'G' || i, 'group ' || i, 'water_auto',"
            " 'G' || lpad(i::text, 2, '0'), ST_SetSRID(ST_MakePoint(118.0 + i * 0.001, 24.5), 4326)"
            " FROM generate_series(1, 30) AS i"
        )
    return url


async def _with_receiver(url: str, body: Callable, **options: object):
    """Run ``body(receiver)`` against a receiver of its own (group commit ``options``) on ``url``."""
    async with AsyncConnectionPool(url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False) as pool:
        receiver = HJ212Receiver(pool, "127.0.0.1", 0, **options)
        await receiver.start()
        try:
            return await body(receiver)
        finally:
            await receiver.stop()


def _stored_values(url: str, mn: str, since: datetime) -> list[tuple[datetime, str, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT o.phenomenon_time, d.factor_code, o.value FROM observation o JOIN datastream d"
            " ON d.id = o.datastream_id JOIN station s ON s.id = d.station_id"
            " WHERE s.mn = %s AND o.phenomenon_time >= %s ORDER BY 1, 2",
            (mn, since),
        ).fetchall()


def test_group_commit_stores_many_loggers_packets_in_few_transactions(group_url: str) -> None:
    start = datetime(2026, 8, 1, 0, 0, tzinfo=CHINA_TIME)
    loggers, per_logger = 20, 5

    async def body(receiver: HJ212Receiver) -> list[list[str]]:
        async def logger(index: int) -> list[str]:
            mn = f"G{index + 1:02d}"
            reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
            packets = [
                build_data_packet(
                    mn=mn, cn="2061", data_time=start + timedelta(hours=k), readings=water_readings(k), qn=f"{mn}-{k}"
                )
                for k in range(per_logger)
            ]
            writer.write(b"".join(packets))  # all at once: the receiver groups them with the other loggers'
            await writer.drain()
            replies = [parse_frame(await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)).qn for _ in packets]
            writer.close()
            await writer.wait_closed()
            return replies

        replies = await asyncio.gather(*(logger(i) for i in range(loggers)))
        assert receiver.packets_stored == loggers * per_logger
        assert receiver.groups <= loggers * per_logger // 5, f"{receiver.groups} transactions: no grouping"
        return replies

    replies = run_async(_with_receiver(group_url, body, group_window_ms=50, writers=2))
    # Every logger's replies in the order of its packets, and every acknowledged packet stored whole.
    assert replies == [[f"G{i + 1:02d}-{k}" for k in range(per_logger)] for i in range(loggers)]
    for i in range(loggers):
        rows = _stored_values(group_url, f"G{i + 1:02d}", start)
        expected = [
            (start + timedelta(hours=k), r.code, r.value)
            for k in range(per_logger)
            for r in sorted(water_readings(k), key=lambda r: r.code)
        ]
        assert rows == expected


def test_a_bad_packet_in_a_group_fails_alone(group_url: str) -> None:
    """Refused packets (unknown MN, time out of range) and one the database refuses inside
    the group's transaction (a trigger here) neither store anything nor get a reply, and the
    other packets of the same group are stored and acknowledged."""
    when = datetime(2026, 9, 1, 12, 0, tzinfo=CHINA_TIME)
    poison = 999.25
    with psycopg.connect(group_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.value = {poison} THEN RAISE EXCEPTION 'poison value'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON observation FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )
    good = [f"G{i:02d}" for i in range(21, 29)]
    packets = {mn: build_data_packet(mn=mn, cn="2061", data_time=when, readings=water_readings(), qn=mn) for mn in good}
    packets["G29"] = build_data_packet(
        mn="G29", cn="2061", data_time=when, readings=[Reading("w01001", poison, "N")], qn="G29"
    )
    packets["NOBODY"] = build_data_packet(mn="NOBODY", cn="2061", data_time=when, readings=water_readings(), qn="X")
    packets["G30"] = build_data_packet(
        mn="G30", cn="2061", data_time=datetime.now(CHINA_TIME) + timedelta(days=9), readings=water_readings(), qn="F"
    )

    async def body(receiver: HJ212Receiver) -> dict[str, str | None]:
        connections = {mn: await asyncio.open_connection("127.0.0.1", receiver.port) for mn in packets}
        for mn, (_, writer) in connections.items():  # all within the 200 ms window: one group
            writer.write(packets[mn])
        for _, writer in connections.values():
            await writer.drain()
        replies: dict[str, str | None] = {}
        for mn, (reader, _) in connections.items():
            try:
                replies[mn] = parse_frame(await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).qn
            except TimeoutError:
                replies[mn] = None
        assert (receiver.failed, receiver.rejected["mn"], receiver.rejected["time"]) == (1, 1, 1)
        for _, writer in connections.values():
            writer.close()
        return replies

    try:
        replies = run_async(_with_receiver(group_url, body, group_window_ms=200))
    finally:
        with psycopg.connect(group_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_poison ON observation")
    assert replies == {**{mn: mn for mn in good}, "G29": None, "NOBODY": None, "G30": None}
    for mn in good:
        assert [v for _, _, v in _stored_values(group_url, mn, when)] == [
            r.value for r in sorted(water_readings(), key=lambda r: r.code)
        ]
    for mn in ("G29", "G30"):
        assert _stored_values(group_url, mn, when - timedelta(days=1)) == []


def test_no_packet_of_a_group_is_acknowledged_before_its_commit(group_url: str) -> None:
    when = datetime(2026, 10, 1, 8, 0, tzinfo=CHINA_TIME)
    mns = [f"G{i:02d}" for i in range(1, 11)]
    with psycopg.connect(group_url, autocommit=True) as conn:
        conn.execute("SELECT observation_ensure_partition(%s)", (when,))

    async def body(receiver: HJ212Receiver) -> None:
        with psycopg.connect(group_url) as locker:
            locker.execute("LOCK TABLE observation IN SHARE MODE")  # the group's INSERT waits for this
            connections = [await asyncio.open_connection("127.0.0.1", receiver.port) for _ in mns]
            for mn, (_, writer) in zip(mns, connections, strict=True):
                writer.write(build_data_packet(mn=mn, cn="2061", data_time=when, readings=water_readings(), qn=mn))
                await writer.drain()
            await asyncio.sleep(1.0)
            for reader, _ in connections:  # nothing committed: no reply on any connection
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(reader.readuntil(b"\r\n"), 0.05)
            assert all(_stored_values(group_url, mn, when) == [] for mn in mns)
            locker.rollback()
        qns = [parse_frame(await asyncio.wait_for(r.readuntil(b"\r\n"), 30)).qn for r, _ in connections]
        assert qns == mns
        assert all(len(_stored_values(group_url, mn, when)) == len(WATER) for mn in mns)
        for _, writer in connections:
            writer.close()

    run_async(_with_receiver(group_url, body, group_window_ms=20))


def test_workers_share_the_port(group_url: str) -> None:
    """Two receivers (two workers of `ecomap serve --workers 2`) on one port: the kernel spreads
    the loggers' connections over both, and each packet is stored once."""
    port = free_port()
    when = datetime(2026, 10, 5, 0, 0, tzinfo=CHINA_TIME)

    async def main() -> tuple[int, int]:
        async with AsyncConnectionPool(group_url, max_size=4, kwargs={"autocommit": True}, open=False) as pool:
            first, second = HJ212Receiver(pool, "127.0.0.1", port), HJ212Receiver(pool, "127.0.0.1", port)
            await first.start()
            await second.start()
            try:
                for k in range(20):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    packet = build_data_packet(
                        mn="G01", cn="2011", data_time=when + timedelta(seconds=k), readings=water_readings(k)
                    )
                    writer.write(packet)
                    await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
                    writer.close()
                    await writer.wait_closed()
            finally:
                await first.stop()
                await second.stop()
            return first.packets_stored, second.packets_stored

    counts = run_async(main())
    assert sum(counts) == 20 and min(counts) > 0, counts
    assert len(_stored_values(group_url, "G01", when)) == 20 * len(WATER)
