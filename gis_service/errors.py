"""One exception tree for the service, one status map, and the handlers that apply it.

Every error answers JSON ``{"detail": "<what went wrong and how to fix it>"}``:

- service errors (:class:`EcoMapError`) with their status from :data:`STATUS_CODES`;
- a database error caused by the request's input (a value of the wrong type, a literal out
  of range, an invalid date, a projection domain error…) with 400 naming the parameter;
- anything else with 500 ``{"detail": "internal error; request id …"}``, logged with that id.

:class:`RequestGuard`, the outermost layer of the app, gives every request an id (a client's
``X-Request-ID`` if well-formed, else a new one) sent back in ``X-Request-ID``, refuses NUL
characters in the query string and the path before any route runs, and answers any exception
that reached it with JSON instead of letting the server close the connection.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

logger = logging.getLogger("gis_service.errors")


class EcoMapError(Exception):
    """Root of the service's errors; the message is shown to the user."""


class NotFound(EcoMapError):
    """A layer, feature or resource does not exist."""


class InvalidRequest(EcoMapError):
    """A parameter is malformed or out of range."""


class Conflict(EcoMapError):
    """The request is valid but not in the resource's current state (e.g. a workflow step not allowed now)."""


class PayloadTooLarge(EcoMapError):
    """The input exceeds a size limit (bytes, vertices, area)."""


class UnsupportedMediaType(EcoMapError):
    """An uploaded file is of a format the service cannot read."""


class Unauthorized(EcoMapError):
    """No credentials, or invalid or expired ones: sign in (answered with ``WWW-Authenticate``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": 'Bearer realm="ecomap"'}


class Forbidden(EcoMapError):
    """The caller is known but may not do this."""


class TooManyRequests(EcoMapError):
    """Too many attempts: wait ``retry_after_s`` seconds (answered with ``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class ProviderUnavailable(EcoMapError):
    """A service this one relies on (the OpenID provider of single sign-on) is down or answered badly."""


class DatabaseUnavailable(EcoMapError):
    """PostGIS cannot answer right now (unreachable, or the query took too long)."""

    retry_after_s = 2
    """Sent as ``Retry-After``: the service reconnects by itself."""


class DatabaseUnreachable(DatabaseUnavailable):
    """No connection to PostGIS could be had (it is down or the network is cut)."""


STATUS_CODES: dict[type[EcoMapError], int] = {
    NotFound: 404,
    InvalidRequest: 400,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    ProviderUnavailable: 502,
    DatabaseUnavailable: 503,
}

REQUEST_ID_HEADER = "x-request-id"
_WELL_FORMED_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

# SQLSTATEs of errors a request's values cause: class 22 (data exception: invalid text
# representation, numeric value out of range, datetime field overflow, invalid datetime format,
# untranslatable character, invalid parameter value…) always; these of class 42 when the
# request carries parameters (a filter comparing a boolean with a number, a function over a
# property of the wrong type).
_TYPE_MISMATCH_SQLSTATES = {"42883", "42804", "42846", "42P18", "42725"}
# PostGIS reports bad input geometry or coordinates as internal errors (XX000); these
# messages say it is the input.
_POSTGIS_INPUT_MESSAGES = (
    "transform:",
    "pj_transform",
    "parse error",
    "geometry requires more points",
    "geometry contains non-closed rings",
    "operation on mixed srid",
    "geos",
    "lwgeom",
    "invalid coordinate",
    "latitude or longitude exceeded",
    "point coordinate out of range",
)
_QUOTED = re.compile(r'"([^"]*)"')


def status_for(error: EcoMapError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_headers(error: EcoMapError) -> dict[str, str]:
    """Headers an error reply carries (``Retry-After`` while the database is unavailable or after too many
    attempts, ``WWW-Authenticate`` asking for credentials)."""
    if isinstance(error, DatabaseUnavailable):
        return {"retry-after": str(error.retry_after_s)}
    return dict(getattr(error, "headers", None) or {})  # WWW-Authenticate of a 401, Retry-After of a 429


def input_error(exc: psycopg.Error, parameters: list[tuple[str, str]], has_body: bool = False) -> InvalidRequest | None:
    """The 400 a database error means when the request's input caused it (None otherwise).

    Args:
        exc: the error PostgreSQL raised.
        parameters: the request's (name, value) parameters, path and query string.
        has_body: whether the request sent a body (an uploaded geometry may be the culprit).
    """
    sqlstate = exc.sqlstate or ""
    message = (exc.diag.message_primary or str(exc)).strip()
    caused_by_input = (
        isinstance(exc, psycopg.DataError)  # also psycopg's own, e.g. a list of mixed types to bind
        or sqlstate.startswith("22")
        or (sqlstate in _TYPE_MISMATCH_SQLSTATES and (parameters or has_body))
        or (sqlstate == "XX000" and message.lower().startswith(_POSTGIS_INPUT_MESSAGES))
    )
    if not caused_by_input:
        return None
    return InvalidRequest(f"{_culprit(message, parameters, has_body)} is not valid here: {message}")


def _culprit(message: str, parameters: list[tuple[str, str]], has_body: bool) -> str:
    """Which input a database message is about: the parameter holding the value it quotes,
    else the only parameter, else the list of them."""
    quoted = [value for value in _QUOTED.findall(message) if value]
    for value in quoted:
        names = [name for name, given in parameters if value in given]
        if names:
            return f"parameter {names[0]}"
    if len(parameters) == 1 and not has_body:
        return f"parameter {parameters[0][0]}"
    if not parameters and has_body:
        return "the request body"
    names = sorted({name for name, _ in parameters})
    return f"one of the parameters {', '.join(names)}" + (" or the request body" if has_body else "")


def _request_parameters(request: Request) -> list[tuple[str, str]]:
    """The parameters a database error may be about: the query string's (the path's were
    validated by the route), else the path's."""
    return request.query_params.multi_items() or [(k, str(v)) for k, v in request.path_params.items()]


def request_id(request: Request) -> str:
    """The id :class:`RequestGuard` gave the request (logged with its errors)."""
    return request.scope.get("state", {}).get("request_id", "-")


def internal_error_body(rid: str) -> dict[str, str]:
    return {"detail": f"internal error; request id {rid}"}


def _readable_validation_error(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "request"
        parts.append(f"{location}: {item.get('msg')}")
    return "; ".join(parts)


def add_exception_handlers(app: FastAPI) -> None:
    """Register handlers turning every error into a JSON response with its status."""

    async def handle_ecomap_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EcoMapError)  # noqa: S101 - registered for this class only
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc), headers=error_headers(exc))

    async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        return JSONResponse(
            {"detail": _readable_validation_error(exc), "errors": jsonable_encoder(exc.errors())},
            status_code=400,
        )

    async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, psycopg.Error)  # noqa: S101
        has_body = request.method in ("POST", "PUT", "PATCH")
        invalid = input_error(exc, _request_parameters(request), has_body)
        if invalid is not None:
            logger.info("request %s: %s (%s)", request_id(request), invalid, exc.sqlstate)
            return JSONResponse({"detail": str(invalid)}, status_code=400)
        if isinstance(exc, psycopg.OperationalError):
            unavailable = DatabaseUnavailable(f"the database is unreachable: {exc}".strip())
            return await handle_ecomap_error(request, unavailable)
        return await handle_internal_error(request, exc)

    async def handle_internal_error(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request)
        logger.error("request %s: %s %s failed", rid, request.method, request.url.path, exc_info=exc)
        request.scope.setdefault("state", {})["error_logged"] = True
        return JSONResponse(internal_error_body(rid), status_code=500)

    app.add_exception_handler(EcoMapError, handle_ecomap_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(psycopg.Error, handle_database_error)
    app.add_exception_handler(Exception, handle_internal_error)  # Starlette's outermost layer calls it


Scope = dict[str, Any]


async def send_json(send: Any, status: int, body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer a raw ASGI request with a JSON body."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """Outermost ASGI layer: a request id on every response, no NUL in parameters, no
    exception left for the server to answer (it would send plain text and close the connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value if _WELL_FORMED_ID.match(value) else b""
                break
        rid = rid or os.urandom(16).hex().encode()  # 128 random bits (uuid4's cost is its UUID object)
        state = scope.setdefault("state", {})
        state["request_id"] = rid.decode()
        id_header = (b"x-request-id", rid)
        started = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        # A request without a query string (every plain tile) only needs its path checked.
        refusal = nul_refusal(scope) if scope.get("query_string") or "\x00" in scope["path"] else None
        if refusal is not None:
            return await send_json(send_with_id, 400, {"detail": refusal})
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if not state.get("error_logged"):
                logger.error("request %s: %s %s failed", rid.decode(), scope["method"], scope["path"], exc_info=exc)
            if not started:
                await send_json(send_with_id, 500, internal_error_body(rid.decode()))


def nul_refusal(scope: Scope) -> str | None:
    """The 400 message for a NUL character in the path or a query parameter (PostgreSQL text
    cannot hold one), or None."""
    if "\x00" in scope["path"]:
        return "the path contains a NUL character (%00); remove it"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="replace"):
        if "\x00" in name:
            return "a query parameter name contains a NUL character (%00); remove it"
        if "\x00" in value:
            return f"parameter {name} contains a NUL character (%00); remove it"
    return None
