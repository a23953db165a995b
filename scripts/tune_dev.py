"""Try changes to the default field groups on the development set, one at a time.

Each candidate is a change to ``DEFAULT_FIELD_GROUPS`` (a weight, n-grams, sublinear
tf, min_df/max_df, phrase terms, stop words, fields read). It is scored against the
current defaults by the per-query difference in nDCG@10 (full ranking) with a 95%
paired-bootstrap interval, and it *wins* only if all of these hold:

1. the interval on the 500 dev queries is above 0;
2. the held-out queries (the rule's other qualifying queries) gain too;
3. the same change, with the MeSH fields taken out of the vectors, does not lose
   (so the gain is not only the labels' MeSH terms read back);
4. the reference case holds on the committed sample (recall@5 = 1).

A winner still has to pass the full-corpus reference case
(``pytest tests/test_reference_case.py -m slow``) before it becomes a default.

Usage: ``python scripts/tune_dev.py [--only NAME] [--out tuning.md]`` (a few minutes)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from evaluate_dev import (
    DEV_LABELS,
    REPO,
    XML_SUBSET,
    default_data_dir,
    held_out_labels,
    reference_records,
)
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

import recommender.text as text
from recommender.baselines import MESH_FIELDS, field_group_ranker, without_fields
from recommender.evaluate import LabelSet, evaluate, load_labels, paired_bootstrap
from recommender.records import TrialRecord
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup, ItemAnalyzer

Groups = tuple[FieldGroup, ...]
METRIC = "ndcg@10"

# Words every trial text uses: none says what a trial is about.
TRIAL_WORDS = frozenset(
    ("study", "studies", "trial", "trials", "patient", "patients", "participants", "subjects",
     "subject", "treatment", "treatments", "therapy", "randomized", "randomised", "controlled",
     "clinical", "phase", "effect", "effects", "efficacy", "safety", "evaluate", "evaluation",
     "compare", "compared", "comparing", "versus", "vs", "group", "groups", "purpose", "aim",
     "primary", "secondary", "outcome", "outcomes")
)  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    name: str
    change: Callable[[Groups], Groups]
    stop_words: frozenset[str] | None = None  # None: the analyzer's default


def with_group(name: str, **changes) -> Callable[[Groups], Groups]:
    return lambda groups: tuple(replace(g, **changes) if g.name == name else g for g in groups)


def with_all(**changes) -> Callable[[Groups], Groups]:
    return lambda groups: tuple(replace(g, **changes) for g in groups)


def scaled(name: str, factor: float) -> Callable[[Groups], Groups]:
    return lambda groups: tuple(
        replace(g, weight=round(g.weight * factor, 3)) if g.name == name else g for g in groups
    )


def add_fields(name: str, *fields: str) -> Callable[[Groups], Groups]:
    return lambda groups: tuple(
        replace(g, fields=(*g.fields, *fields)) if g.name == name else g for g in groups
    )


def add_group(group: FieldGroup) -> Callable[[Groups], Groups]:
    return lambda groups: (*groups, group)


def candidates() -> list[Candidate]:
    out = []
    for g in DEFAULT_FIELD_GROUPS:
        out += [
            Candidate(f"{g.name} weight x0.5", scaled(g.name, 0.5)),
            Candidate(f"{g.name} weight x1.5", scaled(g.name, 1.5)),
        ]
    out += [
        Candidate("conditions n-grams (1, 2)", with_group("conditions", ngram_range=(1, 2))),
        Candidate("interventions n-grams (1, 1)", with_group("interventions", ngram_range=(1, 1))),
        Candidate("interventions n-grams (1, 3)", with_group("interventions", ngram_range=(1, 3))),
        Candidate("titles n-grams (1, 1)", with_group("titles", ngram_range=(1, 1))),
        Candidate("titles n-grams (1, 3)", with_group("titles", ngram_range=(1, 3))),
        Candidate("summaries n-grams (1, 2)", with_group("summaries", ngram_range=(1, 2))),
        Candidate("raw tf everywhere", with_all(sublinear_tf=False)),
        Candidate("summaries raw tf", with_group("summaries", sublinear_tf=False)),
        Candidate("min_df 1", with_all(min_df=1)),
        Candidate("min_df 3", with_all(min_df=3)),
        Candidate("max_df 0.2", with_all(max_df=0.2)),
        Candidate("max_df 0.9", with_all(max_df=0.9)),
        Candidate("no phrase terms: conditions", with_group("conditions", whole_items=False)),
        Candidate("no phrase terms: interventions", with_group("interventions", whole_items=False)),
        Candidate("phrase terms: titles", with_group("titles", whole_items=True)),
        Candidate("no stop words", lambda g: g, stop_words=frozenset()),
        Candidate(
            "stop words + trial words",
            lambda g: g,
            stop_words=ENGLISH_STOP_WORDS | TRIAL_WORDS,
        ),
        Candidate("arm labels in interventions", add_fields("interventions", "arm_groups")),
        Candidate(
            "eligibility group (0.3)",
            add_group(FieldGroup("eligibility", ("eligibility_criteria",), weight=0.3)),
        ),
    ]
    return out


class _StopWords:
    """Swap the analyzer's stop words while a candidate is vectorised (in-process)."""

    def __init__(self, stop_words: frozenset[str] | None) -> None:
        self.stop_words = stop_words

    def __enter__(self) -> _StopWords:
        self.saved = text.analyzer_for
        if self.stop_words is not None:
            words = self.stop_words

            def make(group):
                return ItemAnalyzer(
                    ngram_range=group.ngram_range, whole_items=group.whole_items, stop_words=words
                )

            text.analyzer_for = make
        return self

    def __exit__(self, *exc) -> None:
        text.analyzer_for = self.saved


@dataclass
class Setting:
    """Labels and corpora every candidate is scored on."""

    records: Sequence[TrialRecord]
    dev: LabelSet
    held_out: LabelSet
    reference_records: Sequence[TrialRecord]
    reference: LabelSet


def score(groups: Groups, stop_words: frozenset[str] | None, setting: Setting) -> dict:
    """Per-query results of ``groups`` in every check."""
    jobs = 1 if stop_words is not None else 2  # the stop-word swap is in-process only
    with _StopWords(stop_words):
        ranker = field_group_ranker(setting.records, groups, n_jobs=jobs)
        no_mesh = field_group_ranker(
            setting.records, without_fields(groups, MESH_FIELDS), n_jobs=jobs
        )
        reference = field_group_ranker(setting.reference_records, groups, n_jobs=jobs)
    return {
        "dev": evaluate(ranker, setting.dev, (10,)),
        "dev rerank": evaluate(ranker, setting.dev, (10,), rerank=True),
        "held-out": evaluate(ranker, setting.held_out, (10,)),
        "dev, no MeSH": evaluate(no_mesh, setting.dev, (10,)),
        "reference": evaluate(reference, setting.reference, (5,)),
    }


def compare(base: dict, new: dict) -> dict:
    """Differences to the base and the verdict (see the module docstring)."""
    row = {}
    for check in ("dev", "dev rerank", "held-out", "dev, no MeSH"):
        row[check] = paired_bootstrap(base[check].per_query, new[check].per_query, METRIC)
    row["reference"] = new["reference"].metrics["recall@5"]
    row["wins"] = (
        row["dev"][1] > 0
        and row["held-out"][0] > 0
        and row["dev, no MeSH"][0] >= 0
        and row["reference"] == 1.0
    )
    return row


def _fmt(diff: tuple[float, float, float]) -> str:
    mean, low, high = diff
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def table(base: dict, rows: list[tuple[str, dict]]) -> str:
    head = (
        f"Base: dev {METRIC} {base['dev'].metrics[METRIC]:.4f}, rerank "
        f"{base['dev rerank'].metrics[METRIC]:.4f}, held-out {base['held-out'].metrics[METRIC]:.4f}"
        f" ({base['held-out'].queries} queries), no MeSH {base['dev, no MeSH'].metrics[METRIC]:.4f}"
    )
    lines = [
        head,
        "",
        f"| change | dev Δ{METRIC} [95% CI] | rerank Δ | held-out Δ | no-MeSH Δ | ref. R@5 "
        "| wins |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows:
        lines.append(
            f"| {name} | {_fmt(row['dev'])} | {row['dev rerank'][0]:+.4f} | "
            f"{row['held-out'][0]:+.4f} | {row['dev, no MeSH'][0]:+.4f} | "
            f"{row['reference']:.1f} | {'yes' if row['wins'] else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--only", action="append", help="candidates with this in the name")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from recommender.ingest import read_records

    records = read_records([args.data / XML_SUBSET])[0]
    setting = Setting(
        records=records,
        dev=load_labels(DEV_LABELS),
        held_out=held_out_labels(records, DEV_LABELS),
        reference_records=reference_records("sample", args.data),
        reference=load_labels(REPO / "data/sample/seed-cluster/expected_related.json"),
    )
    base = score(DEFAULT_FIELD_GROUPS, None, setting)
    rows = []
    for candidate in candidates():
        if args.only and not any(o in candidate.name for o in args.only):
            continue
        started = time.perf_counter()
        new = score(candidate.change(DEFAULT_FIELD_GROUPS), candidate.stop_words, setting)
        rows.append((candidate.name, compare(base, new)))
        print(f"{candidate.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    report = table(base, rows) + "\n"
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
