"""Least privilege: what the web role does beyond plain writes runs with the owner's rights.

The service connects as a web role without DDL rights (README "Database roles"; its table
privileges are declared in ``layers/grants.py`` and re-applied after every migration). Two
things it does at run time need more, and go through SECURITY DEFINER functions owned by the
owner role, with a fixed ``search_path`` so a caller cannot substitute objects:

- ``observation_ensure_partition(ts)`` creates a month's partition of ``observation`` (HJ 212
  ingest) — made SECURITY DEFINER here;
- ``ecomap_lock_for_generalization(table)`` takes the SHARE lock on a layer table that the
  generalizer holds while it rewrites ``<table>_gen`` (LOCK TABLE in that mode needs UPDATE,
  DELETE or TRUNCATE rights on the layer table, which the web role must not have). Only
  tables with a ``_gen`` companion are accepted; the lock lasts until the caller's
  transaction ends, as a LOCK TABLE of its own would.

Both are executable by the owner and the web role only (``layers/grants.py``).

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER FUNCTION observation_ensure_partition(timestamptz) SECURITY DEFINER SET search_path = public, pg_temp;

CREATE FUNCTION ecomap_lock_for_generalization(p_table text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF to_regclass(format('public.%I', p_table)) IS NULL
       OR to_regclass(format('public.%I', p_table || '_gen')) IS NULL THEN
        RAISE EXCEPTION 'not a generalized layer table: %', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('LOCK TABLE public.%I IN SHARE MODE', p_table);
END;
$$;
"""

DOWNGRADE = """
DROP FUNCTION ecomap_lock_for_generalization(text);
ALTER FUNCTION observation_ensure_partition(timestamptz) SECURITY INVOKER RESET search_path;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
