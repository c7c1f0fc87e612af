"""HJ 212-2017: the protocol station data loggers use to send their data over TCP."""

from gis_service.monitoring.hj212.codec import (
    DATA_COMMANDS,
    DataPacket,
    Frame,
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
from gis_service.monitoring.hj212.factors import FACTORS, FLAG_QUALITY, Factor

__all__ = [
    "DATA_COMMANDS",
    "FACTORS",
    "FLAG_QUALITY",
    "DataPacket",
    "Factor",
    "Frame",
    "FrameReader",
    "HJ212Error",
    "Reading",
    "build_data_packet",
    "build_frame",
    "crc16",
    "data_reply",
    "parse_data_packet",
    "parse_frame",
]
