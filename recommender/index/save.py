"""A complete index saved as a new version and served atomically (:func:`save_index`).

The parts (ids, vectors, postings, neighbour lists, vocabulary, IDF, facets, records)
are written by a :class:`~recommender.index.writer.VersionWriter` into a staging folder
(:mod:`recommender.index.versions`), ``meta.json`` last, then swapped in by one rename.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import numpy as np
import scipy.sparse as sp

from recommender.core import Facets, TrialRecord
from recommender.index.format import FORMAT_NAME, FORMAT_VERSION
from recommender.index.loaded import TrialIndex
from recommender.index.updated_records import UpdatedRecords
from recommender.index.versions import META_FILE, Staging
from recommender.index.writer import VersionWriter, _lines_on_disk
from recommender.infra import fault_point
from recommender.neighbours import transposed
from recommender.text import FieldGroupVectorizer


class _SavedFields(msgspec.Struct):
    """What saving reads of a record besides its stored line: its id and facets."""

    nct_id: str
    phases: tuple[str, ...] = ()
    overall_status: str | None = None
    study_type: str | None = None


def _ids_and_facets(
    records: Sequence[TrialRecord], base: TrialIndex | None
) -> tuple[np.ndarray, Facets]:
    """The records' ids and facets, reading as little of them as can be."""
    if isinstance(records, UpdatedRecords) and base is not None and records.base is base.records:
        return records.ids, Facets.updated(base.facets, records.source, records.new)
    # Records on disk are read once, four fields of each, for the ids and the facets.
    fields = list(records.iter_fields(_SavedFields)) if _lines_on_disk(records) else records
    return np.asarray([r.nct_id for r in fields], dtype="<U11"), Facets.from_records(fields)


def save_index(
    folder: str | os.PathLike,
    *,
    records: Sequence[TrialRecord],
    vectorizer: FieldGroupVectorizer,
    vectors: sp.csr_matrix,
    neighbour_indices: np.ndarray,
    neighbour_scores: np.ndarray,
    meta: dict,
    report: dict | None = None,
    base: TrialIndex | None = None,
    base_rows: np.ndarray | None = None,
    postings: sp.csr_matrix | None = None,
    guard: Callable[[], None] | None = None,
) -> Path:
    """Write a complete index as a new version and serve it at ``folder`` atomically.

    The files are written into a temporary folder beside the versions of ``folder``
    (see :mod:`recommender.index.versions`), hashed as they are written, made read-only,
    named as a version and then swapped in by one rename: an interrupted save leaves
    the previous index served, and a killed one leaves a folder the next save
    removes.

    Parameters
    ----------
    folder : path
        The served path; its parent is created if needed.
    records : sequence of TrialRecord, length n
        Sorted by ``nct_id``, in the row order of ``vectors``.
    vectorizer : FieldGroupVectorizer
        Fitted; its vocabulary and IDF are stored.
    vectors : csr_matrix of shape (n, n_features), dtype float32
    neighbour_indices, neighbour_scores : ndarray of shape (n, k)
    meta : dict
        Build facts (sources, timings, ...) merged into ``meta.json``.
    report : dict, optional
        Stored as ``build_report.json``.
    base : TrialIndex, optional
        The index this one updates: parts equal to its own are hard-linked from it
        (see :class:`VersionWriter`).
    base_rows : ndarray of shape (n,), optional
        With ``base``: for each row, the row of ``base`` whose record it is unchanged,
        -1 for a new or changed record. Only those are written, as a new record
        segment; the base's record files are linked.
    postings : csr_matrix of shape (n_features, n), optional
        ``vectors.T`` as CSR, when the caller has made it already (an update
        searches with it); made here otherwise.
    guard : callable, optional
        Called just before the new version is served, under the writer lock; raises
        to refuse it (a writer whose index changed meanwhile, see
        :mod:`recommender.index.writers`).

    Returns
    -------
    Path
        The served path.
    """
    final = Path(folder)
    with Staging(final, guard) as staging:
        writer = VersionWriter(staging.folder, base)
        full_meta = _write_parts(
            writer, records, vectorizer, vectors, neighbour_indices, neighbour_scores, report,
            base_rows, postings,
        )  # fmt: skip
        full_meta.update(meta)
        full_meta["files"] = dict(sorted(writer.files.items()))
        full_meta["linked_from_previous"] = sorted(writer.linked)
        writer.json(META_FILE, full_meta)  # last: a folder with it is complete
        staging.publish()
    return final


def _write_parts(out: VersionWriter, records, vectorizer, vectors, neighbour_indices,
                 neighbour_scores, report, base_rows, postings):  # fmt: skip
    base = out.base
    same_vectors = base is not None and vectors is base.vectors
    if not same_vectors:
        vectors = sp.csr_matrix(vectors, dtype=np.float32)
    with ThreadPoolExecutor(max_workers=1) as helper:
        # scipy transposes without the GIL: while the records are coded and the
        # vectors written (0.4 s of the registry corpus's save).
        transposing = (
            None if same_vectors or postings is not None else helper.submit(transposed, vectors)
        )
        ids, facets = _ids_and_facets(records, base)
        if len(ids) and not np.all(ids[1:] > ids[:-1]):
            raise ValueError("records must be sorted by nct_id with no duplicates")
        if vectors.shape[0] != len(ids) or neighbour_indices.shape[0] != len(ids):
            raise ValueError("records, vectors and neighbours disagree on the number of trials")
        fault_point("write")
        out.array("ids", ids, base.ids if base is not None else None)
        out.csr("vectors", vectors, base.vectors if base is not None else None)
        base_postings = base.search.postings_ if same_vectors else None
        if same_vectors:  # linked, not written again
            postings = base_postings
        elif transposing is not None:
            postings = transposing.result()
        elif postings.shape != vectors.shape[::-1]:
            raise ValueError(f"postings of shape {postings.shape} for vectors of {vectors.shape}")
    out.csr("postings", postings, base_postings)
    out.array(
        "neighbours.indices",
        neighbour_indices.astype(np.int32, copy=False),
        base.neighbour_indices if base is not None else None,
    )
    out.array(
        "neighbours.scores",
        neighbour_scores.astype(np.float32, copy=False),
        base.neighbour_scores if base is not None else None,
    )
    params, vocabularies, idfs = vectorizer.get_state()
    same_vectorizer = base is not None and vectorizer is base.vectorizer
    out.json("vocabulary.json", vocabularies, reuse=same_vectorizer)
    idf = [idfs[g["name"]] for g in params["groups"]]
    idf = np.concatenate(idf) if idf else np.zeros(0, np.float32)
    out.array("idf", idf, idf if same_vectorizer else None)
    for name, column in facets.codes.items():
        base_column = base.facets.codes[name] if base is not None else None
        if base is not None and facets.labels[name] != base.facets.labels[name]:
            base_column = None  # same codes, other labels
        out.array(f"facet.{name}", column, base_column)
    n_segments = out.records(records, base_rows)
    out.json("build_report.json", report or {})
    fault_point("written")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "vectorizer": params,
        "facets": dict(facets.labels),
        "counts": {
            "studies": len(ids),
            "features": int(vectors.shape[1]),
            "nonzeros": int(vectors.nnz),
            "k": int(neighbour_indices.shape[1]),
            "vocabulary": {name: len(terms) for name, terms in vocabularies.items()},
            "record_segments": n_segments,
        },
    }
