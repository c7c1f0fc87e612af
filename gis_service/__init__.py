"""EcoMap Xiamen map service: FastAPI application, routers and services."""

from gis_service.app import create_app

__all__ = ["create_app"]
