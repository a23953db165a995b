"""The default ranking against plain TF-IDF and BM25 on the development label sets.

Builds all three over the full shared corpus (``ctg-studies.json.zip`` then
``seed-cluster/``) and prints nDCG@10 on ``pubmed-sisters-dev.json`` (related lists),
``trec-ct-2021/`` (free text, graded) and the MeSH regression set, then the default's
gain over each baseline with 95% bootstrap intervals: the tables of
``docs/evaluation.md``. About five minutes on 2 cores.

Usage::

    python scripts/evaluate_ranking.py [--data ../shared/data] [--labels ../shared/labels]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from recommender.evaluation.comparison import compare_systems, paired_differences
from recommender.ingest import read_records

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = Path(os.environ.get("RECOMMENDER_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--labels", type=Path, default=data.parent / "labels")
    args = parser.parse_args()
    records, _ = read_records([args.data / "ctg-studies.json.zip", args.data / "seed-cluster"])
    records.sort(key=lambda r: r.nct_id)
    label_sets = {
        "pubmed-sisters-dev": args.labels / "pubmed-sisters-dev.json",
        "trec-ct-2021": args.labels / "trec-ct-2021",
        "mesh-dev (regression)": REPO / "data" / "dev-labels" / "mesh-dev.json",
    }
    results = compare_systems(records, label_sets)
    print(f"nDCG@10 over {len(records):,} trials")
    print("| system | " + " | ".join(label_sets) + " |")
    print("|---" * (len(label_sets) + 1) + "|")
    for system, by_label in results.items():
        cells = [f"{by_label[label].metrics['ndcg@10']:.4f}" for label in label_sets]
        print(f"| {system} | " + " | ".join(cells) + " |")
    print("\ndefault minus baseline, nDCG@10, mean [95% bootstrap interval]")
    for baseline, by_label in paired_differences(results).items():
        cells = [f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]" for m, lo, hi in by_label.values()]
        print(f"| {baseline} | " + " | ".join(cells) + " |")
    trec = results["default"]["trec-ct-2021"]
    print(
        f"\ntrec-ct-2021: {trec.dropped_judgements:,} judgements dropped (trial not in the corpus)"
    )


if __name__ == "__main__":
    main()
