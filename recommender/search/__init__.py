"""The Python API (``import recommender``): open an index, ask for the trials like an
NCT id, a text or a draft (:mod:`recommender.search.similar`), and get results with
what a person reads (:mod:`recommender.search.results`)."""

from recommender.search.results import Result, Results, Why, format_why, shown_title
from recommender.search.similar import Filter, Recommender, open_index

__all__ = [
    "Filter",
    "Recommender",
    "Result",
    "Results",
    "Why",
    "format_why",
    "open_index",
    "shown_title",
]
