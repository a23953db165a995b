"""``recommender fetch``: studies downloaded from the registry's API v2 into a folder
that ``build`` and ``update`` read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recommender.cli._common import (
    EXIT_FAILURE,
    EXIT_OK,
    BadInput,
    checked,
    positive_int,
    stderr_log,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from recommender.ingest import DEFAULT_PAGE_SIZE, parse_day
    from recommender.ingest.registry import DEFAULT_BASE_URL, check_base_url

    fetch = commands.add_parser("fetch", help="download studies from the registry's API v2")
    fetch.add_argument("--out", type=Path, required=True, help="download folder (resumable)")
    fetch.add_argument("--query.cond", dest="cond", metavar="TEXT", help="conditions searched")
    fetch.add_argument("--query.term", dest="term", metavar="TEXT", help="other terms searched")
    fetch.add_argument(
        "--updated-since",
        type=checked(parse_day),
        metavar="YYYY-MM-DD",
        help="only studies whose last update was posted on or after that day",
    )
    fetch.add_argument("--max", type=positive_int, metavar="N", help="stop after N studies")
    fetch.add_argument(
        "--page-size",
        type=checked(_page_size),
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help="studies per request and page file, at most 1000 (%(default)s)",
    )
    fetch.add_argument(
        "--base-url",
        type=checked(check_base_url),
        default=DEFAULT_BASE_URL,
        metavar="URL",
        help="the registry's API v2 (%(default)s), or a mirror of it",
    )
    fetch.add_argument(
        "--rate",
        type=checked(float),
        default=50.0,
        metavar="PER_MINUTE",
        help="requests per minute at most (%(default)s; 0: no limit)",
    )
    fetch.add_argument(
        "--timeout",
        type=checked(float),
        default=60.0,
        metavar="SECONDS",
        help="give up on a request (then retried) after this long without an answer (%(default)s)",
    )
    fetch.add_argument(
        "--retries", type=int, default=5, metavar="N", help="retries per request (%(default)s)"
    )
    fetch.add_argument("--restart", action="store_true", help="discard a started download")
    fetch.add_argument("--quiet", action="store_true", help="no progress lines")


def _page_size(text: str) -> int:
    from recommender.ingest import MAX_PAGE_SIZE

    value = int(text)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"must be 1..{MAX_PAGE_SIZE}, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from recommender.ingest import FetchError, FetchQuery, FetchUsageError
    from recommender.ingest.registry import RegistryClient, fetch_studies, format_fetch_summary

    log = stderr_log(args.quiet)
    try:
        query = FetchQuery(args.cond, args.term, args.updated_since, args.max, args.page_size)
        with RegistryClient(
            args.base_url,
            timeout=args.timeout,
            retries=args.retries,
            requests_per_minute=args.rate,
            log=log,
        ) as client:
            summary = fetch_studies(args.out, query, client, restart=args.restart, log=log)
    except FetchUsageError as exc:
        raise BadInput(str(exc)) from None
    except FetchError as exc:
        print(
            f"recommender fetch: error: {exc}; the pages so far are kept in {args.out}: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    print(format_fetch_summary(summary))
    return EXIT_OK
