"""Reproducible demo data for Xiamen: every layer, plus river and bay chiefs, and upstream the
Jiulong River through Zhangzhou and Longyan (``upstream.py``: segments, watersheds, stations with
the cross-boundary sections, city chiefs).

The district boundaries are real (converted from GCJ-02); every other feature is
generated at the real places (hills, reservoirs, streams, bays) with plausible but
fictitious shapes and attributes, and is flagged ``is_sample``.

    dataset = build_demo_dataset(seed=2025)
    with engine.begin() as connection:
        load_demo(connection, dataset)
"""

from layers.demo.build import DemoDataset, build_demo_dataset
from layers.demo.load import load_demo

__all__ = ["DemoDataset", "build_demo_dataset", "load_demo"]
