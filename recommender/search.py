"""The Python API: similar trials from a notebook or a program.

::

    import recommender

    trials = recommender.open_index("models/index")
    results = trials.similar("NCT05940610", k=5, status="RECRUITING", why=True)
    results = trials.similar_to_text("semaglutide for adolescents with obesity", phase="PHASE2")
    results = trials.similar_to_draft(title="...", conditions=["Obesity"], interventions=["..."])
    for r in results:
        print(r.rank, r.nct_id, r.score, r.title)
    results.to_pandas()  # with pandas installed (the `pandas` extra)

It asks the engine (:class:`~recommender.index.TrialIndex`: ``similar``,
``vectorize``, ``similar_to_vector``, ``explain``, ``facets.allowed``) what the
command line and the REST service ask it, within the same limits
(:mod:`recommender.core.queries`), and gives results with what a person reads:
the NCT id, the title shown (:func:`recommender.core.display_title`), conditions,
interventions, status, phases, the score and, on request, the shared terms behind it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from recommender.core import (
    DEFAULT_INDEX,
    DEFAULT_RESULTS,
    EMPTY_QUERY,
    MAX_FIELD_CHARS,
    MAX_LIST_ITEMS,
    NO_KNOWN_WORD,
    DisplayTitle,
    EmptyQueryError,
    QueryError,
    TrialRecord,
    check_results,
    check_text,
    draft_record,
    draft_title,
    is_blank,
)
from recommender.index import Neighbour, TrialIndex

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

Filter = str | Iterable[str] | None


@dataclass(frozen=True, slots=True)
class Why:
    """One field group's share of a score: the terms the two trials share there.

    Attributes
    ----------
    field : str
        ``conditions``, ``interventions``, ``titles``, ``text``, ``sponsor`` or
        ``eligibility``.
    score : float
        This group's share; the shares of a result add up to its score.
    terms : tuple of str
        The shared terms that weigh most, largest first.
    """

    field: str
    score: float
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """One recommended trial, with what a person reads of it.

    Attributes
    ----------
    rank : int
        1 for the most similar.
    nct_id : str
    title : str
        The brief title, else the official title, else one made from the record
        (then ``title_made`` is True: show it as such).
    title_made : bool
    score : float
        How much the two records share (weighted terms added up): a relative match,
        comparable within one list, not a percentage (``docs/evaluation.md``).
    conditions, interventions, phases : tuple of str
    status, study_type : str or None
        The registry's values (``RECRUITING``, ``INTERVENTIONAL``).
    why : tuple of Why, or None
        The field groups and terms behind the score; None unless asked for.
    """

    rank: int
    nct_id: str
    title: str
    title_made: bool
    score: float
    conditions: tuple[str, ...]
    interventions: tuple[str, ...]
    status: str | None
    phases: tuple[str, ...]
    study_type: str | None
    why: tuple[Why, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain values (lists, dicts), ready for JSON."""
        return asdict(self)


class Results(Sequence[Result]):
    """The results of one query, best first: a sequence of :class:`Result`.

    Attributes
    ----------
    query : str or None
        The query trial's NCT id; None for a text or a draft.
    title : str
        The query's title (made, as for a result, when it has none: ``title_made``).
    title_made : bool
    built_at : str
        When the index that answered was built.
    """

    def __init__(
        self, results: Sequence[Result], query: str | None, title: DisplayTitle, built_at: str
    ) -> None:
        self._results = tuple(results)
        self.query = query
        self.title = title.text
        self.title_made = title.made
        self.built_at = built_at

    @overload
    def __getitem__(self, i: int) -> Result: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Result]: ...
    def __getitem__(self, i: int | slice) -> Result | Sequence[Result]:
        return self._results[i]

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def nct_ids(self) -> list[str]:
        """The results' NCT ids, best first."""
        return [r.nct_id for r in self._results]

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each result as :meth:`Result.to_dict`."""
        return [r.to_dict() for r in self._results]

    def to_pandas(self) -> pd.DataFrame:
        """The results as a DataFrame, one row per result, in rank order.

        Columns: ``rank``, ``nct_id``, ``title``, ``title_made``, ``score``,
        ``status``, ``phases``, ``conditions``, ``interventions``, ``study_type``
        (lists joined with ``"; "``), and ``why`` (``"conditions 0.401: asthma; ..."``)
        when the reasons were asked for. The query, its title and the index's build
        time are in ``DataFrame.attrs``.

        Raises
        ------
        ImportError
            pandas is not installed (``pip install 'trial-recommender[pandas]'``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Results.to_pandas needs pandas: pip install 'trial-recommender[pandas]' "
                "(or use Results.to_dicts)"
            ) from None
        rows = []
        for r in self._results:
            row = {
                "rank": r.rank,
                "nct_id": r.nct_id,
                "title": r.title,
                "title_made": r.title_made,
                "score": r.score,
                "status": r.status,
                "phases": "; ".join(r.phases),
                "conditions": "; ".join(r.conditions),
                "interventions": "; ".join(r.interventions),
                "study_type": r.study_type,
            }
            if r.why is not None:
                row["why"] = format_why(r.why)
            rows.append(row)
        columns = list(rows[0]) if rows else list(_EMPTY_COLUMNS)
        frame = pd.DataFrame(rows, columns=columns)
        frame.attrs.update(
            query=self.query, title=self.title, title_made=self.title_made, built_at=self.built_at
        )
        return frame

    def __repr__(self) -> str:
        lines = [f"Results for {self.query or 'a query'}: {shown_title(self)} ({len(self)} trials)"]
        for r in self._results:
            lines.append(f"{r.rank:>3}  {r.nct_id}  {r.score:.3f}  {shown_title(r)}")
        return "\n".join(lines)


_EMPTY_COLUMNS = (
    "rank", "nct_id", "title", "title_made", "score", "status", "phases", "conditions",
    "interventions", "study_type",
)  # fmt: skip


def shown_title(result: Result | Results) -> str:
    """A title as plain text shows it: a made one in brackets."""
    return f"[{result.title}]" if result.title_made else result.title


def format_why(why: Sequence[Why]) -> str:
    """``"conditions 0.401: asthma; text 0.046: asthma, inhaler"``."""
    return "; ".join(f"{w.field} {w.score:.3f}: {', '.join(w.terms)}" for w in why)


class Recommender:
    """Similar trials from one loaded index: the Python API.

    Parameters
    ----------
    index : TrialIndex
        A loaded index (:meth:`open` loads one from its folder).

    Every query takes ``k`` (1 to 100, default 10) and the filters ``status``,
    ``phase`` and ``study_type``: one registry value or several (``"RECRUITING"``,
    ``["PHASE2", "PHASE3"]``; case and spaces are forgiven: ``"not yet
    recruiting"``), applied before ranking; several filters combine with "and",
    several values of one with "or". ``why=True`` adds each result's reasons.
    """

    def __init__(self, index: TrialIndex) -> None:
        self.index = index

    @classmethod
    def open(cls, path: str | os.PathLike = DEFAULT_INDEX, *, verify: bool = True) -> Recommender:
        """Load the index at ``path`` (``models/index`` by default, as ``make serve``
        builds it), checking every file's hash unless ``verify`` is False."""
        return cls(TrialIndex.load(path, verify=verify))

    # -- the index ------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The version folder loaded (the served path is a link to it)."""
        return self.index.path

    @property
    def built_at(self) -> str:
        return self.index.built_at

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, nct_id: object) -> bool:
        return nct_id in self.index

    def __repr__(self) -> str:
        return f"Recommender({len(self):,} trials, built {self.built_at[:19]}, {self.path})"

    def trial(self, nct_id: str) -> TrialRecord:
        """The stored record of an indexed trial (all its fields)."""
        return self.index.record(nct_id)

    # -- queries --------------------------------------------------------------------

    def similar(
        self,
        nct_id: str,
        k: int = DEFAULT_RESULTS,
        *,
        status: Filter = None,
        phase: Filter = None,
        study_type: Filter = None,
        why: bool = False,
    ) -> Results:
        """The ``k`` trials most like the indexed trial ``nct_id``, never itself.

        Raises
        ------
        InvalidNctIdError
            ``nct_id`` is not an NCT id.
        NotInIndexError
            It is not in this index (search a trial that is not by its text or fields).
        QueryError, UnknownFacetValueError
            ``k`` out of range; a filter value that is not the registry's.
        """
        position = self.index.position(nct_id)
        allowed = self._allowed(status, phase, study_type)
        neighbours = self.index.similar(nct_id, check_results(k), allowed=allowed)
        record = self.index.records[position]
        query = self.index.vectors[position] if why else None
        return self._results(neighbours, record.nct_id, record.display_title, query)

    def similar_to_text(
        self,
        text: str,
        k: int = DEFAULT_RESULTS,
        *,
        status: Filter = None,
        phase: Filter = None,
        study_type: Filter = None,
        why: bool = False,
    ) -> Results:
        """The ``k`` trials most like a free text (a draft's title and summary, a
        question), read as ``recommender similar --text`` and ``POST /similar`` read it.

        Raises
        ------
        EmptyQueryError
            The text is blank, or none of its words is in the index.
        QueryError
            ``k`` out of range, or the text longer than 20,000 characters.
        """
        return self._similar_to(draft_record(), text, k, (status, phase, study_type), why)

    def similar_to_draft(
        self,
        *,
        title: str = "",
        official_title: str = "",
        acronym: str = "",
        summary: str = "",
        description: str = "",
        conditions: Sequence[str] = (),
        keywords: Sequence[str] = (),
        interventions: Sequence[str] = (),
        text: str | None = None,
        k: int = DEFAULT_RESULTS,
        status: Filter = None,
        phase: Filter = None,
        study_type: Filter = None,
        why: bool = False,
    ) -> Results:
        """The ``k`` trials most like a trial that is not registered, given by its
        fields (as ``POST /similar`` takes them): a condition meets registered trials'
        conditions, an intervention name their interventions; ``text`` is free text
        besides. Any mix of fields will do.

        Raises
        ------
        EmptyQueryError
            No field holds a word, or none of its words is in the index.
        QueryError
            ``k`` out of range, or a field over its limit (texts 20,000 characters,
            titles and list items 1,000, lists 200 items).
        """
        for name, value in (("title", title), ("official title", official_title)):
            check_text(value, what=f"the {name}", limit=MAX_FIELD_CHARS)
        check_text(acronym, what="the acronym", limit=MAX_FIELD_CHARS)
        for name, value in (("summary", summary), ("description", description)):
            check_text(value, what=f"the {name}")
        lists = {"conditions": conditions, "keywords": keywords, "interventions": interventions}
        for name, items in lists.items():
            if isinstance(items, str):
                raise QueryError(f"{name} must be a list of names, got the string {items!r}")
            if len(items) > MAX_LIST_ITEMS:
                raise QueryError(f"{name} has {len(items):,} items; at most {MAX_LIST_ITEMS}")
            for item in items:
                check_text(item, what=f"an item of {name}", limit=MAX_FIELD_CHARS)
        draft = draft_record(
            title=title,
            official_title=official_title,
            acronym=acronym,
            summary=summary,
            description=description,
            conditions=conditions,
            keywords=keywords,
            interventions=interventions,
        )
        return self._similar_to(draft, text, k, (status, phase, study_type), why)

    # -- the work -------------------------------------------------------------------

    def _similar_to(
        self,
        draft: TrialRecord,
        text: str | None,
        k: int,
        filters: tuple[Filter, Filter, Filter],
        why: bool,
    ) -> Results:
        k = check_results(k)
        if text is not None:
            check_text(text)
        words = [
            text, draft.brief_title, draft.official_title, draft.acronym, draft.brief_summary,
            draft.detailed_description, draft.conditions, draft.keywords,
            [i.name for i in draft.interventions],
        ]  # fmt: skip
        if is_blank(words):
            raise EmptyQueryError(EMPTY_QUERY)
        allowed = self._allowed(*filters)  # a bad filter is reported before any work
        vector = self.index.vectorize(draft, text=text)
        if vector.nnz == 0:
            raise EmptyQueryError(NO_KNOWN_WORD)
        vector.sum_duplicates()  # an explanation matches each column once
        neighbours = self.index.similar_to_vector(vector, k, allowed=allowed)
        return self._results(neighbours, None, draft_title(draft, text), vector if why else None)

    def _allowed(self, status: Filter, phase: Filter, study_type: Filter):
        filters = {"status": status, "phase": phase, "study_type": study_type}
        return self.index.facets.allowed({name: _values(v) for name, v in filters.items()})

    def _results(
        self,
        neighbours: list[Neighbour],
        query_id: str | None,
        title: DisplayTitle,
        query: sp.csr_matrix | None,
    ) -> Results:
        results = []
        for n in neighbours:
            record = self.index.records[n.position]
            shown = record.display_title
            reasons = None
            if query is not None:
                reasons = tuple(
                    Why(e["field"], float(e["score"]), tuple(e["terms"]))  # type: ignore[arg-type]
                    for e in self.index.explain(query, n.position)
                )
            results.append(
                Result(
                    rank=n.rank,
                    nct_id=n.nct_id,
                    title=shown.text,
                    title_made=shown.made,
                    score=n.score,
                    conditions=record.conditions,
                    interventions=tuple(i.name for i in record.interventions),
                    status=record.overall_status,
                    phases=record.phases,
                    study_type=record.study_type,
                    why=reasons,
                )
            )
        return Results(results, query_id, title, self.built_at)


def _values(wanted: Filter) -> list[str]:
    """A filter's values in the registry's spelling: ``"not yet recruiting"`` is
    ``NOT_YET_RECRUITING``, ``"phase 2"`` is ``PHASE2``."""
    if wanted is None:
        return []
    items = [wanted] if isinstance(wanted, str) else list(wanted)
    spelled = []
    for item in items:
        value = "_".join(str(item).upper().replace("-", " ").split())
        spelled.append(value.replace("PHASE_", "PHASE"))
    return spelled


def open_index(path: str | os.PathLike = DEFAULT_INDEX, *, verify: bool = True) -> Recommender:
    """Load the index at ``path`` for queries: :meth:`Recommender.open`."""
    return Recommender.open(path, verify=verify)
