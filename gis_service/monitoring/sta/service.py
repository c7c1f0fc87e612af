"""SensorThings reads and creates; every function takes a connection (never a request).

Reads answer the JSON documents of OGC SensorThings API 1.1 (``@iot.id``, ``@iot.selfLink``,
``…@iot.navigationLink``, ``value`` / ``@iot.count`` / ``@iot.nextLink`` for collections,
expanded links inline). Creates store Observations in the observation store (migration 0010):
idempotent on (datastream, phenomenon time), the latest values moved forward, all or nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from psycopg import AsyncConnection

from gis_service.errors import InvalidRequest, NotFound, PayloadTooLarge
from gis_service.monitoring.hj212.factors import FLAG_QUALITY
from gis_service.monitoring.sta import queries
from gis_service.monitoring.sta.entities import ENTITIES, OBSERVATION, Entity, observation_id
from gis_service.monitoring.sta.filters import Aliases
from gis_service.monitoring.sta.options import Expand, QueryOptions, ResourcePath, parse_options
from gis_service.monitoring.sta.queries import Column, Statement
from gis_service.monitoring.sta.visibility import Model
from gis_service.monitoring.store import EARLIEST, FUTURE_SLACK, PartitionKeeper, month_start

MAX_BATCH = 50_000
"""Most observations one ``CreateObservations`` request may carry."""
BATCH_COMPONENTS = {"phenomenonTime", "result", "resultTime", "resultQuality", "parameters", "FeatureOfInterest/id"}


def _link_id(ident: int | str) -> str:
    return f"'{quote(str(ident).replace(chr(39), chr(39) * 2), safe='')}'" if isinstance(ident, str) else str(ident)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(column: Column, value: Any) -> Any:
    if column.kind == "time" and value is not None:
        return _iso(value)
    return value


@dataclass
class Reader:
    """Reads of one request: the caller's model and the service root URL (``…/sta/v1.1``)."""

    conn: AsyncConnection
    model: Model
    root: str

    def self_link(self, entity: Entity, ident: int | str) -> str:
        return f"{self.root}/{entity.plural}({_link_id(ident)})"

    def _format(
        self, entity: Entity, cols: list[Column], row: tuple, select: list[str] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An entity's document, and its internal values (``_id``, link keys)."""
        values = {c.name: v for c, v in zip(cols, row, strict=True)}
        ident = values["_id"]
        doc: dict[str, Any] = {}
        if select is None or "@iot.id" in select:
            doc["@iot.id"] = ident
        if select is None:
            doc["@iot.selfLink"] = self.self_link(entity, ident)
        for column in cols:
            if not column.name.startswith("_"):
                value = _value(column, values[column.name])
                if value is not None:
                    doc[column.name] = value
        for nav in entity.navs:
            if select is None or nav in select:
                doc[f"{nav}@iot.navigationLink"] = f"{self.self_link(entity, ident)}/{nav}"
        return doc, values

    async def _rows(self, statement: Statement) -> list[tuple]:
        cur = await self.conn.execute(statement.sql, statement.params)
        return await cur.fetchall()

    async def _expand(self, entity: Entity, docs: list[tuple[dict, dict]], expand: list[Expand]) -> None:
        if not docs:
            return
        for item in expand:
            nav = entity.navs[item.nav]
            target = ENTITIES[nav.target]
            parent_keys = sorted({v[f"_k_{item.nav}"] for _, v in docs if v[f"_k_{item.nav}"] is not None})
            keys = [e.nav for e in item.options.expand]
            cols, statement = queries.expansion(nav, self.model, item.options, item.options.select, keys, parent_keys)
            related: dict[Any, list[tuple[dict, dict]]] = {}
            children: list[tuple[dict, dict]] = []
            for row in await self._rows(statement):
                child = self._format(target, cols[1:], row[1:], item.options.select)
                related.setdefault(row[0], []).append(child)
                children.append(child)
            await self._expand(target, children, item.options.expand)
            counts: dict[Any, int] = {}
            if nav.many and item.options.count:
                statement = queries.expansion_counts(nav, self.model, item.options, parent_keys)
                counts = dict(await self._rows(statement))
            for doc, values in docs:
                found = related.get(values[f"_k_{item.nav}"], [])
                if not nav.many:
                    doc[item.nav] = found[0][0] if found else None
                    continue
                if item.options.count:
                    doc[f"{item.nav}@iot.count"] = counts.get(values[f"_k_{item.nav}"], 0)
                more = len(found) > item.options.top
                doc[item.nav] = [d for d, _ in found[: item.options.top]]
                if more:
                    link = f"{self.self_link(entity, values['_id'])}/{item.nav}"
                    doc[f"{item.nav}@iot.nextLink"] = _next_link(link, item.options)

    async def read(self, path: ResourcePath, pairs: list[tuple[str, str]], url: str) -> Any:
        """The document a GET of ``path`` answers (``url`` is its address, for next links)."""
        entity = path.target
        options = parse_options(pairs, entity)
        aliases = Aliases()
        aliases.new()  # t0
        base = queries.path_condition(path, "t0", aliases, self.model)
        if path.member is not None or path.single:
            return await self._single(path, options, base, aliases)
        keys = [e.nav for e in options.expand]
        cols, statement = queries.page(entity, self.model, options, options.select, keys, base, aliases)
        rows = await self._rows(statement)
        if not rows and options.skip == 0 and len(path.steps) > 1:
            await self._require_parent(path)
        docs = [self._format(entity, cols, row, options.select) for row in rows[: options.top]]
        await self._expand(entity, docs, options.expand)
        result: dict[str, Any] = {}
        if options.count:
            result["@iot.count"] = await self._count(entity, options, base)
        if len(rows) > options.top:
            result["@iot.nextLink"] = _next_link(url, options)
        result["value"] = [doc for doc, _ in docs]
        return result

    async def _count(self, entity: Entity, options: QueryOptions, base: Statement) -> int:
        aliases = Aliases()
        aliases.new()
        statement = queries.count(entity, self.model, options, base, aliases)
        (total,) = (await self._rows(statement))[0]
        if total <= queries.COUNT_EXACT_LIMIT:
            return int(total)
        (plan,) = (await self._rows(queries.count_estimate(statement)))[0]
        return max(int(plan[0]["Plan"]["Plan Rows"]), queries.COUNT_EXACT_LIMIT + 1)

    async def _require_parent(self, path: ResourcePath) -> None:
        parent = ResourcePath(path.steps[:-1])
        aliases = Aliases()
        aliases.new()
        condition = queries.path_condition(parent, "t0", aliases, self.model)
        entity = parent.target
        source, source_params = self.model.source(entity)
        statement = Statement(
            f"SELECT 1 FROM {source.replace('{a}', 't0')} WHERE {condition.sql} LIMIT 1",
            source_params + condition.params,
        )
        if not await self._rows(statement):
            raise NotFound(f"no {entity.name} at {'/'.join(_step_text(s) for s in parent.steps)}")

    async def _single(self, path: ResourcePath, options: QueryOptions, base: Statement, aliases: Aliases) -> Any:
        entity = path.target
        if options.filter is not None or options.orderby or options.top_given or options.skip or options.count:
            raise InvalidRequest("a single entity takes only $select and $expand")
        keys = [e.nav for e in options.expand]
        select = [path.member] if path.member else options.select
        cols, statement = queries.page(entity, self.model, QueryOptions(top=1), select, keys, base, aliases)
        rows = await self._rows(statement)
        if not rows:
            raise NotFound(f"no {entity.name} at {'/'.join(_step_text(s) for s in path.steps)}")
        doc, values = self._format(entity, cols, rows[0], select)
        await self._expand(entity, [(doc, values)], options.expand)
        if path.member is None:
            return doc
        value = values["_id"] if path.member == "@iot.id" else doc.get(path.member)
        return ("raw", value) if path.raw_value else {path.member: value}


def _step_text(step: Any) -> str:
    name = step.nav or step.entity.plural
    return name if step.ident is None else f"{name}({_link_id(step.ident)})"


def _next_link(url: str, options: QueryOptions) -> str:
    pairs = [(k, v) for k, v in options.raw if k not in ("$top", "$skip")]
    pairs += [("$top", str(options.top)), ("$skip", str(options.skip + options.top))]
    return f"{url}?{urlencode(pairs, quote_via=quote)}"


# -- creates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    datastream_id: int
    phenomenon_time: dt.datetime
    result_time: dt.datetime
    value: float
    flag: str
    quality: str


@dataclass(frozen=True)
class Created:
    ids: list[int]
    inserted: int
    per_datastream: dict[int, int]


def _time(value: Any, what: str, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be an ISO 8601 date-time string, e.g. 2026-01-01T08:00:00Z")
    start = value.split("/", 1)[0]  # an interval's start is its time
    try:
        moment = dt.datetime.fromisoformat(start)
    except ValueError:
        raise InvalidRequest(
            f"{what} {value[:60]!r} is not an ISO 8601 date-time (e.g. 2026-01-01T08:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # ids hold milliseconds
    if not EARLIEST <= moment <= now + FUTURE_SLACK:
        raise InvalidRequest(f"{what} {value[:60]} is out of range (2000 to a day ahead of the server clock)")
    return moment


def incoming(datastream_id: Any, values: dict[str, Any], now: dt.datetime, where: str) -> Incoming:
    """One observation to store, checked (``where`` names it in errors)."""
    if isinstance(datastream_id, bool) or not isinstance(datastream_id, int) or not 0 < datastream_id < 2**31:
        raise InvalidRequest(
            f'{where}: the Datastream must be linked by its @iot.id, e.g. "Datastream": {{"@iot.id": 1}}'
        )
    result = values.get("result")
    if isinstance(result, bool) or not isinstance(result, int | float) or not math.isfinite(result):
        raise InvalidRequest(f"{where}: result must be a number (these Datastreams are OM_Measurement)")
    phenomenon = values.get("phenomenonTime")
    phenomenon_time = (
        now.replace(microsecond=now.microsecond // 1000 * 1000)
        if phenomenon is None
        else _time(phenomenon, f"{where}: phenomenonTime", now)
    )
    result_time = now if values.get("resultTime") is None else _time(values["resultTime"], f"{where}: resultTime", now)
    parameters = values.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequest(f'{where}: parameters must be an object, e.g. {{"flag": "N"}}')
    flag = parameters.get("flag", "N")
    if flag not in FLAG_QUALITY:
        raise InvalidRequest(
            f"{where}: parameters.flag {str(flag)[:10]!r} is not an HJ 212 flag ({', '.join(FLAG_QUALITY)})"
        )
    quality = FLAG_QUALITY[flag]
    given = values.get("resultQuality")
    if given is not None and given != quality:
        raise InvalidRequest(
            f"{where}: resultQuality {str(given)[:20]!r} contradicts flag {flag} ({quality}); leave it out"
        )
    return Incoming(datastream_id, phenomenon_time, result_time, float(result), flag, quality)


def observation_body(body: Any, datastream_id: int | None, now: dt.datetime) -> Incoming:
    """The Observation of a ``POST /Observations`` body (or ``Datastreams(id)/Observations``)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object: an Observation")
    unknown = set(body) - {
        "phenomenonTime",
        "result",
        "resultTime",
        "resultQuality",
        "parameters",
        "Datastream",
        "FeatureOfInterest",
        "validTime",
        "@iot.id",
    }
    if unknown:
        raise InvalidRequest(f"an Observation has no {', '.join(sorted(unknown))}")
    if datastream_id is None:
        link = body.get("Datastream")
        if not isinstance(link, dict) or "@iot.id" not in link:
            raise InvalidRequest('link the Observation to its Datastream: "Datastream": {"@iot.id": <id>}')
        datastream_id = link["@iot.id"]
    return incoming(datastream_id, body, now, "Observation")


def batch_body(body: Any, now: dt.datetime) -> list[Incoming]:
    """The observations of a ``CreateObservations`` (dataArray) body."""
    if not isinstance(body, list) or not body:
        raise InvalidRequest(
            'the body must be a JSON array of {"Datastream": …, "components": […], "dataArray": [[…]]}'
        )
    rows: list[Incoming] = []
    for index, group in enumerate(body):
        where = f"item {index}"
        if not isinstance(group, dict):
            raise InvalidRequest(f"{where} must be an object with Datastream, components and dataArray")
        link = group.get("Datastream")
        components = group.get("components")
        data = group.get("dataArray")
        if not isinstance(link, dict) or "@iot.id" not in link:
            raise InvalidRequest(f'{where}: link a Datastream: "Datastream": {{"@iot.id": <id>}}')
        if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            raise InvalidRequest(f'{where}: components must list the columns, e.g. ["phenomenonTime", "result"]')
        unknown = [c for c in components if c not in BATCH_COMPONENTS]
        if unknown or "result" not in components or len(set(components)) != len(components):
            raise InvalidRequest(
                f"{where}: components must name result once and only: {', '.join(sorted(BATCH_COMPONENTS))}"
            )
        if not isinstance(data, list):
            raise InvalidRequest(f"{where}: dataArray must be an array of rows")
        if len(rows) + len(data) > MAX_BATCH:
            raise PayloadTooLarge(f"a CreateObservations request carries at most {MAX_BATCH} observations: split it")
        for number, values in enumerate(data):
            if not isinstance(values, list) or len(values) != len(components):
                raise InvalidRequest(f"{where} row {number}: give {len(components)} values, as components lists")
            rows.append(
                incoming(link["@iot.id"], dict(zip(components, values, strict=True)), now, f"{where} row {number}")
            )
    return rows


def _copy_text(rows: list[Incoming]) -> str:
    """COPY text of the incoming rows, formatted at once (a row-by-row ``write_row`` costs more
    than the rest of a batch's Python): ids and finite floats, times each formatted once, flags
    and qualities from fixed sets, so nothing needs escaping."""
    times: dict[dt.datetime, str] = {}

    def text(moment: dt.datetime) -> str:
        found = times.get(moment)
        if found is None:
            found = times[moment] = moment.isoformat()
        return found

    return "".join(
        f"{r.datastream_id}\t{text(r.phenomenon_time)}\t{text(r.result_time)}\t{r.value!r}\t{r.flag}\t{r.quality}\n"
        for r in rows
    )


async def store(
    conn: AsyncConnection,
    rows: list[Incoming],
    partitions: PartitionKeeper,
    record: Callable[[AsyncConnection, Created], Awaitable[None]] | None = None,
) -> Created:
    """Store observations all or nothing: COPY into a temporary table, then one INSERT … ON CONFLICT
    DO NOTHING (a re-sent observation is a no-op; its trigger moves the latest values forward, adds
    to the daily sums and notifies the stations' new observations); ``record`` (the audit entry)
    runs in the same transaction."""
    datastreams = sorted({r.datastream_id for r in rows})
    cur = await conn.execute(queries.DATASTREAMS_OF, (datastreams,))
    known = {row[0] for row in await cur.fetchall()}
    missing = [d for d in datastreams if d not in known]
    if missing:
        raise InvalidRequest(
            f"no Datastream {', '.join(map(str, missing[:20]))}: link Observations to existing Datastreams"
        )
    for moment in sorted({month_start(r.phenomenon_time) for r in rows}):
        await partitions.ensure(conn, moment)
    async with conn.transaction():
        await conn.execute(queries.INCOMING_TABLE)
        async with conn.cursor() as cursor, cursor.copy(queries.INCOMING_COPY) as copy:
            await copy.write(_copy_text(rows))
        inserted = (await conn.execute(queries.INSERT_INCOMING)).rowcount
        created = Created(
            [observation_id(r.datastream_id, r.phenomenon_time) for r in rows],
            inserted,
            dict(Counter(r.datastream_id for r in rows)),
        )
        if record is not None:
            await record(conn, created)
    return created


def observation_link(root: str, ident: int) -> str:
    return f"{root}/{OBSERVATION.plural}({ident})"
