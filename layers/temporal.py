"""OGC API – Features ``datetime``: parsing an instant or interval, and the SQL selecting the
features whose time (the catalog's ``temporal`` properties) intersects it.

A feature's time is a calendar day (``date`` properties) or a calendar year (``integer``
properties holding a year), an instant when the catalog gives only ``temporal.start``, the
span ``[start, end]`` when it also gives ``end`` (an empty end = still in force). The
requested instant or interval is closed; date-times are taken as their UTC calendar day
(a date-time without an offset is UTC), so the comparison runs on the stored column and
can use an index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from layers.catalog import Layer

OPEN = ("..", "")


class TemporalError(ValueError):
    """A ``datetime`` that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class TimeInterval:
    """A closed interval of UTC calendar days; ``None`` is an open end."""

    start: dt.date | None
    end: dt.date | None
    text: str = ""


def _instant(text: str) -> dt.date:
    value = text.strip()
    if len(value) == 11 and value[-1] in "Tt":  # GDAL 3.6 writes a date of its -where as "2023-01-01T"
        value = value[:10]
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise TemporalError(
            f"datetime {text!r} is not an RFC 3339 date or date-time; use e.g. 2023-06-01, "
            "2023-06-01T08:00:00Z, an interval 2023-01-01/2023-12-31 or an open one 2023-01-01/.. or ../2023-12-31"
        ) from None
    return moment.date()


def parse_datetime(text: str) -> TimeInterval:
    """Read ``datetime``: an instant, ``a/b``, or an interval open at one end (``../b``, ``a/..``)."""
    if "\x00" in text:
        raise TemporalError("datetime contains a NUL character (%00); remove it")
    parts = text.split("/")
    if len(parts) == 1:
        if text.strip() in OPEN:
            raise TemporalError("datetime needs a date, a date-time or an interval such as 2023-01-01/..")
        day = _instant(text)
        return TimeInterval(day, day, text)
    if len(parts) != 2:
        raise TemporalError(f"datetime {text!r} has more than one '/'; an interval is start/end")
    start = None if parts[0].strip() in OPEN else _instant(parts[0])
    end = None if parts[1].strip() in OPEN else _instant(parts[1])
    if start is not None and end is not None and start > end:
        raise TemporalError(f"datetime {text!r} ends before it starts")
    return TimeInterval(start, end, text)


def require_temporal(layer: Layer, layers: list[Layer]) -> None:
    """Raise TemporalError when the layer declares no temporal property, naming those that do."""
    if layer.temporal is None:
        having = [other.id for other in layers if other.temporal is not None]
        raise TemporalError(
            f"collection {layer.id} has no temporal property; datetime applies to: {', '.join(having) or '(none)'}"
        )


def _bound(layer: Layer, name: str, day: dt.date) -> Any:
    prop = layer.get_property(name)
    return day.year if prop is not None and prop.type == "integer" else day


def datetime_condition(
    layer: Layer, interval: TimeInterval, prefix: str = "dt_"
) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE condition (over alias ``t``) of the features whose time intersects the interval."""
    assert layer.temporal is not None  # noqa: S101 - checked with require_temporal
    start = layer.temporal.start
    end = layer.temporal.end
    params: dict[str, Any] = {}
    conditions: list[sql.Composable] = [sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(start))]
    if interval.end is not None:  # the feature starts no later than the interval ends
        params[f"{prefix}end"] = _bound(layer, start, interval.end)
        conditions.append(sql.SQL("t.{} <= {}").format(sql.Identifier(start), sql.Placeholder(f"{prefix}end")))
    if interval.start is not None:  # and ends no earlier than it starts (an instant ends when it starts)
        last = end or start
        params[f"{prefix}start"] = _bound(layer, last, interval.start)
        ends_after = sql.SQL("t.{} >= {}").format(sql.Identifier(last), sql.Placeholder(f"{prefix}start"))
        if end is not None:
            ends_after = sql.SQL("(t.{} IS NULL OR {})").format(sql.Identifier(end), ends_after)
        conditions.append(ends_after)
    return sql.SQL("({})").format(sql.SQL(" AND ").join(conditions)), params


def extent_sql(layer: Layer, table: sql.Composable | None = None) -> sql.Composable:
    """``SELECT`` of the earliest start, the latest end and whether any feature is open-ended
    (of ``table``, what is read in place of the layer's table: a caller's scope of it)."""
    assert layer.temporal is not None  # noqa: S101 - callers check
    start = sql.Identifier(layer.temporal.start)
    last = sql.Identifier(layer.temporal.end or layer.temporal.start)
    open_ended = (
        sql.SQL("bool_or({} IS NULL AND {} IS NOT NULL)").format(last, start)
        if layer.temporal.end
        else sql.SQL("false")
    )
    return sql.SQL("SELECT min({start}), max({last}), {open} FROM {table} AS t").format(
        start=start, last=last, open=open_ended, table=sql.Identifier(layer.table) if table is None else table
    )


def as_timestamp(layer: Layer, name: str, value: Any, *, end: bool = False) -> str | None:
    """A stored day or year as RFC 3339 (UTC): the first moment of that day or year, or with
    ``end`` its last second, for the temporal extent."""
    if value is None:
        return None
    prop = layer.get_property(name)
    if prop is not None and prop.type == "integer":
        day = dt.date(int(value), 12, 31) if end else dt.date(int(value), 1, 1)
    else:
        day = value
    return f"{day.isoformat()}T{'23:59:59' if end else '00:00:00'}Z"
