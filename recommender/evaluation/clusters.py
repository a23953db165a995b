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
links); the bootstrap and the folds of :mod:`recommender.evaluation.metrics` resample
and split those groups whole. Free-text queries (patients of a TREC track) are
independent draws and are not grouped.
"""

from __future__ import annotations

from collections.abc import Mapping


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
