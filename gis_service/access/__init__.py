"""Identity and access: accounts, roles, tokens, API keys, the policy every route asks, the audit trail.

``router`` holds the HTTP routes (``/api/auth/*``, ``/api/admin/*``, ``/api/audit``);
``policy`` the decisions on actions, ``layer_rules`` on layers and properties (from the
catalog's ``access`` keys), ``endpoint_rules`` on chiefs and the river network (from
``rules.yaml``); the other modules are services taking a connection.
"""

from gis_service.access.routes import router

__all__ = ["router"]
