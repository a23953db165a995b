"""What a query may be: one set of limits and messages for every way of asking.

The command line (``recommender similar``), the REST API (``GET``/``POST /similar``,
the page) and the Python API (:mod:`recommender.search`) take the same queries
within the same limits, so a query refused by one is not answered by another, and
an empty or unknown query is explained in the same words everywhere. The REST API
enforces the limits in its request models (``api/schemas.py``), whose 422 lists
each failed check; the others call :func:`check_results` and :func:`check_text`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Results per query at most. A request for more is a 422 in the API and refused by
# the command line: a related list longer than this is an export
# (`recommender export`), not a query.
MAX_RESULTS = 100
# Characters of free text read (a draft's title, summary and description fit with
# room to spare; the registry's longest description is 32,000 characters).
MAX_TEXT_CHARS = 20_000
# A short field of a draft (a title, an acronym) or one item of a list (a condition).
MAX_FIELD_CHARS = 1_000
# Items of a draft's list (conditions, keywords, interventions).
MAX_LIST_ITEMS = 200

EMPTY_QUERY = (
    "the query is empty: give a few words about the trial (a text, or its title, "
    "conditions or interventions)"
)
NO_KNOWN_WORD = "none of the words of this query occur in the index: nothing to compare it with"


class QueryError(ValueError):
    """A query that cannot be answered as asked: out of limits, empty, or unknown words."""


class EmptyQueryError(QueryError):
    """A query with no word at all, or none that the index knows: nothing to rank by."""


def check_results(k: object) -> int:
    """``k`` as a number of results, 1 to :data:`MAX_RESULTS`; else :class:`QueryError`."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise QueryError(f"the number of results must be a whole number, got {k!r}")
    if not 1 <= k <= MAX_RESULTS:
        raise QueryError(f"the number of results must be 1 to {MAX_RESULTS}, got {k}")
    return k


def check_text(text: str, *, what: str = "the text", limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` if it is at most ``limit`` characters; else :class:`QueryError` naming it."""
    if len(text) > limit:
        raise QueryError(
            f"{what} is {len(text):,} characters long; at most {limit:,} are read "
            "(a title and summary are enough to find similar trials)"
        )
    return text


def is_blank(values: Iterable[object]) -> bool:
    """Whether none of ``values`` (strings, or lists of strings) holds a non-space
    character: such a query asks nothing, whatever its fields."""
    for value in values:
        if isinstance(value, str):
            if value.strip():
                return False
        elif value is not None and not is_blank(value):  # type: ignore[arg-type]
            return False
    return True
