"""The region as data: cross-boundary sections (地市交接断面) between the Minxinan cities, their
monthly assessment against their targets and the eco-compensation between upstream and
downstream cities by rules kept as data (``compensation.yaml``).

- ``rules``: the compensation rules, validated strictly.
- ``sections``: the sections and their monthly assessment (observation_daily, standards engine).
- ``compensation``: who pays whom, the report per section, city pair and city, CSV.
- ``routes``: ``/api/region/sections`` (GeoJSON for the map), ``/api/region/compensation``.
"""
