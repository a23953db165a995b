"""``recommender labels``: the MeSH development label set (``docs/evaluation.md``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recommender.cli._common import EXIT_OK, positive_int


def add_parser(commands: argparse._SubParsersAction) -> None:
    labels = commands.add_parser(
        "labels", help="build the MeSH development label set (docs/evaluation.md)"
    )
    labels.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="registry file or folder, e.g. ../shared/data/AllPublicXML-2023-subset.zip",
    )
    labels.add_argument("--out", type=Path, required=True, help="labels JSON to write")
    labels.add_argument(
        "--max-queries",
        type=positive_int,
        default=500,
        metavar="N",
        help="query trials kept at most, of those the rule finds relevant trials for "
        "(the same ones each run: chosen by a hash of their ids) (%(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from recommender.evaluation import MeshRule, build_dev_labels, meta_path, write_labels
    from recommender.ingest import read_records
    from recommender.pipelines import describe_source

    records, _ = read_records(args.source)
    built = build_dev_labels(records, MeshRule(max_queries=args.max_queries))
    path = write_labels(built.judgements, args.out)
    meta = built.meta(source={"sources": [describe_source(s) for s in args.source]})
    meta_path(path).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: {built.counts['queries']:,} queries, {built.counts['judgements']:,} judgements")
    print(f"{meta_path(path)}: the rule and counts")
    return EXIT_OK
