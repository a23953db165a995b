"""The ``recommender`` command line: one module per command (``build``, ``similar``,
``serve``, ``evaluate``, ``labels``, ``fetch``, ``update``, ``export``), each with
``add_parser`` and ``run``. ``python -m recommender`` runs it too."""

from recommender.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_ENVIRONMENT,
    EXIT_FAILURE,
    EXIT_OK,
    BadInput,
)
from recommender.cli._main import main, make_parser

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUSY",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILURE",
    "EXIT_OK",
    "BadInput",
    "main",
    "make_parser",
]
