"""The audit trail: who did what, when, from where, with which request id (append-only table).

Every sign-in (success and failure), token refresh, sign-out, key creation and revocation
and user administration is recorded, by the web routes and the ``ecomap`` CLI alike.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gis_service.access.principal import Principal

Outcome = Literal["success", "failure", "refused"]
MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditContext:
    """The actor of an audited action and where the request came from."""

    actor: str
    actor_kind: str
    client_addr: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, principal: Principal, client_addr: str | None, request_id: str | None) -> AuditContext:
        return cls(principal.actor, principal.kind, client_addr, request_id)

    @classmethod
    def cli(cls) -> AuditContext:
        """The operating-system user running an ``ecomap`` command."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(f"cli:{user}", "cli")


async def record(
    conn: AsyncConnection,
    context: AuditContext,
    action: str,
    *,
    outcome: Outcome = "success",
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Append one entry; ``actor`` names the account a sign-in or refresh is for (a user, not
    the anonymous caller of the context)."""
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_kind, action, outcome, target, client_addr, request_id, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            actor or context.actor,
            "user" if actor else context.actor_kind,
            action,
            outcome,
            target,
            context.client_addr,
            context.request_id,
            Jsonb(detail or {}),
        ],
    )


async def list_entries(
    conn: AsyncConnection,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries newest first, filtered; page on with ``before_id`` = the last id of a page."""
    limit = max(1, min(limit, MAX_PAGE))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, at, actor, actor_kind, action, outcome, target, client_addr, request_id, detail"
            " FROM audit_log"
            " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"actor": actor, "action": action, "since": since, "until": until, "before": before_id, "limit": limit},
        )
        return await cur.fetchall()
