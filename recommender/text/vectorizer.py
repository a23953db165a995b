"""Turn trial records into one vector each, built from weighted field groups.

A trial is read as a few *field groups* (what it studies, what it gives, what it is
called, all it says, who runs it, whom it takes). Each group has its own vocabulary
and IDF, so a word that is common in summaries but rare in condition lists is
weighted for where it appears. A group's terms get BM25 weights, its rows are
divided by a pivoted norm (:mod:`recommender.text.weighting`), scaled by the group's
weight and laid side by side, and the whole row is pivot-normalised again. The dot
product of two rows is their score, and it splits exactly into per-group, per-term
contributions (which is what ``explain`` reports).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs

from recommender.core import TrialRecord
from recommender.infra import release_free_memory
from recommender.text._tokenizer_compiled import EncodedTexts, HashedCounts
from recommender.text.abbreviations import AbbreviationTable
from recommender.text.counting import count_chunk, frequent_columns, merge_counts, spell_terms
from recommender.text.fields import (
    DEFAULT_FIELD_GROUPS,
    DEFAULT_NORM_POWER,
    PROSE_FIELDS,
    FieldGroup,
)
from recommender.text.group_model import GroupModel, analyzer_for
from recommender.text.record_texts import encode_groups, learn_abbreviations_of
from recommender.text.stacking import stack_weighted
from recommender.text.weighting import mean_norm, pivot_normalise


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a while.

    Fitting makes about a million short-lived lists while the records hold millions
    of long-lived objects, and every full collection walks all of them: about 1.5 s
    of a 6 s fit on the full corpus. Nothing made here forms a reference cycle, so
    reference counting frees it all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Records per counting task: small enough that a chunk's intermediate strings stay
# small and encoding overlaps counting, large enough that merging is cheap.
CHUNK_RECORDS = 8192


def _placed(rows: sp.csr_matrix, at: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """``rows`` as rows ``at`` of an otherwise empty (n_rows, width) matrix."""
    place = sp.csr_matrix(
        (np.ones(len(at), np.float32), (at, np.arange(len(at)))), shape=(n_rows, len(at))
    )
    return place @ rows


def _chunk_bounds(n_items: int, n_chunks: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n_items, max(1, min(n_chunks, n_items)) + 1).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


class FieldGroupVectorizer:
    """BM25-weighted field groups of :class:`TrialRecord` objects, as one vector each.

    Each group's texts are encoded once and their terms counted by a compiled pass in
    parallel chunks (:mod:`recommender.text.tokenizer`, :mod:`recommender.text.counting`; the
    counts equal scikit-learn's ``CountVectorizer`` with the group's
    :class:`ItemAnalyzer`, ``min_df`` and ``max_df``), then weighted by
    :mod:`recommender.text.weighting`.

    Parameters
    ----------
    groups : sequence of FieldGroup, default DEFAULT_FIELD_GROUPS
        The field groups, their weights and vectoriser settings.
    norm_power : float, default DEFAULT_NORM_POWER
        Exponent of the pivoted norm whole rows are divided by (1: unit rows, so
        scores are cosines; 0: no normalisation of whole rows).
    learn_abbreviations : bool, default True
        Learn short forms from the records' titles and texts when a group
        expands them (``FieldGroup.expand_abbreviations``).
    n_jobs : int, default 1
        Threads used to count terms (a Dask cluster's workers under joblib's Dask
        backend), and processes learning abbreviations from records on disk; -1
        uses every core.

    Attributes
    ----------
    models_ : dict of str to GroupModel or None
        One fitted model per group; None for a group left with no terms.
    offsets_ : ndarray of shape (n_groups + 1,), dtype int64
        Group ``i`` owns columns ``offsets_[i]:offsets_[i + 1]`` of the output.
    n_features_ : int
        Width of the combined vectors.
    pivot_ : float
        Mean norm of the combined rows before their normalisation.
    abbreviations_ : AbbreviationTable
        Learned short forms (empty when no group expands them).
    """

    def __init__(
        self,
        groups: Sequence[FieldGroup] = DEFAULT_FIELD_GROUPS,
        *,
        norm_power: float = DEFAULT_NORM_POWER,
        learn_abbreviations: bool = True,
        n_jobs: int = 1,
    ) -> None:
        names = [g.name for g in groups]
        if not names:
            raise ValueError("at least one field group is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"field group names must be unique, got {names}")
        if not 0 <= norm_power <= 1:
            raise ValueError(f"norm_power must be in [0, 1], got {norm_power}")
        self.groups = tuple(groups)
        self.norm_power = norm_power
        self.learn_abbreviations = learn_abbreviations
        self.n_jobs = n_jobs

    def fit_transform(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        """Learn each group's vocabulary and IDF, and return the combined vectors.

        Parameters
        ----------
        records : sequence of TrialRecord, length n_records

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
            Pivot-normalised rows (an average record's has norm 1); all-zero for a
            record with no text in any group.
        """
        with _collector_paused():
            return self._fit_transform(records)

    def _fit_transform(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        self.abbreviations_ = AbbreviationTable(self._abbreviations(records))
        parts_by_group, texts = self._count_chunks(records)
        self.models_ = {}
        blocks = []
        for i, group in enumerate(self.groups):
            # Each group's parts and texts are dropped once used: on a large registry
            # they are most of the memory a build needs.
            release_free_memory()  # what the last group dropped, before this one merges
            counted = merge_counts(parts_by_group[i])
            parts_by_group[i] = []
            kept = frequent_columns(counted.counts, group.min_df, group.max_df)
            terms, counts = spell_terms(counted, kept, texts[i])
            texts[i] = []
            del counted
            if not terms:
                # No record fills this group, or pruning left nothing: the group is
                # left out of every vector instead of failing the build.
                self.models_[group.name] = None
                blocks.append(sp.csr_matrix((len(records), 0), dtype=np.float32))
                continue
            self.models_[group.name], block = GroupModel.fit(group, terms, counts)
            blocks.append(block)
            # The block shares the counts' indices but not their data: dropped now,
            # not while the next group merges (hundreds of MB for the text group at 600k).
            del counts, block
        self._set_offsets()
        release_free_memory()
        combined = self._weighted(blocks)  # frees each block once copied
        self.pivot_ = mean_norm(combined)
        return pivot_normalise(combined, self.pivot_, self.norm_power)

    def _count_chunks(
        self, records: Sequence[TrialRecord]
    ) -> tuple[list[list[HashedCounts]], list[list[EncodedTexts]]]:
        """Each group's term counts and their spellings, chunk by chunk of records."""
        analyzers = [analyzer_for(g) for g in self.groups]

        def tasks() -> Iterator:
            # A generator: joblib pulls the next chunk (encoded in Python, holding the
            # GIL) while the compiled pass, which releases it, counts the last ones;
            # and only a chunk's worth of intermediate strings exists at a time. A
            # chunk's text is dropped once counted: only its terms' spellings stay.
            # (Encoding on worker processes instead gained nothing on 2 cores: this
            # thread and the counting threads already keep both busy.)
            n_chunks = max(2 * effective_n_jobs(self.n_jobs), -(-len(records) // CHUNK_RECORDS))
            for a, b in _chunk_bounds(len(records), n_chunks):
                encoded = encode_groups(records[a:b], self.groups, self.abbreviations_)
                for i, group_texts in enumerate(encoded):
                    yield delayed(count_chunk)(group_texts, analyzers[i])

        counted = Parallel(n_jobs=self.n_jobs, prefer="threads")(tasks())
        n_groups = len(self.groups)
        parts = [[part for part, _ in counted[i::n_groups]] for i in range(n_groups)]
        texts = [[spelled for _, spelled in counted[i::n_groups]] for i in range(n_groups)]
        return parts, texts

    def _abbreviations(self, records: Sequence[TrialRecord]) -> Mapping[str, str]:
        if not (self.learn_abbreviations and any(g.expand_abbreviations for g in self.groups)):
            return {}
        return learn_abbreviations_of(records, self.n_jobs)

    def fit(self, records: Sequence[TrialRecord]) -> FieldGroupVectorizer:
        self.fit_transform(records)
        return self

    def transform(
        self, records: Sequence[TrialRecord], free_texts: Sequence[str] | None = None
    ) -> sp.csr_matrix:
        """Vectorise records with the fitted vocabulary (unknown terms are ignored).

        Parameters
        ----------
        records : sequence of TrialRecord, length n_records
        free_texts : sequence of str, length n_records, optional
            Free text of each record (a draft trial's description, a patient note,
            a search), read as one more item of each group with
            ``reads_free_text`` (by default the whole text, titles and
            eligibility, not the condition, intervention and sponsor lists, whose
            phrases a note should not match as if it were a list;
            ``docs/evaluation.md``).

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
        """
        self._check_fitted()
        blocks = self._blocks(records, self.groups, free_texts)
        return pivot_normalise(self._weighted(blocks), self.pivot_, self.norm_power)

    def transform_queries(
        self, records: Sequence[TrialRecord], free_texts: Sequence[str] | None = None
    ) -> sp.csr_matrix:
        """Vectorise records asked about, as :meth:`transform` does, except that a
        record with no term in any group that has ``read_when_missing`` (a thin
        record, a draft with no condition or intervention listed) reads its titles,
        summary and description into those groups, at ``read_when_missing`` times
        their weight: its words then also meet the trials' lists.

        Indexed rows are made by :meth:`fit_transform` and :meth:`transform`, never
        by this: the scores of two indexed trials stay a dot product of their rows.

        Parameters
        ----------
        records : sequence of TrialRecord, length n_records
        free_texts : sequence of str, length n_records, optional
            As :meth:`transform`; never read into the filled groups (a patient note's
            phrases are not a condition list).

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
        """
        self._check_fitted()
        records = list(records)
        blocks = self._blocks(records, self.groups, free_texts)
        filled = self._filled()
        lacking = np.flatnonzero(sum(np.diff(blocks[i].indptr) for i in filled) == 0)
        X = self._weighted(blocks)
        if filled and len(lacking):
            # Those rows have nothing in the filled groups: adding places the reading.
            reading = self.prose_reading([records[r] for r in lacking])
            if len(lacking) < len(records):
                reading = _placed(reading, lacking, len(records))
            X = (X + reading).tocsr()
        return pivot_normalise(X, self.pivot_, self.norm_power)

    def prose_reading(self, records: Sequence[TrialRecord]) -> sp.csr_matrix:
        """What :meth:`transform_queries` adds to a record that lacks every group with
        ``read_when_missing``, before the whole row's normalisation: its
        :data:`PROSE_FIELDS` read into those groups, their :func:`readable_mask` terms
        only, at ``read_when_missing`` times the group's weight.

        Returns
        -------
        X : csr_matrix of shape (n_records, n_features_), dtype float32
            Nothing outside the filled groups' columns.
        """
        self._check_fitted()
        filled = self._filled()
        groups = [replace(self.groups[i], fields=PROSE_FIELDS) for i in filled]
        parts = []
        for i, group, block in zip(filled, groups, self._blocks(records, groups), strict=True):
            # Prose is not a list: its "phase 2", "randomized" or "patients" must not
            # meet "type 2 diabetes" or a list's protocol words as a condition would.
            block.data *= np.float32(group.read_when_missing)
            block.data *= np.float32(group.weight)  # as _weighted weighs a group
            block = block.tocoo()
            keep = self.models_[group.name].readable_columns[block.col] & (block.data != 0)
            parts.append((block.row[keep], block.col[keep] + self.offsets_[i], block.data[keep]))
        shape = (len(records), self.n_features_)
        if not parts:
            return sp.csr_matrix(shape, dtype=np.float32)
        rows, columns, data = (np.concatenate(part) for part in zip(*parts, strict=True))
        return sp.csr_matrix((data, (rows, columns)), shape=shape)

    def _filled(self) -> list[int]:
        return [
            i
            for i, g in enumerate(self.groups)
            if g.read_when_missing > 0 and self.models_[g.name] is not None
        ]

    def _blocks(
        self,
        records: Sequence[TrialRecord],
        groups: Sequence[FieldGroup],
        free_texts: Sequence[str] | None = None,
    ) -> list[sp.csr_matrix]:
        """Each of ``groups``' unweighted block of ``records`` (fitted models by name)."""
        encoded = encode_groups(records, groups, self.abbreviations_, free_texts)
        return [
            sp.csr_matrix((len(texts), 0), dtype=np.float32)
            if self.models_[g.name] is None
            else self.models_[g.name].transform(texts)
            for g, texts in zip(groups, encoded, strict=True)
        ]

    def _weighted(self, blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
        """The blocks side by side, each times its group's weight; ``blocks`` is
        emptied (each block freed once copied: at 600,000 trials, hundreds of MB)."""
        return stack_weighted(blocks, [group.weight for group in self.groups])

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

    def readable_columns(self) -> np.ndarray:
        """Boolean mask of shape (n_features_,): the columns whose term a person can
        read as a reason (:func:`readable_mask`), each group's made once and kept, so
        explanations and a query's prose reading share one mask."""
        self._check_fitted()
        masks = [np.zeros(0, dtype=bool)] + [
            self.models_[g.name].readable_columns
            for g in self.groups
            if self.models_[g.name] is not None
        ]
        return np.concatenate(masks)

    def prunable_columns(self) -> np.ndarray:
        """Boolean mask of shape (n_features_,): columns of ``prune_frequent`` groups."""
        return self._columns_of_groups([g.prune_frequent for g in self.groups])

    def fillable_columns(self) -> np.ndarray:
        """Boolean mask of shape (n_features_,): columns of the groups that have
        ``read_when_missing``. A record with no term among them is read with its prose
        there when asked about (:meth:`transform_queries`)."""
        return self._columns_of_groups([g.read_when_missing > 0 for g in self.groups])

    def _columns_of_groups(self, flags: list[bool]) -> np.ndarray:
        """Each group's flag over its columns: a boolean mask of shape (n_features_,)."""
        self._check_fitted()
        return np.repeat(np.array(flags, dtype=bool), np.diff(self.offsets_))

    def group_of_column(self, columns: np.ndarray) -> np.ndarray:
        """Index into ``groups`` of each column in ``columns``."""
        return np.searchsorted(self.offsets_, columns, side="right") - 1

    def get_state(self) -> tuple[dict, dict[str, list[str]], dict[str, np.ndarray]]:
        """What is needed to rebuild this fitted vectoriser without pickle.

        Returns
        -------
        params : dict
            JSON-ready settings and learned scalars: group settings, each group's
            average length and pivot, the row pivot, the learned abbreviations.
        vocabularies : dict of str to list of str
            Each group's terms in column order.
        idfs : dict of str to ndarray of shape (n_terms,), dtype float32
        """
        self._check_fitted()
        params = {
            "groups": [g.to_dict() for g in self.groups],
            "norm_power": self.norm_power,
            "pivot": self.pivot_,
            "group_stats": {
                name: model.stats() for name, model in self.models_.items() if model is not None
            },
            "abbreviations": self.abbreviations_.long_forms,
        }
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
        self = cls(groups, norm_power=params["norm_power"])
        self.pivot_ = float(params["pivot"])
        self.abbreviations_ = AbbreviationTable(params["abbreviations"])
        self.models_ = {}
        for g in groups:
            terms = list(vocabularies[g.name])
            stats = params["group_stats"].get(g.name, {})
            self.models_[g.name] = (
                GroupModel(g, terms, idfs[g.name], stats["avg_length"], stats["pivot"])
                if terms
                else None
            )
        self._set_offsets()
        return self
