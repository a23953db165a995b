"""``recommender update``: new and changed studies added to an index without a rebuild."""

from __future__ import annotations

import argparse
from pathlib import Path

from recommender.cli._common import (
    EXIT_OK,
    BadInput,
    add_wait,
    checked,
    jobs,
    share,
    stderr_log,
)
from recommender.core import DEFAULT_INDEX


def add_parser(commands: argparse._SubParsersAction) -> None:
    update = commands.add_parser("update", help="add new and changed studies to an index")
    update.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    update.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="registry file or folder, e.g. a `recommender fetch` folder",
    )
    update.add_argument(
        "--snapshot",
        action="store_true",
        help="the sources hold the whole registry: remove studies absent from them",
    )
    update.add_argument(
        "--max-removed",
        type=checked(share),
        default=0.05,
        metavar="SHARE",
        help="refuse a --snapshot that removes more than this share of the index",
    )
    update.add_argument("--out", type=Path, help="write the result here instead of in place")
    update.add_argument("--jobs", type=jobs, default=-1, help="cores to use (-1: all)")
    update.add_argument(
        "--max-changed",
        type=checked(share),
        default=0.10,
        metavar="SHARE",
        help="advise a rebuild above this share of new/rewritten studies",
    )
    update.add_argument(
        "--max-unseen",
        type=checked(share),
        default=0.05,
        metavar="SHARE",
        help="advise a rebuild above this extra share of unknown words",
    )
    update.add_argument("--quiet", action="store_true", help="no progress")
    add_wait(update)


def run(args: argparse.Namespace) -> int:
    from recommender.pipelines.update import DriftThresholds, UpdateInputError, update_index

    try:
        summary = update_index(
            args.index,
            args.source,
            out=args.out,
            snapshot=args.snapshot,
            max_removed_share=args.max_removed,
            thresholds=DriftThresholds(args.max_changed, args.max_unseen),
            n_jobs=args.jobs,
            progress=not args.quiet,
            log=stderr_log(args.quiet),
            wait=args.wait,
        )
    except UpdateInputError as exc:
        raise BadInput(str(exc)) from None
    print(summary.format())
    return EXIT_OK
