"""Ingest: the HJ 212-2017 TCP receiver (and, later, SensorThings create and file imports)."""
