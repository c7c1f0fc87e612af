"""Monitoring: observations from station data loggers and the environmental standards they are judged by.

``store.py`` keeps observations (partitioned by month, latest value per datastream), ``hj212/``
reads and writes HJ 212-2017 packets, ``ingest/`` receives them over TCP, and ``standards/``
holds the standards engine (GB 3838, GB 3097, HJ 633 tables as data files).
"""
