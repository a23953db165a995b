"""``recommender evaluate``: ranking metrics of an index on labels it did not write."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recommender.cli._common import EXIT_OK, BadInput
from recommender.core import DEFAULT_INDEX
from recommender.index import TrialIndex


def add_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="ranking metrics of an index on a labels file or folder"
    )
    evaluate.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    evaluate.add_argument(
        "--labels",
        type=Path,
        required=True,
        help='JSON: {"NCTquery": ["NCTrelated", ...]} or {"NCTquery": {"NCTid": 0|1|2}}; '
        "or a folder of free-text queries in the TREC/BEIR layout (queries.jsonl with "
        '{"_id", "text"} lines, qrels.tsv with query-id, corpus-id, score 0|1|2)',
    )
    evaluate.add_argument("--k", default="1,5,10", help="cut-offs (%(default)s)")
    evaluate.add_argument(
        "--rerank",
        action="store_true",
        help="order only each query's judged candidates (graded labels only)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from recommender.evaluation import (
        IndexRanker,
        evaluate,
        evaluate_text,
        format_table,
        load_labels,
        load_text_queries,
        parse_ks,
    )

    try:
        ks = parse_ks(args.k)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if args.labels.is_dir():
        if args.rerank:
            raise BadInput(
                f"--rerank needs graded judgements of indexed query trials; {args.labels} "
                "holds free-text queries, which are always ranked over the whole index"
            )
        queries = load_text_queries(args.labels)
        if queries.ignored_judgements:
            print(
                f"recommender evaluate: {queries.ignored_judgements:,} qrels lines of "
                "query ids not in queries.jsonl ignored",
                file=sys.stderr,
            )
        result = evaluate_text(IndexRanker(TrialIndex.load(args.index)), queries, ks)
    else:
        labels = load_labels(args.labels)
        if args.rerank and not labels.graded:
            raise BadInput(f"--rerank needs graded judgements; {args.labels} is a related list")
        ranker = IndexRanker(TrialIndex.load(args.index))
        result = evaluate(ranker, labels, ks, rerank=args.rerank)
    print(json.dumps(result.to_json(), indent=1) if args.json else format_table(result, ks))
    return EXIT_OK
