"""The development label set: related trials defined by shared MeSH terms.

Nobody has judged which of the registry's trials are alike, so the development set
uses the registry's own indexing as a stand-in. From the records of one source (the
legacy XML subset, whose records carry every field):

1. **Pool**: the trials with at least one condition MeSH term *and* at least one
   intervention MeSH term (terms compared case-insensitively, as sets).
2. **Relevant** (grade >= 1): another pool trial whose condition-MeSH Jaccard with
   the query is >= ``min_condition_jaccard`` *and* whose intervention-MeSH Jaccard is
   >= ``min_intervention_jaccard``. Grade 2 when both sets are identical, else 1.
   The query itself is never a candidate.
3. **Queries**: pool trials with at least ``min_relevant`` relevant trials; when more
   than ``max_queries`` qualify, the ``max_queries`` with the smallest
   ``sha256(f"{seed}:{nct_id}")`` are kept (deterministic, order-independent).
4. **Judged non-relevant** (grade 0, for re-ranking): pool trials sharing at least
   one condition or intervention MeSH term with the query but not relevant, the
   ``near_misses`` with the smallest ``sha256(f"{seed}:{query}:{candidate}")``.

Known weakness, stated in ``docs/evaluation.md``: the default index reads the same
MeSH terms, so it is partly graded on its own input. Trials outside the pool (no
intervention MeSH: most behavioural, device and procedure trials) are never
relevant, even when a reader would call them so.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.core import TrialRecord


@dataclass(frozen=True)
class MeshRule:
    """Parameters of the labelling rule (see the module docstring)."""

    min_condition_jaccard: float = 0.5
    min_intervention_jaccard: float = 0.5
    min_relevant: int = 2
    max_queries: int = 500
    near_misses: int = 20
    seed: int = 20261125

    def __post_init__(self) -> None:
        for name in ("min_condition_jaccard", "min_intervention_jaccard"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.min_relevant < 1 or self.max_queries < 1 or self.near_misses < 0:
            raise ValueError("min_relevant and max_queries must be >= 1, near_misses >= 0")

    def describe(self) -> str:
        """The rule in one paragraph, with this rule's numbers."""
        return (
            "Pool: trials with >= 1 condition MeSH term and >= 1 intervention MeSH term. "
            f"Relevant: another pool trial with condition-MeSH Jaccard >= "
            f"{self.min_condition_jaccard} and intervention-MeSH Jaccard >= "
            f"{self.min_intervention_jaccard} (grade 2 if both term sets are identical, "
            f"else 1). Queries: pool trials with >= {self.min_relevant} relevant trials, "
            f"the {self.max_queries} smallest by sha256('{self.seed}:' + id). Grade 0: up to "
            f"{self.near_misses} other pool trials sharing a condition or intervention "
            f"MeSH term, smallest by sha256('{self.seed}:' + query + ':' + candidate)."
        )


@dataclass
class DevLabels:
    """A built label set: graded judgements, the rule and the counts behind it."""

    judgements: dict[str, dict[str, int]]
    rule: MeshRule
    counts: dict[str, float]
    held_out: list[str]

    def meta(self, source: dict | None = None) -> dict:
        """JSON-ready description saved beside the labels."""
        return {
            "rule": asdict(self.rule),
            "description": self.rule.describe(),
            "counts": self.counts,
            "source": source or {},
        }


def _term_sets(records: Sequence[TrialRecord], attribute: str) -> sp.csr_matrix:
    """Binary (n_records, n_terms) matrix of each record's MeSH term set."""
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, record in enumerate(records):
        for term in {t.casefold() for t in getattr(record, attribute)}:
            rows.append(row)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(records), len(vocabulary)))


def _jaccard(sets: sp.csr_matrix) -> sp.csr_matrix:
    """Pairwise Jaccard of the rows of a binary matrix, stored where the rows meet.

    Returns
    -------
    csr_matrix of shape (n, n), dtype float64
        ``|A & B| / |A | B|`` for every pair sharing a term (the diagonal included).
    """
    overlap = (sets @ sets.T).tocoo()
    sizes = np.asarray(sets.sum(axis=1)).ravel()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    values = overlap.data / union
    return sp.csr_matrix((values, (overlap.row, overlap.col)), shape=overlap.shape)


def _order_key(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join([str(seed), *parts]).encode()).hexdigest()


def build_dev_labels(records: Sequence[TrialRecord], rule: MeshRule = MeshRule()) -> DevLabels:
    """Apply ``rule`` to ``records`` (any order; ids must be unique).

    Returns
    -------
    DevLabels
        ``judgements`` holds the sampled queries; ``held_out`` the other qualifying
        queries, for checking that tuning did not just fit the sample.
    """
    pool = sorted(
        (r for r in records if r.condition_mesh_terms and r.intervention_mesh_terms),
        key=lambda r: r.nct_id,
    )
    ids = [r.nct_id for r in pool]
    conditions = _jaccard(_term_sets(pool, "condition_mesh_terms"))
    interventions = _jaccard(_term_sets(pool, "intervention_mesh_terms"))
    # Entry-wise minimum over pairs sharing both kinds of term: one threshold test
    # per kind, as sparse arrays (the pairs sharing neither are never stored).
    both_cond = conditions.multiply(interventions > 0).tocsr()
    both_int = interventions.multiply(conditions > 0).tocsr()
    relevant_mask = (both_cond >= rule.min_condition_jaccard).multiply(
        both_int >= rule.min_intervention_jaccard
    )
    relevant_mask.setdiag(False)
    relevant_mask = sp.csr_matrix(relevant_mask, dtype=bool)
    relevant_mask.eliminate_zeros()
    n_relevant = np.diff(relevant_mask.indptr)
    eligible = [ids[i] for i in np.flatnonzero(n_relevant >= rule.min_relevant)]
    eligible.sort(key=lambda q: _order_key(rule.seed, q))
    chosen = set(eligible[: rule.max_queries])
    held_out = sorted(set(eligible) - chosen)
    shares_any = ((conditions + interventions) > 0).tocsr()
    position = {nct_id: i for i, nct_id in enumerate(ids)}
    judgements = {}
    for query in sorted(chosen):
        row = position[query]
        judgements[query] = _judge(row, ids, relevant_mask, both_cond, both_int, shares_any, rule)
    counts = _counts(len(records), len(pool), len(eligible), judgements)
    return DevLabels(judgements, rule, counts, held_out)


def _judge(row, ids, relevant_mask, both_cond, both_int, shares_any, rule) -> dict[str, int]:
    relevant = relevant_mask.indices[relevant_mask.indptr[row] : relevant_mask.indptr[row + 1]]
    judged = {}
    for col in relevant:
        identical = both_cond[row, col] == 1.0 and both_int[row, col] == 1.0
        judged[ids[col]] = 2 if identical else 1
    near = [
        ids[col]
        for col in shares_any.indices[shares_any.indptr[row] : shares_any.indptr[row + 1]]
        if col != row and ids[col] not in judged
    ]
    near.sort(key=lambda c: _order_key(rule.seed, ids[row], c))
    judged.update(dict.fromkeys(near[: rule.near_misses], 0))
    return dict(sorted(judged.items()))


def _counts(n_records: int, n_pool: int, n_eligible: int, judgements: dict) -> dict[str, float]:
    grades = [g for judged in judgements.values() for g in judged.values()]
    relevant = [sum(g > 0 for g in judged.values()) for judged in judgements.values()]
    return {
        "records_read": n_records,
        "pool": n_pool,
        "eligible_queries": n_eligible,
        "queries": len(judgements),
        "judgements": len(grades),
        "grade_2": grades.count(2),
        "grade_1": grades.count(1),
        "grade_0": grades.count(0),
        "relevant_per_query_mean": round(float(np.mean(relevant)), 2) if relevant else 0.0,
        "relevant_per_query_median": float(np.median(relevant)) if relevant else 0.0,
        "relevant_per_query_max": max(relevant, default=0),
    }


def write_labels(judgements: dict[str, dict[str, int]], path: str | os.PathLike) -> Path:
    """Write graded judgements as JSON, one query per line (small, reviewable diffs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{json.dumps(q)}: {json.dumps(judged, separators=(',', ':'))}"
        for q, judged in sorted(judgements.items())
    ]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return path


def meta_path(labels_path: str | os.PathLike) -> Path:
    """Where the rule and counts of a labels file go: ``X.json`` -> ``X.meta.json``."""
    path = Path(labels_path)
    return path.with_name(path.stem + ".meta.json")
