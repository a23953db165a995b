"""The on-disk index: a folder of arrays and JSON, saved atomically, verified on load.

Layout of one version (format version 3; version 2 is read too)::

    meta.json                  format, build parameters, sources, counts, file hashes
    ids.npy                    (n,) <U11      NCT ids, sorted
    vectors.{indptr,indices,data}.npy          CSR (n, n_features) float32, pivot-normalised rows
    postings.{indptr,indices,data}.npy         CSR (n_features, n) float32, = vectors.T
    neighbours.indices.npy     (n, k) int32   precomputed top-k, -1 padded
    neighbours.scores.npy      (n, k) float32
    vocabulary.json            {group: [term, ...]} in column order
    idf.npy                    (n_features,) float32
    facet.{status,study_type,phase}.npy        (n,) uint32 codes (labels in meta.json)
    records.jsonl, records.offsets.npy         the records, for display
    records.<s>.jsonl, records.spans.npy       after an update: records added since
                                               (see :mod:`recommender.index.segments`)
    build_report.json          what was read, skipped (with reasons) and replaced

Which files an index must have is defined by the format
(:mod:`recommender.index.checks`), not by its ``meta.json``. Versions live in
folders behind the served path, a symlink swapped by one rename
(:mod:`recommender.index.versions`); a version's files are never written again.

No pickle anywhere: every array loads with ``allow_pickle=False`` and memory-mapped,
so several server workers share one copy in the page cache.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import scipy.sparse as sp

from recommender.core import (
    DEFAULT_RESULTS,
    EMPTY_QUERY,
    FACET_FIELDS,
    NO_KNOWN_WORD,
    RECORDS_FILE,
    RECORDS_OFFSETS_FILE,
    EmptyQueryError,
    Facets,
    RecordStore,
    TrialRecord,
    is_blank,
    validate_nct_id,
)
from recommender.index.asked import AskedVectors
from recommender.index.checks import (
    csr_problems,
    facet_problems,
    ids_problems,
    neighbour_problems,
    range_problems,
    record_segments,
    records_problems,
    vocabulary_problems,
)
from recommender.index.errors import DamagedIndexError, NotInIndexError
from recommender.index.format import raise_if_damaged, verify_index
from recommender.index.segments import SPANS_FILE, SegmentedRecords, segment_files, spans_problems
from recommender.index.versions import META_FILE, hold_version, resolve_index_folder
from recommender.neighbours import (
    NO_NEIGHBOUR,
    CosineNeighbours,
    Explainer,
    kneighbors_from_lists,
)
from recommender.text import FieldGroupVectorizer


@dataclass(frozen=True)
class Neighbour:
    """One recommended trial."""

    rank: int
    position: int
    nct_id: str
    score: float


def _load_array(folder: Path, name: str, mmap: bool) -> np.ndarray:
    try:
        return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DamagedIndexError(f"{folder / name}.npy is unreadable: {exc}") from None


def _load_csr(
    folder: Path, name: str, shape: tuple[int, int], nnz: int, what: str
) -> sp.csr_matrix:
    parts = {
        p: _load_array(folder, f"{name}.{p}", mmap=True) for p in ("indptr", "indices", "data")
    }
    raise_if_damaged(csr_problems(name, parts, shape, nnz), folder)
    # The kernels index with the columns: one out of range would crash the process, so
    # they are checked, hash or no hash (an altered file with a rewritten hash).
    columns = range_problems(f"{name}.indices.npy", parts["indices"], shape[1], what)
    raise_if_damaged(columns, folder)
    try:
        # The constructor's own checks are O(1) for these mmapped arrays bar indptr.
        return sp.csr_matrix(
            (parts["data"], parts["indices"], parts["indptr"]), shape=shape, copy=False
        )
    except ValueError as exc:
        raise DamagedIndexError(f"{name} matrix in {folder} is inconsistent: {exc}") from None


class _ReportsDamage:
    """Turns a record that cannot be decoded into a :class:`DamagedIndexError`."""

    def __getitem__(self, position):
        try:
            return super().__getitem__(position)
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged(position, exc) from None

    def partial(self, position, decode):
        try:
            return super().partial(position, decode)
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged(position, exc) from None

    def __iter__(self) -> Iterator[TrialRecord]:
        try:
            yield from super().__iter__()
        except (ValueError, msgspec.DecodeError) as exc:
            raise self._damaged("in a run", exc) from None

    def _damaged(self, position, exc: Exception) -> DamagedIndexError:
        return DamagedIndexError(
            f"record {position} of the index at {self.lines_path.parent} cannot be read "
            f"({type(exc).__name__}: {exc}); the index is damaged: rebuild it"
        )


class IndexRecords(_ReportsDamage, RecordStore):
    """The records of a one-segment index."""


class SegmentedIndexRecords(_ReportsDamage, SegmentedRecords):
    """The records of an updated index, in several segments."""


def _open_records(folder: Path, meta: dict, n: int) -> RecordStore:
    """The records, after checking their offsets (and spans) against the files."""
    n_segments = record_segments(meta)
    offsets = _load_array(folder, RECORDS_OFFSETS_FILE.removesuffix(".npy"), mmap=True)
    size = (folder / RECORDS_FILE).stat().st_size
    m = n if n_segments == 1 else len(offsets) - 1  # rows of segment 0 only
    raise_if_damaged(records_problems(offsets, m, size), folder)
    if n_segments == 1:
        return IndexRecords(folder / RECORDS_FILE, folder / RECORDS_OFFSETS_FILE)
    spans = _load_array(folder, SPANS_FILE.removesuffix(".npy"), mmap=True)
    sizes = [(folder / name).stat().st_size for name in segment_files(n_segments)]
    raise_if_damaged(spans_problems(spans, n, sizes), folder)
    return SegmentedIndexRecords(folder, n_segments, spans, folder / RECORDS_OFFSETS_FILE)


class TrialIndex:
    """A loaded index: precomputed neighbours, on-the-fly search and explanations.

    Use :meth:`load`; the constructor takes already loaded parts.
    """

    def __init__(
        self,
        path: Path,
        meta: dict,
        ids: np.ndarray,
        vectors: sp.csr_matrix,
        search: CosineNeighbours,
        neighbour_indices: np.ndarray,
        neighbour_scores: np.ndarray,
        vectorizer: FieldGroupVectorizer,
        facets: Facets,
        records: RecordStore,
    ) -> None:
        self.path = path
        self.meta = meta
        self.ids = ids
        self.vectors = vectors
        self.search = search
        self.neighbour_indices = neighbour_indices
        self.neighbour_scores = neighbour_scores
        self.vectorizer = vectorizer
        self.facets = facets
        self.records = records
        self.feature_names = np.asarray(vectorizer.feature_names(), dtype=object)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, verify: bool = True) -> TrialIndex:
        """Open the index served at ``folder``, memory-mapping its arrays.

        ``folder`` is resolved once (a symlink to a version, see
        :mod:`recommender.index.versions`): the object keeps reading that version however
        the served path changes later, and holds it open so that no writer removes it.

        Parameters
        ----------
        folder : path
        verify : bool, default True
            Check every file's SHA-256 first (reads the whole index once). Required
            files, sizes and the structural checks of :mod:`recommender.index.checks`
            are done either way.

        Raises
        ------
        DamagedIndexError
            Missing, truncated, altered or wrong-version index, with the reason.
        """
        resolved = resolve_index_folder(folder)
        # Held by the index (and any shallow copy of it) for as long as it lives.
        hold = hold_version(resolved)
        try:
            meta = verify_index(resolved, hashes=verify)
            index = cls._open(resolved, meta)
        except DamagedIndexError:
            hold.close()
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            hold.close()
            raise DamagedIndexError(f"index at {resolved} cannot be opened: {exc}") from None
        index._hold = hold
        return index

    @classmethod
    def _open(cls, folder: Path, meta: dict) -> TrialIndex:
        counts = meta["counts"]
        n, d, k = counts["studies"], counts["features"], counts["k"]
        ids = _load_array(folder, "ids", mmap=False)
        raise_if_damaged(ids_problems(ids, n), folder)
        vectors = _load_csr(folder, "vectors", (n, d), counts["nonzeros"], "column")
        postings = _load_csr(folder, "postings", (d, n), counts["nonzeros"], "row")
        vocabularies = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        idf = _load_array(folder, "idf", mmap=False)
        raise_if_damaged(
            vocabulary_problems(vocabularies, meta["vectorizer"]["groups"], idf, d), folder
        )
        vectorizer = _vectorizer_from_parts(meta["vectorizer"], vocabularies, idf)
        facet_codes = {f: _load_array(folder, f"facet.{f}", mmap=False) for f in FACET_FIELDS}
        raise_if_damaged(facet_problems(facet_codes, meta["facets"], n), folder)
        neighbour_indices = _load_array(folder, "neighbours.indices", mmap=True)
        neighbour_scores = _load_array(folder, "neighbours.scores", mmap=True)
        raise_if_damaged(neighbour_problems(neighbour_indices, neighbour_scores, n, k), folder)
        records = _open_records(folder, meta, n)
        if vectorizer.n_features_ != d:
            raise DamagedIndexError(f"index at {folder}: array shapes disagree with {META_FILE}")
        return cls(
            path=folder,
            meta=meta,
            ids=ids,
            vectors=vectors,
            search=CosineNeighbours().set_postings(postings),
            neighbour_indices=neighbour_indices,
            neighbour_scores=neighbour_scores,
            vectorizer=vectorizer,
            facets=Facets(labels=meta["facets"], codes=facet_codes),
            records=records,
        )

    # -- lookups ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, nct_id: object) -> bool:
        try:
            self.position(nct_id)
        except (NotInIndexError, ValueError):
            return False
        return True

    @property
    def built_at(self) -> str:
        return self.meta.get("built_at", "")

    def position(self, nct_id: object) -> int:
        """Row of ``nct_id``; raises ``InvalidNctIdError`` or :class:`NotInIndexError`."""
        nct_id = validate_nct_id(nct_id)
        pos = int(np.searchsorted(self.ids, nct_id))
        if pos >= len(self.ids) or self.ids[pos] != nct_id:
            raise NotInIndexError(
                f"{nct_id} is not in this index (built from {len(self):,} studies on "
                f"{self.built_at[:10] or 'an unknown date'})"
            )
        return pos

    def record(self, nct_id: str) -> TrialRecord:
        return self.records[self.position(nct_id)]

    # -- recommendations -------------------------------------------------------------

    def similar(
        self, nct_id: str, k: int = DEFAULT_RESULTS, *, allowed: np.ndarray | None = None
    ) -> list[Neighbour]:
        """The ``k`` trials most like an indexed trial, never the trial itself,
        ranked by the vector it asks with (:meth:`lookup_query`).

        A lookup in the precomputed lists when they hold enough (after ``allowed``,
        a boolean filter over trials, is applied); otherwise an exact search. A thin
        trial is searched with its reading (its stored list was found with its row);
        its answer without a filter is kept with its reading.
        """
        pos = self.position(nct_id)
        if self.asked.reads_prose(pos):
            ids, scores = self._search_asked(pos, k, allowed)
            return self._neighbours(ids[:k], scores[:k])
        stored_ids = np.asarray(self.neighbour_indices[pos])
        stored_scores = np.asarray(self.neighbour_scores[pos])
        keep = stored_ids != NO_NEIGHBOUR
        if allowed is not None:
            keep &= allowed[np.maximum(stored_ids, 0)]
        ids, scores = stored_ids[keep], stored_scores[keep]
        list_complete = stored_ids[-1] == NO_NEIGHBOUR  # fewer positive scores than k
        if len(ids) < k and not list_complete:
            found, found_scores = self.search.kneighbors(
                self.vectors[pos], k, exclude=np.array([pos]), allowed=allowed
            )
            ids, scores = found[0], found_scores[0]
        return self._neighbours(ids[:k], scores[:k])

    def _search_asked(
        self, pos: int, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of a thin trial's ``k`` nearest by its reading (an answer
        without a filter is kept, and serves any smaller ``k``)."""
        if allowed is None:
            kept = self.asked.answer(pos)
            if kept is not None and len(kept[0]) >= k:
                return kept
        positions = np.array([pos])
        found, scores = self.asked_kneighbors(positions, self.lookup_query(pos), k, allowed=allowed)
        if allowed is None:
            self.asked.keep_answer(pos, found[0], scores[0])
        return found[0], scores[0]

    def asked_kneighbors(
        self,
        positions: np.ndarray,
        queries: sp.csr_matrix,
        k: int,
        *,
        lists: tuple[np.ndarray, np.ndarray] | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of thin trials by their readings, never themselves.

        A reading is the trial's row scaled plus its prose in the list groups, so
        its stored list (found with its row) bounds every row outside it and only a
        few rows need scoring (:func:`kneighbors_from_lists`: recall@10 0.999 of
        exact search, a tenth of its time). When ``k`` is over half the stored
        list, the list's last score is too near the k-th to bound anything, and the
        whole index is searched exactly.

        Parameters
        ----------
        positions : ndarray of shape (n,), dtype int
            The thin trials' rows.
        queries : csr_matrix of shape (n, n_features)
            Their readings (:meth:`lookup_query`, :meth:`AskedVectors.vectors_of`).
        k : int
        lists : (ndarray, ndarray) of shape (n, stored k), optional
            Their stored lists and scores, if already read (the export's blocks).
        allowed : ndarray of shape (n_trials,), dtype bool, optional

        Returns
        -------
        indices : ndarray of shape (n, k), dtype int32
        scores : ndarray of shape (n, k), dtype float32
        """
        positions = np.asarray(positions, dtype=np.int64)
        if 2 * k > self.neighbour_indices.shape[1]:
            return self.search.kneighbors(queries, k, exclude=positions, allowed=allowed)
        if lists is None:
            lists = (self.neighbour_indices[positions], self.neighbour_scores[positions])
        return kneighbors_from_lists(
            self.search, self.vectors, queries, k, own=positions, lists=lists[0],
            list_scores=lists[1], extra=self.asked.fillable_, allowed=allowed,
        )  # fmt: skip

    @functools.cached_property
    def asked(self) -> AskedVectors:
        """How each indexed trial is asked about (:class:`AskedVectors`), made once."""
        return AskedVectors(self.vectors, self.vectorizer, self.records)

    def lookup_query(self, position: int) -> sp.csr_matrix:
        """The (1, n_features) vector the indexed trial at ``position`` is asked about
        with, for :meth:`similar` and :meth:`explain`: its row, or for a thin trial
        (no condition, no intervention) its record read as :meth:`query_vector` reads
        a draft, so it ranks its related trials as that draft would."""
        return self.asked.vector(position)

    def similar_to_vector(
        self, query: sp.csr_matrix, k: int = DEFAULT_RESULTS, *, allowed: np.ndarray | None = None
    ) -> list[Neighbour]:
        """The ``k`` indexed trials closest to a vector from :meth:`vectorize`."""
        found, scores = self.search.kneighbors(query, k, allowed=allowed)
        return self._neighbours(found[0], scores[0])

    def vectorize(self, record: TrialRecord, text: str | None = None) -> sp.csr_matrix:
        """The (1, n_features) vector of a trial as an indexed row of it would be (it
        need not be indexed; :meth:`query_vector` reads a query).

        ``text`` is free text about it (a draft's description), read in the free-text
        group (see :meth:`FieldGroupVectorizer.transform`).
        """
        return self.vectorizer.transform([record], None if text is None else [text])

    def query_vector(self, draft: TrialRecord, text: str | None = None) -> sp.csr_matrix:
        """The vector of a query that is not an indexed trial (a draft's fields, a free
        ``text``, or both), for :meth:`similar_to_vector` and :meth:`explain`: each
        column once. The Python API, the command line and the service all ask so. A
        draft with no condition and no intervention also reads its prose into those
        groups (:meth:`FieldGroupVectorizer.transform_queries`).

        Raises
        ------
        EmptyQueryError
            No field and no text holds a word (:data:`EMPTY_QUERY`), or none of its
            words is in the index (:data:`NO_KNOWN_WORD`).
        """
        words = [
            text, draft.brief_title, draft.official_title, draft.acronym, draft.brief_summary,
            draft.detailed_description, draft.conditions, draft.keywords,
            [i.name for i in draft.interventions],
        ]  # fmt: skip
        if is_blank(words):
            raise EmptyQueryError(EMPTY_QUERY)
        vector = self.vectorizer.transform_queries([draft], None if text is None else [text])
        if vector.nnz == 0:
            raise EmptyQueryError(NO_KNOWN_WORD)
        vector.sum_duplicates()  # an explanation matches each column once
        return vector

    def _neighbours(self, ids: np.ndarray, scores: np.ndarray) -> list[Neighbour]:
        return [
            Neighbour(rank=r + 1, position=int(i), nct_id=str(self.ids[i]), score=float(s))
            for r, (i, s) in enumerate(zip(ids, scores, strict=True))
            if i != NO_NEIGHBOUR
        ]

    @functools.cached_property
    def explainer(self) -> Explainer:
        """The :class:`Explainer` of this index's scores: field groups and the terms a
        person can read as reasons (:func:`recommender.text.readable`), made once."""
        groups = self.vectorizer.groups
        return Explainer(
            self.vectors,
            self.vectorizer.offsets_,
            [g.name for g in groups],
            self.feature_names,
            self.vectorizer.readable_columns(),
        )

    def explain(
        self, query: sp.csr_matrix, position: int, *, n_terms: int = 3
    ) -> list[dict[str, object]]:
        """Which field groups and terms made up the score of one result.

        Parameters
        ----------
        query : csr_matrix of shape (1, n_features)
            The query's vector (:meth:`lookup_query` for an indexed trial).
        position : int
            Row of the recommended trial.
        n_terms : int, default 3
            Terms listed per field group.

        Returns
        -------
        list of dict
            ``{"field", "score", "terms"}`` per group sharing a term with the query,
            largest first; the ``score`` values add up to the score (see
            :meth:`Explainer.explain_results`).
        """
        query = sp.csr_matrix(query, copy=True)
        query.sum_duplicates()  # each column once, as the explainer needs
        return self.explainer.explain_results(query.indices, query.data, [position], n_terms)[0]


def _vectorizer_from_parts(params: dict, vocabularies: dict, idf: np.ndarray):
    idfs, start = {}, 0
    for group in params["groups"]:
        size = len(vocabularies[group["name"]])
        idfs[group["name"]] = idf[start : start + size]
        start += size
    if start != len(idf):
        raise DamagedIndexError(f"vocabulary has {start} terms but idf.npy has {len(idf)}")
    return FieldGroupVectorizer.from_state(params, vocabularies, idfs)
