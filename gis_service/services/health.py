"""Service health: is PostGIS reachable and migrated?"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from layers.db import head_revision


async def database_status(conn: AsyncConnection) -> dict[str, Any]:
    """Versions of PostgreSQL and PostGIS and the applied migration."""
    cursor = await conn.execute(
        "SELECT current_setting('server_version'), postgis_lib_version(), to_regclass('alembic_version') IS NOT NULL"
    )
    postgres, postgis, migrated = await cursor.fetchone() or (None, None, False)
    migration = None
    if migrated:
        cursor = await conn.execute("SELECT version_num FROM alembic_version LIMIT 1")
        row = await cursor.fetchone()
        migration = row[0] if row else None
    expected = head_revision()
    status = "ok" if migration == expected else "outdated"
    result = {"status": status, "postgres": postgres, "postgis": postgis, "migration": migration}
    if status != "ok":
        result["expected_migration"] = expected
        result["detail"] = (
            f"the database schema is at migration {migration or 'none'} but this version needs {expected}:"
            " run `ecomap setup` (or `ecomap db upgrade`)"
        )
    return result
