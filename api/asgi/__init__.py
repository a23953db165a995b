"""The ASGI layer around the routes: the lookup fast path, the body-size limit, HTTP
caching, request telemetry, security headers, and the answers the fast path and the
routes share."""

from api.asgi.answers import cached_json, encode_json, similar_answer
from api.asgi.fastpath import SimilarLookupFastPath
from api.asgi.middleware import BodySizeLimitMiddleware
from api.asgi.security import SecurityHeaders
from api.asgi.telemetry import RequestTelemetry, ServiceMetrics

__all__ = [
    "BodySizeLimitMiddleware",
    "RequestTelemetry",
    "SecurityHeaders",
    "ServiceMetrics",
    "SimilarLookupFastPath",
    "cached_json",
    "encode_json",
    "similar_answer",
]
