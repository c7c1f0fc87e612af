"""Per-client rate limits on the expensive endpoints: a token bucket per client and budget.

A route opts in with one keyword: ``@router.post(..., dependencies=[rate_limited("zone_check")],
responses={**RATE_LIMITED, ...})`` (the second documents the 429 in the OpenAPI document).

Each budget of :class:`gis_service.settings.LimitsSettings` (``zone_check``, ``report``,
``export``, ``search``, ``public_report``) is a bucket of that many tokens per ``window_s``, refilled continuously;
a request takes one token, a request finding the bucket empty answers 429 ``{"detail": …}``
with ``Retry-After`` (whole seconds until the next token) and takes none. The client is the
anonymous caller's address (behind a proxy: as uvicorn's ``--forwarded-allow-ips`` sets it), or
the account, or the API key; signed-in accounts and keys get ``signed_in_factor`` × the budget.

The buckets live in the worker's memory: with N workers a client's budget is N × the setting,
and a restart forgets them. This throttles one heavy client on one worker; the deployment's
reverse proxy or CDN enforces the global per-client limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from gis_service.access.policy import CurrentPrincipal
from gis_service.access.principal import Principal
from gis_service.access.state import client_address
from gis_service.errors import TooManyRequests
from gis_service.settings import LimitsSettings

BUDGETS = {
    "zone_check": "zone checks",
    "report": "zone-check reports",
    "export": "layer exports",
    "search": "searches",
    "public_report": "public reports",
}
"""The budgets of ``LimitsSettings`` and how a 429 message names them."""

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Over this client's request budget; retry after `Retry-After` seconds"}
}
"""The ``responses`` entry of a rate-limited route (its OpenAPI 429)."""

MAX_CLIENTS = 50_000
"""Buckets kept per budget before the full (idle) ones are dropped."""


@dataclass
class Bucket:
    tokens: float
    at: float


class RateLimiter:
    """The token buckets of one worker, per budget and client."""

    def __init__(self, settings: LimitsSettings, clock: Any = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.buckets: dict[str, dict[str, Bucket]] = {name: {} for name in BUDGETS}

    def capacity(self, budget: str, signed_in: bool) -> float:
        base = float(getattr(self.settings, budget))
        return base * self.settings.signed_in_factor if signed_in else base

    def take(self, budget: str, client: str, signed_in: bool) -> float:
        """Take a token; 0 when taken, else the seconds until one is available (none taken)."""
        capacity = self.capacity(budget, signed_in)
        rate = capacity / self.settings.window_s  # tokens per second
        now = self.clock()
        buckets = self.buckets[budget]
        bucket = buckets.get(client)
        if bucket is None:
            if len(buckets) >= MAX_CLIENTS:
                self._drop_full(buckets, budget, now)
            bucket = buckets[client] = Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def _drop_full(self, buckets: dict[str, Bucket], budget: str, now: float) -> None:
        """Forget the clients whose buckets have refilled (they are as if never seen)."""
        window = self.settings.window_s
        for client in [c for c, b in buckets.items() if now - b.at >= window]:
            del buckets[client]
        if len(buckets) >= MAX_CLIENTS:  # all active: drop the oldest half
            for client in sorted(buckets, key=lambda c: buckets[c].at)[: len(buckets) // 2]:
                del buckets[client]


def client_key(principal: Principal, request: Request) -> str:
    """Whose budget a request spends: the account, the API key, else the client address."""
    if principal.account_id is not None:
        return f"user:{principal.account_id}"
    if principal.key_id is not None:
        return f"key:{principal.key_id}"
    if not principal.is_anonymous:
        return f"{principal.kind}:{principal.name}"
    return f"addr:{client_address(request) or 'unknown'}"


def limiter_of(request: Request) -> RateLimiter:
    """The worker's limiter, created with the app's settings on first use."""
    state = request.app.state
    limiter = getattr(state, "rate_limiter", None)
    if limiter is None:
        limiter = state.rate_limiter = RateLimiter(state.settings.limits)
    return limiter


def rate_limited(budget: str) -> Any:
    """A route dependency spending one token of ``budget`` for the caller (429 when none is left)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown rate-limit budget {budget!r}; one of {', '.join(BUDGETS)}")

    async def dependency(request: Request, principal: CurrentPrincipal) -> None:
        limiter = limiter_of(request)
        if not limiter.settings.enabled:
            return
        wait = limiter.take(budget, client_key(principal, request), not principal.is_anonymous)
        if wait:
            seconds = math.ceil(wait)
            allowed = limiter.capacity(budget, not principal.is_anonymous)
            raise TooManyRequests(
                f"too many {BUDGETS[budget]}: this client may make {allowed:g} per "
                f"{limiter.settings.window_s:g} s; try again in {seconds} s",
                seconds,
            )

    return Depends(dependency)
