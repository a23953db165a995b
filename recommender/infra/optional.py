"""Libraries of the optional extras, imported when first needed, with a message that
says what to install.

Building and serving need only the runtime dependencies; what only the evaluation
(scikit-learn's TF-IDF and ``bm25s``, the baselines), Dask builds (``dask``) or the
DataFrame conversion (``pandas``) use is in an extra of ``pyproject.toml``. Without
it, an ``ImportError`` deep inside a library call would say which module is missing,
not which extra brings it; :func:`require` says both.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DISTRIBUTION = "trial-recommender"


class MissingExtraError(ImportError):
    """An optional library is not installed; the message names the extra to install."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError`.

    Parameters
    ----------
    module : str
        The module to import (``"bm25s"``, ``"sklearn.feature_extraction.text"``).
    extra : str
        The extra of this package that installs it.
    purpose : str
        What needs it, for the message (``"the BM25 baseline"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f"pip install '{DISTRIBUTION}[{extra}]' (or `pip install -e '.[{extra}]'` in a "
            f"checkout; `make test` installs every extra)"
        ) from exc
