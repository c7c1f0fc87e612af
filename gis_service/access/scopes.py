"""Per-feature scopes as SQL: what a scoped caller's queries read in place of a layer's table.

``FeatureScope`` is the scope of one caller (made by ``gis_service.access.policy.feature_scope``
from the ``scopes`` of ``access/rules.yaml``): its area, bound as a parameter, and the layers it
scopes. Every feature query of the service reads ``scoped_table(layer, scope)`` (or
``FeatureScope.source``) in place of the table: OGC items, search, exports, revisions and
diffs, the zone check, tiles, the chiefs' and the river network's endpoints, station status.
Kept apart from the policy so that services can use it without importing the policy back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from layers.catalog import Catalog, Layer
from layers.history import feature_columns

SCOPE_PARAM = "scope_area"
"""The bound parameter holding a scope's area (EWKB, EPSG:4326; NULL: an empty area)."""


@dataclass(frozen=True)
class FeatureScope:
    """The per-feature scope of one caller (see ``gis_service.access.policy``)."""

    id: str
    """Names the scope and its area (``partner:<key id>:<area digest>``): the tile cache's
    variant, shared by every request of the scope, never a person."""
    area: bytes | None
    features: frozenset[str] | None
    """Layers whose features outside the area are left out (None: every layer)."""
    fields: frozenset[str]
    """Layers whose non-public properties are null for features outside the area."""

    @property
    def params(self) -> dict[str, Any]:
        return {SCOPE_PARAM: self.area}

    @property
    def rule(self) -> tuple[frozenset[str] | None, frozenset[str]]:
        """What shapes the scope's SQL (the same for every caller of a role; the area is bound)."""
        return (self.features, self.fields)

    def filters(self, layer: Layer) -> bool:
        return self.features is None or layer.id in self.features

    def masked(self, layer: Layer) -> list[str]:
        """The properties of a layer null outside the area."""
        if layer.id not in self.fields:
            return []
        return [p.name for p in layer.properties if p.access != "public"]

    def applies(self, layer: Layer) -> bool:
        return self.filters(layer) or bool(self.masked(layer))

    def inside(self, layer: Layer, alias: str = "t", *, positional: bool = False) -> sql.Composable:
        """The condition that a feature (alias ``alias``) lies in the area (``positional``: the
        area is a ``%s`` placeholder, for statements with positional parameters)."""
        geom = sql.Identifier(alias, layer.geometry_column)
        area = sql.Placeholder() if positional else sql.Placeholder(SCOPE_PARAM)
        return sql.SQL("ST_Intersects({}, {}::geometry)").format(geom, area)

    def source(
        self, layer: Layer, inner: sql.Composable | None = None, *, positional: bool = False
    ) -> sql.Composable | None:
        """A ``SELECT`` of the layer's features as the scope lets its caller read them, with the
        columns of ``layers.history.feature_columns``, to embed as ``FROM (…) AS t`` in place of
        the table (``inner``: a features subquery, e.g. as of a revision; default the table).
        None when the scope does not apply to the layer. ``positional``: the area is bound by
        ``%s`` placeholders, ``positional_params`` in order."""
        if not self.applies(layer):
            return None
        masked = set(self.masked(layer))
        inside = self.inside(layer, "s", positional=positional)
        columns = [
            sql.SQL("CASE WHEN {} THEN s.{} END AS {}").format(inside, sql.Identifier(c), sql.Identifier(c))
            if c in masked
            else sql.SQL("s.{}").format(sql.Identifier(c))
            for c in feature_columns(layer)
        ]
        table = sql.Identifier(layer.table) if inner is None else sql.SQL("({})").format(inner)
        where = sql.SQL(" WHERE {}").format(inside) if self.filters(layer) else sql.SQL("")
        return sql.SQL("SELECT {} FROM {} AS s{}").format(sql.SQL(", ").join(columns), table, where)

    def positional_params(self, layer: Layer) -> tuple[bytes | None, ...]:
        """The parameters of ``source(layer, positional=True)``: the area, once per placeholder."""
        if not self.applies(layer):
            return ()
        masked = set(self.masked(layer))
        uses = sum(c in masked for c in feature_columns(layer)) + (1 if self.filters(layer) else 0)
        return (self.area,) * uses


def scoped_table(layer: Layer, scope: FeatureScope | None, inner: sql.Composable | None = None) -> sql.Composable:
    """What a feature query reads in place of the layer's table (or of ``inner``, a features
    subquery): the scope's view of it, or the table (``(inner)``) when no scope applies."""
    source = scope.source(layer, inner) if scope is not None else None
    if source is not None:
        return sql.SQL("({})").format(source)
    return sql.Identifier(layer.table) if inner is None else sql.SQL("({})").format(inner)


def scope_params(scope: FeatureScope | None) -> dict[str, Any]:
    return scope.params if scope is not None else {}


@dataclass(frozen=True)
class Sources:
    """What the queries of one request read in place of some layers' tables, and the parameters
    that go with them (for services whose statements join several layers: chiefs, the river
    network, station status)."""

    tables: dict[str, sql.Composable]
    params: dict[str, Any]

    @classmethod
    def of(cls, catalog: Catalog, scope: FeatureScope | None, *layer_ids: str) -> Sources:
        """``scoped_table`` of each catalog layer named, and the scope's parameters."""
        tables = {layer_id: scoped_table(catalog.get(layer_id), scope) for layer_id in layer_ids}
        return cls(tables, scope_params(scope))

    def statement(self, text: str) -> sql.Composed:
        """A statement whose text names each table as ``{layer id}`` (other values: placeholders)."""
        return sql.SQL(text).format(**self.tables)  # type: ignore[arg-type]  # the text is a constant of a service

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """A statement's parameters with the scope's."""
        return {**params, **self.params}
