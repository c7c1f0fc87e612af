"""Alembic environment: migrations of the layer schema (run through ``ecomap db upgrade``)."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from layers.grants import apply_grants
from layers.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Leave PostGIS's own tables (spatial_ref_sys, ...) alone; let GeoAlchemy2 handle spatial indexes."""
    if type_ == "table" and reflected and compare_to is None:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


OPTIONS = {
    "target_metadata": target_metadata,
    "include_object": include_object,
    "process_revision_directives": alembic_helpers.writer,
    "render_item": alembic_helpers.render_item,
}


def _migrate(conn) -> None:
    """Run the migrations, then re-apply the web role's privileges (layers/grants.py) in the
    same transaction, so tables a migration added are covered at once."""
    context.configure(connection=conn, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()
        apply_grants(conn)


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _migrate(conn)


run_migrations()
