"""Vectorising the corpus: our field-group vectoriser against one TfidfVectorizer.

    python -m bench.vectorise [--source ../shared/data/ctg-studies.json.zip] [--jobs 2]
    python -m bench.vectorise --only ours|baseline     # one side, for paired runs
    python -m bench.vectorise --only queries           # thin records read as queries

Reads the records once (not timed), then times in this process, one after the other:

- ``FieldGroupVectorizer(n_jobs=jobs).fit_transform``: the default field groups (BM25
  weights, phrases and n-grams, abbreviations), terms counted by the compiled pass of
  ``recommender.text.tokenizer`` in chunks on ``jobs`` threads;
- the baseline: ``TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english")``
  (``recommender.evaluation.baselines.plain_tfidf``), float32, one process, over the plain
  baselines' concatenated text (titles, summaries, conditions, keywords, intervention
  names); with ``--weak-baseline`` also scikit-learn's default ``TfidfVectorizer`` over
  the same text, as a second, labelled row.

With ``--only`` just that side runs and prints one JSON line (its seconds and the
process's peak memory), so a timer of whole processes can alternate the two over several runs.
``--only queries`` fits ours, then times ``transform_queries`` over every record with no
condition and no intervention (what the evaluation's thin regime and a batch of drafts
do; such a record also reads its prose into those two groups) against ``transform`` of
the same records (what an indexed row of them costs).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common import Timer, print_table, write_result
from recommender.evaluation.baselines import concatenated_text, plain_tfidf
from recommender.ingest import read_records
from recommender.text import FieldGroupVectorizer


def ours(records, jobs: int):
    return FieldGroupVectorizer(n_jobs=jobs).fit_transform(records)


def baseline(records, jobs: int, *, weak: bool = False):
    texts = [concatenated_text(r) for r in records]
    with Timer() as timer:
        vectorizer = TfidfVectorizer(dtype=np.float32) if weak else plain_tfidf()
        matrix = vectorizer.fit_transform(texts)
    return matrix, timer.seconds


def thin_queries(records, jobs: int) -> dict[str, float | int]:
    """Seconds of ``transform_queries`` and of ``transform`` over the thin records."""
    vectorizer = FieldGroupVectorizer(n_jobs=jobs).fit(records)
    thin = [r for r in records if not r.conditions and not r.interventions]
    with Timer() as as_rows:
        rows = vectorizer.transform(thin)
    with Timer() as as_queries:
        queries = vectorizer.transform_queries(thin)
    return {"records": len(thin), "transform_seconds": round(as_rows.seconds, 2),
            "transform_queries_seconds": round(as_queries.seconds, 2),
            "rows_nnz": int(rows.nnz), "nnz": int(queries.nnz)}  # fmt: skip


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.vectorise`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.vectorise", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--source", type=Path, default=Path("../shared/data/ctg-studies.json.zip"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "baseline", "queries"])
    parser.add_argument("--weak-baseline", action="store_true", help="also the default TF-IDF")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    records, _ = read_records([args.source])

    if args.only == "ours":
        with Timer() as timer:
            X = ours(records, args.jobs)
        write_result(None, side="ours", seconds=round(timer.seconds, 2), nnz=int(X.nnz))
        return
    if args.only == "queries":
        write_result(None, side="queries", **thin_queries(records, args.jobs))
        return
    if args.only == "baseline":
        B, seconds = baseline(records, args.jobs)
        write_result(None, side="baseline", seconds=round(seconds, 2), nnz=int(B.nnz))
        return

    with Timer() as timer:
        X = ours(records, args.jobs)
    B, base_seconds = baseline(records, args.jobs)
    rows = [
        {"vectoriser": f"FieldGroupVectorizer, {args.jobs} threads",
         "seconds": round(timer.seconds, 1),
         "features": X.shape[1], "non-zeros": X.nnz,
         "vs baseline": f"{base_seconds / timer.seconds:.2f}x faster"},
        {"vectoriser": "plain TfidfVectorizer, one process (baseline)",
         "seconds": round(base_seconds, 1), "features": B.shape[1], "non-zeros": B.nnz},
    ]  # fmt: skip
    if args.weak_baseline:
        W, weak_seconds = baseline(records, args.jobs, weak=True)
        rows.append({"vectoriser": "default TfidfVectorizer (weak)",
                     "seconds": round(weak_seconds, 1), "features": W.shape[1],
                     "non-zeros": W.nnz})  # fmt: skip
    print(f"vectorising {len(records):,} studies from {args.source}")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
