"""Drift since the last full build, and when a rebuild is advised.

As updates pile up, the vocabulary and IDF describe the registry less well. The
metadata keeps, since the last full build, the share of studies added or with new
text, and the share of their words that the vocabulary does not know, beyond the
share it does not know in the indexed studies themselves (rare and very common words
are dropped at every build). Over either threshold, a full rebuild is advised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.core import TrialRecord
from recommender.index import TrialIndex
from recommender.pipelines.update.changes import Changes
from recommender.text import ENGLISH_STOP_WORDS, FieldGroupVectorizer, words

_BASELINE_SAMPLE = 1000


@dataclass(frozen=True)
class DriftThresholds:
    """When to advise a full rebuild.

    Parameters
    ----------
    changed_share : float, default 0.10
        Studies added, or whose text changed, since the last full build, as a share
        of the studies that build indexed.
    unseen_share : float, default 0.05
        Share of the words of those studies unknown to the vocabulary, beyond the
        share unknown in already indexed studies.
    """

    changed_share: float = 0.10
    unseen_share: float = 0.05


def format_drift(drift: dict) -> str:
    """One or two lines on drift since the last full build, with the advice."""
    line = (
        f"since the full build of {drift['full_build_at'][:10]}: "
        f"{100 * drift['changed_share']:.1f}% of studies new or rewritten, "
        f"{100 * drift['excess_unseen_share']:.1f}% of their words unknown to the vocabulary "
        f"(beyond the {100 * drift['baseline_unseen_share']:.1f}% usual)"
    )
    if drift["rebuild_advised"]:
        line += "\nfull rebuild advised: " + "; ".join(drift["reasons"])
    return line


def unseen_words(
    vectorizer: FieldGroupVectorizer, records: Sequence[TrialRecord]
) -> tuple[int, int]:
    """How many words ``records`` hold and how many of them the vocabulary lacks.

    Words are counted per field group, stop words left out, and a word is known when
    its group's vocabulary holds it as a single-word term.
    """
    _, vocabularies, _ = vectorizer.get_state()
    total = unseen = 0
    for group in vectorizer.groups:
        known = {term for term in vocabularies[group.name] if " " not in term}
        for record in records:
            for item in group.items(record):
                for word in words(item):
                    if word not in ENGLISH_STOP_WORDS:
                        total += 1
                        unseen += word not in known
    return total, unseen


def measure_drift(
    base: TrialIndex,
    changes: Changes,
    records: Sequence[TrialRecord],
    fresh: np.ndarray,
    stable: np.ndarray,
    thresholds: DriftThresholds,
) -> dict:
    """Drift since the last full build, accumulated over the updates since, and advice.

    Parameters
    ----------
    base : TrialIndex
        The index before this update (its metadata holds the drift so far).
    changes : Changes
    records : sequence of TrialRecord
        The updated records.
    fresh, stable : ndarray of int
        Rows of ``records`` with a new vector, and the others.
    thresholds : DriftThresholds
    """
    previous = base.meta.get("drift", {})
    full = _full_build(base.meta)
    n_fresh = len(fresh)
    tokens, unseen = unseen_words(base.vectorizer, [records[i] for i in fresh])
    sample = stable[np.linspace(0, len(stable) - 1, min(_BASELINE_SAMPLE, len(stable))).astype(int)]
    base_tokens, base_unseen = unseen_words(base.vectorizer, [records[i] for i in sample])
    drift = {
        "full_build_at": full["built_at"],
        "full_build_studies": full["studies"],
        "updates": previous.get("updates", 0) + 1,
        "added": previous.get("added", 0) + len(changes.added),
        "changed": previous.get("changed", 0) + len(changes.replaced),
        "text_changed": previous.get("text_changed", 0) + n_fresh - len(changes.added),
        "removed": previous.get("removed", 0) + len(changes.removed),
        "tokens": previous.get("tokens", 0) + tokens,
        "unseen_tokens": previous.get("unseen_tokens", 0) + unseen,
        "baseline_unseen_share": round(base_unseen / max(base_tokens, 1), 4),
    }
    drift["changed_share"] = round(
        (drift["added"] + drift["text_changed"]) / max(full["studies"], 1), 4
    )
    drift["unseen_share"] = round(drift["unseen_tokens"] / max(drift["tokens"], 1), 4)
    excess = drift["unseen_share"] - drift["baseline_unseen_share"] if drift["tokens"] else 0.0
    drift["excess_unseen_share"] = round(max(0.0, excess), 4)
    return drift | _advice(drift, thresholds)


def _full_build(meta: dict) -> dict:
    full = meta.get("full_build")
    if full:
        return full
    return {"built_at": meta.get("built_at", ""), "studies": meta["counts"]["studies"]}


def _advice(drift: dict, thresholds: DriftThresholds) -> dict:
    reasons = []
    if drift["changed_share"] > thresholds.changed_share:
        reasons.append(
            f"{100 * drift['changed_share']:.1f}% of studies are new or rewritten "
            f"(threshold {100 * thresholds.changed_share:g}%)"
        )
    if drift["excess_unseen_share"] > thresholds.unseen_share:
        reasons.append(
            f"{100 * drift['excess_unseen_share']:.1f}% more of their words are unknown to "
            f"the vocabulary (threshold {100 * thresholds.unseen_share:g}%)"
        )
    return {
        "thresholds": {
            "changed_share": thresholds.changed_share,
            "unseen_share": thresholds.unseen_share,
        },
        "rebuild_advised": bool(reasons),
        "reasons": reasons,
    }
