"""Migrations apply from scratch, revert to an empty schema, and apply again."""

from __future__ import annotations

import psycopg

from layers import db as layer_db
from layers.models import LAYER_TABLES
from tests.conftest import recreate_database, scratch_database_name


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade() -> None:
    url = recreate_database(scratch_database_name("migrations"))
    layer_db.upgrade(url)
    tables = _tables(url)
    assert set(LAYER_TABLES) | {"chief", "chief_assignment", "layer_state", "layer_change"} <= tables
    with psycopg.connect(url) as conn:
        indexed = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist (geom)%'"
            ).fetchall()
        }
        assert set(LAYER_TABLES) <= indexed
        triggers = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()}
        for table in LAYER_TABLES:
            for suffix in ("insert", "update", "delete", "truncate", "touch"):
                assert f"ecomap_{table}_{suffix}" in triggers
    layer_db.downgrade(url, "base")
    assert _tables(url) - {"spatial_ref_sys", "alembic_version"} == set()
    layer_db.upgrade(url)
    assert set(LAYER_TABLES) <= _tables(url)


def test_writes_bump_revision_and_log_the_changed_extent() -> None:
    url = recreate_database(scratch_database_name("migrations"))
    layer_db.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT revision FROM layer_state WHERE layer = 'station'").fetchone()[0]
        conn.execute(
            "INSERT INTO station (code, name, kind, geom) VALUES"
            " ('T1', 'test', 'section', ST_SetSRID(ST_MakePoint(118.1, 24.5), 4326)),"
            " ('T2', 'test', 'section', ST_SetSRID(ST_MakePoint(118.2, 24.6), 4326))"
        )
        conn.execute("UPDATE station SET name = 'renamed' WHERE code = 'T2'")
        conn.execute("UPDATE station SET name = 'none' WHERE code = 'nothing'")  # no row: no revision
        after = conn.execute("SELECT revision FROM layer_state WHERE layer = 'station'").fetchone()[0]
        assert after == before + 2
        boxes = conn.execute(
            "SELECT ST_XMin(bbox), ST_YMin(bbox), ST_XMax(bbox), ST_YMax(bbox) FROM layer_change"
            " WHERE layer = 'station' ORDER BY revision"
        ).fetchall()
        assert [tuple(round(v, 6) for v in b) for b in boxes] == [
            (118.1, 24.5, 118.2, 24.6),
            (118.2, 24.6, 118.2, 24.6),
        ]
        conn.execute("TRUNCATE station CASCADE")
        bbox = conn.execute("SELECT bbox FROM layer_change WHERE layer = 'station' ORDER BY revision DESC").fetchone()
        assert bbox == (None,)
