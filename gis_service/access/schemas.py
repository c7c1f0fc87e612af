"""Request and response bodies of the access routes (what OpenAPI shows)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from gis_service.access.accounts import Account
from gis_service.access.keys import ApiKey
from gis_service.access.principal import Principal


class TokenResponse(BaseModel):
    """An OAuth2 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str = Field(description="Use once with POST /api/auth/refresh; a new one comes back")


class SessionResponse(BaseModel):
    """A browser sign-in: the cookies are set; send ``csrf_token`` as ``X-CSRF-Token`` on writes."""

    login: str
    role: str
    chief_id: int | None
    csrf_token: str
    expires_in: int


class Me(BaseModel):
    """Who the caller is and how they authenticated."""

    kind: Literal["anonymous", "user", "station", "partner"]
    name: str | None = None
    role: str | None = None
    chief_id: int | None = None
    layers: list[str] = []
    method: Literal["none", "bearer", "cookie", "api_key"]

    @classmethod
    def of(cls, principal: Principal) -> Me:
        return cls(
            kind=principal.kind,
            name=principal.name,
            role=principal.role.value if principal.role else None,
            chief_id=principal.chief_id,
            layers=sorted(principal.layers),
            method=principal.method,
        )


class AccountOut(BaseModel):
    login: str
    role: str
    chief_id: int | None
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(**{name: getattr(account, name) for name in cls.model_fields})


class AccountIn(BaseModel):
    login: str = Field(min_length=2, max_length=64)
    role: str
    chief_id: int | None = None
    password: str = Field(min_length=12, max_length=1024, description="At least 12 characters")


class AccountChange(BaseModel):
    """Fields to change; role and chief_id go together."""

    enabled: bool | None = None
    role: str | None = None
    chief_id: int | None = None


class KeyOut(BaseModel):
    name: str
    role: str
    layers: list[str]
    prefix: str = Field(description="First characters of the key, to recognise it")
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    area_km2: float | None = Field(description="Size of a partner key's shared area (null: its layers whole)")
    area: dict[str, Any] | None = Field(
        description="A partner key's shared area (GeoJSON MultiPolygon, EPSG:4326): its layers are read only inside it"
    )

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(**{name: getattr(key, name) for name in cls.model_fields})


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["station", "partner"]
    layers: list[str] = []
    expires_at: dt.datetime | None = None
    area: str | list[str] | dict[str, Any] | None = Field(
        None,
        description="A partner key's shared area, as `ecomap keys create --area` takes it: district adcodes"
        ' ("350203,350206" or a list) or a GeoJSON Polygon / MultiPolygon geometry, Feature or FeatureCollection'
        " (EPSG:4326 lon/lat); its layers are then read only inside it (default: whole)",
        examples=["350206"],
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The API key: shown this once, send it as X-API-Key")


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    actor_kind: str
    action: str
    outcome: str
    target: str | None
    client_addr: str | None
    request_id: str | None
    detail: dict


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next: str | None = Field(description="URL of the next (older) page, if any")
