"""One refresh of a remote layer: ask the partner, validate, write the copy in one transaction.

Outcomes: ``unchanged`` (a 304, or the same content again: only the check time moves),
``updated`` (rows inserted/deleted, the change trigger invalidates their tiles), ``busy``
(another instance holds the layer's lock) or ``failed`` (HTTP error, invalid data, too many
features: the previous copy is kept untouched and the error recorded in its state).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from psycopg import AsyncConnection

from gis_service.federation import store
from gis_service.federation.config import FederationError, RemoteLayer, as_layer
from gis_service.federation.fetch import FetchError, fetch_collection
from gis_service.federation.validate import content_hash, validate_features
from gis_service.settings import FederationSettings
from layers.regions import get_region

logger = logging.getLogger(__name__)

Outcome = Literal["unchanged", "updated", "busy", "failed"]


@dataclass
class RefreshResult:
    """What one refresh did, as the CLI prints it and the admin API returns it."""

    layer: str
    outcome: Outcome
    features: int | None = None
    inserted: int = 0
    deleted: int = 0
    pages: int = 0
    error: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        if self.outcome == "failed":
            return f"{self.layer}: FAILED, the previous copy is kept: {self.error}"
        if self.outcome == "busy":
            return f"{self.layer}: another instance is refreshing it"
        if self.outcome == "unchanged":
            return f"{self.layer}: unchanged"
        return (
            f"{self.layer}: {self.features} features from {self.pages} page(s), "
            f"{self.inserted} inserted, {self.deleted} deleted"
        )


async def refresh_layer(
    conn: AsyncConnection,
    client: httpx.AsyncClient,
    remote: RemoteLayer,
    settings: FederationSettings,
    default_region: str,
    *,
    force: bool = False,
) -> RefreshResult:
    """Refresh one remote layer on ``conn`` (autocommit; the write is one transaction of its own).

    The stored ETag is sent unless ``force`` or the copy was made by another declaration (other
    URL, properties, geometry type or region); then the collection is fetched whole."""
    layer = as_layer(remote)
    previous = await store.state(conn, remote.id)
    declaration = remote.digest()
    current = previous.fetched_at is not None and previous.declaration == declaration and not force
    try:
        fetched = await fetch_collection(
            client,
            remote.url,
            etag=previous.etag if current else None,
            api_key=remote.api_key(),
            max_pages=settings.max_pages,
            max_features=remote.max_features or settings.max_features,
            max_page_bytes=settings.max_page_mb * 1024 * 1024,
        )
    except (FetchError, FederationError) as exc:
        return await _failed(conn, remote, str(exc))
    if fetched.unchanged:
        await store.record_check(conn, remote.id, remote.url, fetched.etag)
        return RefreshResult(remote.id, "unchanged", previous.feature_count)
    rows, report = validate_features(fetched.features, layer, get_region(remote.region or default_region), remote.url)
    if not report.ok:
        result = await _failed(conn, remote, f"invalid data: {report.first_error()}")
        result.findings = [f.to_dict() for f in report.errors]
        return result
    digest = content_hash(rows)
    if digest == previous.content_hash and previous.declaration == declaration:
        await store.record_check(conn, remote.id, remote.url, fetched.etag)
        return RefreshResult(remote.id, "unchanged", len(rows), pages=fetched.pages)
    async with conn.transaction():
        if not await store.try_lock(conn, remote.id):
            return RefreshResult(remote.id, "busy")
        written = await store.replace_copy(conn, remote.id, remote.url, rows, fetched.etag, digest, declaration)
    logger.info("remote layer %s: %d features, %d inserted, %d deleted", remote.id, len(rows), written.inserted,
                written.deleted)  # fmt: skip
    return RefreshResult(remote.id, "updated", len(rows), written.inserted, written.deleted, fetched.pages)


async def _failed(conn: AsyncConnection, remote: RemoteLayer, message: str) -> RefreshResult:
    await store.record_error(conn, remote.id, remote.url, message)
    logger.warning("remote layer %s not refreshed, the previous copy is kept: %s", remote.id, message)
    return RefreshResult(remote.id, "failed", error=message)


def http_client(settings: FederationSettings) -> httpx.AsyncClient:
    """The client partners are asked with (no redirects followed to other hosts: none followed)."""
    return httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False, headers={"User-Agent": "EcoMap"})
