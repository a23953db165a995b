"""The server process: uvicorn's HTTP protocol with timeouts and limits, launching a
server (also for tests and benchmarks), its log lines (text, or JSON objects), warm-up
and the lifespan that follows the index (those two imported from their modules: they
need the whole app's stack)."""

from api.server.launch import ServerProcess, serve_log_config, use_tcp_nodelay_sockets
from api.server.logs import LOG_FORMATS, JsonFormatter
from api.server.protocol import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, TimedH11Protocol

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "LOG_FORMATS",
    "JsonFormatter",
    "ServerProcess",
    "TimedH11Protocol",
    "serve_log_config",
    "use_tcp_nodelay_sockets",
]
