"""Compare the default index with the baselines on the development label set.

Reproduces the tables of ``docs/evaluation.md``. Every system is built in memory over
the legacy XML subset of the shared corpus (6,786 trials, every field present) and
scored on ``data/dev-labels/mesh-dev.json`` in both protocols, full ranking and
re-ranking of the judged candidates; the reference case (NCT05940610's five related
trials) is scored on an index of the committed sample. About a minute on 2 cores.

Usage::

    python scripts/evaluate_dev.py [--data ../shared/data] [--out results.md]
        [--held-out] [--reference sample|full|none]

``--held-out`` scores the qualifying queries *not* sampled into the label file (the
same rule), to check that tuning on the file did not just fit its 500 queries.
``--reference full`` scores the reference case on the full 114k corpus instead
(vectorising it once per system: about ten minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from recommender.core import TrialRecord
from recommender.evaluation import (
    EvaluationResult,
    LabelSet,
    MeshRule,
    Ranker,
    build_dev_labels,
    evaluate,
    load_labels,
    meta_path,
    metric_names,
    parse_ks,
)
from recommender.evaluation.baselines import (
    MESH_FIELDS,
    BM25Ranker,
    default_fields,
    field_group_ranker,
    tfidf_ranker,
    without_fields,
)
from recommender.ingest import read_records
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup

REPO = Path(__file__).resolve().parents[1]
DEV_LABELS = REPO / "data" / "dev-labels" / "mesh-dev.json"
SAMPLE = REPO / "data" / "sample"
XML_SUBSET = "AllPublicXML-2023-subset.zip"
REFERENCE_QUERY = "NCT05940610"

Factory = Callable[[Sequence[TrialRecord]], Ranker]


def default_data_dir() -> Path:
    """``$RECOMMENDER_DATA``, else ``<repo>/../shared/data`` (as the tests look)."""
    return Path(os.environ.get("RECOMMENDER_DATA", REPO.parent / "shared" / "data"))


def _groups_ranker(groups: Sequence[FieldGroup]) -> Factory:
    return lambda records: field_group_ranker(records, groups, n_jobs=2)


def systems(groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS) -> dict[str, tuple[bool, Factory]]:
    """``{name: (reads MeSH, factory)}`` of every system in the comparison."""
    no_mesh = without_fields(groups, MESH_FIELDS)
    text, text_no_mesh = default_fields(groups), default_fields(no_mesh)
    out: dict[str, tuple[bool, Factory]] = {
        "default index": (True, _groups_ranker(groups)),
        "default index, no MeSH": (False, _groups_ranker(no_mesh)),
        "TF-IDF, one field (baseline)": (True, lambda r: tfidf_ranker(r, text)),
        "TF-IDF, one field, no MeSH": (False, lambda r: tfidf_ranker(r, text_no_mesh)),
        "BM25 (bm25s)": (True, lambda r: BM25Ranker(r, text)),
        "BM25, no MeSH": (False, lambda r: BM25Ranker(r, text_no_mesh)),
    }
    stripped = {g.name: g for g in no_mesh}
    for group in groups:
        reads_mesh = bool(set(group.fields) & set(MESH_FIELDS))
        out[f"{group.name} group alone"] = (reads_mesh, _groups_ranker([group]))
        if reads_mesh and group.name in stripped:
            out[f"{group.name} group alone, no MeSH"] = (
                False,
                _groups_ranker([stripped[group.name]]),
            )
    return out


def held_out_labels(records: Sequence[TrialRecord], labels_path: Path) -> LabelSet:
    """The queries the label file's rule qualifies but its sample left out."""
    rule = MeshRule(**json.loads(meta_path(labels_path).read_text())["rule"])
    everything = build_dev_labels(records, MeshRule(**{**vars(rule), "max_queries": 10**9}))
    dev = build_dev_labels(records, rule)
    judged = {q: everything.judgements[q] for q in dev.held_out}
    return LabelSet(judged, graded=True)


def reference_records(kind: str, data: Path) -> list[TrialRecord]:
    """Records of the corpus the reference case is scored on."""
    if kind == "full":
        sources = [data / "ctg-studies.json.zip", data / "seed-cluster"]
    else:
        sources = [SAMPLE / "ctg-studies-sample.json.zip", SAMPLE / "seed-cluster"]
    return read_records(sources)[0]


def run(
    records: Sequence[TrialRecord],
    labels: LabelSet,
    reference: tuple[list[TrialRecord], LabelSet] | None,
    ks: Sequence[int],
    chosen: dict[str, tuple[bool, Factory]],
    log: Callable[[str], None],
) -> list[dict]:
    """Build and score every system; one row of results per system."""
    rows = []
    for name, (mesh, factory) in chosen.items():
        started = time.perf_counter()
        ranker = factory(records)
        row = {
            "system": name,
            "mesh": mesh,
            "full": evaluate(ranker, labels, ks),
            "rerank": evaluate(ranker, labels, ks, rerank=True),
        }
        if reference is not None:
            ref_records, ref_labels = reference
            row["reference"] = evaluate(factory(ref_records), ref_labels, ks)
        rows.append(row)
        log(f"{name}: {time.perf_counter() - started:.1f} s")
    return rows


def _cell(result: EvaluationResult, metric: str) -> str:
    return f"{result.metrics[metric]:.3f}"


def summary_table(rows: list[dict], ks: Sequence[int]) -> str:
    """The headline table: a few full-ranking, re-ranking and reference numbers."""
    top = max(ks)
    full = ["ndcg@5", f"ndcg@{top}", "precision@5", f"recall@{top}", f"hit@{top}", f"mrr@{top}"]
    rerank = ["ndcg@5", f"ndcg@{top}"]
    reference = ["recall@5", f"recall@{top}"] if "reference" in rows[0] else []
    header = ["system", "MeSH in vectors", *full, *(f"rerank {m}" for m in rerank)]
    header += [f"ref. {m}" for m in reference]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["system"], "yes" if row["mesh"] else "no"]
        cells += [_cell(row["full"], m) for m in full]
        cells += [_cell(row["rerank"], m) for m in rerank]
        cells += [_cell(row["reference"], m) for m in reference]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def full_table(rows: list[dict], protocol: str, ks: Sequence[int]) -> str:
    """Every metric of one protocol (``full``, ``rerank`` or ``reference``)."""
    names = metric_names(ks)
    lines = ["| system | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for row in rows:
        lines.append(
            f"| {row['system']} | " + " | ".join(_cell(row[protocol], m) for m in names) + " |"
        )
    return "\n".join(lines)


def report(rows: list[dict], ks: Sequence[int], labels_name: str, n_queries: int) -> str:
    parts = [
        f"Labels: {labels_name}, {n_queries} queries.",
        "",
        summary_table(rows, ks),
        "",
        "Full ranking, every metric:",
        "",
        full_table(rows, "full", ks),
        "",
        "Re-ranking of the judged candidates, every metric:",
        "",
        full_table(rows, "rerank", ks),
    ]
    if "reference" in rows[0]:
        parts += ["", "Reference case, every metric:", "", full_table(rows, "reference", ks)]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--labels", type=Path, default=DEV_LABELS)
    parser.add_argument("--held-out", action="store_true", help="score the held-out queries")
    parser.add_argument("--reference", choices=("sample", "full", "none"), default="sample")
    parser.add_argument("--k", default="1,5,10")
    parser.add_argument("--only", action="append", help="run only systems with this in the name")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    args = parser.parse_args(argv)
    ks = parse_ks(args.k)

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    records = read_records([args.data / XML_SUBSET])[0]
    labels = held_out_labels(records, args.labels) if args.held_out else load_labels(args.labels)
    reference = None
    if args.reference != "none":
        seeds = SAMPLE / "seed-cluster" / "expected_related.json"
        reference = (reference_records(args.reference, args.data), load_labels(seeds))
    chosen = systems()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if any(o in k for o in args.only)}
    rows = run(records, labels, reference, ks, chosen, log)
    name = f"{args.labels.name} ({'held-out queries' if args.held_out else 'dev queries'})"
    text = report(rows, ks, name, len(labels))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
