"""Nearest neighbours of sparse rows by dot product: the search (:class:`CosineNeighbours`,
compiled kernels beside it), the search for a query that extends an indexed row, from
that row's stored list (:func:`kneighbors_from_lists`), the explanation of a score
(:class:`Explainer`), and the repair of stored lists after an update
(:func:`update_neighbours`)."""

from recommender.neighbours._arrays import NO_NEIGHBOUR, as_float32_csr, transposed
from recommender.neighbours.explain import Explainer
from recommender.neighbours.listed import kneighbors_from_lists
from recommender.neighbours.repair import update_neighbours
from recommender.neighbours.search import CosineNeighbours

__all__ = [
    "NO_NEIGHBOUR",
    "CosineNeighbours",
    "Explainer",
    "as_float32_csr",
    "kneighbors_from_lists",
    "transposed",
    "update_neighbours",
]
