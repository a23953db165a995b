"""Nearest neighbours of sparse rows by dot product: the search (:class:`CosineNeighbours`,
compiled kernels beside it), the explanation of a score (:class:`Explainer`), and the
repair of stored lists after an update (:func:`update_neighbours`)."""

from recommender.neighbours._arrays import NO_NEIGHBOUR, as_float32_csr, transposed
from recommender.neighbours.explain import Explainer
from recommender.neighbours.repair import update_neighbours
from recommender.neighbours.search import CosineNeighbours

__all__ = [
    "NO_NEIGHBOUR",
    "CosineNeighbours",
    "Explainer",
    "as_float32_csr",
    "transposed",
    "update_neighbours",
]
