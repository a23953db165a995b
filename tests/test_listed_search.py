"""The search of a query that extends an indexed row, from that row's stored list
(:func:`kneighbors_from_lists`): with exact lists its answers are those of exact
search, bit for bit, and the exact search is run only when the lists cannot prove it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.neighbours import CosineNeighbours, kneighbors_from_lists

N_ROWS, N_BASE, N_EXTRA, WIDTH = 400, 120, 40, 20


@pytest.fixture(scope="module")
def corpus():
    """Rows over base and extra columns (the last N_EXTRA); half the rows have no
    extra column (the thin ones), and their readings add extra terms to their row."""
    rng = np.random.default_rng(7)
    base = sp.random(N_ROWS, N_BASE, density=0.06, random_state=rng, dtype=np.float32)
    extra = sp.random(N_ROWS, N_EXTRA, density=0.1, random_state=rng, dtype=np.float32)
    thin = np.arange(0, N_ROWS, 2)
    extra = sp.diags(np.isin(np.arange(N_ROWS), thin, invert=True).astype(np.float32)) @ extra
    X = sp.hstack([base, extra], format="csr", dtype=np.float32)
    X = sp.diags(1 / np.maximum(np.sqrt(X.multiply(X).sum(axis=1).A1), 1e-9)) @ X
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    thin = thin[np.diff(X.indptr)[thin] > 0]
    search = CosineNeighbours(method="exact").fit(X)
    lists, scores = search.all_kneighbors(X, WIDTH)
    added = sp.random(len(thin), N_EXTRA, density=0.15, random_state=rng, dtype=np.float32)
    readings = sp.hstack([0.8 * X[thin][:, :N_BASE], 0.5 * added], format="csr", dtype=np.float32)
    is_extra = np.arange(N_BASE + N_EXTRA) >= N_BASE
    return X, search, lists, scores, thin, readings, is_extra


def _from_lists(corpus, k, allowed=None):
    X, search, lists, scores, thin, readings, is_extra = corpus
    return kneighbors_from_lists(
        search, X, readings, k, own=thin, lists=lists[thin], list_scores=scores[thin],
        extra=is_extra, allowed=allowed,
    )  # fmt: skip


@pytest.mark.parametrize("k", [1, 5, 10])
def test_answers_are_exact_searches_bit_for_bit(corpus, k, monkeypatch):
    _, search, _, _, thin, readings, _ = corpus
    expected = search.kneighbors(readings, k, exclude=thin)
    # Proven from the lists alone: the exact search is never run without a filter.
    monkeypatch.setattr(search, "kneighbors", _never)
    ids, scores = _from_lists(corpus, k)
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_array_equal(scores, expected[1])
    assert not (ids == thin[:, None]).any()  # never the trial itself


def test_a_query_adding_nothing_is_answered_by_its_list(corpus):
    X, search, lists, scores, thin, _, is_extra = corpus
    ids, found = kneighbors_from_lists(
        search, X, 2 * X[thin], 5, own=thin, lists=lists[thin], list_scores=scores[thin],
        extra=is_extra,
    )  # fmt: skip
    np.testing.assert_array_equal(ids, lists[thin][:, :5])
    np.testing.assert_allclose(found, 2 * scores[thin][:, :5], rtol=1e-6)


def test_a_filter_is_applied_and_a_short_answer_is_searched_exactly(corpus):
    _, search, _, _, thin, readings, _ = corpus
    allowed = np.random.default_rng(3).random(N_ROWS) < 0.3
    ids, scores = _from_lists(corpus, 10, allowed=allowed)
    expected = search.kneighbors(readings, 10, exclude=thin, allowed=allowed)
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_array_equal(scores, expected[1])
    assert allowed[ids[ids >= 0]].all()


def test_a_short_list_bounds_nothing_and_stays_exact(monkeypatch):
    """A list shorter than its width says no other row scores above 0 by row: every
    row the added terms reach is then a candidate."""
    # Columns 0-2 base, 3-4 extra; row 0 (thin) shares column 0 with rows 1 and 2 only.
    X = sp.csr_matrix(
        np.array(
            [[1, 0, 0, 0, 0], [0.6, 0.8, 0, 0, 0], [0.8, 0, 0.6, 0, 0],
             [0, 0.6, 0, 0.8, 0], [0, 0, 0.6, 0, 0.8], [0, 0, 0, 0.6, 0.8]],
            dtype=np.float32,
        )
    )  # fmt: skip
    search = CosineNeighbours(method="exact").fit(X)
    lists, scores = search.all_kneighbors(X, 4)
    assert lists[0].tolist() == [2, 1, -1, -1]
    reading = sp.csr_matrix(np.array([[0.5, 0, 0, 0.1, 0.7]], dtype=np.float32))
    expected = search.kneighbors(reading, 2, exclude=np.array([0]))
    assert set(expected[0][0]) & {3, 4, 5}  # the added terms bring in an unlisted row
    monkeypatch.setattr(search, "kneighbors", _never)
    ids, found = kneighbors_from_lists(
        search, X, reading, 2, own=np.array([0]), lists=lists[[0]], list_scores=scores[[0]],
        extra=np.array([False, False, False, True, True]),
    )  # fmt: skip
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_array_equal(found, expected[1])


def test_bad_arguments_are_refused(corpus):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        _from_lists(corpus, 0)
    X, search, lists, scores, thin, readings, is_extra = corpus
    with pytest.raises(ValueError, match="one row per query"):
        kneighbors_from_lists(
            search, X, readings, 3, own=thin, lists=lists[thin][:-1],
            list_scores=scores[thin][:-1], extra=is_extra,
        )  # fmt: skip


def _never(*args, **kwargs):
    raise AssertionError("the exact search ran: the lists should have proven the answer")
