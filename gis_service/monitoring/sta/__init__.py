"""OGC SensorThings API 1.1 under ``/sta/v1.1`` over the observation store.

``entities`` maps the data model onto the tables, ``options`` parses paths and query options,
``filters`` turns ``$filter``/``$orderby`` into SQL, ``queries`` holds every statement,
``service`` reads and creates (taking a connection), ``routes`` is the HTTP layer.
"""

from gis_service.monitoring.sta.routes import router

__all__ = ["router"]
