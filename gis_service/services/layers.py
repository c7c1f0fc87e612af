"""Layer listing: catalog entries with their live change-tracking state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection

from layers.catalog import GROUPS, Layer


async def layer_states(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Revision, last change and sample-data flag of every layer, from ``layer_state``."""
    cursor = await conn.execute("SELECT layer, revision, updated_at, sample_data FROM layer_state")
    return {
        row[0]: {"revision": row[1], "updated_at": row[2].isoformat(), "sample_data": row[3]}
        for row in await cursor.fetchall()
    }


def describe_layer(layer: Layer, state: dict[str, Any] | None, base_url: str) -> dict[str, Any]:
    """The public description of a layer: catalog entry, state, tile and TileJSON URLs."""
    state = state or {"revision": 0, "updated_at": None, "sample_data": False}
    return {
        **layer.model_dump(mode="json", by_alias=True, exclude={"table", "id_column", "geometry_column"}),
        **state,
        "tiles": [f"{base_url}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.pbf"],
        "tilejson": f"{base_url}/tiles/{layer.id}.json",
    }


async def list_layers(conn: AsyncConnection, catalog: Iterable[Layer], base_url: str) -> dict[str, Any]:
    """The catalog (the layers a caller may read) as served at ``/api/layers``."""
    states = await layer_states(conn)
    return {
        "groups": [{"id": key, "title": title} for key, title in GROUPS.items()],
        "layers": [describe_layer(layer, states.get(layer.id), base_url) for layer in catalog],
    }
