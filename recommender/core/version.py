"""The version of the installed package, for ``recommender --version`` and
``recommender.__version__``."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "trial-recommender"


def installed_version() -> str:
    """The installed distribution's version (``pyproject.toml``'s, as pip installed it),
    or ``"0+unknown"`` when the package runs from a folder without being installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = installed_version()
