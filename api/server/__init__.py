"""The server process: uvicorn's HTTP protocol with timeouts and limits, launching a
server (also for tests and benchmarks), warm-up and the lifespan that watches the index
(those two imported from their modules: they need the whole app's stack)."""

from api.server.launch import ServerProcess, serve_log_config, use_tcp_nodelay_sockets
from api.server.protocol import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, TimedH11Protocol

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "ServerProcess",
    "TimedH11Protocol",
    "serve_log_config",
    "use_tcp_nodelay_sockets",
]
