"""CQL2 filters over catalog properties, compiled to SQL with every value bound.

The text is parsed by the ``cql2`` library into its JSON form; this module walks that
tree, accepts only properties exposed by the layer's catalog entry (and its geometry)
and emits a psycopg ``sql.Composed`` whose values are named parameters. Nothing from
the filter text is ever pasted into SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import cql2
from psycopg import sql

from layers.catalog import Layer

MAX_FILTER_LENGTH = 4000
MAX_NODES = 200

_COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint",
}
_CASTS = {"integer": "bigint", "number": "double precision", "boolean": "boolean", "date": "date", "string": "text"}


class FilterError(ValueError):
    """The filter cannot be used; the message says what to change."""


@dataclass
class CompiledFilter:
    """A filter as SQL over alias ``t`` plus its bound values."""

    where: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""


class _Compiler:
    def __init__(self, layer: Layer, prefix: str) -> None:
        self.layer = layer
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        self.nodes = 0

    def bind(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        placeholder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(placeholder, sql.SQL(cast)) if cast else placeholder

    def property_type(self, node: Any) -> str | None:
        if isinstance(node, dict) and "property" in node:
            prop = self.layer.get_property(node["property"])
            return prop.type if prop else None
        return None

    def column(self, name: str) -> sql.Composable:
        if name in (self.layer.geometry_column, "geometry"):
            return sql.SQL("t.{}").format(sql.Identifier(self.layer.geometry_column))
        if name == self.layer.id_column:
            return sql.SQL("t.{}").format(sql.Identifier(self.layer.id_column))
        if self.layer.get_property(name) is None:
            raise FilterError(
                f"unknown property {name!r} in filter; queryable properties of {self.layer.id}: "
                + ", ".join(self.layer.property_names)
            )
        return sql.SQL("t.{}").format(sql.Identifier(name))

    def value(self, node: Any, cast: str | None) -> sql.Composable:
        if isinstance(node, dict):
            if "property" in node:
                return self.column(node["property"])
            if "date" in node:
                return self.bind(node["date"], "date")
            if "timestamp" in node:
                return self.bind(node["timestamp"], "timestamptz")
            if "bbox" in node:
                box = node["bbox"]
                if len(box) != 4:
                    raise FilterError("a bbox in a filter needs 4 numbers: minx, miny, maxx, maxy")
                return sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, 4326)").format(
                    *(self.bind(float(v), "double precision") for v in box)
                )
            if "type" in node and "coordinates" in node:
                return sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(self.bind(json.dumps(node)))
            if "op" in node:
                return self.expression(node)
            raise FilterError(f"unsupported value in filter: {json.dumps(node, ensure_ascii=False)[:80]}")
        if isinstance(node, bool | int | float | str):
            return self.bind(node, cast)
        raise FilterError(f"unsupported value in filter: {node!r}")

    def expression(self, node: Any) -> sql.Composable:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(f"the filter is too complex: at most {MAX_NODES} terms")
        if isinstance(node, bool):
            return sql.SQL("true" if node else "false")
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError("the filter must be a boolean expression, e.g. zone = '核心区'")
        op = node["op"].lower()
        args = node.get("args", [])
        if op in ("and", "or"):
            joiner = sql.SQL(" AND " if op == "and" else " OR ")
            return sql.SQL("({})").format(joiner.join(self.expression(a) for a in args))
        if op == "not":
            return sql.SQL("(NOT {})").format(self.expression(args[0]))
        if op in _COMPARISONS:
            left, right = args
            cast = _CASTS.get(self.property_type(left) or self.property_type(right) or "")
            return sql.SQL("({} {} {})").format(
                self.value(left, cast), sql.SQL(_COMPARISONS[op]), self.value(right, cast)
            )
        if op == "like":
            left, right = args
            return sql.SQL("({}::text LIKE {})").format(self.value(left, None), self.value(right, "text"))
        if op == "between":
            subject, low, high = args
            cast = _CASTS.get(self.property_type(subject) or "")
            return sql.SQL("({} BETWEEN {} AND {})").format(
                self.value(subject, None), self.value(low, cast), self.value(high, cast)
            )
        if op == "in":
            subject, values = args
            cast = _CASTS.get(self.property_type(subject) or "", "text")
            return sql.SQL("({} = ANY({}))").format(self.value(subject, None), self.bind(list(values), f"{cast}[]"))
        if op == "isnull":
            return sql.SQL("({} IS NULL)").format(self.value(args[0], None))
        if op in _SPATIAL:
            left, right = args
            return sql.SQL("{}({}, {})").format(sql.SQL(_SPATIAL[op]), self.value(left, None), self.value(right, None))
        raise FilterError(
            f"unsupported operator {node['op']!r}; use comparisons, LIKE, BETWEEN, IN, IS NULL, AND/OR/NOT "
            "or S_INTERSECTS/S_WITHIN/S_CONTAINS/S_DISJOINT"
        )


def parse_filter(text: str, layer: Layer, prefix: str = "f") -> CompiledFilter:
    """Parse CQL2 text for a layer into SQL with bound values.

    Raises:
        FilterError: with a message naming the problem (syntax, unknown property, operator).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"the filter is too long: at most {MAX_FILTER_LENGTH} characters")
    try:
        tree = cql2.parse_text(text).to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise FilterError(f"the filter is not valid CQL2 text: {exc}") from None
    compiler = _Compiler(layer, prefix)
    where = compiler.expression(tree)
    return CompiledFilter(where, compiler.params, text)
