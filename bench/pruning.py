"""How the pruned search's settings trade build time for recall, on a built index.

    python -m bench.pruning [--index models/index] [--sample 1000] \\
        --setting 250,5000,50 --setting 200,5000,50 ...

Each ``--setting`` is ``candidates,max_postings,query_terms`` (see
:class:`recommender.neighbours.CosineNeighbours`); the first one given is the row the
others are compared with (the default settings are ``250,5000,50`` for k = 50). Each
runs the whole all-pairs search over the index's vectors on ``--jobs`` threads (the
search a build runs) and is scored against exact lists of ``--sample`` random rows,
made once with the index's own postings: recall@10 and recall@k.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.common import Timer, print_table, recall_at
from recommender.index import TrialIndex
from recommender.neighbours import CosineNeighbours


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.pruning`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pruning", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index", type=Path, default=Path("models/index"))
    parser.add_argument("--setting", action="append", required=True,
                        help="candidates,max_postings,query_terms")  # fmt: skip
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    index = TrialIndex.load(args.index, verify=False)
    X, k = index.vectors, args.k
    rows = np.sort(np.random.default_rng(args.seed).choice(X.shape[0], args.sample, replace=False))
    exact, _ = index.search.kneighbors(X[rows], k, exclude=rows)
    table = []
    for setting in args.setting:
        candidates, max_postings, query_terms = (int(v) for v in setting.split(","))
        search = CosineNeighbours(
            prunable=index.vectorizer.prunable_columns(), candidates=candidates,
            max_postings=max_postings, query_terms=query_terms, n_jobs=args.jobs,
        ).fit(X)  # fmt: skip
        with Timer() as timer:
            found, _ = search.all_kneighbors(X, k)
        table.append({"setting": setting, "seconds": round(timer.seconds, 1),
                      "recall@10": round(recall_at(found[rows], exact, 10), 4),
                      f"recall@{k}": round(recall_at(found[rows], exact, k), 4)})  # fmt: skip
        print(table[-1], flush=True)
    first = table[0]["seconds"]
    for row in table:
        row[f"vs {table[0]['setting']}"] = f"{first / row['seconds']:.2f}x"
    print(
        f"\npruned search settings on {args.index} ({X.shape[0]:,} trials, k = {k}, "
        f"{args.jobs} threads; recall on {args.sample:,} random rows against exact lists)"
    )
    print_table(table, list(table[0]))


if __name__ == "__main__":
    main()
