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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.core import (
    DEFAULT_INDEX,
    DEFAULT_RESULTS,
    MAX_FIELD_CHARS,
    MAX_LIST_ITEMS,
    DisplayTitle,
    QueryError,
    TrialRecord,
    check_results,
    check_text,
    draft_record,
    draft_title,
)
from recommender.index import Neighbour, TrialIndex
from recommender.search.results import Result, Results, Why

if TYPE_CHECKING:
    import scipy.sparse as sp

Filter = str | Iterable[str] | None


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
        query = self.index.lookup_query(position) if why else None
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
        vector = self.index.query_vector(draft, text)
        allowed = self._allowed(*filters)
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
        explained: list[tuple[Why, ...] | None] = [None] * len(neighbours)
        if query is not None:
            # One pass for every result (the query's columns are sorted and unique:
            # an indexed trial's row, or TrialIndex.query_vector's).
            groups = self.index.explainer.explain_results(
                query.indices, query.data, [n.position for n in neighbours]
            )
            explained = [
                tuple(Why(e["field"], float(e["score"]), tuple(e["terms"])) for e in result)  # type: ignore[arg-type]
                for result in groups
            ]
        results = []
        for n, reasons in zip(neighbours, explained, strict=True):
            record = self.index.records[n.position]
            shown = record.display_title
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
