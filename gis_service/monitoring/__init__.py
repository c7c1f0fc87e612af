"""Monitoring: observations from station data loggers and the environmental standards they are judged by.

``standards/`` holds the standards engine (GB 3838, GB 3097, HJ 633 tables as data files).
"""
