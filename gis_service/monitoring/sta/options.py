"""Parsing of SensorThings resource paths and query options (``$filter``, ``$expand``…).

Expressions (``$filter``, ``$orderby`` items) are parsed by odata-query's OData grammar into its
AST; ``filters`` turns that AST into SQL. ``$expand`` (nested, with options in parentheses),
``$select``, ``$top``, ``$skip`` and ``$count`` are read here. Anything malformed raises
``InvalidRequest`` saying what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from odata_query import ast, exceptions
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer, ODataParser

from gis_service.errors import InvalidRequest, NotFound
from gis_service.monitoring.sta.entities import BY_PLURAL, ENTITIES, Entity

DEFAULT_TOP = 100
MAX_TOP = 1000
"""Largest ``$top`` served (checked before any query runs)."""
MAX_EXPAND_DEPTH = 4
MAX_EXPRESSION_LENGTH = 4000

STA_FUNCTIONS = {
    "substringof": 2,
    "st_equals": 2,
    "st_disjoint": 2,
    "st_touches": 2,
    "st_within": 2,
    "st_overlaps": 2,
    "st_crosses": 2,
    "st_intersects": 2,
    "st_contains": 2,
}
"""SensorThings 1.1 functions the OData grammar does not list (its table takes new names)."""
ODATA_FUNCTIONS.update(STA_FUNCTIONS)

QUERY_OPTIONS = ("$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count", "$resultFormat")


def parse_expression(text: str, option: str) -> ast._Node:
    """Parse an OData common expression; 400 naming the option and where it fails."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise InvalidRequest(f"{option} is longer than {MAX_EXPRESSION_LENGTH} characters")
    if not text.strip():
        raise InvalidRequest(f"{option} is empty: give an expression, e.g. $filter=result gt 5")
    # SensorThings names the id "@iot.id", which is no OData identifier: read it as "id" (outside strings)
    parts = text.split("'")
    text = "'".join(part.replace("@iot.id", "id") if i % 2 == 0 else part for i, part in enumerate(parts))
    try:
        return ODataParser().parse(ODataLexer().tokenize(text))
    except exceptions.TokenizingException as exc:
        token = exc.token
        raise InvalidRequest(
            f"{option}: cannot read {text[token.index : token.index + 20]!r} at position {token.index}"
        ) from None
    except exceptions.ParsingException as exc:
        if exc.eof or exc.token is None:
            raise InvalidRequest(f"{option}: the expression {text!r} ends too early") from None
        raise InvalidRequest(
            f"{option}: unexpected {exc.token.value!r} at position {exc.token.index} in {text!r}"
        ) from None
    except exceptions.ODataException as exc:  # unknown function, wrong number of arguments
        raise InvalidRequest(f"{option}: {exc}") from None
    except (RecursionError, IndexError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{option}: cannot parse {text[:200]!r} ({type(exc).__name__})") from None


@dataclass
class Expand:
    """One navigation link to expand, with its own options."""

    nav: str
    options: QueryOptions


@dataclass
class QueryOptions:
    filter: ast._Node | None = None
    expand: list[Expand] = field(default_factory=list)
    select: list[str] | None = None
    orderby: list[tuple[ast._Node, bool]] = field(default_factory=list)  # (expression, descending)
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    top_given: bool = False
    raw: list[tuple[str, str]] = field(default_factory=list)


def _split(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidRequest(f"unbalanced ')' in {text[:200]!r}")
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise InvalidRequest(f"unbalanced parentheses or quotes in {text[:200]!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _integer(name: str, text: str, maximum: int | None = None) -> int:
    if not re.fullmatch(r"\d{1,9}", text.strip()):
        raise InvalidRequest(f"{name} must be a whole number ≥ 0, not {text[:50]!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise InvalidRequest(f"{name}={value} is over the limit of {maximum}: page on with $skip (or @iot.nextLink)")
    return value


def parse_options(pairs: list[tuple[str, str]], entity: Entity, depth: int = 0) -> QueryOptions:
    """Query options for a request on ``entity`` (pairs as in the query string)."""
    seen: set[str] = set()
    options = QueryOptions(raw=list(pairs))
    for name, value in pairs:
        if name not in QUERY_OPTIONS:
            raise InvalidRequest(
                f"unknown query option {name[:50]!r}; SensorThings options: {', '.join(QUERY_OPTIONS)}"
            )
        if name in seen:
            raise InvalidRequest(f"{name} is given twice")
        seen.add(name)
        if name == "$filter":
            options.filter = parse_expression(value, "$filter")
        elif name == "$top":
            options.top = _integer("$top", value, MAX_TOP)
            options.top_given = True
        elif name == "$skip":
            options.skip = _integer("$skip", value)
        elif name == "$count":
            if value not in ("true", "false"):
                raise InvalidRequest(f"$count must be true or false, not {value[:50]!r}")
            options.count = value == "true"
        elif name == "$select":
            options.select = _select(value, entity)
        elif name == "$orderby":
            options.orderby = _orderby(value)
        elif name == "$expand":
            options.expand = _expand(value, entity, depth)
        elif name == "$resultFormat" and value != "default":
            raise InvalidRequest("$resultFormat: only 'default' is served (dataArray results are not)")
    return options


def _select(value: str, entity: Entity) -> list[str]:
    names = [n for n in _split(value, ",") if n]
    if not names:
        raise InvalidRequest("$select is empty: name properties, e.g. $select=name,description")
    known = ["@iot.id", "id", *entity.props, *entity.navs]
    for name in names:
        if name not in known:
            raise InvalidRequest(f"$select: {entity.name} has no property {name[:50]!r}; it has {', '.join(known)}")
    return ["@iot.id" if n == "id" else n for n in names]


def _orderby(value: str) -> list[tuple[ast._Node, bool]]:
    items = []
    for item in _split(value, ","):
        match = re.fullmatch(r"(.+?)(?:\s+(asc|desc))?", item, flags=re.IGNORECASE)
        if not item or match is None:
            raise InvalidRequest(f"$orderby: empty item in {value[:200]!r}")
        expression = parse_expression(match.group(1), "$orderby")
        items.append((expression, (match.group(2) or "asc").lower() == "desc"))
    return items


def _expand(value: str, entity: Entity, depth: int) -> list[Expand]:
    if depth >= MAX_EXPAND_DEPTH:
        raise InvalidRequest(f"$expand is nested more than {MAX_EXPAND_DEPTH} levels deep")
    merged: dict[str, Expand] = {}
    for item in _split(value, ","):
        match = re.fullmatch(r"([A-Za-z/]+)(?:\((.*)\))?", item, flags=re.DOTALL)
        if match is None:
            raise InvalidRequest(f"$expand: cannot read {item[:100]!r}; write e.g. Datastreams($top=5)/Observations")
        path = match.group(1).split("/")
        inner = match.group(2)
        head = path[0]
        nav = entity.navs.get(head)
        if nav is None:
            raise InvalidRequest(
                f"$expand: {entity.name} has no navigation link {head!r}; it has {', '.join(entity.navs)}"
            )
        target = ENTITIES[nav.target]
        if len(path) > 1:
            rest = "/".join(path[1:]) + (f"({inner})" if inner is not None else "")
            pairs = [("$expand", rest)]
        else:
            pairs = _inner_options(inner) if inner else []
        options = parse_options(pairs, target, depth + 1)
        if head in merged:
            if len(path) == 1 and pairs:
                raise InvalidRequest(f"$expand names {head} twice with options")
            merged[head].options.expand.extend(options.expand)
        else:
            merged[head] = Expand(head, options)
    return list(merged.values())


def _inner_options(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in _split(text, ";"):
        name, equals, value = part.partition("=")
        if not equals:
            raise InvalidRequest(
                f"$expand: options in parentheses are $name=value separated by ';', not {part[:100]!r}"
            )
        pairs.append((name.strip(), value.strip()))
    return pairs


@dataclass(frozen=True)
class Step:
    """One segment of a resource path: an entity set or navigation link, maybe with an id."""

    entity: Entity
    ident: int | str | None
    nav: str | None  # the navigation link from the previous step


@dataclass(frozen=True)
class ResourcePath:
    steps: tuple[Step, ...]
    member: str | None = None
    raw_value: bool = False

    @property
    def target(self) -> Entity:
        return self.steps[-1].entity

    @property
    def single(self) -> bool:
        """Whether the path names one entity (not a collection)."""
        last = self.steps[-1]
        return last.ident is not None or (last.nav is not None and not self.steps[-2].entity.navs[last.nav].many)


_SEGMENT = re.compile(r"([A-Za-z]+)(?:\((.*)\))?")


def _ident(entity: Entity, text: str) -> int | str:
    if entity.id_kind == "text":
        if len(text) >= 2 and text[0] == text[-1] == "'":
            return text[1:-1].replace("''", "'")
        raise NotFound(f"{entity.plural} ids are quoted strings, e.g. {entity.plural}('w01001')")
    if re.fullmatch(r"\d{1,19}", text) and int(text) < 2**63:
        return int(text)
    raise NotFound(f"{entity.plural} ids are whole numbers, e.g. {entity.plural}(1); not {text[:50]!r}")


def parse_path(path: str) -> ResourcePath:
    """A resource path below the service root, e.g. ``Things(1)/Datastreams``; 404 when it names nothing."""
    segments = path.strip("/").split("/")
    steps: list[Step] = []
    for index, segment in enumerate(segments):
        match = _SEGMENT.fullmatch(segment)
        if index == 0:
            entity = BY_PLURAL.get(match.group(1)) if match else None
            if entity is None:
                raise NotFound(f"no entity set {segment[:50]!r}; entity sets: {', '.join(BY_PLURAL)}")
            ident = _ident(entity, match.group(2)) if match.group(2) is not None else None
            steps.append(Step(entity, ident, None))
            continue
        previous = steps[-1]
        if previous.ident is None and (previous.nav is None or steps[-2].entity.navs[previous.nav].many):
            raise NotFound(
                f"{previous.entity.plural} needs an id before /{segment[:50]}, e.g. {previous.entity.plural}(1)"
            )
        rest = segments[index + 1 :]
        if match and match.group(1) in previous.entity.navs:
            nav = previous.entity.navs[match.group(1)]
            target = ENTITIES[nav.target]
            ident = None
            if match.group(2) is not None:
                if not nav.many:
                    raise NotFound(f"{match.group(1)} is a single entity: leave out the id")
                ident = _ident(target, match.group(2))
            steps.append(Step(target, ident, match.group(1)))
            continue
        if segment in previous.entity.props or segment in ("@iot.id", "id"):
            if rest not in ([], ["$value"]):
                raise NotFound(f"nothing below {segment}/{'/'.join(rest)[:50]}")
            return ResourcePath(tuple(steps), "@iot.id" if segment == "id" else segment, rest == ["$value"])
        known = [*previous.entity.navs, *previous.entity.props]
        raise NotFound(f"{previous.entity.name} has no link or property {segment[:50]!r}; it has {', '.join(known)}")
    return ResourcePath(tuple(steps))
