"""HJ 212-2017 packets: framing, CRC, the data segment, data packets and replies.

A packet on the wire is ``##`` + the data segment's length (4 decimal digits, bytes) +
the data segment + its CRC (4 hex digits) + CRLF. The data segment is
``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&``. ``Flag`` bit 0 (A) asks for
a reply, bit 1 (D) says the packet carries PNUM/PNO, bits 2–7 are the protocol version
(000001 = HJ 212-2017, hence ``Flag=4``/``Flag=5``).

The CRC is the standard's own CRC-16 (not Modbus): register 0xFFFF; for each byte
``reg = (reg >> 8) ^ byte`` then eight right shifts, XOR 0xA001 when the bit shifted out
was 1. The standard's example ``…;Flag=5;CP=&&RtdInterval=30&&`` gives 101 and ``1C80``.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY

CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
"""HJ 212 times (QN, DataTime) are the logger's local time: Beijing time, UTC+8, no DST."""

DATA_COMMANDS = {"2011": "rtd", "2051": "minute", "2061": "hour", "2031": "day"}
"""Upload commands that carry data, and the aggregation each one's values are."""
VALUE_SUFFIX = {"rtd": "Rtd", "minute": "Avg", "hour": "Avg", "day": "Avg"}
DATA_REPLY_CN = "9014"
SYSTEM_INTERACTION_ST = "91"
FLAG_ACK = 0b01
FLAG_PACKET_NUMBERS = 0b10
FLAG_VERSION_2017 = 1 << 2
MAX_SEGMENT = 9999
"""Four decimal digits: the longest data segment a packet can announce."""
FRAME_OVERHEAD = 2 + 4 + 4 + 2
HEADER_FIELDS = ("QN", "ST", "CN", "PW", "MN", "Flag")
_CODE = re.compile(r"^[a-z][0-9a-z]{5}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class HJ212Error(ValueError):
    """A packet refused, with the reason (``kind`` is a short key for counters)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _eight_shifts(reg: int) -> int:
    for _ in range(8):
        carry = reg & 1
        reg >>= 1
        if carry:
            reg ^= 0xA001
    return reg


_CRC_TABLE = tuple(_eight_shifts(i) for i in range(256))
"""After ``reg = (reg >> 8) ^ byte`` the register holds 8 bits, so its eight shifts are a
table look-up: the same CRC, about 20 times faster in Python (the receiver checks every packet)."""
_HIGH = tuple(v >> 8 for v in _CRC_TABLE)
_PAIR_TABLE = tuple(_HIGH[_HIGH[i & 0xFF] ^ (i >> 8)] for i in range(1 << 16))
"""Each step keeps only the register's high byte (the low one is shifted out by the next
``reg >> 8``), so two steps are one look-up of (high byte XOR first byte, second byte):
half the Python loop's turns for the same CRC."""


def crc16(data: bytes) -> int:
    """The HJ 212-2017 CRC-16 of ``data`` (the data segment's bytes)."""
    if not data:
        return 0xFFFF
    high = 0xFF
    body = len(data) - 1  # every byte but the last keeps only the high byte; the last gives all 16 bits
    start = body & 1
    if start:
        high = _HIGH[high ^ data[0]]
    pairs = _PAIR_TABLE
    for pair in memoryview(data)[start:body].cast("H") if sys.byteorder == "little" else ():
        high = pairs[pair ^ high]
    if sys.byteorder != "little":  # pragma: no cover - the machines this runs on are little-endian
        for byte in data[start:body]:
            high = _HIGH[high ^ byte]
    return _CRC_TABLE[high ^ data[body]]


@dataclass(frozen=True)
class Frame:
    """A packet's data segment, split into its header fields and its CP content."""

    qn: str
    st: str
    cn: str
    pw: str
    mn: str
    flag: int
    cp: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def wants_ack(self) -> bool:
        """Flag bit A: the sender asks for a reply."""
        return bool(self.flag & FLAG_ACK)


def build_frame(segment: str) -> bytes:
    """A packet on the wire for a data segment (``##`` + length + segment + CRC + CRLF)."""
    data = segment.encode("ascii")
    if len(data) > MAX_SEGMENT:
        raise HJ212Error("length", f"a data segment holds at most {MAX_SEGMENT} bytes, this one {len(data)}")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def segment_of(frame: Frame) -> str:
    """The data segment text of a frame (inverse of ``parse_segment``)."""
    head = {"QN": frame.qn, "ST": frame.st, "CN": frame.cn, "PW": frame.pw, "MN": frame.mn, "Flag": str(frame.flag)}
    parts = [f"{k}={v}" for k, v in head.items()] + [f"{k}={v}" for k, v in frame.extra.items()]
    return ";".join(parts) + f";CP=&&{frame.cp}&&"


def parse_segment(segment: str) -> Frame:
    """Split a data segment into its fields; a field missing or malformed is an HJ212Error."""
    start = segment.find("CP=&&")
    if start < 0 or not segment.endswith("&&") or len(segment) < start + 7:
        raise HJ212Error("malformed", "the data segment has no CP=&&…&& part at its end")
    cp = segment[start + 5 : -2]
    head = segment[:start]
    if head and not head.endswith(";"):
        raise HJ212Error("malformed", "fields before CP must each end with ';'")
    fields: dict[str, str] = {}
    for item in head.split(";")[:-1]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HJ212Error("malformed", f"field {item!r} is not KEY=value")
        if key in fields:
            raise HJ212Error("malformed", f"field {key} appears twice")
        fields[key] = value
    missing = [k for k in ("QN", "CN", "MN", "Flag") if k not in fields]
    if missing:
        raise HJ212Error("malformed", f"the data segment lacks {', '.join(missing)}")
    if not fields["Flag"].isdigit() or int(fields["Flag"]) > 255:
        raise HJ212Error("malformed", f"Flag={fields['Flag']!r} is not a number 0..255")
    extra = {k: v for k, v in fields.items() if k not in HEADER_FIELDS}
    return Frame(
        qn=fields["QN"],
        st=fields.get("ST", ""),
        cn=fields["CN"],
        pw=fields.get("PW", ""),
        mn=fields["MN"],
        flag=int(fields["Flag"]),
        cp=cp,
        extra=extra,
    )


def parse_frame(packet: bytes) -> Frame:
    """One whole packet (CRLF included) checked and parsed."""
    if len(packet) < FRAME_OVERHEAD or packet[:2] != b"##" or packet[-2:] != b"\r\n":
        raise HJ212Error("malformed", "a packet is ## + 4-digit length + data + 4-hex CRC + CRLF")
    digits = packet[2:6]
    if not digits.isdigit():
        raise HJ212Error("length", f"the length field {digits!r} is not 4 decimal digits")
    length = int(digits)
    if length != len(packet) - FRAME_OVERHEAD:
        raise HJ212Error("length", f"the packet announces {length} bytes of data but holds {len(packet) - 12}")
    data = packet[6 : 6 + length]
    return _checked_segment(data, packet[6 + length : 10 + length])


def _checked_segment(data: bytes, crc_field: bytes) -> Frame:
    try:
        sent = int(crc_field.decode("ascii"), 16)
    except ValueError:
        raise HJ212Error("crc", f"the CRC field {crc_field!r} is not 4 hex digits") from None
    if crc16(data) != sent:
        raise HJ212Error("crc", f"CRC mismatch: the packet says {sent:04X}, its data gives {crc16(data):04X}")
    try:
        segment = data.decode("ascii")
    except UnicodeDecodeError:
        raise HJ212Error("malformed", "the data segment is not ASCII") from None
    return parse_segment(segment)


class FrameReader:
    """Cuts a TCP byte stream into packets: frames split across reads and several frames
    in one read both come out whole; bytes that are no packet are skipped to the next
    ``##`` and reported once as an HJ212Error."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._resyncing = False  # the rest of a packet already refused: skipped silently

    def feed(self, chunk: bytes) -> Iterator[Frame | HJ212Error]:
        """Add bytes read from the socket; yield each packet completed (or refused)."""
        self._buffer += chunk
        while True:
            start = self._buffer.find(b"##")
            if start < 0:
                keep = 1 if self._buffer.endswith(b"#") else 0
                if len(self._buffer) > keep:
                    del self._buffer[: len(self._buffer) - keep]
                    if not self._resyncing:
                        self._resyncing = True
                        yield HJ212Error("malformed", "bytes outside any packet (no ## start) were skipped")
                return
            if start > 0:
                del self._buffer[:start]
                if not self._resyncing:
                    yield HJ212Error("malformed", "bytes before a packet's ## were skipped")
            self._resyncing = False
            if len(self._buffer) < 6:
                return
            digits = bytes(self._buffer[2:6])
            if not digits.isdigit():
                del self._buffer[:2]
                self._resyncing = True
                yield HJ212Error("length", f"the length field {digits!r} is not 4 decimal digits")
                continue
            total = int(digits) + FRAME_OVERHEAD
            if len(self._buffer) < total:
                return
            packet = bytes(self._buffer[:total])
            if packet[-2:] != b"\r\n":
                del self._buffer[:2]  # resynchronise on the next ##
                self._resyncing = True
                yield HJ212Error("length", "the packet does not end with CRLF where its length says it should")
                continue
            del self._buffer[:total]
            try:
                yield parse_frame(packet)
            except HJ212Error as error:
                yield error

    @property
    def pending(self) -> int:
        """Bytes held for a packet not yet complete."""
        return len(self._buffer)


class Reading(NamedTuple):
    """One factor's value in a data packet (a named tuple: the receiver makes six a packet, and
    a tuple is made several times faster than a frozen dataclass)."""

    code: str
    value: float
    flag: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def quality(self) -> str:
        """The quality code of the HJ 212 data flag."""
        return FLAG_QUALITY[self.flag]


@dataclass(frozen=True)
class DataPacket:
    """A data upload (CN 2011/2051/2061/2031): when, from which device, which values."""

    frame: Frame
    aggregation: str
    data_time: datetime
    readings: tuple[Reading, ...]


def parse_time(text: str, what: str) -> datetime:
    """``yyyyMMddHHmmss`` in Beijing time, as an aware datetime."""
    if len(text) != 14 or not text.isdigit():
        raise HJ212Error("malformed", f"{what}={text!r} is not yyyyMMddHHmmss")
    try:
        # Fields cut by hand: the same check as strptime("%Y%m%d%H%M%S"), about 10 times faster.
        fields = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
        return datetime(*map(int, fields), tzinfo=CHINA_TIME)  # type: ignore[misc]
    except ValueError:
        raise HJ212Error("malformed", f"{what}={text!r} is not a valid date and time") from None


def _number(text: str, key: str) -> float:
    # A plain decimal (digits, at most one point) is a number without the regular expression.
    if not (text.isdecimal() or text.replace(".", "", 1).isdecimal()) and not _NUMBER.match(text):
        raise HJ212Error("malformed", f"{key}={text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise HJ212Error("malformed", f"{key}={text!r} is not a finite number")
    return value


def parse_data_packet(frame: Frame) -> DataPacket:
    """The values of a data upload; an unknown command or factor code, a missing value or
    an unknown flag is an HJ212Error (the whole packet is refused)."""
    aggregation = DATA_COMMANDS.get(frame.cn)
    if aggregation is None:
        raise HJ212Error("command", f"CN={frame.cn} is no data upload this receiver stores (2011, 2051, 2061, 2031)")
    values: dict[str, dict[str, str]] = {}
    data_time: str | None = None
    for group in frame.cp.split(";"):
        if not group:
            continue
        for item in group.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise HJ212Error("malformed", f"CP item {item!r} is not KEY=value")
            if key == "DataTime":
                data_time = value
                continue
            code, dash, suffix = key.partition("-")
            if not dash or (code not in FACTORS and not _CODE.match(code)):  # a known code is well formed
                if "-" not in key:  # other CP fields (e.g. PolId, RtdInterval) carry no data
                    continue
                raise HJ212Error("malformed", f"CP item {key!r} is not a factor code-field pair")
            fields = values.get(code)
            if fields is None:
                values[code] = fields = {}
            fields[suffix] = value
    if data_time is None:
        raise HJ212Error("malformed", "the CP part has no DataTime")
    when = parse_time(data_time, "DataTime")
    unknown = sorted(code for code in values if code not in FACTORS)
    if unknown:
        raise HJ212Error("factor", f"unknown factor code(s) {', '.join(unknown)}; known: {', '.join(FACTORS)}")
    suffix = VALUE_SUFFIX[aggregation]
    readings = []
    for code, fields in values.items():
        if suffix not in fields:
            raise HJ212Error("malformed", f"{code} has no {code}-{suffix} value (CN={frame.cn})")
        flag = fields.get("Flag", "N")
        if flag not in FLAG_QUALITY:
            raise HJ212Error("malformed", f"{code}-Flag={flag!r} is not one of {''.join(FLAG_QUALITY)}")
        low, high = fields.get("Min"), fields.get("Max")
        readings.append(
            Reading(
                code,
                _number(fields[suffix], f"{code}-{suffix}"),
                flag,
                None if low is None else _number(low, f"{code}-Min"),
                None if high is None else _number(high, f"{code}-Max"),
            )
        )
    if not readings:
        raise HJ212Error("malformed", "the data packet holds no factor values")
    return DataPacket(frame, aggregation, when, tuple(readings))


def format_time(moment: datetime) -> str:
    """An aware datetime as HJ 212 ``yyyyMMddHHmmss`` Beijing time."""
    return moment.astimezone(CHINA_TIME).strftime("%Y%m%d%H%M%S")


def _format_value(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{value:.1f}"


def build_data_packet(
    *,
    mn: str,
    cn: str,
    data_time: datetime,
    readings: list[Reading],
    qn: str | None = None,
    st: str = "21",
    pw: str = "123456",
    ack: bool = True,
) -> bytes:
    """A data upload packet as a data logger sends it."""
    aggregation = DATA_COMMANDS[cn]
    suffix = VALUE_SUFFIX[aggregation]
    groups = [f"DataTime={format_time(data_time)}"]
    for r in readings:
        items = [f"{r.code}-{suffix}={_format_value(r.value)}"]
        if r.minimum is not None:
            items.append(f"{r.code}-Min={_format_value(r.minimum)}")
        if r.maximum is not None:
            items.append(f"{r.code}-Max={_format_value(r.maximum)}")
        items.append(f"{r.code}-Flag={r.flag}")
        groups.append(",".join(items))
    if qn is None:
        qn = datetime.now(CHINA_TIME).strftime("%Y%m%d%H%M%S%f")[:17]
    frame = Frame(
        qn=qn, st=st, cn=cn, pw=pw, mn=mn, flag=FLAG_VERSION_2017 | (FLAG_ACK if ack else 0), cp=";".join(groups)
    )
    return build_frame(segment_of(frame))


def data_reply(frame: Frame) -> bytes:
    """The data reply (CN 9014, ST 91) to an upload: the same QN, PW and MN, no reply asked."""
    return build_frame(
        f"QN={frame.qn};ST={SYSTEM_INTERACTION_ST};CN={DATA_REPLY_CN};PW={frame.pw};MN={frame.mn};"
        f"Flag={FLAG_VERSION_2017};CP=&&&&"
    )
