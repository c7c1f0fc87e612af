"""Every zone-check rule, with a site built from the demo features to trigger it.

The verdict is the product's legal output, so each rule of ``gis_service/rules/zone_check.yaml``
has a case here: a point inside a feature the rule names (or, for the ``near_*`` rules, at a
measured distance outside it, on both sides of the threshold). The expected reasons are
computed independently, in SQL on the ellipsoid (geography), from the rules file: which
features touch the site or lie within each rule's distance, each feature taking its first
matching rule. ``test_every_rule_has_a_case`` fails when a rule is added without a case.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from gis_service.rules import SEVERITY, Rule, load_rules
from layers.catalog import load_catalog

RULES = load_rules()
CATALOG = load_catalog()
BY_ID = {rule.id: rule for rule in RULES.rules}

INSIDE_CASES = [
    "protected_core",
    "protected_buffer",
    "protected_general",
    "water_source_grade1",
    "redline_marine_prohibited",
    "redline",
    "water_source_grade2",
    "water_source_quasi",
    "in_bay",
]
NEAR_CASES = ["near_water_source_grade1", "near_protected_core", "near_redline"]
CANDIDATES_PER_FEATURE = 24


def test_every_rule_has_a_case() -> None:
    assert sorted(INSIDE_CASES + NEAR_CASES) == sorted(BY_ID), "each rule in zone_check.yaml needs a case here"
    assert all(BY_ID[r].within_m == 0 for r in INSIDE_CASES) and all(BY_ID[r].within_m > 0 for r in NEAR_CASES)


def _filter(rule: Rule) -> tuple[sql.Composable, list[object]]:
    if rule.property is None:
        return sql.SQL("TRUE"), []
    return sql.SQL("t.{}::text = ANY(%s)").format(sql.Identifier(rule.property)), [list(rule.values or [])]


def _matching(db: psycopg.Connection, rule: Rule, lon: float, lat: float) -> set[int]:
    """Ids of the features a rule matches for a point site, computed in SQL on the ellipsoid."""
    condition, params = _filter(rule)
    site = "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
    if rule.within_m == 0:
        where = sql.SQL(f"ST_Intersects(t.geom, {site})")
        values = [lon, lat]
    else:
        where = sql.SQL(f"NOT ST_Intersects(t.geom, {site}) AND ST_DWithin(t.geom::geography, {site}::geography, %s)")
        values = [lon, lat, lon, lat, rule.within_m]
    query = sql.SQL("SELECT t.id FROM {} AS t WHERE {} AND {}").format(
        sql.Identifier(CATALOG.get(rule.layer).table), condition, where
    )
    return {row[0] for row in db.execute(query, [*params, *values]).fetchall()}


def expected_reasons(db: psycopg.Connection, lon: float, lat: float) -> tuple[str, set[tuple[str, str, int]]]:
    """The verdict and the (rule, layer, feature id) reasons for a point, independently of the service."""
    taken: set[tuple[str, int]] = set()
    reasons: set[tuple[str, str, int]] = set()
    for rule in RULES.rules:  # a feature yields its first matching rule
        for feature_id in sorted(_matching(db, rule, lon, lat)):
            if (rule.layer, feature_id) not in taken:
                taken.add((rule.layer, feature_id))
                reasons.add((rule.id, rule.layer, feature_id))
    verdict = max((BY_ID[r].verdict for r, _, _ in reasons), key=SEVERITY.__getitem__, default="clear")
    return verdict, reasons


@dataclass
class Case:
    rule: Rule
    feature_id: int
    name: str
    lon: float
    lat: float
    verdict: str


def _features(db: psycopg.Connection, rule: Rule) -> list[tuple[int, str]]:
    condition, params = _filter(rule)
    layer = CATALOG.get(rule.layer)
    query = sql.SQL("SELECT t.id, t.{}::text FROM {} AS t WHERE {} ORDER BY t.id").format(
        sql.Identifier(layer.name_property or layer.id_column), sql.Identifier(layer.table), condition
    )
    return [(row[0], row[1]) for row in db.execute(query, params).fetchall()]


def _points_inside(db: psycopg.Connection, table: str, feature_id: int) -> list[tuple[float, float]]:
    rows = db.execute(
        sql.SQL(
            "SELECT ST_X(p), ST_Y(p) FROM {} AS t, LATERAL (SELECT ST_PointOnSurface(t.geom) AS p UNION ALL "
            "SELECT (ST_Dump(ST_GeneratePoints(t.geom, %s, 7))).geom) AS c WHERE t.id = %s"
        ).format(sql.Identifier(table)),
        [CANDIDATES_PER_FEATURE, feature_id],
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def _points_at(db: psycopg.Connection, table: str, feature_id: int, distance_m: float) -> list[tuple[float, float]]:
    """Points about ``distance_m`` from a feature (vertices of its geodesic buffer), the
    distance measured again on the ellipsoid: only those within 5 % of it are kept."""
    rows = db.execute(
        sql.SQL(
            "WITH ring AS (SELECT (ST_DumpPoints(ST_ExteriorRing((ST_Dump(ST_Buffer(t.geom::geography, %s)::geometry))"
            ".geom))).geom AS p, t.geom AS g FROM {} AS t WHERE t.id = %s) "
            "SELECT ST_X(p), ST_Y(p) FROM ring "
            "WHERE ST_Distance(g::geography, p::geography) BETWEEN %s AND %s ORDER BY ST_Y(p), ST_X(p)"
        ).format(sql.Identifier(table)),
        [distance_m, feature_id, distance_m * 0.95, distance_m * 1.05],
    ).fetchall()
    step = max(1, len(rows) // CANDIDATES_PER_FEATURE)
    return [(row[0], row[1]) for row in rows[::step]]


def find_case(db: psycopg.Connection, rule: Rule, distance_m: float = 0.0) -> Case:
    """A point site where a feature the rule names triggers it (inside the feature, or
    ``distance_m`` outside it), preferably one where that rule alone decides the verdict
    (independently computed); ``Case.verdict`` is the verdict expected there."""
    table = CATALOG.get(rule.layer).table
    fallback: Case | None = None
    for feature_id, name in _features(db, rule):
        points = (
            _points_inside(db, table, feature_id) if distance_m == 0 else _points_at(db, table, feature_id, distance_m)
        )
        for lon, lat in points:
            verdict, reasons = expected_reasons(db, lon, lat)
            if (rule.id, rule.layer, feature_id) not in reasons:
                continue
            if verdict == rule.verdict:
                return Case(rule, feature_id, name, lon, lat, verdict)
            fallback = fallback or Case(rule, feature_id, name, lon, lat, verdict)
    assert fallback is not None, f"the demo data holds no site where rule {rule.id} is triggered"
    return fallback


def zone_check(client: TestClient, lon: float, lat: float, **options: object) -> dict:
    body = {"geometry": {"type": "Point", "coordinates": [lon, lat]}, **options}
    response = client.post("/api/zone-check", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_reasons_match(result: dict, expected: set[tuple[str, str, int]]) -> None:
    assert {(r["rule"], r["layer"], r["id"]) for r in result["reasons"]} == expected


@pytest.mark.parametrize("rule_id", INSIDE_CASES)
def test_a_site_inside_a_feature_triggers_its_rule(client: TestClient, db: psycopg.Connection, rule_id: str) -> None:
    rule = BY_ID[rule_id]
    case = find_case(db, rule)
    assert case.verdict == rule.verdict, f"a site where {rule.id} decides the verdict"
    result = zone_check(client, case.lon, case.lat)
    assert result["verdict"] == rule.verdict
    reason = next(r for r in result["reasons"] if r["rule"] == rule.id and r["id"] == case.feature_id)
    assert reason["verdict"] == rule.verdict and reason["layer"] == rule.layer
    assert case.name in reason["message"]["zh"] and case.name in reason["message"]["en"]
    assert ("allowed_activities" in reason) == rule.list_limited_activities
    assert_reasons_match(result, expected_reasons(db, case.lon, case.lat)[1])
    assert result["reasons"][0]["verdict"] == result["verdict"]  # most severe first


@pytest.mark.parametrize("rule_id", NEAR_CASES)
def test_a_site_near_a_feature_triggers_its_rule_within_the_distance_only(
    client: TestClient, db: psycopg.Connection, rule_id: str
) -> None:
    rule = BY_ID[rule_id]
    inside = find_case(db, rule, distance_m=0.6 * rule.within_m)
    result = zone_check(client, inside.lon, inside.lat)
    # Grade-I zones lie inside grade-II ones in the demo: near one, a site is restricted.
    assert result["verdict"] == inside.verdict and SEVERITY[inside.verdict] >= SEVERITY[rule.verdict]
    reason = next(r for r in result["reasons"] if r["rule"] == rule.id and r["id"] == inside.feature_id)
    distance = db.execute(
        sql.SQL(
            "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) FROM {} "
            "WHERE id = %s"
        ).format(sql.Identifier(CATALOG.get(rule.layer).table)),
        [inside.lon, inside.lat, inside.feature_id],
    ).fetchone()[0]
    assert distance < rule.within_m
    assert f"{distance:.0f}" in reason["message"]["zh"] or f"{distance + 0.5:.0f}" in reason["message"]["zh"]
    assert_reasons_match(result, expected_reasons(db, inside.lon, inside.lat)[1])

    # Beyond the threshold: the same feature no longer triggers the rule, and is reported
    # (with a wide enough buffer) at its true distance.
    table = CATALOG.get(rule.layer).table
    beyond = next(
        (p for p in _points_at(db, table, inside.feature_id, 1.5 * rule.within_m)
         if inside.feature_id not in _matching(db, rule, *p)),
        None,
    )  # fmt: skip
    assert beyond is not None, f"no point 1.5 × {rule.within_m} m from feature {inside.feature_id}"
    far = zone_check(client, *beyond, buffer_m=2 * rule.within_m)
    assert not any(r["rule"] == rule.id and r["id"] == inside.feature_id for r in far["reasons"])
    overlap = next(o for o in far["overlaps"] if o["layer"] == rule.layer and o["id"] == inside.feature_id)
    assert rule.within_m < overlap["distance_m"] <= 2 * rule.within_m
    assert_reasons_match(far, expected_reasons(db, *beyond)[1])


def test_a_site_away_from_every_rule_is_clear(client: TestClient, db: psycopg.Connection) -> None:
    """A point on land in a district (Xiamen, inside the region) that no rule matches."""
    rows = db.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 40, 11))).geom AS p "
        "FROM district ORDER BY id) AS c"
    ).fetchall()
    site = next(((lon, lat) for lon, lat in rows if expected_reasons(db, lon, lat) == ("clear", set())), None)
    assert site is not None, "the demo districts should have land clear of every rule"
    result = zone_check(client, *site)
    assert result["verdict"] == "clear" and result["reasons"] == []
    assert any(o["layer"] == "district" for o in result["overlaps"])
