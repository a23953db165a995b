"""``recommender serve``: the index over HTTP (the only command that imports ``api``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from recommender.cli._common import EXIT_OK, positive_int, seconds
from recommender.core import DEFAULT_INDEX
from recommender.index import TrialIndex


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve the index over HTTP")
    serve.add_argument(
        "--index",
        type=Path,
        help=f"index path to serve and follow (default: $RECOMMENDER_INDEX, else {DEFAULT_INDEX})",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (%(default)s: this machine only; 0.0.0.0: every interface)",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (%(default)s)")
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="server processes, each with its own copy of the app, sharing the index's "
        "pages (%(default)s; about one per core)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from ORIGIN (e.g. https://example.org, or *) call the API from a "
        "browser; repeat for several (default: none, no CORS headers)",
    )
    serve.add_argument(
        "--no-request-log",
        action="store_true",
        help="no JSON line per request on stdout",
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: uvicorn's lines, and one JSON line per request; json: every line a JSON "
        "object (uvicorn's too), with the request id of the request it was written for "
        "(%(default)s)",
    )
    serve.add_argument(
        "--watch",
        type=_watch_seconds,
        metavar="SECONDS",
        help="check the index path for a new build (from `build` or `update`) this often "
        "and serve it once loaded and verified; 0: never (default: $RECOMMENDER_WATCH_SECONDS, "
        "else 2)",
    )
    _add_server_limits(serve)


def _add_server_limits(serve: argparse.ArgumentParser) -> None:
    from api.server import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT

    limits = serve.add_argument_group("limits on clients (per worker)")
    limits.add_argument(
        "--header-timeout",
        type=seconds,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="a request's headers must arrive within this time, else 408 and close (%(default)s)",
    )
    limits.add_argument(
        "--body-timeout",
        type=seconds,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="its body within this time after the headers, else 408 and close (%(default)s)",
    )
    limits.add_argument(
        "--keep-alive",
        type=positive_int,
        default=5,
        metavar="SECONDS",
        help="close a kept-alive connection idle this long between requests (%(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=positive_int,
        default=500,
        metavar="N",
        help="open connections served at once; a request beyond them gets 503 (%(default)s)",
    )


def _watch_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more seconds, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    import functools
    import os

    import uvicorn

    from api.server import TimedH11Protocol, serve_log_config, use_tcp_nodelay_sockets
    from api.settings import CORS_ENV, INDEX_ENV, REQUEST_LOG_ENV, WATCH_ENV

    index = args.index or Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX)
    TrialIndex.load(index)  # fail here, with a clear message, not in a worker
    # The app factory runs in each worker: its settings travel in the environment.
    # Absolute, not resolved: the served path is a symlink that a rebuild repoints,
    # and the workers must reload from it, not from the version it names today.
    os.environ[INDEX_ENV] = str(index.absolute())
    if args.cors_origin:
        os.environ[CORS_ENV] = ",".join(args.cors_origin)
    if args.no_request_log:
        os.environ[REQUEST_LOG_ENV] = "off"
    if args.watch is not None:
        os.environ[WATCH_ENV] = str(args.watch)
    use_tcp_nodelay_sockets()
    protocol = functools.partial(
        TimedH11Protocol, header_timeout=args.header_timeout, body_timeout=args.body_timeout
    )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=protocol,  # type: ignore[arg-type]  # uvicorn calls it like a protocol class
        timeout_keep_alive=args.keep_alive,
        # The app logs one JSON line per request (api.asgi.telemetry) instead of uvicorn.
        access_log=False,
        log_config=serve_log_config(args.log_format),
        # Uvicorn counts the connection asking too: with N open, the Nth is refused.
        limit_concurrency=args.max_connections + 1,
    )
    return EXIT_OK
