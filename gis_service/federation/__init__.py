"""Federation the other way: partners' OGC API Features collections as remote layers.

``config`` (declarations, validated strictly, and the read-only catalog layers they are shown
as), ``fetch`` (pages, ``next`` links, ETag / ``If-None-Match``, limits), ``validate`` (the
importer's checks), ``store`` (the copies in ``remote_feature``, one transaction per refresh),
``refresh`` (one refresh), ``refresher`` (the schedule in the app's lifespan), ``zone`` (the
zone check's look at them), ``routes`` (``/api/federation``), ``cli`` (``ecomap federation
refresh``, ``list``, ``forget``).
"""
