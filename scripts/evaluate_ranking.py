"""The whole quality table: the default ranking against plain TF-IDF and BM25.

Builds the three systems over the full shared corpus (``ctg-studies.json.zip``, the
legacy XML subset's complete records, then ``seed-cluster/``: ``make serve``'s
sources) and scores each, in the same run, on every shared label set:
publication sisters, SECRET (full retrieval and re-ranking of its judged candidates),
TREC 2021 patient descriptions (free text) and the MeSH regression set; every trial
query both as indexed (``full``) and reduced to a thin record (``thin``: titles,
summary and description only). For each it prints the default's ratio to the better
baseline (its gain, for re-ranking) with a 95% bootstrap interval and its spread over
five folds of the queries, queries that share relevant trials (the trials of one
programme) drawn and folded together: the table of ``docs/evaluation.md``. About ten
minutes on 2 cores. The default is scored by exact search over vectors made in memory; with
``--index`` it is scored as that built index answers (its stored lists).

Usage::

    python scripts/evaluate_ranking.py [--data ../shared/data] [--labels ../shared/labels]
                                       [--index models/index] [--json rows.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from recommender.evaluation.comparison import (
    SYSTEMS,
    compare_systems,
    format_quality_table,
    quality_rows,
    shared_label_sets,
    with_built_index,
)
from recommender.index import TrialIndex, TrialIndexError
from recommender.ingest import extract_sources, read_records

REPO = Path(__file__).resolve().parents[1]


def make_parser() -> argparse.ArgumentParser:
    """The options of the script (the docs' commands are checked against it)."""
    data = Path(os.environ.get("RECOMMENDER_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(
        prog="python scripts/evaluate_ranking.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=data, help="registry extract (%(default)s)")
    parser.add_argument(
        "--labels", type=Path, default=data.parent / "labels", help="label sets (%(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--index",
        type=Path,
        help="score the default as this built index answers (its stored lists), not by "
        "exact search in memory; built from the same --data",
    )
    return parser


def main() -> None:
    args = make_parser().parse_args()
    records, _ = read_records(extract_sources(args.data), n_jobs=-1)
    specs = shared_label_sets(args.labels, REPO)
    systems = SYSTEMS
    if args.index:
        try:
            systems = with_built_index(TrialIndex.load(args.index), records)
        except (ValueError, TrialIndexError) as exc:
            sys.exit(f"evaluate_ranking: {exc}")
    rows = quality_rows(compare_systems(records, specs, systems), specs)
    print(f"nDCG over {len(records):,} trials; ratio (or gain) of the default to the better")
    print("baseline, with its 95% paired bootstrap interval and its values on 5 query folds;")
    print("queries that share relevant trials are drawn and folded as one group\n")
    print(format_quality_table(rows))
    met = sum(row.met for row in rows)
    print(f"\ntargets met: {met} of {len(rows)}")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1) + "\n")


if __name__ == "__main__":
    main()
