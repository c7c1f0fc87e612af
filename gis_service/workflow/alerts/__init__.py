"""Alerts (监测预警) from the monitoring data: rules as data (``rules.yaml``, validated by
``rules``), judged on each station's latest values (``evaluate``), routed to the responsible
chiefs and upstream along the river network to candidate sources (``routing``), kept one open
alert per station and rule while the condition persists, escalated and resolved, with their
issues and events (``lifecycle``), evaluated every few seconds by a task of the service's
lifespan (``evaluator``), read and acknowledged through ``service`` and ``routes``
(``/api/alerts``)."""
