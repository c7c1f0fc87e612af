"""CQL2 filters over catalog properties, type-checked and compiled to SQL with every value bound.

The text (or CQL2-JSON) is parsed by the ``cql2`` library into its JSON form; this module
walks that tree, accepts only properties exposed by the layer's catalog entry (and its
geometry), checks every literal against the catalog type of the property it meets, and
emits a psycopg ``sql.Composed`` whose values are named parameters. Nothing from the filter
text is ever pasted into SQL, and a value that does not fit its property (``area_km2 =
'abc'``, ``is_sample = 1``, an integer beyond 64 bits, ``DATE('2025-13-45')``) is a
:class:`FilterError` naming the property and the expected type, never a database error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import cql2
import shapely
import shapely.errors
import shapely.geometry
import shapely.ops
from psycopg import sql

from layers.catalog import Layer

MAX_FILTER_LENGTH = 4000
MAX_NODES = 200
LANGUAGES = ("cql2-text", "cql2-json")
BIGINT_RANGE = (-(2**63), 2**63 - 1)

_COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
}
_CASTS = {
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "string": "text",
}
_FAMILY = {"integer": "number", "number": "number", "date": "time", "timestamp": "time"}
_ARTICLE = {"integer": "an integer", "geometry": "a geometry"}


class FilterError(ValueError):
    """The filter cannot be used; the message says what to change."""


@dataclass
class CompiledFilter:
    """A filter as SQL over alias ``t`` plus its bound values."""

    where: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True)
class _Operand:
    """A typed operand: a column of the layer, or a literal not yet bound."""

    type: str
    """string, integer, number, boolean, date, timestamp or geometry"""
    column: sql.Composable | None = None
    name: str = ""
    value: Any = None


def _a(type_name: str) -> str:
    return _ARTICLE.get(type_name, f"a {type_name}")


def _shown(value: Any) -> str:
    """A literal as it would be written in CQL2 text, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''")[:60] + "'"
    if isinstance(value, dict) and len(value) == 1 and ("date" in value or "timestamp" in value):
        (key, text), *_ = value.items()
        return f"{key.upper()}({_shown(text)})"
    return json.dumps(value, ensure_ascii=False)[:80]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise FilterError("the filter contains a NUL character (%00); remove it")
    return text


def _parse_date(text: str) -> dt.date:
    if len(text) != 10:
        raise ValueError(text)
    return dt.date.fromisoformat(text)


def _parse_timestamp(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class _Compiler:
    def __init__(self, layer: Layer, prefix: str, swap_axes: bool) -> None:
        self.layer = layer
        self.prefix = prefix
        self.swap_axes = swap_axes
        self.params: dict[str, Any] = {}
        self.nodes = 0

    # -- operands ---------------------------------------------------------------------

    def bind(self, value: Any, cast: str | None = None) -> sql.Composable:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        placeholder = sql.Placeholder(name)
        return sql.SQL("{}::{}").format(placeholder, sql.SQL(cast)) if cast else placeholder

    def column(self, name: Any) -> _Operand:
        if not isinstance(name, str):
            raise FilterError(f"a property name must be text, not {_shown(name)}")
        if name in (self.layer.geometry_column, "geometry"):
            column = sql.SQL("t.{}").format(sql.Identifier(self.layer.geometry_column))
            return _Operand("geometry", column, "geometry")
        if name == self.layer.id_column:
            return _Operand("integer", sql.SQL("t.{}").format(sql.Identifier(name)), name)
        prop = self.layer.get_property(name)
        if prop is None:
            raise FilterError(
                f"unknown property {name!r} in filter; queryable properties of {self.layer.id}: "
                + ", ".join(["geometry", self.layer.id_column, *self.layer.property_names])
            )
        return _Operand(prop.type, sql.SQL("t.{}").format(sql.Identifier(name)), name)

    def operand(self, node: Any) -> _Operand:
        """Type an argument of a predicate (a property or a literal)."""
        if isinstance(node, dict):
            if "property" in node:
                return self.column(node["property"])
            if "date" in node or "timestamp" in node:
                return _Operand("date" if "date" in node else "timestamp", value=node)
            if "bbox" in node or ("type" in node and ("coordinates" in node or "geometries" in node)):
                return _Operand("geometry", value=node)
            if "op" in node:
                raise FilterError(
                    f"unsupported function or operator {str(node['op'])[:40]!r} as a value; compare a property "
                    "with a literal, e.g. area_km2 > 10"
                )
            raise FilterError(f"unsupported value in filter: {_shown(node)}")
        if isinstance(node, bool):
            return _Operand("boolean", value=node)
        if isinstance(node, int | float):
            if not math.isfinite(node):
                raise FilterError(f"{node} is not a finite number")
            return _Operand("number", value=node)
        if isinstance(node, str):
            return _Operand("string", value=_no_nul(node))
        raise FilterError(f"unsupported value in filter: {_shown(node)}")

    def coerce(self, value: Any, type_name: str, subject: str) -> sql.Composable:
        """Bind a literal as a value of ``type_name`` (the type of property ``subject``)."""
        wrong = FilterError(f"{subject} is {_a(type_name)}; {_shown(value)} is not {_a(type_name)}")
        if type_name == "geometry":
            return self.geometry(value, subject)
        if isinstance(value, dict):  # DATE('...') or TIMESTAMP('...')
            if type_name not in ("date", "timestamp"):
                raise wrong
            return self.temporal_literal(value)
        if type_name == "string":
            if not isinstance(value, str):
                raise FilterError(f"{wrong} (quote text: {_shown(_shown(value))})")
            return self.bind(value, "text")
        if type_name in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            if type_name == "integer" and float(value).is_integer():
                number = int(value)
                if not BIGINT_RANGE[0] <= number <= BIGINT_RANGE[1]:
                    raise FilterError(
                        f"{subject} is an integer; {number} is out of range ({BIGINT_RANGE[0]} to {BIGINT_RANGE[1]})"
                    )
                return self.bind(number, "bigint")
            return self.bind(float(value), "double precision")
        if type_name == "boolean":
            if not isinstance(value, bool):
                raise FilterError(f"{wrong} (use true or false)")
            return self.bind(value, "boolean")
        if type_name in ("date", "timestamp"):
            if isinstance(value, str):
                try:
                    return self.bind(_parse_date(value), "date")
                except ValueError:
                    pass
                try:
                    return self.bind(_parse_timestamp(value), "timestamptz")
                except ValueError:
                    pass
            raise FilterError(f"{wrong} (use DATE('2024-01-31') or TIMESTAMP('2024-01-31T08:00:00Z'))")
        raise wrong  # pragma: no cover - every catalog type is handled above

    def temporal_literal(self, node: dict[str, Any]) -> sql.Composable:
        key = "date" if "date" in node else "timestamp"
        text = node[key]
        example = "DATE('2024-01-31')" if key == "date" else "TIMESTAMP('2024-01-31T08:00:00Z')"
        if not isinstance(text, str):
            raise FilterError(f"{_shown(node)} is not a valid {key}; use e.g. {example}")
        try:
            if key == "date":
                return self.bind(_parse_date(_no_nul(text)), "date")
            return self.bind(_parse_timestamp(_no_nul(text)), "timestamptz")
        except ValueError:
            raise FilterError(f"{key.upper()}({_shown(text)}) is not a valid {key}; use e.g. {example}") from None

    def geometry(self, node: Any, subject: str) -> sql.Composable:
        """A geometry literal (GeoJSON from WKT, or BBOX) as bound WKB in CRS84 (lon/lat)."""
        if not isinstance(node, dict):
            raise FilterError(
                f"{subject} needs a geometry; {_shown(node)} is not one (use e.g. POINT(118.1 24.5) or "
                "BBOX(118.0, 24.4, 118.2, 24.6))"
            )
        if "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6):
                raise FilterError("a bbox in a filter needs 4 numbers (or 6 with heights): minx, miny, maxx, maxy")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box):
                raise FilterError("a bbox in a filter needs finite numbers")
            numbers = [box[0], box[1], box[3], box[4]] if len(box) == 6 else list(box)
            if self.swap_axes:
                numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
            return sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, 4326)").format(
                *(self.bind(float(v), "double precision") for v in numbers)
            )
        try:
            shape = shapely.geometry.shape(node)
            coordinates = shapely.get_coordinates(shape, include_z=True)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise FilterError(f"the geometry {_shown(node)} is not valid: {exc}") from None
        if not all(math.isfinite(v) for v in coordinates.flat if not math.isnan(v)):
            raise FilterError("geometry coordinates in a filter must be finite numbers")
        if self.swap_axes:
            shape = shapely.ops.transform(lambda x, y, *z: (y, x, *z), shape)
        shape = shapely.force_2d(shape)
        return sql.SQL("ST_GeomFromWKB({}, 4326)").format(self.bind(shapely.to_wkb(shape)))

    def scalar(self, operand: _Operand, expected: str | None = None, subject: str = "") -> sql.Composable:
        """The SQL of an operand; literals are bound as ``expected`` (their own type by default)."""
        if operand.column is not None:
            return operand.column
        if operand.type == "geometry":
            return self.geometry(operand.value, subject or "this comparison")
        target = expected or operand.type
        if target == "number" and operand.type == "number" and expected is None:
            return self.bind(float(operand.value), "double precision")
        return self.coerce(operand.value, target, subject or "the other value")

    def not_geometry(self, operand: _Operand, op: str) -> None:
        if operand.type == "geometry":
            shown = operand.name or "a geometry literal"
            raise FilterError(
                f"{shown} is a geometry; {op} compares strings, numbers, booleans and dates: use a spatial "
                f"function for geometries, e.g. S_INTERSECTS(geometry, POINT(118.1 24.5))"
            )

    def pair(self, left: _Operand, right: _Operand, op: str) -> tuple[sql.Composable, sql.Composable]:
        """Both sides of a comparison, type-checked against each other."""
        self.not_geometry(left, op)
        self.not_geometry(right, op)
        if left.column is not None and right.column is not None:
            if _FAMILY.get(left.type, left.type) != _FAMILY.get(right.type, right.type):
                raise FilterError(f"cannot compare {left.name} ({_a(left.type)}) with {right.name} ({_a(right.type)})")
            return left.column, right.column
        if left.column is not None:
            return left.column, self.scalar(right, left.type, left.name)
        if right.column is not None:
            return self.scalar(left, right.type, right.name), right.column
        if _FAMILY.get(left.type, left.type) != _FAMILY.get(right.type, right.type):
            raise FilterError(f"cannot compare {_shown(left.value)} with {_shown(right.value)}: types differ")
        return self.scalar(left), self.scalar(right)

    # -- predicates -------------------------------------------------------------------

    def expression(self, node: Any) -> sql.Composable:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(f"the filter is too complex: at most {MAX_NODES} terms")
        if isinstance(node, bool):
            return sql.SQL("true" if node else "false")
        if isinstance(node, dict) and "property" in node and len(node) == 1:
            operand = self.column(node["property"])
            if operand.type != "boolean":
                raise FilterError(f"{operand.name} is {_a(operand.type)}, not a condition; e.g. {operand.name} = …")
            return sql.SQL("({} IS TRUE)").format(operand.column)
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise FilterError("the filter must be a boolean expression, e.g. zone = '核心区'")
        op = node["op"].lower()
        args = node.get("args", [])
        if not isinstance(args, list):
            raise FilterError(f"the arguments of {op} must be a list")
        if op in ("and", "or"):
            if len(args) < 2:
                raise FilterError(f"{op.upper()} needs at least two conditions")
            joiner = sql.SQL(" AND " if op == "and" else " OR ")
            return sql.SQL("({})").format(joiner.join(self.expression(a) for a in args))
        if op == "not":
            self.arity(op, args, 1)
            return sql.SQL("(NOT {})").format(self.expression(args[0]))
        if op in _COMPARISONS:
            self.arity(op, args, 2)
            left, right = self.pair(self.operand(args[0]), self.operand(args[1]), op)
            return sql.SQL("({} {} {})").format(left, sql.SQL(_COMPARISONS[op]), right)
        if op == "like":
            return self.like(args)
        if op == "between":
            return self.between(args)
        if op == "in":
            return self.in_list(args)
        if op == "isnull":
            self.arity("IS NULL", args, 1)
            subject = self.operand(args[0])
            if subject.column is None:
                raise FilterError("IS NULL applies to a property, e.g. marine_class IS NULL")
            return sql.SQL("({} IS NULL)").format(subject.column)
        if op in _SPATIAL:
            return self.spatial(op, args)
        raise FilterError(
            f"unsupported operator {node['op'][:40]!r}; use comparisons, LIKE, BETWEEN, IN, IS NULL, AND/OR/NOT "
            "or S_INTERSECTS/S_WITHIN/S_CONTAINS/S_DISJOINT/S_EQUALS/S_TOUCHES/S_OVERLAPS/S_CROSSES"
        )

    @staticmethod
    def arity(op: str, args: list[Any], count: int) -> None:
        if len(args) != count:
            raise FilterError(f"{op.upper()} takes {count} argument{'s' if count > 1 else ''}, not {len(args)}")

    def like(self, args: list[Any]) -> sql.Composable:
        self.arity("LIKE", args, 2)
        subject, pattern = self.operand(args[0]), self.operand(args[1])
        self.not_geometry(subject, "LIKE")
        if pattern.column is not None or pattern.type != "string":
            raise FilterError("LIKE takes a quoted text pattern, e.g. name LIKE '%湿地%'")
        left = subject.column if subject.column is not None else self.scalar(subject)
        return sql.SQL("({}::text LIKE {})").format(left, self.bind(pattern.value, "text"))

    def between(self, args: list[Any]) -> sql.Composable:
        self.arity("BETWEEN", args, 3)
        subject = self.operand(args[0])
        if subject.column is None:
            raise FilterError("BETWEEN applies to a property, e.g. area_km2 BETWEEN 1 AND 10")
        low, _ = self.pair(self.operand(args[1]), subject, "BETWEEN")
        high, _ = self.pair(self.operand(args[2]), subject, "BETWEEN")
        return sql.SQL("({} BETWEEN {} AND {})").format(subject.column, low, high)

    def in_list(self, args: list[Any]) -> sql.Composable:
        self.arity("IN", args, 2)
        subject, values = self.operand(args[0]), args[1]
        if subject.column is None:
            raise FilterError("IN applies to a property, e.g. zone IN ('核心区', '缓冲区')")
        self.not_geometry(subject, "IN")
        if not isinstance(values, list) or not values:
            raise FilterError(f"IN needs a list of values, e.g. {subject.name} IN ('a', 'b')")
        self.nodes += len(values)
        if self.nodes > MAX_NODES:
            raise FilterError(f"the filter is too complex: at most {MAX_NODES} terms")
        bound = [self.pair(subject, self.operand(value), "IN")[1] for value in values]
        return sql.SQL("({} IN ({}))").format(subject.column, sql.SQL(", ").join(bound))

    def spatial(self, op: str, args: list[Any]) -> sql.Composable:
        name = op.upper()
        self.arity(name, args, 2)
        sides = [self.operand(a) for a in args]
        for side in sides:
            if side.type != "geometry":
                shown = f"{side.name} is {_a(side.type)}" if side.column is not None else f"{_shown(side.value)} is"
                raise FilterError(
                    f"{name} needs a geometry on both sides; {shown}, not a geometry "
                    f"(e.g. {name}(geometry, POINT(118.1 24.5)))"
                )
        left, right = (self.scalar(side, subject=name) for side in sides)
        return sql.SQL("{}({}, {})").format(sql.SQL(_SPATIAL[op]), left, right)


def parse_filter(
    text: str, layer: Layer, prefix: str = "f", *, language: str = "cql2-text", swap_axes: bool = False
) -> CompiledFilter:
    """Parse a CQL2 filter for a layer into SQL with bound, type-checked values.

    Args:
        text: the filter, CQL2 text or CQL2-JSON (``language``).
        prefix: names of the bound parameters (so two filters can share a statement).
        swap_axes: the filter's coordinates are latitude first (``filter-crs`` EPSG:4490).

    Raises:
        FilterError: with a message naming the problem (syntax, unknown property, a value
            of the wrong type for its property, operator).
    """
    if language not in LANGUAGES:
        raise FilterError(f"filter-lang {language!r} is not supported; use one of: {', '.join(LANGUAGES)}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"the filter is too long: at most {MAX_FILTER_LENGTH} characters")
    _no_nul(text)
    try:
        expression = cql2.parse_text(text) if language == "cql2-text" else cql2.parse_json(text)
        tree = expression.to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError, TypeError) as exc:
        raise FilterError(f"the filter is not valid {language.upper()}: {str(exc)[:300]}") from None
    except RecursionError:
        raise FilterError("the filter is nested too deeply; simplify it") from None
    compiler = _Compiler(layer, prefix, swap_axes)
    where = compiler.expression(tree)
    return CompiledFilter(where, compiler.params, text)
