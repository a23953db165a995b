"""How good are the recommendations? Ranking metrics over a labels file or folder.

Labels files come in two formats (JSON, one object keyed by query NCT id):

* a *related list*, ``{"NCTquery": ["NCTrelevant", ...]}``: unordered, every listed
  trial is relevant with grade 1 and every other trial is not relevant;
* *graded judgements*, ``{"NCTquery": {"NCTcandidate": 0 | 1 | 2, ...}}``: grade 0
  is a judged non-relevant candidate, any grade >= 1 is relevant.

A labels *folder* in the TREC/BEIR layout holds free-text queries (a patient note, a
draft's description) instead of indexed trials: ``queries.jsonl``, one
``{"_id": ..., "text": ...}`` object a line, and ``qrels.tsv``, tab-separated
``query-id corpus-id score`` lines (a header line first) with grades 0, 1, 2.

Three protocols:

* **full ranking** (default): the system ranks every indexed trial for the query
  (the query itself never counts) and the top ``max(ks)`` are scored;
* **re-ranking** (``rerank=True``, graded judgements only): the system only orders
  the judged candidates of each query by cosine to the query, the usual protocol
  of trial-similarity benchmarks; judged candidates missing from the index go last;
* **free text** (:func:`evaluate_text`, a labels folder): each query's text is
  vectorised as the service vectorises a posted ``text`` and ranked against every
  indexed trial. Judgements of trials the index lacks are dropped first (and
  counted), so the figures measure ranking, not the corpus's coverage of the
  judged trials.

Metric definitions, per query, averaged over queries (macro average):

* ``precision@k`` = relevant results in the top k / k (k, not the number of
  results returned, is the denominator, as in ``trec_eval``);
* ``recall@k`` = relevant results in the top k / relevant judged trials;
* ``ndcg@k`` = DCG@k / IDCG@k with DCG@k = sum over ranks i <= k of
  grade_i / log2(i + 1) (linear gain; binary labels have gain 1) and IDCG@k the DCG
  of the judged trials sorted by grade, best first;
* ``hit@k`` = 1 if any of the top k is relevant, else 0 (hit rate);
* ``mrr@K`` = 1 / rank of the first relevant result within the top K = max(ks),
  0 if none (reciprocal rank);
* ``coverage`` = share of the evaluated queries whose id is in the index (1 for
  free-text queries, which need no id).

A query with no relevant judgement has no recall or nDCG; it is left out and
counted in ``skipped``. A query that is *not in the index* stays in: every metric
is 0 for it (the user asking about it gets nothing), so coverage lowers the other
numbers instead of flattering them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import scipy.sparse as sp

from recommender.index import TrialIndex
from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours
from recommender.records import DRAFT_ID, InvalidNctIdError, TrialRecord, validate_nct_id

if TYPE_CHECKING:
    from recommender.text import FieldGroupVectorizer

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
QUERIES_FILE, QRELS_FILE = "queries.jsonl", "qrels.tsv"
QRELS_HEADER: tuple[str, ...] = ("query-id", "corpus-id", "score")

TextVectorizer = Callable[[Sequence[str]], sp.csr_matrix]


class LabelFormatError(ValueError):
    """A labels file that is not one of the two formats; the message says where."""


@dataclass(frozen=True)
class LabelSet:
    """Judgements per query, read from a labels file.

    Attributes
    ----------
    judgements : dict of str to dict of str to int
        ``{query: {candidate: grade}}``; related lists become grade 1.
    graded : bool
        True for graded judgements (the only format re-ranking accepts).
    """

    judgements: dict[str, dict[str, int]]
    graded: bool

    def __len__(self) -> int:
        return len(self.judgements)

    def relevant(self, query: str) -> dict[str, int]:
        """The judged candidates of ``query`` with grade >= 1."""
        return {c: g for c, g in self.judgements[query].items() if g > 0}


# -- reading labels --------------------------------------------------------------------


def load_labels(path: str | os.PathLike) -> LabelSet:
    """Read and check a labels file in either format.

    Raises
    ------
    LabelFormatError
        Unreadable file, invalid JSON, or content of neither format; the message
        names the file and the first offending query or value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFormatError(f"cannot read labels file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelFormatError(f"{path} is not valid JSON: {exc}") from None
    return parse_labels(data, source=str(path))


def parse_labels(data: object, *, source: str = "labels") -> LabelSet:
    """Check already parsed JSON and turn it into a :class:`LabelSet`."""
    if not isinstance(data, dict) or not data:
        raise LabelFormatError(
            f"{source}: expected a non-empty JSON object keyed by query NCT id, "
            f'e.g. {{"NCT05940610": ["NCT02857010"]}}'
        )
    kinds = {type(v) for v in data.values()}
    if kinds == {list}:
        graded = False
    elif kinds == {dict}:
        graded = True
    else:
        raise LabelFormatError(
            f"{source}: every query must map to a list of related NCT ids or every query "
            f"to an object of graded judgements {{id: 0|1|2}}; found "
            f"{sorted(k.__name__ for k in kinds)}"
        )
    judgements: dict[str, dict[str, int]] = {}
    for raw_query, value in data.items():
        query = _nct_id(raw_query, f"{source}: query")
        if query in judgements:
            raise LabelFormatError(f"{source}: query {query} appears twice")
        where = f"{source}: query {query}"
        judged = _graded(value, where) if graded else _related(value, where)
        if query in judged:
            raise LabelFormatError(f"{where} lists itself as a candidate")
        judgements[query] = judged
    return LabelSet(judgements, graded)


@dataclass(frozen=True)
class TextQuerySet:
    """Free-text queries and their graded judgements of trials, from a labels folder.

    Attributes
    ----------
    texts : dict of str to str
        ``{query id: text}``, in the order of ``queries.jsonl``.
    judgements : dict of str to dict of str to int
        ``{query id: {NCT id: grade}}`` for every query of ``texts`` (``{}`` for one
        without a qrels line); grade 0 is judged not relevant, >= 1 relevant.
    ignored_judgements : int, default 0
        qrels lines about query ids that ``queries.jsonl`` lacks, left out.
    """

    texts: dict[str, str]
    judgements: dict[str, dict[str, int]]
    ignored_judgements: int = 0

    def __len__(self) -> int:
        return len(self.texts)


def load_text_queries(folder: str | os.PathLike) -> TextQuerySet:
    """Read and check a labels folder in the TREC/BEIR layout.

    Parameters
    ----------
    folder : str or path
        Holds ``queries.jsonl`` and ``qrels.tsv`` (see the module docstring).

    Returns
    -------
    TextQuerySet

    Raises
    ------
    LabelFormatError
        A missing or unreadable file, a malformed line (the message names the file
        and line), a query id given twice, a trial judged twice for one query, or
        qrels none of whose query ids is a query.
    """
    folder = Path(folder)
    texts = _read_queries(_label_file(folder, QUERIES_FILE))
    judgements, ignored = _read_qrels(_label_file(folder, QRELS_FILE), texts)
    return TextQuerySet(texts, judgements, ignored)


def _label_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise LabelFormatError(
            f"{folder}: no {name} (a free-text labels folder holds {QUERIES_FILE} and {QRELS_FILE})"
        )
    return path


def _numbered_lines(path: Path) -> list[tuple[str, str]]:
    """``(where, line)`` of every non-blank line; ``where`` is ``"file, line n"``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFormatError(f"cannot read labels file {path}: {exc}") from None
    return [(f"{path}, line {n}", line) for n, line in enumerate(lines, 1) if line.strip()]


def _read_queries(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for where, line in _numbered_lines(path):
        query_id, text = _query_line(line, where)
        if query_id in texts:
            raise LabelFormatError(f"{where}: query id {query_id!r} appears twice")
        texts[query_id] = text
    if not texts:
        raise LabelFormatError(f"{path}: no query")
    return texts


def _query_line(line: str, where: str) -> tuple[str, str]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LabelFormatError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LabelFormatError(f'{where}: expected a JSON object with "_id" and "text"')
    values = []
    for key in ("_id", "text"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise LabelFormatError(f'{where}: "{key}" must be a non-empty string, got {value!r}')
        values.append(value)
    return values[0].strip(), values[1]


def _read_qrels(path: Path, texts: Mapping[str, str]) -> tuple[dict[str, dict[str, int]], int]:
    """Judgements of the queries of ``texts``, and the count of lines of other queries."""
    judgements: dict[str, dict[str, int]] = {query: {} for query in texts}
    lines = _numbered_lines(path)
    if lines and _is_qrels_header(lines[0][1]):
        lines = lines[1:]
    ignored = 0
    for where, line in lines:
        query, candidate, grade = _qrels_line(line, where)
        judged = judgements.get(query)
        if judged is None:
            ignored += 1
        elif candidate in judged:
            raise LabelFormatError(f"{where}: query {query!r} judges {candidate} a second time")
        else:
            judged[candidate] = grade
    _check_qrels_queries(path, len(lines), ignored)
    return judgements, ignored


def _is_qrels_header(line: str) -> bool:
    return tuple(part.strip().lower() for part in line.split("\t")) == QRELS_HEADER


def _qrels_line(line: str, where: str) -> tuple[str, str, int]:
    parts = [part.strip() for part in line.split("\t")]
    if len(parts) != len(QRELS_HEADER):
        raise LabelFormatError(
            f"{where}: expected {len(QRELS_HEADER)} tab-separated columns "
            f"({' '.join(QRELS_HEADER)}), got {len(parts)}"
        )
    query, raw_candidate, raw_grade = parts
    if not query:
        raise LabelFormatError(f"{where}: empty query id")
    candidate = _nct_id(raw_candidate, where)
    try:
        grade = int(raw_grade)
    except ValueError:
        grade = -1
    if grade < 0:
        raise LabelFormatError(
            f"{where}: grade of {candidate} must be a non-negative integer "
            f"(0 not relevant, 1 and 2 relevant), got {raw_grade!r}"
        )
    return query, candidate, grade


def _check_qrels_queries(path: Path, n_lines: int, ignored: int) -> None:
    if not n_lines:
        raise LabelFormatError(f"{path}: no judgement")
    if ignored == n_lines:
        raise LabelFormatError(
            f"{path}: none of its query ids is in {QUERIES_FILE}; are the two files "
            f"of the same label set?"
        )


def _nct_id(value: object, where: str) -> str:
    try:
        return validate_nct_id(value)
    except InvalidNctIdError as exc:
        raise LabelFormatError(f"{where}: {exc}") from None


def _related(items: list, where: str) -> dict[str, int]:
    # Unordered, so a repeated id is the same judgement twice, not an error.
    return {_nct_id(item, where): 1 for item in items}


def _graded(items: dict, where: str) -> dict[str, int]:
    judged = {}
    for raw, grade in items.items():
        candidate = _nct_id(raw, where)
        # bool is an int subclass; true/false is a different format, not a grade.
        if not isinstance(grade, int) or isinstance(grade, bool) or grade < 0:
            raise LabelFormatError(
                f"{where}: grade of {candidate} must be a non-negative integer "
                f"(0 not relevant, 1 relevant, 2 highly relevant), got {grade!r}"
            )
        judged[candidate] = grade
    return judged


# -- metrics of one ranking ------------------------------------------------------------


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain: ``sum(gains[i] / log2(i + 2))`` over 0-based ranks."""
    gains = np.asarray(gains, dtype=np.float64)
    return float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))


def query_metrics(
    ranking: Sequence[str], judged: Mapping[str, int], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Every metric of one query's ranking.

    Parameters
    ----------
    ranking : sequence of str
        Result ids, best first; only the first ``max(ks)`` are read.
    judged : mapping of str to int
        Grades of the judged candidates; unjudged results have grade 0.
    ks : sequence of int
        Cut-offs.

    Returns
    -------
    dict of str to float
        ``precision@k``, ``recall@k``, ``ndcg@k``, ``hit@k`` per k and ``mrr@K``.

    Raises
    ------
    ValueError
        When ``judged`` has no relevant candidate (recall and nDCG are undefined).
    """
    depth = max(ks)
    grades = np.array([judged.get(r, 0) for r in ranking[:depth]], dtype=np.float64)
    grades = np.pad(grades, (0, depth - len(grades)))  # a short list scores 0 below
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
    if not ideal:
        raise ValueError("no relevant judgement: recall and nDCG are undefined")
    relevant = grades > 0
    hits = np.cumsum(relevant)
    out: dict[str, float] = {}
    for k in ks:
        out[f"precision@{k}"] = hits[k - 1] / k
        out[f"recall@{k}"] = hits[k - 1] / len(ideal)
        out[f"ndcg@{k}"] = dcg(grades[:k]) / dcg(ideal[:k])
        out[f"hit@{k}"] = float(hits[k - 1] > 0)
    first = np.flatnonzero(relevant)
    out[f"mrr@{depth}"] = 1.0 / (first[0] + 1) if len(first) else 0.0
    return {name: float(value) for name, value in out.items()}


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Metric keys in report order: each family over every k, then MRR and coverage."""
    names = [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "hit") for k in ks]
    return [*names, f"mrr@{max(ks)}", "coverage"]


# -- systems that rank ---------------------------------------------------------------


class Ranker(Protocol):
    """What the evaluation needs from a system: top-k lists and pair scores."""

    def __contains__(self, nct_id: object) -> bool: ...

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` best trials for each (indexed) query, never the query itself."""
        ...

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of ``query`` to each candidate; -inf for one not indexed."""
        ...

    def top_k_text(self, texts: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` best trials for each free-text query (:func:`evaluate_text`)."""
        ...


def free_text_vectorizer(vectorizer: FieldGroupVectorizer) -> TextVectorizer:
    """Vectorise texts as the service does a posted ``text`` with no other field.

    Each text is read as the free text of an empty draft record (id :data:`DRAFT_ID`).

    Parameters
    ----------
    vectorizer : FieldGroupVectorizer
        Fitted.

    Returns
    -------
    callable
        ``texts`` (sequence of str, length n) to a csr_matrix of shape
        (n, n_features), dtype float32.
    """
    draft = TrialRecord(DRAFT_ID)

    def vectorize(texts: Sequence[str]) -> sp.csr_matrix:
        return vectorizer.transform([draft] * len(texts), free_texts=list(texts))

    return vectorize


class VectorRanker:
    """Cosine ranking over unit-norm rows, e.g. a vectoriser's output in memory.

    Parameters
    ----------
    ids : ndarray of shape (n,), dtype str
        NCT ids of the rows, sorted.
    vectors : sparse matrix of shape (n, n_features), dtype float32
        Unit L2-norm rows.
    search : CosineNeighbours, optional
        Already fitted on ``vectors`` (an index's postings); fitted here if absent.
    text_vectorizer : callable, optional
        Texts (sequence of str, length m) to query rows, a sparse matrix of shape
        (m, n_features), dtype float32, in the space of ``vectors``; needed only by
        :meth:`top_k_text`. A row's norm does not change its ranking.
    """

    def __init__(
        self,
        ids: np.ndarray,
        vectors: sp.spmatrix,
        search: CosineNeighbours | None = None,
        *,
        text_vectorizer: TextVectorizer | None = None,
    ) -> None:
        self.ids = np.asarray(ids)
        self.vectors = sp.csr_matrix(vectors, dtype=np.float32)
        self.search = search or CosineNeighbours(n_jobs=1).fit(self.vectors)
        self.text_vectorizer = text_vectorizer
        self._row = {str(nct_id): i for i, nct_id in enumerate(self.ids)}

    def __contains__(self, nct_id: object) -> bool:
        return nct_id in self._row

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        rows = np.array([self._row[q] for q in queries], dtype=np.int64)
        if not len(rows):
            return []
        found, _ = self.search.kneighbors(self.vectors[rows], k, exclude=rows)
        return self._result_ids(found)

    def top_k_text(self, texts: Sequence[str], k: int) -> list[list[str]]:
        """The ``k`` rows of highest cosine to each text's vector, best first.

        Raises
        ------
        TypeError
            When the ranker was made without a ``text_vectorizer``.
        """
        if self.text_vectorizer is None:
            raise TypeError("this ranker has no text_vectorizer: it cannot rank free text")
        if not len(texts):
            return []
        found, _ = self.search.kneighbors(self.text_vectorizer(list(texts)), k)
        return self._result_ids(found)

    def _result_ids(self, found: np.ndarray) -> list[list[str]]:
        """Ids of a (n_queries, k) array of rows, without the -1 padding."""
        return [[str(self.ids[i]) for i in row if i != NO_NEIGHBOUR] for row in found]

    def score(self, query: str, candidates: Sequence[str]) -> np.ndarray:
        rows = np.array([self._row.get(c, -1) for c in candidates], dtype=np.int64)
        scores = np.full(len(candidates), -np.inf)
        known = rows >= 0
        if known.any():
            products = self.vectors[rows[known]] @ self.vectors[self._row[query]].T
            scores[known] = products.toarray().ravel()
        return scores


class IndexRanker(VectorRanker):
    """A saved index, ranked as the service ranks: its precomputed neighbour lists
    (an exact search when ``k`` exceeds them), its stored vectors for re-ranking, and
    its vectoriser for free text, read as the service reads a posted ``text``."""

    def __init__(self, index: TrialIndex) -> None:
        super().__init__(
            index.ids,
            index.vectors,
            search=index.search,
            text_vectorizer=free_text_vectorizer(index.vectorizer),
        )
        self.index = index

    def top_k(self, queries: Sequence[str], k: int) -> list[list[str]]:
        return [[n.nct_id for n in self.index.similar(q, k)] for q in queries]


# -- the runner ------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Mean metrics over the evaluated queries, and what was left out.

    Attributes
    ----------
    mode : str
        ``"full"``, ``"rerank"`` or ``"text"`` (free-text queries, full ranking).
    metrics : dict of str to float
        Macro averages (see the module docstring), including ``coverage``.
    per_query : dict of str to dict of str to float
        Each evaluated query's metrics, for paired comparisons.
    not_in_index : list of str
        Evaluated queries the index lacks (scored 0).
    skipped : list of str
        Queries without a relevant judgement (not evaluated); for free-text queries,
        also those left without one once judgements outside the index were dropped.
    dropped_judgements : int, default 0
        Judgements (any grade) of trials the index lacks, dropped before scoring
        free-text queries.
    """

    mode: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    not_in_index: list[str]
    skipped: list[str]
    dropped_judgements: int = 0

    @property
    def queries(self) -> int:
        return len(self.per_query)

    def to_json(self) -> dict:
        return {
            "queries": self.queries,
            "mode": self.mode,
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "not_in_index": len(self.not_in_index),
            "skipped": len(self.skipped),
            "dropped_judgements": self.dropped_judgements,
        }


def evaluate(
    ranker: Ranker,
    labels: LabelSet,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    rerank: bool = False,
) -> EvaluationResult:
    """Score ``ranker`` on every query of ``labels``.

    Parameters
    ----------
    ranker : Ranker
        An :class:`IndexRanker`, :class:`VectorRanker` or any object with the same
        three methods (the BM25 baseline of ``scripts/evaluate_dev.py``).
    labels : LabelSet
    ks : sequence of int, default (1, 5, 10)
        Cut-offs; positive.
    rerank : bool, default False
        Order only each query's judged candidates (graded labels only).

    Returns
    -------
    EvaluationResult
    """
    ks = _checked_ks(ks)
    if rerank and not labels.graded:
        raise ValueError(
            "re-ranking needs graded judgements with judged non-relevant candidates; "
            "a related list has nothing to re-rank against"
        )
    skipped = [q for q in labels.judgements if not labels.relevant(q)]
    queries = [q for q in labels.judgements if labels.relevant(q)]
    present = [q for q in queries if q in ranker]
    rankings = _rerankings(ranker, labels, present) if rerank else _rankings(ranker, present, ks)
    per_query = {}
    for query in queries:
        ranking = rankings.get(query, [])  # not in the index: an empty list, all zeros
        per_query[query] = query_metrics(ranking, labels.judgements[query], ks)
    metrics = _means(per_query, ks)
    metrics["coverage"] = len(present) / len(queries) if queries else 0.0
    missing = [q for q in queries if q not in ranker]
    mode = "rerank" if rerank else "full"
    return EvaluationResult(mode, metrics, per_query, missing, skipped)


def evaluate_text(
    ranker: Ranker, queries: TextQuerySet, ks: Sequence[int] = DEFAULT_KS
) -> EvaluationResult:
    """Score ``ranker`` on free-text queries, ranked against every indexed trial.

    Judgements of trials not in ``ranker`` are dropped first; a query left without
    a relevant judgement is skipped. Gains are the grades (graded nDCG), unjudged
    results have grade 0.

    Parameters
    ----------
    ranker : Ranker
        Needs ``__contains__`` and ``top_k_text``.
    queries : TextQuerySet
    ks : sequence of int, default (1, 5, 10)
        Cut-offs; positive.

    Returns
    -------
    EvaluationResult
        Mode ``"text"``; ``dropped_judgements`` says how many judgements were dropped.
    """
    ks = _checked_ks(ks)
    judgements, dropped = restrict_to_index(ranker, queries.judgements)
    relevant = {q: any(g > 0 for g in judgements[q].values()) for q in queries.texts}
    evaluated = [q for q, has in relevant.items() if has]
    skipped = [q for q, has in relevant.items() if not has]
    rankings = ranker.top_k_text([queries.texts[q] for q in evaluated], max(ks))
    per_query = {
        query: query_metrics(ranking, judgements[query], ks)
        for query, ranking in zip(evaluated, rankings, strict=True)
    }
    metrics = _means(per_query, ks)
    metrics["coverage"] = 1.0 if per_query else 0.0
    return EvaluationResult("text", metrics, per_query, [], skipped, dropped_judgements=dropped)


def restrict_to_index(
    ranker: Ranker, judgements: Mapping[str, Mapping[str, int]]
) -> tuple[dict[str, dict[str, int]], int]:
    """``judgements`` without the candidates ``ranker`` lacks, and how many went.

    Returns
    -------
    kept : dict of str to dict of str to int
        Every query of ``judgements``, with only its indexed candidates.
    dropped : int
        Judgements (any grade) removed.
    """
    kept = {q: {c: g for c, g in judged.items() if c in ranker} for q, judged in judgements.items()}
    total = sum(len(judged) for judged in judgements.values())
    return kept, total - sum(len(judged) for judged in kept.values())


def _checked_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {ks}")
    return ks


def _rankings(ranker: Ranker, queries: list[str], ks: Sequence[int]) -> dict[str, list[str]]:
    return dict(zip(queries, ranker.top_k(queries, max(ks)), strict=True))


def _rerankings(ranker: Ranker, labels: LabelSet, queries: list[str]) -> dict[str, list[str]]:
    rankings = {}
    for query in queries:
        candidates = sorted(labels.judgements[query])
        scores = ranker.score(query, candidates)
        # Stable sort of id-sorted candidates: ties (and unindexed ones) go by id.
        order = np.argsort(-scores, kind="stable")
        rankings[query] = [candidates[i] for i in order]
    return rankings


def _means(per_query: Mapping[str, Mapping[str, float]], ks: Sequence[int]) -> dict[str, float]:
    names = metric_names(ks)[:-1]
    if not per_query:
        return dict.fromkeys(names, 0.0)
    return {name: float(np.mean([m[name] for m in per_query.values()])) for name in names}


def format_table(result: EvaluationResult, ks: Sequence[int] = DEFAULT_KS) -> str:
    """A plain-text report: counts, then one line per metric family and k."""
    ks = sorted(set(ks))
    lines = [
        f"mode: {result.mode}; queries evaluated: {result.queries:,} "
        f"(not in index: {len(result.not_in_index):,}, "
        f"without a relevant judgement: {len(result.skipped):,})",
        f"{'metric':<10}" + "".join(f"{'@' + str(k):>9}" for k in ks),
    ]
    for family in ("ndcg", "precision", "recall", "hit"):
        values = "".join(f"{result.metrics[f'{family}@{k}']:>9.4f}" for k in ks)
        lines.append(f"{family:<10}{values}")
    lines.append(f"{'mrr@' + str(max(ks)):<10}{result.metrics[f'mrr@{max(ks)}']:>9.4f}")
    lines.append(f"{'coverage':<10}{result.metrics['coverage']:>9.4f}")
    if result.mode == "text" or result.dropped_judgements:
        lines.append(
            f"judgements dropped, their trial not in the index: {result.dropped_judgements:,}"
        )
    return "\n".join(lines)


def paired_bootstrap(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean difference ``b - a`` of one metric over shared queries, with a 95% interval.

    Resamples queries with replacement, so a tuning change is kept only when the
    interval says more than query noise.

    Returns
    -------
    (mean, low, high) : tuple of float
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two results share no query")
    diff = np.array([b[q][metric] - a[q][metric] for q in shared])
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n_resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> ``(1, 5, 10)``; raises ValueError for anything else."""
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"cut-offs must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {text!r}")
    return ks
