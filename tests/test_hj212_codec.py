"""HJ 212-2017 codec: CRC against the standard's example, framing, data packets, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis_service.monitoring.hj212 import (
    FACTORS,
    FLAG_QUALITY,
    FrameReader,
    HJ212Error,
    Reading,
    build_data_packet,
    build_frame,
    crc16,
    data_reply,
    parse_data_packet,
    parse_frame,
)
from gis_service.monitoring.hj212.codec import CHINA_TIME

STANDARD_EXAMPLE = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80\r\n"
)
"""The packet the standard gives as its example (set the real-time data interval)."""


def _reference_crc(data: bytes) -> int:
    """The CRC as the standard's C listing computes it, written out bit by bit independently."""
    reg = 0xFFFF
    for byte in data:
        reg = ((reg >> 8) & 0xFF) ^ byte
        for _ in range(8):
            out = reg & 1
            reg = reg >> 1
            reg = reg ^ 0xA001 if out else reg
    return reg & 0xFFFF


def test_crc_and_length_of_the_standards_example() -> None:
    frame = parse_frame(STANDARD_EXAMPLE)
    assert (frame.qn, frame.st, frame.cn, frame.pw, frame.mn, frame.flag) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
        5,
    )
    assert frame.cp == "RtdInterval=30"
    assert frame.wants_ack
    assert crc16(STANDARD_EXAMPLE[6:107]) == 0x1C80
    assert build_frame(STANDARD_EXAMPLE[6:107].decode()) == STANDARD_EXAMPLE


def test_crc_is_not_modbus() -> None:
    # Modbus CRC of "123456789" is 0x4B37; the HJ 212 variant differs.
    assert crc16(b"123456789") == _reference_crc(b"123456789") != 0x4B37


def _packet(cn: str, readings: list[Reading], when: datetime | None = None, mn: str = "MN0001") -> bytes:
    when = when or datetime(2026, 5, 3, 14, 0, tzinfo=CHINA_TIME)
    return build_data_packet(mn=mn, cn=cn, data_time=when, readings=readings, qn="20260503140012345")


@pytest.mark.parametrize(
    ("cn", "aggregation", "suffix"),
    [("2011", "rtd", "Rtd"), ("2051", "minute", "Avg"), ("2061", "hour", "Avg"), ("2031", "day", "Avg")],
)
def test_data_packets_of_every_command(cn: str, aggregation: str, suffix: str) -> None:
    segment = (
        f"QN=20260503140012345;ST=21;CN={cn};PW=123456;MN=MN0001;Flag=5;"
        f"CP=&&DataTime=20260503140000;w01001-{suffix}=7.2,w01001-Min=7.0,w01001-Max=7.4,w01001-Flag=N;"
        f"w21003-{suffix}=0.35,w21003-Flag=D&&"
    )
    packet = parse_data_packet(parse_frame(build_frame(segment)))
    assert packet.aggregation == aggregation
    assert packet.data_time == datetime(2026, 5, 3, 6, 0, tzinfo=UTC)
    ph, nh3 = packet.readings
    assert (ph.code, ph.value, ph.minimum, ph.maximum, ph.flag, ph.quality) == ("w01001", 7.2, 7.0, 7.4, "N", "good")
    assert (nh3.code, nh3.value, nh3.flag, nh3.quality) == ("w21003", 0.35, "D", "invalid")


def test_flag_quality_covers_every_hj212_flag() -> None:
    assert set(FLAG_QUALITY) == set("NFMSDCTB")


@pytest.mark.parametrize(
    ("segment", "kind", "reason"),
    [
        ("QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000;x99999-Rtd=1&&", "factor", "x99999"),
        ("QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&w01001-Rtd=1&&", "malformed", "DataTime"),
        ("QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20261340000000;w01001-Rtd=1&&", "malformed", "date"),
        ("QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000;w01001-Rtd=abc&&", "malformed", "number"),
        (
            "QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000;w01001-Rtd=1,w01001-Flag=Q&&",
            "malformed",
            "Flag",
        ),
        ("QN=1;ST=21;CN=2061;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000;w01001-Rtd=1&&", "malformed", "w01001-Avg"),
        ("QN=1;ST=21;CN=3020;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000&&", "command", "CN=3020"),
        ("QN=1;ST=21;CN=2011;PW=1;Flag=5;CP=&&DataTime=20260503140000;w01001-Rtd=1&&", "malformed", "MN"),
        ("QN=1;ST=21;CN=2011;PW=1;MN=M;Flag=5;CP=&&DataTime=20260503140000&&", "malformed", "no factor"),
    ],
)
def test_malformed_data_is_refused_with_its_reason(segment: str, kind: str, reason: str) -> None:
    with pytest.raises(HJ212Error) as caught:
        parse_data_packet(parse_frame(build_frame(segment)))
    assert caught.value.kind == kind
    assert reason in str(caught.value)


def test_bad_crc_and_bad_length_are_refused() -> None:
    good = _packet("2011", [Reading("w01001", 7.1, "N")])
    bad_crc = good[:-6] + (b"0000" if good[-6:-2] != b"0000" else b"FFFF") + b"\r\n"
    with pytest.raises(HJ212Error, match="CRC mismatch") as caught:
        parse_frame(bad_crc)
    assert caught.value.kind == "crc"
    longer = good[:2] + b"%04d" % (int(good[2:6]) + 1) + good[6:]
    with pytest.raises(HJ212Error, match="announces") as caught:
        parse_frame(longer)
    assert caught.value.kind == "length"


def test_reader_handles_split_and_joined_frames() -> None:
    packets = [_packet("2011", [Reading("w01001", 7.0 + i / 10, "N")], mn=f"MN{i:04d}") for i in range(5)]
    stream = b"".join(packets)
    reader = FrameReader()
    out = []
    for i in range(0, len(stream), 7):  # 7-byte reads: every frame arrives in pieces
        out += list(reader.feed(stream[i : i + 7]))
    assert [f.mn for f in out] == [f"MN{i:04d}" for i in range(5)]
    assert reader.pending == 0
    assert [f.mn for f in FrameReader().feed(stream)] == [f"MN{i:04d}" for i in range(5)]


def test_reader_resynchronises_after_garbage_and_a_wrong_length() -> None:
    good = _packet("2011", [Reading("w01001", 7.1, "N")])
    wrong_length = b"##0005" + good[6:]
    items = list(FrameReader().feed(b"noise" + wrong_length + good))
    errors = [i for i in items if isinstance(i, HJ212Error)]
    frames = [i for i in items if not isinstance(i, HJ212Error)]
    assert [f.qn for f in frames] == ["20260503140012345"]
    assert [e.kind for e in errors] == ["malformed", "length"]


def test_data_reply_is_cn_9014_with_the_same_qn() -> None:
    frame = parse_frame(_packet("2061", [Reading("a34004", 35.0, "N")]))
    reply = parse_frame(data_reply(frame))
    assert (reply.qn, reply.st, reply.cn, reply.mn, reply.flag, reply.cp) == (frame.qn, "91", "9014", frame.mn, 4, "")
    assert not reply.wants_ack


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
readings = st.lists(
    st.builds(
        Reading,
        code=st.sampled_from(sorted(FACTORS)),
        value=finite,
        flag=st.sampled_from(sorted(FLAG_QUALITY)),
        minimum=st.none() | finite,
        maximum=st.none() | finite,
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda r: r.code,
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0, tzinfo=CHINA_TIME)
)


@settings(max_examples=200, deadline=None)
@given(
    cn=st.sampled_from(["2011", "2051", "2061", "2031"]),
    values=readings,
    when=times,
    mn=st.text("0123456789ABCDEF", min_size=1, max_size=24),
    ack=st.booleans(),
)
def test_build_then_parse_round_trips(cn: str, values: list[Reading], when: datetime, mn: str, ack: bool) -> None:
    packet = build_data_packet(mn=mn, cn=cn, data_time=when, readings=values, ack=ack)
    parsed = parse_data_packet(parse_frame(packet))
    assert parsed.frame.mn == mn and parsed.frame.cn == cn and parsed.frame.wants_ack is ack
    assert parsed.data_time == when
    assert list(parsed.readings) == values


@settings(max_examples=300, deadline=None)
@given(values=readings, data=st.data())
def test_a_changed_byte_is_caught(values: list[Reading], data: st.DataObject) -> None:
    packet = bytearray(_packet("2011", values))
    position = data.draw(st.integers(min_value=6, max_value=len(packet) - 7), label="position")  # data or CRC
    old = packet[position]
    in_crc = position >= len(packet) - 6
    # The CRC's hex digits are read in either case: 'a' for 'A' there is no change.
    new = data.draw(
        st.integers(min_value=0x20, max_value=0x7E).filter(
            lambda b: b != old and not (in_crc and chr(b).lower() == chr(old).lower())
        ),
        label="byte",
    )
    packet[position] = new
    with pytest.raises(HJ212Error) as caught:
        parse_frame(bytes(packet))
    assert caught.value.kind in {"crc", "malformed"}


def test_future_timestamps_are_checked_by_the_store_not_the_codec() -> None:
    # The codec parses any valid date; the store refuses times out of range (tests/test_hj212_receiver.py).
    when = datetime.now(CHINA_TIME).replace(microsecond=0) + timedelta(days=400)
    assert parse_data_packet(parse_frame(_packet("2011", [Reading("w01001", 7.0, "N")], when))).data_time == when


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(readings, min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=50),
)
def test_any_chunking_of_a_stream_gives_back_its_packets(batch: list[list[Reading]], cuts: list[int]) -> None:
    when = datetime(2026, 1, 1, tzinfo=CHINA_TIME)
    packets = [
        build_data_packet(mn=f"MN{i}", cn="2011", data_time=when, readings=values, qn=f"Q{i}")
        for i, values in enumerate(batch)
    ]
    stream = b"".join(packets)
    reader = FrameReader()
    out = []
    position = 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        out += list(reader.feed(stream[position : position + size]))
        position += size
        if position >= len(stream):
            break
    assert [(f.qn, parse_data_packet(f).readings) for f in out] == [(f"Q{i}", tuple(v)) for i, v in enumerate(batch)]
    assert reader.pending == 0
