"""All-pairs top-k neighbours: our search against sparse_dot_topn on the same matrix.

    python -m bench.neighbours [--index models/index] [--k 50] [--jobs 2] [--rows N]

Loads the vectors of a built index (by default the full 114,697-study corpus plus the
seed cluster), then, each method in its own process so each has its own peak memory:

- ``pruned``: ours, the default (candidates from each row's 50 heaviest terms but
  frequent free-text words, each term proposing at most its 5,000 heaviest rows;
  candidates rescored exactly, each scored pair offered to both its rows);
- ``exact``: ours, every term accumulated (the reference for recall);
- ``plain`` (the baseline): what a competent user writes, ``sp_matmul_topn(X, X.T,
  top_n=k + 1, n_threads=jobs)`` from ``sparse_dot_topn`` over the plain TF-IDF matrix
  (``TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english")`` over the
  records' concatenated text, built before the clock starts);
- ``sparse_dot_topn``: the same library call over *our* matrix, so the search
  itself is compared on equal work (recall against exact is meaningful here only);
- ``scipy`` (with ``--scipy``): chunked ``X[block] @ X.T`` and ``argpartition``.

Prints seconds, the ratio to the baseline, recall@10 and recall@k against exact, and
peak memory. ``--rows N`` times the first N query rows only (all rows are candidates;
for ``pruned`` this is the one-sided search of ``rows_kneighbors``, without the pairs
other rows' candidates bring, so its recall is a little lower than a full run's).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from bench.common import Timer, load_vectors, print_table, recall_at, run_child, write_result
from recommender.index import read_meta
from recommender.neighbours import CosineNeighbours

METHODS = ("pruned", "exact", "plain", "sparse_dot_topn", "scipy")


LABELS = {
    "plain": "sparse_dot_topn, plain TF-IDF (baseline)",
    "sparse_dot_topn": "sparse_dot_topn, our matrix",
}


def run_method(method: str, X, k: int, jobs: int, rows: int, prunable) -> np.ndarray:
    """Top-k neighbour ids (self excluded) of the first ``rows`` rows of X among all."""
    if method in ("pruned", "exact"):
        search = CosineNeighbours(method=method, prunable=prunable, n_jobs=jobs).fit(X)
        search.rows_kneighbors(X, k, 0, 1)  # compile the kernels outside the timing
        with Timer() as timer:
            if rows == X.shape[0]:
                ids, _ = search.all_kneighbors(X, k)
            else:
                work = (delayed(search.rows_kneighbors)(X, k, a, b) for a, b in search.blocks(rows))
                ids = np.vstack([i for i, _ in Parallel(n_jobs=jobs, prefer="threads")(work)])
        return ids, timer.seconds
    with Timer() as timer:
        if method in ("plain", "sparse_dot_topn"):
            from sparse_dot_topn import sp_matmul_topn

            found = sp_matmul_topn(X[:rows], X.T.tocsr(), top_n=k + 1, n_threads=jobs, sort=True)
            ids = _drop_self(found, k)
        else:
            ids = _scipy_top_k(X, k, rows)
    return ids, timer.seconds


def _drop_self(found, k: int) -> np.ndarray:
    ids = np.full((found.shape[0], k), -1, dtype=np.int32)
    for i in range(found.shape[0]):
        row = found.indices[found.indptr[i] : found.indptr[i + 1]]
        row = row[row != i][:k]
        ids[i, : len(row)] = row
    return ids


def _scipy_top_k(X, k: int, rows: int, block: int = 256) -> np.ndarray:
    XT = X.T.tocsr()
    ids = np.full((rows, k), -1, dtype=np.int32)
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        scores = (X[start:stop] @ XT).toarray()
        scores[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        ids[start:stop] = np.take_along_axis(top, order, 1)
    return ids


def child(args: argparse.Namespace) -> None:
    """One method in this process: write its ids and figures for the parent."""
    X = plain_vectors(args.index) if args.child == "plain" else load_vectors(args.index)
    rows = args.rows or X.shape[0]
    ids, seconds = run_method(args.child, X, args.k, args.jobs, rows, _prunable(args.index, X))
    np.save(Path(args.result).with_suffix(".npy"), ids)
    write_result(args.result, method=args.child, seconds=round(seconds, 2), rows=rows)


def plain_vectors(index: Path):
    """The plain TF-IDF matrix of the index's records (the baseline's own vectors)."""
    from recommender.evaluation.baselines import concatenated_text, plain_tfidf
    from recommender.index import TrialIndex

    records = TrialIndex.load(index, verify=False).records
    texts = [concatenated_text(records[i]) for i in range(len(records))]
    return plain_tfidf().fit_transform(texts).tocsr()


def _prunable(index: Path, X) -> np.ndarray:
    """The columns the build lets the search prune: those of prune_frequent groups."""
    meta = read_meta(index)
    mask = np.zeros(X.shape[1], dtype=bool)
    start = 0
    for group in meta["vectorizer"]["groups"]:
        size = meta["counts"]["vocabulary"][group["name"]]
        mask[start : start + size] = group.get("prune_frequent", False)
        start += size
    return mask


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.neighbours`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.neighbours", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--index", type=Path, default=Path("models/index"))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=0, help="query rows timed (0: all)")
    parser.add_argument("--scipy", action="store_true", help="also time chunked scipy")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    if args.child:
        return child(args)

    methods = ["exact", "pruned", "plain", "sparse_dot_topn"] + (["scipy"] * args.scipy)
    common = ["--index", str(args.index), "--k", str(args.k), "--jobs", str(args.jobs)]
    common += ["--rows", str(args.rows)]
    results, ids = {}, {}
    for method in methods:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            results[method] = run_child("bench.neighbours", [*common, "--child", method],
                                        result=result)  # fmt: skip
            ids[method] = np.load(result.with_suffix(".npy"))
    baseline = results["plain"]["seconds"]
    rows = []
    for method in methods:
        r = results[method]
        same_matrix = method != "plain"
        rows.append({
            "method": LABELS.get(method, method),
            "seconds": r["seconds"],
            "x faster than baseline": f"{baseline / r['seconds']:.2f}",
            "recall@10": f"{recall_at(ids[method], ids['exact'], 10):.4f}" if same_matrix else "-",
            f"recall@{args.k}": (f"{recall_at(ids[method], ids['exact'], args.k):.4f}"
                                 if same_matrix else "-"),
            "peak MB": r["peak_mb"],
        })  # fmt: skip
    n = results["exact"]["rows"]
    print(f"\nall-pairs top-{args.k}: {n:,} query rows of {args.index}, {args.jobs} threads")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
