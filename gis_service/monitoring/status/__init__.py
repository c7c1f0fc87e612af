"""Station status and history: latest values with the class / AQI by the standard in force,
series with the standard's aggregates, water- and air-quality summaries, the event stream,
and the precomputed ``station_status`` rows the station tiles join (migration 0011).

``assess`` is pure (values in, results out, by the standards engine); ``service`` takes a
connection; ``events`` runs the LISTEN connection and the throttled status refresh; ``routes``
is HTTP only.
"""
