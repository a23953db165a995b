"""Label sets read and checked: which trials are relevant to which query.

Labels files come in two formats (JSON, one object keyed by query NCT id):

* a *related list*, ``{"NCTquery": ["NCTrelevant", ...]}``: unordered, every listed
  trial is relevant with grade 1 and every other trial is not relevant;
* *graded judgements*, ``{"NCTquery": {"NCTcandidate": 0 | 1 | 2, ...}}``: grade 0
  is a judged non-relevant candidate, any grade >= 1 is relevant.

A labels *folder* in the TREC/BEIR layout holds free-text queries (a patient note, a
draft's description) instead of indexed trials: ``queries.jsonl``, one
``{"_id": ..., "text": ...}`` object a line, and ``qrels.tsv``, tab-separated
``query-id corpus-id score`` lines (a header line first) with grades 0, 1, 2.

Every problem is a :class:`LabelFormatError` naming the file and line or query.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.core import InvalidNctIdError, validate_nct_id

if TYPE_CHECKING:
    pass


QUERIES_FILE, QRELS_FILE = "queries.jsonl", "qrels.tsv"

QRELS_HEADER: tuple[str, ...] = ("query-id", "corpus-id", "score")


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
