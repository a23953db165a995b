"""What a query of the Python API gives: :class:`Results`, a sequence of :class:`Result`
(what a person reads of each trial, and on request :class:`Why` it is there), with
conversions to plain dicts and to a pandas DataFrame."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, overload

from recommender.core import DisplayTitle

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Why:
    """One field group's share of a score: the terms the two trials share there.

    Attributes
    ----------
    field : str
        ``conditions``, ``interventions``, ``titles``, ``text``, ``sponsor``,
        ``eligibility`` or ``team`` (collaborators, overall officials, sites).
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
