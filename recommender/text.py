"""Turn trial records into one TF-IDF vector each, built from weighted field groups.

A trial is read as a few *field groups* (what it studies, what it gives, what it is
called, what it says). Each group gets its own scikit-learn ``TfidfVectorizer``, so a
word that is common in summaries but rare in condition lists is weighted for where it
appears. Each group's rows are L2-normalised, scaled by the group's weight, laid side
by side and normalised again, so the dot product of two rows is their cosine and
splits exactly into per-group, per-term contributions (which is what ``explain``
reports).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfTransformer
from sklearn.preprocessing import normalize

from recommender.counting import count_known_terms, count_terms, merge_counts, prune_terms
from recommender.records import TrialRecord

# Words are runs of letters and digits; "acute-on-chronic" gives three words and
# "MSC-EVs" two, so hyphenated and spaced spellings of a term meet.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# The same words for ASCII text, found about a third faster.
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``."""
    text = text.lower()
    return (_ASCII_WORD if text.isascii() else _WORD).findall(text)


@dataclass(frozen=True)
class FieldGroup:
    """How one group of record fields becomes a TF-IDF block.

    Parameters
    ----------
    name : str
        Name used in explanations and the index metadata (``"conditions"``).
    fields : tuple of str
        ``TrialRecord`` attributes read, in order. Intervention and arm lists
        contribute their names (interventions also their other names).
    weight : float
        Share of this group in the combined vector; applied to the group's unit rows.
    whole_items : bool
        Also emit each list item as one term (``"acute on chronic liver failure"``),
        so an exact condition or drug name counts more than its words.
    ngram_range : tuple of int
        Word n-gram lengths, never crossing from one item to the next.
    min_df, max_df : int or float
        Passed to ``TfidfVectorizer``: drop terms too rare to link two trials or too
        common to tell them apart.
    sublinear_tf : bool
        Use ``1 + log(tf)``; long free texts otherwise drown the rest of the group.
    prune_frequent : bool
        Let the neighbour search skip this group's most frequent terms when it looks
        for candidates (they still count in every score). Right for long free text,
        whose common words make most of the search's cost and carry little.
    """

    name: str
    fields: tuple[str, ...]
    weight: float = 1.0
    whole_items: bool = False
    ngram_range: tuple[int, int] = (1, 1)
    min_df: int | float = 2
    max_df: int | float = 0.5
    sublinear_tf: bool = True
    prune_frequent: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(TrialRecord.__dataclass_fields__)
        if unknown:
            raise ValueError(f"field group {self.name!r}: unknown record fields {sorted(unknown)}")
        if not self.weight > 0:
            raise ValueError(f"field group {self.name!r}: weight must be > 0, got {self.weight}")
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"field group {self.name!r}: bad ngram_range {self.ngram_range}")

    def items(self, record: TrialRecord) -> list[str]:
        """The strings of ``record`` this group reads, one per list item or text."""
        items: list[str] = []
        for name in self.fields:
            value = getattr(record, name)
            if name == "interventions":
                for intervention in value:
                    items.append(intervention.name)
                    items.extend(intervention.other_names)
            elif name == "arm_groups":
                items.extend(arm.label for arm in value)
            elif isinstance(value, tuple):
                items.extend(value)
            elif value:
                items.append(value)
        return [item for item in items if item]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "fields": list(self.fields),
            "weight": self.weight,
            "whole_items": self.whole_items,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_df": self.max_df,
            "sublinear_tf": self.sublinear_tf,
            "prune_frequent": self.prune_frequent,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FieldGroup:
        values = dict(data)
        values["fields"] = tuple(values["fields"])
        values["ngram_range"] = tuple(values["ngram_range"])
        return cls(**values)


# Weights and n-grams tuned on the development label set (docs/evaluation.md): each
# multi-word intervention name is one phrase term and its single words, no bigrams.
DEFAULT_FIELD_GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup(
        "conditions",
        ("conditions", "keywords", "condition_mesh_terms"),
        weight=0.9,
        whole_items=True,
        ngram_range=(1, 3),
    ),
    FieldGroup(
        "interventions",
        ("interventions", "intervention_mesh_terms"),
        weight=0.8,
        whole_items=True,
        ngram_range=(1, 1),
    ),
    FieldGroup(
        "titles",
        ("brief_title", "official_title", "acronym"),
        weight=0.8,
        ngram_range=(1, 2),
    ),
    FieldGroup(
        "summaries",
        ("brief_summary", "detailed_description"),
        weight=0.6,
        prune_frequent=True,
    ),
)


@dataclass(frozen=True)
class ItemAnalyzer:
    """Split a list of strings into terms: lower-cased words, n-grams within an item,
    and optionally the whole item as one phrase term.

    Single words that are stop words are dropped, and so are n-grams that begin or
    end with one, but stop words inside an n-gram or phrase are kept: "acute on
    chronic" stays readable in an explanation instead of becoming "acute chronic".
    A plain class rather than a closure so joblib can send it to worker processes.
    """

    ngram_range: tuple[int, int] = (1, 1)
    whole_items: bool = False
    stop_words: frozenset[str] = field(default=ENGLISH_STOP_WORDS, repr=False)

    def count(self, items: Sequence[str]) -> Counter:
        """The terms of ``items`` with their counts (what ``__call__`` lists, counted).

        Single words of free text, the bulk of all terms, are counted in one C-level
        pass per text, with stop words removed afterwards per distinct word.
        """
        if self.ngram_range != (1, 1) or self.whole_items:
            return Counter(self(items))
        # One pass over the joined text: single words never span two items anyway.
        counts = Counter(words(" ".join(items)))
        for word in self.stop_words & counts.keys():
            del counts[word]
        return counts

    def __call__(self, items: Sequence[str]) -> list[str]:
        low, high = self.ngram_range
        stop = self.stop_words
        terms: list[str] = []
        for item in items:
            found = words(item)
            if self.whole_items and len(found) > high:
                terms.append(" ".join(found))
            if low == 1:
                terms.extend(w for w in found if w not in stop)
            for n in range(max(low, 2), high + 1):
                terms.extend(
                    " ".join(found[i : i + n])
                    for i in range(len(found) - n + 1)
                    if found[i] not in stop and found[i + n - 1] not in stop
                )
        return terms


class GroupModel:
    """One field group's fitted vocabulary and IDF weighting.

    Parameters
    ----------
    group : FieldGroup
    terms : list of str
        Column terms, sorted.
    idf : ndarray of shape (len(terms),), dtype float32
        scikit-learn's smoothed IDF, as ``TfidfTransformer`` learns it.
    """

    def __init__(self, group: FieldGroup, terms: list[str], idf: np.ndarray) -> None:
        if len(terms) != len(idf):
            raise ValueError(f"field group {group.name!r}: {len(terms)} terms but {len(idf)} IDFs")
        self.group = group
        self.terms = terms
        self.vocabulary = {term: column for column, term in enumerate(terms)}
        self.analyzer = analyzer_for(group)
        self.transformer = TfidfTransformer(sublinear_tf=group.sublinear_tf)
        self.transformer.idf_ = np.asarray(idf, dtype=np.float32)

    @classmethod
    def fit(
        cls, group: FieldGroup, terms: list[str], counts: sp.csr_matrix
    ) -> tuple[GroupModel, sp.csr_matrix]:
        """Learn the IDF from pruned counts; return the model and the group's TF-IDF."""
        transformer = TfidfTransformer(sublinear_tf=group.sublinear_tf)
        weighted = transformer.fit_transform(counts.astype(np.float32))
        return cls(group, terms, transformer.idf_), sp.csr_matrix(weighted, dtype=np.float32)

    @property
    def idf(self) -> np.ndarray:
        return self.transformer.idf_

    def transform(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Unit-norm TF-IDF rows of ``docs``; terms outside the vocabulary are ignored."""
        counts = count_known_terms(self.analyzer.count, docs, self.vocabulary)
        weighted = self.transformer.transform(counts.astype(np.float32))
        return sp.csr_matrix(weighted, dtype=np.float32)


def analyzer_for(group: FieldGroup) -> ItemAnalyzer:
    return ItemAnalyzer(ngram_range=group.ngram_range, whole_items=group.whole_items)


def _count_chunk(
    analyzers: list[ItemAnalyzer], docs_by_group: list[list[list[str]]]
) -> list[tuple[list[str], sp.csr_matrix]]:
    """Counts of one chunk of records, for every field group (one worker's task)."""
    return [count_terms(a.count, docs) for a, docs in zip(analyzers, docs_by_group, strict=True)]


def _chunk_bounds(n_items: int, n_chunks: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n_items, max(1, min(n_chunks, n_items)) + 1).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


class FieldGroupVectorizer:
    """TF-IDF over weighted field groups of :class:`TrialRecord` objects.

    Terms are counted in parallel chunks of records (:mod:`recommender.counting`),
    then weighted by scikit-learn's ``TfidfTransformer``: the result equals a
    ``TfidfVectorizer`` per group with the same analyzer, ``min_df`` and ``max_df``.

    Parameters
    ----------
    groups : sequence of FieldGroup, default DEFAULT_FIELD_GROUPS
        The field groups, their weights and vectoriser settings.
    n_jobs : int, default 1
        Processes used to count terms (joblib; a Dask cluster under joblib's Dask
        backend); -1 uses every core.

    Attributes
    ----------
    models_ : dict of str to GroupModel or None
        One fitted model per group; None for a group left with no terms.
    offsets_ : ndarray of shape (n_groups + 1,), dtype int64
        Group ``i`` owns columns ``offsets_[i]:offsets_[i + 1]`` of the output.
    n_features_ : int
        Width of the combined vectors.
    """

    def __init__(
        self, groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS, *, n_jobs: int = 1
    ) -> None:
        names = [g.name for g in groups]
        if not names:
            raise ValueError("at least one field group is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"field group names must be unique, got {names}")
        self.groups = tuple(groups)
        self.n_jobs = n_jobs

    def _documents(self, records: Iterable[TrialRecord]) -> list[list[list[str]]]:
        records = list(records)
        return [[g.items(r) for r in records] for g in self.groups]

    def fit_transform(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        """Learn each group's vocabulary and IDF, and return the combined vectors.

        Parameters
        ----------
        records : sequence of TrialRecord, length n_records

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
            Rows of unit L2 norm; all-zero for a record with no text in any group.
        """
        docs = self._documents(records)
        analyzers = [analyzer_for(g) for g in self.groups]
        # A few chunks per worker keep workers busy when chunks differ in length.
        bounds = _chunk_bounds(len(records), 2 * effective_n_jobs(self.n_jobs))
        parts = Parallel(n_jobs=self.n_jobs)(
            delayed(_count_chunk)(analyzers, [d[a:b] for d in docs]) for a, b in bounds
        )
        self.models_ = {}
        blocks = []
        for i, group in enumerate(self.groups):
            terms, counts = merge_counts([part[i] for part in parts])
            terms, counts = prune_terms(terms, counts, group.min_df, group.max_df)
            if not terms:
                # No record fills this group, or pruning left nothing: the group is
                # left out of every vector instead of failing the build.
                self.models_[group.name] = None
                blocks.append(sp.csr_matrix((len(records), 0), dtype=np.float32))
                continue
            self.models_[group.name], block = GroupModel.fit(group, terms, counts)
            blocks.append(block)
        self._set_offsets()
        return self._combine(blocks)

    def fit(self, records: Sequence[TrialRecord]) -> FieldGroupVectorizer:
        self.fit_transform(records)
        return self

    def transform(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        """Vectorise records with the fitted vocabulary (unknown terms are ignored).

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
        """
        self._check_fitted()
        docs = self._documents(records)
        blocks = [
            sp.csr_matrix((len(d), 0), dtype=np.float32)
            if self.models_[g.name] is None
            else self.models_[g.name].transform(d)
            for g, d in zip(self.groups, docs, strict=True)
        ]
        return self._combine(blocks)

    def _combine(self, blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
        weighted = [
            block * np.float32(g.weight) for g, block in zip(self.groups, blocks, strict=True)
        ]
        combined = sp.hstack(weighted, format="csr", dtype=np.float32)
        return normalize(combined, norm="l2", copy=False)

    def _terms(self, group: FieldGroup) -> list[str]:
        model = self.models_[group.name]
        return [] if model is None else model.terms

    def _set_offsets(self) -> None:
        sizes = [len(self._terms(g)) for g in self.groups]
        self.offsets_ = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_features_ = int(self.offsets_[-1])

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise RuntimeError("FieldGroupVectorizer is not fitted; call fit or from_state first")

    # -- explanations and persistence -------------------------------------------------

    def feature_names(self) -> list[str]:
        """Every column's term, group by group (length ``n_features_``)."""
        self._check_fitted()
        return [term for g in self.groups for term in self._terms(g)]

    def prunable_columns(self) -> np.ndarray:
        """Boolean mask of shape (n_features_,): columns of ``prune_frequent`` groups."""
        self._check_fitted()
        mask = np.zeros(self.n_features_, dtype=bool)
        for g, start, stop in zip(self.groups, self.offsets_, self.offsets_[1:], strict=False):
            mask[start:stop] = g.prune_frequent
        return mask

    def group_of_column(self, columns: np.ndarray) -> np.ndarray:
        """Index into ``groups`` of each column in ``columns``."""
        return np.searchsorted(self.offsets_, columns, side="right") - 1

    def get_state(self) -> tuple[dict, dict[str, list[str]], dict[str, np.ndarray]]:
        """What is needed to rebuild this fitted vectoriser without pickle.

        Returns
        -------
        params : dict
            JSON-ready group settings.
        vocabularies : dict of str to list of str
            Each group's terms in column order.
        idfs : dict of str to ndarray of shape (n_terms,), dtype float32
        """
        self._check_fitted()
        params = {"groups": [g.to_dict() for g in self.groups]}
        vocabularies = {g.name: self._terms(g) for g in self.groups}
        idfs = {
            g.name: np.zeros(0, np.float32)
            if self.models_[g.name] is None
            else self.models_[g.name].idf.astype(np.float32)
            for g in self.groups
        }
        return params, vocabularies, idfs

    @classmethod
    def from_state(
        cls,
        params: Mapping,
        vocabularies: Mapping[str, Sequence[str]],
        idfs: Mapping[str, np.ndarray],
    ) -> FieldGroupVectorizer:
        """Rebuild a fitted vectoriser from :meth:`get_state` output."""
        groups = [FieldGroup.from_dict(g) for g in params["groups"]]
        self = cls(groups)
        self.models_ = {}
        for g in groups:
            terms = list(vocabularies[g.name])
            self.models_[g.name] = GroupModel(g, terms, idfs[g.name]) if terms else None
        self._set_offsets()
        return self
