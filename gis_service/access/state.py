"""Per-app access state: the signing key and the token cache, made on first use."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from gis_service.access.secrets_file import signing_key
from gis_service.access.tokens import TokenCache
from gis_service.settings import AccessSettings


@dataclass
class AccessState:
    settings: AccessSettings
    key: bytes
    cache: TokenCache


def get_access(request: Request) -> AccessState:
    """The app's access state (``app.state.access``), created from its settings on first use."""
    state = getattr(request.app.state, "access", None)
    if state is None:
        settings = request.app.state.settings.access
        state = AccessState(settings, signing_key(settings), TokenCache(settings.token_cache_s))
        request.app.state.access = state
    return state


def client_address(request: Request) -> str | None:
    """The client's address (behind a proxy: as uvicorn's --proxy-headers / --forwarded-allow-ips set it)."""
    return request.client.host if request.client else None


def request_id(request: Request) -> str | None:
    """The caller's ``X-Request-ID`` (kept to 200 characters), for the audit log."""
    value = request.headers.get("x-request-id")
    return value[:200] if value else None
