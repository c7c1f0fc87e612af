"""Monitoring: observations, ingest (HJ 212, SensorThings) and the standards engine."""
