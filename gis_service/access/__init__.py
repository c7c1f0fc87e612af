"""Identity and access: accounts, roles, tokens, API keys, the policy every route asks, the audit trail.

``router`` holds the HTTP routes (``/api/auth/*``, ``/api/admin/*``, ``/api/audit``);
``policy`` the decisions; the other modules are services taking a connection.
"""

from gis_service.access.routes import router

__all__ = ["router"]
