"""Similar clinical trials: the engine (see ``docs/architecture.md`` for its packages)
and its Python API (:mod:`recommender.search`)::

    import recommender

    trials = recommender.open_index("models/index")
    trials.similar("NCT05940610", k=5, status="RECRUITING").to_pandas()

The names below are imported on first use (PEP 562), not with the package: every
module of the engine imports this package first, and ``import recommender.core``
must not load the index, numba and scipy with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recommender.core import (
        DisplayTitle,
        EmptyQueryError,
        InvalidNctIdError,
        QueryError,
        TrialRecord,
        UnknownFacetValueError,
    )
    from recommender.core.version import __version__
    from recommender.index import DamagedIndexError, NotInIndexError
    from recommender.pipelines import build_index
    from recommender.search import Recommender, Result, Results, Why, open_index

__all__ = [
    "DamagedIndexError",
    "DisplayTitle",
    "EmptyQueryError",
    "InvalidNctIdError",
    "NotInIndexError",
    "QueryError",
    "Recommender",
    "Result",
    "Results",
    "TrialRecord",
    "UnknownFacetValueError",
    "Why",
    "__version__",
    "build_index",
    "open_index",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use."""
    import importlib

    home = {
        "DamagedIndexError": "recommender.index",
        "DisplayTitle": "recommender.core",
        "EmptyQueryError": "recommender.core",
        "InvalidNctIdError": "recommender.core",
        "NotInIndexError": "recommender.index",
        "QueryError": "recommender.core",
        "Recommender": "recommender.search",
        "Result": "recommender.search",
        "Results": "recommender.search",
        "TrialRecord": "recommender.core",
        "UnknownFacetValueError": "recommender.core",
        "Why": "recommender.search",
        "__version__": "recommender.core.version",
        "build_index": "recommender.pipelines",
        "open_index": "recommender.search",
    }.get(name)
    if home is None:
        raise AttributeError(f"module 'recommender' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
