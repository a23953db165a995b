"""How well a trial described only by free text finds its related trials.

A user drafting a trial, or searching, has text rather than a registered record. Each
development query (``data/dev-labels/mesh-dev.json``) is turned into a text, as a draft
would read (its brief title and brief summary; or only one of them), vectorised in
one of two ways and searched over an index of the legacy XML subset, itself left out:

- ``summary only``: the text read as the trial's summary (the first session's choice);
- ``every group`` (the default now): the text read as one more item of every field
  group, so its words also meet condition, intervention and title terms.

Prints nDCG@10 and P@10 per combination, the registered records themselves as the
reference. Reproduces the table in ``docs/evaluation.md`` ("Free-text queries"); about
a minute on 2 cores.

Usage::

    python scripts/evaluate_text_queries.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.core import TrialRecord
from recommender.evaluation import load_labels, paired_bootstrap, query_metrics
from recommender.ingest import read_records
from recommender.neighbours import CosineNeighbours
from recommender.text import FieldGroupVectorizer

REPO = Path(__file__).resolve().parents[1]
DEV_LABELS = REPO / "data" / "dev-labels" / "mesh-dev.json"
DRAFT_ID = "NCT00000000"

TEXTS: dict[str, Callable[[TrialRecord], str]] = {
    "title + summary": lambda r: f"{r.brief_title}. {r.brief_summary}",
    "title only": lambda r: r.brief_title,
    "summary only": lambda r: r.brief_summary,
}


def as_summary(vectorizer: FieldGroupVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    return vectorizer.transform([TrialRecord(DRAFT_ID, brief_summary=t) for t in texts])


def in_every_group(vectorizer: FieldGroupVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    return vectorizer.transform([TrialRecord(DRAFT_ID)] * len(texts), free_texts=texts)


READINGS = {"summary only": as_summary, "every group (default)": in_every_group}


def per_query(search, vectors, rows, ids, queries, labels) -> dict[str, dict[str, float]]:
    found, _ = search.kneighbors(vectors, 10, exclude=rows)
    return {
        q: query_metrics([ids[i] for i in hits if i >= 0], labels.judgements[q], (10,))
        for q, hits in zip(queries, found, strict=True)
    }


def mean(metrics: dict[str, dict[str, float]], name: str) -> float:
    return float(np.mean([m[name] for m in metrics.values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("RECOMMENDER_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args()

    records, _ = read_records([args.data / "AllPublicXML-2023-subset.zip"])
    records.sort(key=lambda r: r.nct_id)
    ids = [r.nct_id for r in records]
    position = {nct_id: i for i, nct_id in enumerate(ids)}
    vectorizer = FieldGroupVectorizer(n_jobs=-1)
    vectors = vectorizer.fit_transform(records)
    search = CosineNeighbours(n_jobs=1).fit(vectors)
    labels = load_labels(DEV_LABELS)
    queries = [q for q in labels.judgements if q in position]
    rows = np.array([position[q] for q in queries], dtype=np.int64)

    print(f"{len(queries)} development queries over {len(records):,} trials (XML subset)")
    print(f"{'query text':18} {'read as':24} nDCG@10  P@10   nDCG@10 gain, 95% interval")
    record = per_query(search, vectors[rows], rows, ids, queries, labels)
    print(f"{'(the record)':18} {'registered record':24} {mean(record, 'ndcg@10'):.3f}    "
          f"{mean(record, 'precision@10'):.3f}")  # fmt: skip
    for text_name, text_of in TEXTS.items():
        texts = [text_of(records[i]) for i in rows]
        results = {}
        for reading_name, vectorise in READINGS.items():
            query_vectors = vectorise(vectorizer, texts)
            results[reading_name] = per_query(search, query_vectors, rows, ids, queries, labels)
        first = next(iter(results))
        for reading_name, metrics in results.items():
            gain = ""
            if reading_name != first:
                diff, low, high = paired_bootstrap(results[first], metrics, "ndcg@10")
                gain = f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"
            print(f"{text_name:18} {reading_name:24} {mean(metrics, 'ndcg@10'):.3f}    "
                  f"{mean(metrics, 'precision@10'):.3f}  {gain}")  # fmt: skip


if __name__ == "__main__":
    main()
