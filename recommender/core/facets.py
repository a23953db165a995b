"""Per-trial facts used as filters (status, phase, study type), as small coded arrays.

Filtering before ranking needs a yes/no per trial for every query; decoding records
for that would be far too slow, so each facet is an integer array beside the vectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.core.records import TrialRecord

# Facet name -> TrialRecord attribute. Phases are multi-valued (PHASE1 and PHASE2).
FACET_FIELDS = {"status": "overall_status", "study_type": "study_type", "phase": "phases"}
_MISSING = ""

# The registry's API v2 enumerations: a filter may name any of these even when no
# trial of this index has it (and then matches nothing); anything else is a typo.
REGISTRY_VALUES = {
    "status": (
        "ACTIVE_NOT_RECRUITING", "APPROVED_FOR_MARKETING", "AVAILABLE", "COMPLETED",
        "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "NO_LONGER_AVAILABLE", "RECRUITING",
        "SUSPENDED", "TEMPORARILY_NOT_AVAILABLE", "TERMINATED", "UNKNOWN", "WITHDRAWN",
        "WITHHELD",
    ),
    "phase": ("EARLY_PHASE1", "NA", "PHASE1", "PHASE2", "PHASE3", "PHASE4"),
    "study_type": ("EXPANDED_ACCESS", "INTERVENTIONAL", "OBSERVATIONAL"),
}  # fmt: skip


class UnknownFacetValueError(ValueError):
    """A filter asked for a value the index has never seen for that facet."""


@dataclass(frozen=True)
class Facets:
    """Coded facet values of every trial of an index.

    Attributes
    ----------
    labels : dict of str to list of str
        For each facet, the values seen, in code order (code 0 is "missing").
    codes : dict of str to ndarray of shape (n_trials,), dtype uint32
        Single-valued facets hold a code; ``phase`` holds a bit mask of codes.
    """

    labels: Mapping[str, list[str]]
    codes: Mapping[str, np.ndarray]

    @classmethod
    def from_records(cls, records: Iterable[TrialRecord]) -> Facets:
        """Code the facets of ``records``, read once (they may be decoded from disk)."""
        labels: dict[str, list[str]] = {}
        codes: dict[str, np.ndarray] = {}
        attrs = list(FACET_FIELDS.values())
        by_record = [[_as_tuple(getattr(r, attr)) for attr in attrs] for r in records]
        for j, facet in enumerate(FACET_FIELDS):
            values = [row[j] for row in by_record]
            seen = sorted({v for vs in values for v in vs})
            if facet == "phase" and len(seen) > 31:
                raise ValueError(f"too many distinct phases to code: {seen}")
            labels[facet] = [_MISSING, *seen]
            code_of = {label: i for i, label in enumerate(labels[facet])}
            if facet == "phase":
                column = [sum(1 << code_of[v] for v in vs) for vs in values]
            else:
                column = [code_of[vs[0]] if vs else 0 for vs in values]
            codes[facet] = np.asarray(column, dtype=np.uint32)
        return cls(labels=labels, codes=codes)

    @classmethod
    def updated(cls, base: Facets, source: np.ndarray, new: Sequence[TrialRecord]) -> Facets:
        """The facets after an update, equal to :meth:`from_records` over its records.

        Parameters
        ----------
        base : Facets
            The facets of the index being updated.
        source : ndarray of shape (n,), dtype int64
            Per row: the base row whose record it keeps, or ``-1 - j`` for ``new[j]``.
        new : sequence of TrialRecord
            The added and rewritten records; the kept ones are never read.
        """
        fresh = cls.from_records(new)
        kept = source >= 0
        labels: dict[str, list[str]] = {}
        codes: dict[str, np.ndarray] = {}
        for facet in FACET_FIELDS:
            old = base.codes[facet][source[kept]]
            seen = set(_labels_used(facet, old, base.labels[facet])) | set(fresh.labels[facet])
            labels[facet] = [_MISSING, *sorted(seen - {_MISSING})]
            if facet == "phase" and len(labels[facet]) > 32:
                raise ValueError(f"too many distinct phases to code: {labels[facet][1:]}")
            column = np.zeros(len(source), dtype=np.uint32)
            column[kept] = _recode(facet, old, base.labels[facet], labels[facet])
            added = fresh.codes[facet][-1 - source[~kept]]
            column[~kept] = _recode(facet, added, fresh.labels[facet], labels[facet])
            codes[facet] = column
        return cls(labels=labels, codes=codes)

    def allowed(self, filters: Mapping[str, Iterable[str]]) -> np.ndarray | None:
        """Boolean mask of trials matching every given facet (any of its values).

        Returns None when no filter is given. A value that is neither a registry value
        nor seen in this index raises :class:`UnknownFacetValueError` naming the
        values that are known.
        """
        mask = None
        for facet, wanted in filters.items():
            wanted = list(wanted)
            if not wanted:
                continue
            match = self._match(facet, wanted)
            mask = match if mask is None else mask & match
        return mask

    def _match(self, facet: str, wanted: list[str]) -> np.ndarray:
        if facet not in FACET_FIELDS:
            raise UnknownFacetValueError(f"unknown filter {facet!r}; use {sorted(FACET_FIELDS)}")
        labels = self.labels[facet]
        valid = set(REGISTRY_VALUES[facet]) | set(labels[1:])
        unknown = [v for v in wanted if v not in valid]
        if unknown:
            raise UnknownFacetValueError(
                f"unknown {facet} {', '.join(map(repr, unknown))}; "
                f"expected one of {', '.join(sorted(valid))}"
            )
        codes = [labels.index(v) for v in wanted if v in labels]
        column = self.codes[facet]
        if not codes:
            return np.zeros(len(column), dtype=bool)
        if facet == "phase":
            bits = np.uint32(sum(1 << c for c in codes))
            return (column & bits) != 0
        return np.isin(column, codes)

    def values_of(self, position: int) -> dict[str, list[str]]:
        """The facet values of one trial, decoded."""
        out = {}
        for facet, column in self.codes.items():
            code = int(column[position])
            labels = self.labels[facet]
            if facet == "phase":
                out[facet] = [labels[i] for i in range(1, len(labels)) if code >> i & 1]
            else:
                out[facet] = [labels[code]] if code else []
        return out


def _as_tuple(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(v for v in value if v)


def _labels_used(facet: str, codes: np.ndarray, labels: list[str]) -> list[str]:
    """The labels that ``codes`` (of a facet coded with ``labels``) hold."""
    if facet == "phase":
        bits = int(np.bitwise_or.reduce(codes)) if len(codes) else 0
        return [label for i, label in enumerate(labels) if i and bits >> i & 1]
    return [labels[c] for c in np.unique(codes).tolist() if c]


def _recode(facet: str, codes: np.ndarray, old: list[str], new: list[str]) -> np.ndarray:
    """``codes`` made with labels ``old`` as codes of labels ``new``.

    ``new`` holds every label that ``codes`` use; old labels they do not use (a status
    only removed trials had) may be missing from it.
    """
    code_of = {label: i for i, label in enumerate(new)}
    if facet != "phase":
        table = [code_of.get(label, 0) for label in old]
        return np.asarray(table, dtype=np.uint32)[codes]
    out = np.zeros(len(codes), dtype=np.uint32)
    for i, label in enumerate(old[1:], start=1):
        if label in code_of:
            out |= ((codes >> np.uint32(i)) & np.uint32(1)) << np.uint32(code_of[label])
    return out
