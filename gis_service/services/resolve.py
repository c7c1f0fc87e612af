"""One resolver per concept, used by every route: a layer id, and a revision / ``asof`` request.

Every route that takes a layer id or ``revision``/``asof`` goes through these, so the same
request gets the same answer (and the same message) on items, tiles, OGC tiles, exports and
history:

- an unknown layer is a 404 naming the valid layers;
- ``revision``/``asof`` on a layer that keeps no history, both at once, or an ``asof`` that is
  not a date is a 400 saying what to change;
- a revision that does not exist (yet) is a 404 giving the valid range;
- ``asof`` resolves to the number of the revision in force on that day by its legal validity
  date (0 before the first), so a cache key names an immutable revision; the exports and
  ``/api/layers/{layer}/features`` also take ``loaded_asof``, the revision loaded by then.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import AsyncConnection

from gis_service.errors import InvalidRequest, NotFound
from layers.catalog import Catalog, Layer
from layers.history import (
    AsOfBasis,
    HistoryError,
    latest_revision_sql,
    parse_asof,
    require_history,
    revision_at_sql,
)


def layer(catalog: Catalog, layer_id: str) -> Layer:
    """The catalog layer of an id; NotFound (404) naming the valid layers."""
    try:
        return catalog.get(layer_id)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from None


def check_revision_request(layers: Sequence[Layer], revision: int | None, asof: str | None) -> None:
    """Validate ``revision``/``asof`` without the database (400 with what to change)."""
    if revision is None and asof is None:
        return
    if revision is not None and asof is not None:
        raise InvalidRequest("give either revision or asof, not both")
    if revision is not None and revision < 0:
        raise InvalidRequest(f"revision must be 0 or more, not {revision}")
    try:
        for chosen in layers:
            require_history(chosen)
        if asof is not None:
            parse_asof(asof)
    except HistoryError as exc:
        raise InvalidRequest(str(exc)) from None


async def latest_revision(conn: AsyncConnection, chosen: Layer) -> int:
    """The number of the layer's latest revision (0 when it has none)."""
    cursor = await conn.execute(*latest_revision_sql(chosen))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def revision(
    conn: AsyncConnection, chosen: Layer, revision: int | None, asof: str | None, *, by: AsOfBasis = "valid"
) -> int | None:
    """The revision of a layer a request selects (None = the current data), checked to exist;
    ``asof`` by validity, or with ``by="loaded"`` by load time.

    Raises:
        InvalidRequest: no history kept, both given, or a malformed ``asof``.
        NotFound: a revision number beyond the layer's latest.
    """
    check_revision_request([chosen], revision, asof)
    if revision is None and asof is None:
        return None
    if asof is not None:
        cursor = await conn.execute(*revision_at_sql(chosen, asof, by=by))
        row = await cursor.fetchone()
        return int(row[0]) if row else 0
    latest = await latest_revision(conn, chosen)
    if revision is not None and revision > latest:
        raise NotFound(f"revision {revision} of {chosen.id} does not exist; revisions are 0 (empty) to {latest}")
    return revision


async def revisions(
    conn: AsyncConnection, layers: Sequence[Layer], revision_number: int | None, asof: str | None
) -> tuple[int | None, ...]:
    """:func:`revision` for each layer of a composite request (revisions are numbered per layer,
    so one ``asof`` selects a different number in each)."""
    check_revision_request(layers, revision_number, asof)
    return tuple([await revision(conn, chosen, revision_number, asof) for chosen in layers])


def asof_basis(asof: str | None, loaded_asof: str | None) -> tuple[str | None, AsOfBasis]:
    """The moment and basis of a request taking ``asof`` (validity) and ``loaded_asof`` (load time)."""
    if asof is not None and loaded_asof is not None:
        raise InvalidRequest("give either asof (validity date) or loaded_asof (load date), not both")
    return (loaded_asof, "loaded") if loaded_asof is not None else (asof, "valid")
