"""``recommender export``: every trial's related list as CSV or JSON lines, for a site's
database (``docs/export.md``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recommender.cli._common import EXIT_OK, BadInput, jobs, positive_int
from recommender.core import DEFAULT_INDEX
from recommender.index import TrialIndex


def add_parser(commands: argparse._SubParsersAction) -> None:
    from recommender.pipelines.export import FORMATS

    export = commands.add_parser(
        "export", help="write every trial's related list (CSV or JSON lines) for a database"
    )
    export.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    export.add_argument(
        "--format", choices=FORMATS, default="csv", help="rows as %(choices)s (%(default)s)"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="file to write (replaced whole), or - for stdout",
    )
    export.add_argument(
        "--k", type=positive_int, help="related trials per trial (default: all the index stores)"
    )
    export.add_argument(
        "--jobs",
        type=jobs,
        default=-1,
        help="cores searching the thin trials, asked about by their reading (-1: all)",
    )


def run(args: argparse.Namespace) -> int:
    import os

    from recommender.pipelines import ExportError, export_related

    try:
        index = TrialIndex.load(args.index)
        summary = export_related(index, args.out, args.format, k=args.k, n_jobs=args.jobs)
    except ExportError as exc:
        raise BadInput(str(exc)) from None
    except BrokenPipeError:  # `--out - | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if args.out != "-":
        print(
            f"{summary.rows:,} rows ({summary.trials:,} trials, up to {summary.k} each) "
            f"written to {args.out}",
            file=sys.stderr,
        )
    return EXIT_OK
