"""A lean ASGI path for plain tile requests, in front of the FastAPI stack.

Tiles are the hottest path of the service (every pan and zoom). A plain
``GET /tiles/{layers}/{z}/{x}/{y}.pbf`` without a query string is answered here
directly through the tile engine (cache, single flight, rendering) — the same engine and
the same reply semantics as the documented route in ``routers/tiles.py``, minus the
per-request routing and validation machinery. A request it does not handle (a query
string, an unknown layer, an address off the grid, a layer the caller may not read) falls
through to that route, which produces the documented responses and error messages; a request it handles is answered
here, errors included (a database that is unreachable or too slow: 503 JSON with
``Retry-After``), never rendered a second time by the route.

The access policy applies here as on the route (``gis_service.access.layer_rules``): a
request without credentials is anonymous at no cost; one with credentials resolves its
principal through the policy (a bearer token is verified once, then found in the token
cache); the tile is the caller's view (hidden properties left out, a cache variant of its
own; for a scoped caller — a partner key with an area, a chief — the variant of its scope)
with ``Cache-Control: private`` when it holds anything not public or is scoped.

``EcoMapAPI`` puts it in front of the whole middleware stack, error middleware included
(each layer costs every request a call and a wrapped ``send``), right behind
:class:`gis_service.errors.RequestGuard` (request id, NUL check, JSON for any exception).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from gis_service.access.headers import response_headers
from gis_service.access.layer_rules import tile_access
from gis_service.access.policy import (
    SCOPED_ROLES,
    SESSION_COOKIE,
    cached_principal,
    feature_scope,
    resolve_principal,
)
from gis_service.access.principal import ANONYMOUS
from gis_service.errors import EcoMapError, RequestGuard, error_headers, send_json, status_for
from gis_service.tile_http import tile_reply
from tiles.engine import UnknownLayerError
from tiles.grid import TileAddressError, tile_address

TILE_PATH = re.compile(r"^/tiles/([a-z0-9_,]{1,200})/(\d{1,2})/(\d{1,8})/(\d{1,8})\.pbf$")
Scope = dict[str, Any]
SESSION_COOKIE_B = f"{SESSION_COOKIE}=".encode()


class TileFastPath:
    def __init__(self, app: Any, state: Any) -> None:
        self.app = app
        self.state = state
        self._catalog: Any = None
        self._layers: dict[str, list[Any]] = {}
        """Resolved layer specs of the engine's current catalog (a dict look-up per tile)."""

    def _resolve(self, engine: Any, spec: str) -> list[Any]:
        if engine.catalog is not self._catalog:
            self._catalog, self._layers = engine.catalog, {}
        layers = engine.resolve(spec)  # raises UnknownLayerError before anything is kept
        if len(self._layers) >= 1024:  # bounded: composites are combinations of the layers
            self._layers.clear()
        self._layers[spec] = layers
        return layers

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
            return await self.app(scope, receive, send)
        match = TILE_PATH.match(scope["path"])
        engine = getattr(self.state, "tile_engine", None)
        if match is None or engine is None:
            return await self.app(scope, receive, send)
        spec, z, x, y = match.groups()
        try:
            layers = self._layers.get(spec)
            if layers is None or engine.catalog is not self._catalog:
                layers = self._resolve(engine, spec)
            address = tile_address(int(z), int(x), int(y))
        except (UnknownLayerError, TileAddressError):  # the route answers these with its messages
            return await self.app(scope, receive, send)
        if_none_match = accept_encoding = ""
        api_key = authorization = cookie = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"cookie" and SESSION_COOKIE_B in value:
                cookie = value
        try:
            principal = ANONYMOUS
            if api_key is not None or authorization is not None or cookie is not None:
                principal = cached_principal(self.state, api_key, authorization, cookie) or await resolve_principal(
                    Request(scope)
                )
                scope.setdefault("state", {})["principal"] = principal  # the route reuses it (request.state)
            access = tile_access(principal, layers)
            if access.refused:
                return await self.app(scope, receive, send)  # the route answers 401/403 with its message
            scoped = None  # the caller's per-feature scope (``scope`` is the ASGI scope)
            if principal.role in SCOPED_ROLES:
                scoped = await feature_scope(engine.catalog, principal, engine.connect)
                scoped = scoped if scoped is not None and any(scoped.applies(layer) for layer in layers) else None
            tile = await engine.tile(layers, address, hidden=access.hidden, scope=scoped)
        except EcoMapError as exc:
            headers = [(k.encode(), v.encode()) for k, v in error_headers(exc).items()]
            return await send_json(send, status_for(exc), {"detail": str(exc)}, headers)
        status, headers, body = tile_reply(
            tile,
            if_none_match,
            accept_encoding,
            self.state.settings.tiles.max_age_s,
            private=access.private or scoped is not None,
            per_caller=access.per_caller or scoped is not None,
        )
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw_headers.extend(response_headers(scope, self.state.settings.limits))
        if body:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


class EcoMapAPI(FastAPI):
    """The FastAPI app with the tile fast path in front of its middleware stack, and the
    request guard in front of both."""

    _traced: bool | None = None

    def build_middleware_stack(self) -> Any:
        return RequestGuard(TileFastPath(super().build_middleware_stack(), self.state))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        # FastAPI asks OpenTelemetry on every request whether tracing or metrics are set up
        # (~5 us: environment look-ups); they are set up when the process starts, so this
        # app asks once, at its first request, and without them goes straight to its stack
        # (what Starlette's __call__ does).
        if scope["type"] == "http" and not self.root_path:
            if self._traced is None:
                native = getattr(self, "_native_telemetry", None)
                self._traced = native is not None and native.enabled()
            if not self._traced:
                scope["app"] = self
                if self.middleware_stack is None:
                    self.middleware_stack = self.build_middleware_stack()
                return await self.middleware_stack(scope, receive, send)
        return await super().__call__(scope, receive, send)
