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


async def remote_ages(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """When each remote layer's copy was last confirmed current and last changed (``remote_layer_state``)."""
    cursor = await conn.execute("SELECT layer, fetched_at, changed_at, feature_count FROM remote_layer_state")
    return {
        row[0]: {
            "fetched_at": row[1].isoformat() if row[1] else None,
            "changed_at": row[2].isoformat() if row[2] else None,
            "feature_count": row[3],
        }
        for row in await cursor.fetchall()
    }


def describe_layer(
    layer: Layer, state: dict[str, Any] | None, base_url: str, remote_age: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The public description of a layer: catalog entry, state, tile and TileJSON URLs (remote
    layers: the partner, source URL and the copy's age in ``remote``)."""
    state = state or {"revision": 0, "updated_at": None, "sample_data": False}
    described = layer.model_dump(mode="json", by_alias=True, exclude={"table", "id_column", "geometry_column"})
    if layer.remote is not None:
        described["remote"] = {
            **described["remote"],
            "read_only": True,
            **(remote_age or {"fetched_at": None, "changed_at": None, "feature_count": 0}),
        }
    else:
        described.pop("remote", None)
    return {
        **described,
        **state,
        "tiles": [f"{base_url}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.pbf"],
        "tilejson": f"{base_url}/tiles/{layer.id}.json",
    }


async def list_layers(conn: AsyncConnection, catalog: Iterable[Layer], base_url: str) -> dict[str, Any]:
    """The catalog (the layers a caller may read) as served at ``/api/layers``."""
    layers = list(catalog)
    states = await layer_states(conn)
    ages = await remote_ages(conn) if any(layer.remote is not None for layer in layers) else {}
    return {
        "groups": [{"id": key, "title": title} for key, title in GROUPS.items()],
        "layers": [describe_layer(layer, states.get(layer.id), base_url, ages.get(layer.id)) for layer in layers],
    }
