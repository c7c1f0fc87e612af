"""Every SQL statement of the SensorThings API, built from the entity model with bound values.

Reads: one statement per collection page (``LIMIT top + 1``: one row more than the page says
whether there is a next page, without counting), one per expanded link for all the parent
rows at once (``unnest(keys) … LATERAL``), and counts that stop at ``COUNT_EXACT_LIMIT`` rows
and then answer the planner's estimate (FROST-Server's ``countMode`` idea: a ``$count`` over
millions of observations never scans them). Writes: the observation upserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gis_service.monitoring.sta.entities import ENTITIES, Entity, Nav, observation_key
from gis_service.monitoring.sta.filters import Aliases, Translator, fill
from gis_service.monitoring.sta.options import QueryOptions, ResourcePath
from gis_service.monitoring.sta.visibility import Model

COUNT_EXACT_LIMIT = 100_000
"""Counts are exact up to this many rows; above it ``@iot.count`` is the planner's estimate."""


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple


@dataclass(frozen=True)
class Column:
    name: str  # the STA property, or an internal name starting with "_"
    kind: str


def id_match(entity: Entity, alias: str, ident: int | str) -> Statement:
    """The condition selecting the entity with an ``@iot.id`` (Observations: the table's key)."""
    if entity.name == "Observation":
        datastream_id, moment = observation_key(int(ident))
        return Statement(f"{alias}.datastream_id = %s AND {alias}.phenomenon_time = %s", (datastream_id, moment))
    return Statement(f"{fill(entity.id_sql, a=alias)} = %s", (ident,))


def path_condition(
    path: ResourcePath, alias: str, aliases: Aliases, model: Model, upto: int | None = None
) -> Statement:
    """The condition on ``alias`` selecting what the resource path (up to a step) names."""
    steps = path.steps[: upto if upto is not None else len(path.steps)]
    last = steps[-1]
    parts: list[str] = []
    params: tuple = ()
    if len(steps) > 1:
        parent = steps[-2].entity
        nav = parent.navs[last.nav or ""]
        p = aliases.new()
        inner = path_condition(path, p, aliases, model, len(steps) - 1)
        source, source_params = model.source(parent)
        key = f"(SELECT {fill(nav.key, p=p)} FROM {fill(source, a=p)} WHERE {inner.sql})"
        parts.append(fill(nav.match, a=alias, k=key))
        params += source_params + inner.params
    if last.ident is not None:
        match = id_match(last.entity, alias, last.ident)
        parts.append(match.sql)
        params += match.params
    return Statement(" AND ".join(parts) or "true", params)


def columns(entity: Entity, model: Model, select: list[str] | None, keys: list[str]) -> tuple[list[Column], Statement]:
    """The select list: the id, the properties asked for, and the keys of the links to expand."""
    props = model.props(entity)
    names = [n for n in (select or list(props)) if n in props]
    cols = [Column("_id", entity.id_kind)]
    parts = [fill(entity.id_sql, a="t0")]
    for name in names:
        prop = props[name]
        sql = fill(prop.sql, a="t0")
        if prop.kind == "geometry":
            sql = f"ST_AsGeoJSON({sql}, 9)::json"
        cols.append(Column(name, prop.kind))
        parts.append(sql)
    for nav_name in keys:
        cols.append(Column(f"_k_{nav_name}", "key"))
        parts.append(fill(entity.navs[nav_name].key, p="t0"))
    sql = ", ".join(f"{part} AS c{i}" for i, part in enumerate(parts))
    return cols, Statement(sql, ())


def _where_and_order(
    entity: Entity, model: Model, options: QueryOptions, aliases: Aliases, base: Statement
) -> tuple[Statement, str, tuple]:
    where, params = [base.sql], base.params
    if options.filter is not None:
        condition = Translator(entity, "t0", aliases, model).condition(options.filter)
        where.append(condition.sql)
        params += condition.params
    order, order_params = [], ()
    for expression, descending in options.orderby:
        item = Translator(entity, "t0", aliases, model, "$orderby").ordering(expression)
        order.append(f"{item.sql} {'DESC' if descending else 'ASC'}")
        order_params += item.params
    order += [fill(o, a="t0") for o in entity.default_order]
    return Statement(" AND ".join(f"({w})" for w in where), params), ", ".join(order), order_params


def page(
    entity: Entity,
    model: Model,
    options: QueryOptions,
    select: list[str] | None,
    keys: list[str],
    base: Statement,
    aliases: Aliases,
) -> tuple[list[Column], Statement]:
    """One page of a collection (``top + 1`` rows: the extra one says there is more)."""
    cols, select_sql = columns(entity, model, select, keys)
    where, order, order_params = _where_and_order(entity, model, options, aliases, base)
    source, source_params = model.source(entity)
    sql = f"SELECT {select_sql.sql} FROM {fill(source, a='t0')} WHERE {where.sql} ORDER BY {order} LIMIT %s OFFSET %s"
    return cols, Statement(sql, source_params + where.params + order_params + (options.top + 1, options.skip))


def count(entity: Entity, model: Model, options: QueryOptions, base: Statement, aliases: Aliases) -> Statement:
    """Rows matching, counted up to ``COUNT_EXACT_LIMIT + 1``."""
    where, _, _ = _where_and_order(entity, model, QueryOptions(filter=options.filter), aliases, base)
    source, source_params = model.source(entity)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {fill(source, a='t0')} WHERE {where.sql} LIMIT %s) AS c"
    return Statement(sql, source_params + where.params + (COUNT_EXACT_LIMIT + 1,))


def count_estimate(statement: Statement) -> Statement:
    """The planner's row estimate for the same rows (no LIMIT): ``EXPLAIN (FORMAT JSON)``."""
    sql = statement.sql.replace("SELECT count(*) FROM (", "EXPLAIN (FORMAT JSON) ", 1).rsplit(" LIMIT %s) AS c", 1)[0]
    return Statement(sql, statement.params[:-1])


def expansion(
    nav: Nav, model: Model, options: QueryOptions, select: list[str] | None, keys: list[str], parent_keys: list[Any]
) -> tuple[list[Column], Statement]:
    """The related entities of many parents at once: ``(parent key, row…)``, ``top + 1`` per parent."""
    target = ENTITIES[nav.target]
    aliases = Aliases()
    aliases.new()  # t0 is the related entity
    base = Statement(fill(nav.match, a="t0", k="k.key"), ())
    cols, inner = page(target, model, options if nav.many else QueryOptions(top=1), select, keys, base, aliases)
    sql = f"SELECT k.key, e.* FROM unnest(%s::{nav.key_kind}[]) AS k(key) CROSS JOIN LATERAL ({inner.sql}) AS e"
    return [Column("_parent", "key"), *cols], Statement(sql, (parent_keys, *inner.params))


def expansion_counts(nav: Nav, model: Model, options: QueryOptions, parent_keys: list[Any]) -> Statement:
    target = ENTITIES[nav.target]
    aliases = Aliases()
    aliases.new()
    inner = count(target, model, options, Statement(fill(nav.match, a="t0", k="k.key"), ()), aliases)
    sql = f"SELECT k.key, ({inner.sql}) FROM unnest(%s::{nav.key_kind}[]) AS k(key)"
    return Statement(sql, (*inner.params, parent_keys))


# -- writes --------------------------------------------------------------------------------------

DATASTREAMS_OF = (
    "SELECT d.id, d.station_id, s.code FROM datastream d JOIN station s ON s.id = d.station_id WHERE d.id = ANY(%s)"
)

INCOMING_TABLE = (
    "CREATE TEMP TABLE sta_incoming (datastream_id bigint NOT NULL, phenomenon_time timestamptz NOT NULL,"
    " result_time timestamptz NOT NULL, value float8 NOT NULL, flag text NOT NULL, quality text NOT NULL)"
    " ON COMMIT DROP"
)
INCOMING_COPY = "COPY sta_incoming (datastream_id, phenomenon_time, result_time, value, flag, quality) FROM STDIN"

INSERT_INCOMING = (
    "INSERT INTO observation (datastream_id, phenomenon_time, result_time, value, flag, quality, source)"
    " SELECT DISTINCT ON (datastream_id, phenomenon_time) datastream_id, phenomenon_time, result_time, value,"
    " flag, quality, 'sta' FROM sta_incoming ORDER BY datastream_id, phenomenon_time"
    " ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING"
)
"""The latest values, the daily sums and the stations' notifications follow in the same statement
(the observation trigger, migration 0021)."""
