"""Every router of the service, in the order the app includes them, and a lookup of a
route by its path template (what the fast path names in request metrics)."""

from fastapi.routing import APIRoute

from api.routes import operations, pages, similar

ROUTERS = (similar.router, operations.router, pages.router)


def route_at(path: str) -> APIRoute:
    """The route whose path template is ``path`` (``"/similar/{nct_id}"``)."""
    return next(r for router in ROUTERS for r in router.routes if getattr(r, "path", None) == path)
