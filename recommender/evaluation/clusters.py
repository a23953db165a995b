"""Which queries of a trial-to-trial label set are not independent draws.

In a trial-to-trial label set the queries are trials, and so are their answers: the
publication sisters' 368 queries are each other's relevant trials, 63 of them one
programme's. A query and its sister measure the same pair from both ends, so a
bootstrap that resamples queries one by one counts one programme as if it were many
independent ones: its interval is too narrow. Folds that split such queries put a
programme on both sides of a cross-validation, and a model that learns what a
programme's trials share looks better than it is (a learned re-ranker trained on the
sisters scored 0.685 nDCG@10 on folds of single queries, 0.536 on folds of whole
programmes, where the default scores 0.540: ``docs/evaluation.md``).

:func:`linked_queries` joins the queries whose answers overlap (one is the other's
relevant trial, or both have the same relevant trial, through any chain of such
links); the bootstrap of :mod:`recommender.evaluation.metrics` resamples those groups
whole, and :func:`linked_folds` (the quality table's folds, and folds to tune on)
deals them whole into folds. Free-text queries (patients of a TREC track) are
independent draws and are not grouped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def linked_queries(judgements: Mapping[str, Mapping[str, int]]) -> dict[str, str]:
    """Each query's group: the smallest query id among those linked to it.

    Parameters
    ----------
    judgements : mapping of str to mapping of str to int
        Query id to its judged trials and their grades (a :class:`LabelSet`'s
        ``judgements``); grades above 0 are relevant.

    Returns
    -------
    dict of str to str
        Every query of ``judgements`` (those without a relevant trial too, each then
        alone unless another query names it as relevant) to its group's name.
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving: chains stay short
            node = parent[node]
        return node

    for query, judged in judgements.items():
        for trial, grade in judged.items():
            if grade > 0:
                parent[root(trial)] = root(query)
    members: dict[str, list[str]] = {}
    for query in judgements:
        members.setdefault(root(query), []).append(query)
    return {query: min(group) for group in members.values() for query in group}


def linked_folds(
    queries: Sequence[str],
    linked: Mapping[str, str] | None = None,
    n_folds: int = 5,
    seed: int = 0,
) -> list[list[str]]:
    """Split ``queries`` into ``n_folds`` disjoint folds, each group of ``linked``
    queries whole in one fold: folds to cross-validate a setting on without a
    programme on both sides.

    Parameters
    ----------
    queries : sequence of str
        Distinct query ids.
    linked : mapping of str to str, optional
        Each query's group (:func:`linked_queries`); every query alone if absent.
    n_folds : int, default 5
    seed : int, default 0
        The groups are shuffled with it before they are dealt into folds.

    Returns
    -------
    list of list of str
        At most ``n_folds`` non-empty folds (fewer when there are fewer groups), each
        sorted; folds differ in size when a group is large.

    Raises
    ------
    ValueError
        ``n_folds`` below 1, or a query without a group in ``linked``.
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be at least 1, got {n_folds}")
    ordered = sorted(queries)
    units = group_units(ordered, linked)
    order = np.random.default_rng(seed).permutation(units.max() + 1 if len(units) else 0)
    folds = []
    for dealt in np.array_split(order, n_folds):
        members = np.isin(units, dealt)
        if members.any():
            folds.append([q for q, member in zip(ordered, members, strict=True) if member])
    return folds


def group_units(queries: Sequence[str], linked: Mapping[str, str] | None) -> np.ndarray:
    """Each query's group as an int from 0 (groups numbered in the order of their
    names), shape (len(queries),), dtype int64; every query its own group if
    ``linked`` is None.

    Raises
    ------
    ValueError
        A query without a group in ``linked``.
    """
    if linked is None:
        return np.arange(len(queries), dtype=np.int64)
    missing = [q for q in queries if q not in linked]
    if missing:
        raise ValueError(f"{len(missing)} queries have no group in linked, e.g. {missing[0]}")
    names = [linked[q] for q in queries]
    return np.unique(names, return_inverse=True)[1].astype(np.int64).reshape(-1)
