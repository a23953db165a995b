"""Run the real server in a child process on a free loopback port (tests, benchmarks).

The child is ``python -m recommender serve``, the command a person runs, so what
is tested and measured is what is deployed. Standard library only: this runs where
the test dependencies may not be installed.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"


def use_tcp_nodelay_sockets() -> None:
    """Make uvicorn's own listening socket (used with ``--workers`` > 1) a TCP one.

    Uvicorn creates that socket with protocol 0, so asyncio does not recognise its
    connections as TCP and leaves Nagle's algorithm on: every kept-alive response
    then waits about 40 ms for a delayed ACK (uvicorn issue #3149). Recreating the
    socket object with ``IPPROTO_TCP`` lets asyncio set TCP_NODELAY as it does for
    a single worker. Call before ``uvicorn.run``.
    """
    from uvicorn.config import Config

    bind = Config.bind_socket
    if getattr(bind, "tcp_nodelay_patch", False):
        return

    def bind_tcp_socket(self: Config) -> socket.socket:
        sock = bind(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
        return sock

    bind_tcp_socket.tcp_nodelay_patch = True  # type: ignore[attr-defined]
    Config.bind_socket = bind_tcp_socket  # type: ignore[method-assign]


def serve_log_config(log_format: str = "text") -> dict:
    """Uvicorn's logging configuration plus the app's loggers: the per-request JSON
    lines (``api.requests``) bare on stdout, one per line, and the ``api`` modules'
    messages (warm-up, reloads) like uvicorn's own.

    ``log_format="json"`` makes every line a JSON object (:mod:`api.server.logs`):
    uvicorn's, the app's and any other library's (the root logger, at WARNING).
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["request"] = {"format": "%(message)s"}
    config["handlers"]["request"] = {
        "formatter": "request",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["api.requests"] = {
        "handlers": ["request"],
        "level": "INFO",
        "propagate": False,
    }
    config["loggers"]["api"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        json_lines = {"()": "api.server.logs.JsonFormatter"}
        config["formatters"] = {name: json_lines for name in config["formatters"]}
        config["root"] = {"handlers": ["default"], "level": "WARNING"}
    elif log_format != "text":
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    return config


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``recommender serve`` in a child process, as a context manager.

    Parameters
    ----------
    index : path
        Index folder to serve.
    workers : int, default 1
        Uvicorn worker processes.
    env : dict, optional
        Extra environment variables (e.g. ``RECOMMENDER_ADMIN_TOKEN``).
    startup_timeout : float, default 60
        Seconds to wait for ``/health`` to answer.
    serve_args : sequence of str, optional
        More ``recommender serve`` options, e.g. ``["--header-timeout", "1"]``.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT``.
    """

    def __init__(
        self,
        index: str | os.PathLike,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        serve_args: Sequence[str] = (),
    ) -> None:
        self.index = Path(index)
        self.serve_args = list(serve_args)
        self.workers = workers
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen | None = None
        # Lives as long as this object (read by log() after stop), closed on exit.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "recommender", "serve",
            "--index", str(self.index), "--host", LOOPBACK, "--port", str(self.port),
            "--workers", str(self.workers), *self.serve_args,
        ]  # fmt: skip

    def start(self) -> ServerProcess:
        """Start the child and wait until ``/health`` answers; raise if it does not."""
        self.process = subprocess.Popen(
            self.command(),
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its workers stop with it
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"server not healthy after {self.startup_timeout}s:\n{self.log()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 15.0) -> int | None:
        """Ask the server to shut down (SIGTERM), then kill its process group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout)

    def log(self) -> str:
        """Everything the server printed so far."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
