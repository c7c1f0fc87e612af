"""One exception tree for the service, one status map, and the handlers that apply it.

Every error answers JSON ``{"detail": "<what went wrong and how to fix it>"}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class EcoMapError(Exception):
    """Root of the service's errors; the message is shown to the user."""


class NotFound(EcoMapError):
    """A layer, feature or resource does not exist."""


class InvalidRequest(EcoMapError):
    """A parameter is malformed or out of range."""


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


class DatabaseUnavailable(EcoMapError):
    """PostGIS cannot be reached right now."""


STATUS_CODES: dict[type[EcoMapError], int] = {
    NotFound: 404,
    InvalidRequest: 400,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    DatabaseUnavailable: 503,
}


def status_for(error: EcoMapError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def _readable_validation_error(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors():
        location = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "request"
        parts.append(f"{location}: {item.get('msg')}")
    return "; ".join(parts)


def add_exception_handlers(app: FastAPI) -> None:
    """Register handlers turning service errors into JSON responses with their status."""

    async def handle_ecomap_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EcoMapError)  # noqa: S101 - registered for this class only
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc), headers=getattr(exc, "headers", None))

    async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        return JSONResponse(
            {"detail": _readable_validation_error(exc), "errors": jsonable_encoder(exc.errors())},
            status_code=400,
        )

    app.add_exception_handler(EcoMapError, handle_ecomap_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
