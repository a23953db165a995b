"""The service's routes, by concern: ``similar`` (the JSON API), ``operations``
(health, readiness, metrics, reload) and ``pages`` (HTML)."""

from api.routes.table import ROUTERS, route_at

__all__ = ["ROUTERS", "route_at"]
