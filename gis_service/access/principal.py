"""Who is asking: the ``Principal`` every request resolves to, and the roles it can hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """Roles of people (accounts) and of machine clients (API keys)."""

    PLANNER = "planner"
    CHIEF = "chief"
    ANALYST = "analyst"
    DATA_MANAGER = "data_manager"
    ADMIN = "admin"
    STATION = "station"
    PARTNER = "partner"


USER_ROLES = (Role.PLANNER, Role.CHIEF, Role.ANALYST, Role.DATA_MANAGER, Role.ADMIN)
KEY_ROLES = (Role.STATION, Role.PARTNER)

PrincipalKind = Literal["anonymous", "user", "station", "partner"]
AuthMethod = Literal["none", "bearer", "cookie", "api_key"]


@dataclass(frozen=True)
class Principal:
    """The caller of one request, resolved once by ``policy.current_principal``.

    ``name`` is the account login or the key name (what the audit log records);
    ``chief_id`` is a chief's jurisdiction; ``layers`` the layers a partner key may read.
    """

    kind: PrincipalKind
    name: str | None = None
    role: Role | None = None
    method: AuthMethod = "none"
    chief_id: int | None = None
    layers: frozenset[str] = field(default_factory=frozenset)
    account_id: int | None = None
    key_id: int | None = None
    session_id: str | None = None
    csrf: str | None = field(default=None, repr=False)

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.kind == "anonymous":
            return "anonymous"
        prefix = "key:" if self.kind in ("station", "partner") else ""
        return f"{prefix}{self.name}"


ANONYMOUS = Principal(kind="anonymous")
