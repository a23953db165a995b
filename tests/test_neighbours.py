import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender.neighbours import NO_NEIGHBOUR, CosineNeighbours, transposed
from recommender.neighbours._all_pairs import drop_mutual_pairs
from recommender.neighbours._heap_kernels import scan_top_k
from recommender.neighbours._postings_kernels import truncate_postings
from recommender.neighbours._scoring_kernels import rows_candidates


def random_rows(n_rows, n_features, density, seed):
    X = sp.random(n_rows, n_features, density=density, random_state=seed, dtype=np.float32)
    return normalize(X.tocsr())


def brute_force(X, Q, k, exclude=None, allowed=None):
    """The reference: dense cosines, self and filtered rows removed, stable sort."""
    scores = (Q @ X.T).toarray()
    if exclude is not None:
        scores[np.arange(len(exclude)), exclude] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    if scores.shape[1] < k:  # fewer rows than k: pad as the search does
        scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=-np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    order = np.where(top > 0, order, NO_NEIGHBOUR)
    return order, np.where(top > 0, top, 0.0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("block_size", [1, 7, 512])
def test_all_pairs_equal_brute_force(seed, block_size):
    X = random_rows(120, 40, 0.08, seed)
    ids, scores = CosineNeighbours(block_size=block_size, n_jobs=2).fit(X).all_kneighbors(X, 8)
    ref_ids, ref_scores = brute_force(X, X, 8, exclude=np.arange(120))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    # Ids must match wherever scores are not tied with a neighbour's.
    assert (ids == ref_ids).mean() > 0.99
    assert not np.any(ids == np.arange(120)[:, None]), "a row listed itself"


def test_ties_go_to_the_smaller_row_and_padding_is_minus_one():
    X = normalize(sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)))
    ids, scores = CosineNeighbours().fit(X).all_kneighbors(X, 3)
    assert ids[0].tolist() == [1, 2, NO_NEIGHBOUR]
    assert ids[2].tolist() == [0, 1, NO_NEIGHBOUR]
    assert ids[3].tolist() == [NO_NEIGHBOUR] * 3
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 0.0], rtol=1e-6)


def test_query_with_filter_and_exclusion():
    X = random_rows(200, 30, 0.1, 11)
    allowed = np.zeros(200, dtype=bool)
    allowed[::3] = True
    search = CosineNeighbours().fit(X)
    ids, scores = search.kneighbors(X[:5], 6, exclude=np.arange(5), allowed=allowed)
    ref_ids, ref_scores = brute_force(X, X[:5], 6, exclude=np.arange(5), allowed=allowed)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert (ids == ref_ids).mean() > 0.99
    assert np.all(allowed[ids[ids >= 0]])


def test_k_larger_than_corpus_pads():
    X = random_rows(4, 10, 0.9, 3)
    ids, _ = CosineNeighbours().fit(X).all_kneighbors(X, 10)
    assert ids.shape == (4, 10)
    assert np.all(ids[:, 3:] == NO_NEIGHBOUR)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_is_refused(k):
    X = random_rows(4, 10, 0.9, 3)
    with pytest.raises(ValueError, match="k must be"):
        CosineNeighbours().fit(X).kneighbors(X, k)


def test_feature_mismatch_is_refused():
    search = CosineNeighbours().fit(random_rows(4, 10, 0.9, 3))
    with pytest.raises(ValueError, match="features"):
        search.kneighbors(random_rows(1, 11, 0.9, 3), 2)


def topical_corpus(n_rows, n_topics, seed, *, topic_terms=12, background=100):
    """Rows like trial texts: a few terms of the row's topic (rare, telling) and many
    background words drawn from a Zipf-like law (frequent, weak)."""
    rng = np.random.default_rng(seed)
    n_features = background + n_topics * topic_terms
    zipf = 1.0 / np.arange(1, background + 1)
    zipf /= zipf.sum()
    rows, cols, values = [], [], []
    for i in range(n_rows):
        topic = rng.integers(n_topics)
        own = background + topic * topic_terms + rng.choice(topic_terms, 5, replace=False)
        common = rng.choice(background, 15, replace=False, p=zipf)
        rows.extend([i] * 20)
        cols.extend([*own, *common])
        values.extend([*(rng.random(5) + 1.0), *(rng.random(15) * 0.3)])
    X = sp.csr_matrix((np.float32(values), (rows, cols)), shape=(n_rows, n_features))
    return normalize(X)


def test_pruned_with_nothing_pruned_is_exact():
    X = topical_corpus(300, 10, 1)
    search = CosineNeighbours(method="pruned", frequent_df=1.0, candidates=300).fit(X)
    ids, scores = search.all_kneighbors(X, 10)
    ref_ids, ref_scores = brute_force(X, X, 10, exclude=np.arange(300))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert (ids == ref_ids).mean() > 0.99


def test_pruned_search_finds_nearly_all_exact_neighbours():
    X = topical_corpus(1500, 30, 2)
    df = np.diff(X.tocsc().indptr)
    assert (df > 0.05 * 1500).sum() > 20, "the corpus must have frequent terms to prune"
    pruned = CosineNeighbours(method="pruned", frequent_df=0.05, candidates=40, block_size=100)
    ids, scores = pruned.fit(X).all_kneighbors(X, 10)
    ref_ids, _ = brute_force(X, X, 10, exclude=np.arange(1500))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref_ids, strict=True)])
    assert recall > 0.9
    # Whatever it returns is scored exactly.
    exact = np.asarray((X[0] @ X[ids[0]].T).todense()).ravel()
    np.testing.assert_allclose(scores[0], exact, rtol=1e-5)


def test_pruning_only_touches_prunable_columns():
    X = topical_corpus(400, 10, 3)
    prunable = np.zeros(X.shape[1], dtype=bool)  # nothing may be pruned: exact again
    search = CosineNeighbours(method="pruned", frequent_df=0.01, prunable=prunable, candidates=400)
    ids, scores = search.fit(X).all_kneighbors(X, 5)
    ref_ids, ref_scores = brute_force(X, X, 5, exclude=np.arange(400))
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert (ids == ref_ids).mean() > 0.99


def test_only_a_rows_heaviest_terms_propose_candidates():
    # Row 0 leans on term 0; row 1 shares only term 0 with it, row 2 only term 1.
    X = normalize(sp.csr_matrix(np.float32([[0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])))
    P = X.T.tocsr()
    candidates = np.full((1, 3), -1, dtype=np.int32)
    own = np.zeros(1, dtype=np.int64)
    args = (X.indptr[:2], X.indices, X.data, P.indptr, P.indices, P.data, 3, own)
    assert rows_candidates(*args, 0, candidates)[0] == 2  # every term: rows 1 and 2
    assert rows_candidates(*args, 1, candidates)[0] == 1  # the heaviest: row 1 only
    assert candidates[0].tolist() == [1, -1, -1]


def test_query_terms_keeps_recall_where_rows_have_many_terms():
    X = topical_corpus(1500, 30, 2)
    search = CosineNeighbours(frequent_df=0.05, candidates=40, query_terms=8, block_size=100)
    ids, _ = search.fit(X).all_kneighbors(X, 10)
    ref_ids, _ = brute_force(X, X, 10, exclude=np.arange(1500))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref_ids, strict=True)])
    assert recall > 0.9


def test_a_pair_found_from_either_side_counts_for_both():
    # Row 0 leans on term 0, which it shares only with row 2 (weakly); its best match,
    # row 1, shares only row 0's light term 1, so row 0's own terms never propose it.
    # Row 1's heaviest term is term 1, which proposes row 0: that exact score must
    # reach row 0's list too.
    X = normalize(sp.csr_matrix(np.float32([[0.9, 0.44, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 1.0]])))
    search = CosineNeighbours(query_terms=1, candidates=1, frequent_df=1.0, n_jobs=1).fit(X)
    one_sided, _ = search.rows_kneighbors(X, 1, 0, 1)
    assert one_sided[0].tolist() == [2]
    ids, scores = search.all_kneighbors(X, 1)
    assert ids[0].tolist() == [1]
    np.testing.assert_allclose(scores[0], (X[0] @ X[1].T).toarray()[0], rtol=1e-6)


def test_all_pairs_result_does_not_depend_on_blocks_or_threads():
    X = topical_corpus(600, 20, 5)
    runs = [
        CosineNeighbours(frequent_df=0.05, candidates=20, block_size=b, n_jobs=j)
        .fit(X)
        .all_kneighbors(X, 10)
        for b, j in ((1000, 1), (7, 2), (64, 2))
    ]
    for ids, scores in runs[1:]:
        np.testing.assert_array_equal(ids, runs[0][0])
        np.testing.assert_array_equal(scores, runs[0][1])


def test_truncated_postings_keep_each_terms_heaviest_rows_in_row_order():
    P = sp.csr_matrix(np.float32([[0.1, 0.5, 0.3, 0.5], [0.0, 0.2, 0.0, 0.0]]))
    indptr, indices, data = truncate_postings(P.indptr, P.indices, P.data, 2)
    assert indptr.tolist() == [0, 2, 3]
    assert indices.tolist() == [1, 3, 1]  # a tie in weight keeps the smaller row
    np.testing.assert_allclose(data, [0.5, 0.5, 0.2])


def test_max_postings_limits_which_rows_a_term_proposes():
    # Term 0 is in every row; row 0 weighs it least, so with one posting per term
    # it proposes only the row where it weighs most.
    X = normalize(sp.csr_matrix(np.float32([[0.5, 1.0, 0.0], [1.0, 0.0, 0.1], [0.8, 0.0, 1.0]])))
    search = CosineNeighbours(query_terms=1, max_postings=1, frequent_df=1.0).fit(X)
    candidates = np.full((1, 3), -1, dtype=np.int32)
    rare = search.rare_postings_
    args = (X.indptr[:2], X.indices, X.data, rare.indptr, rare.indices, rare.data, 3)
    rows_candidates(*args, np.zeros(1, np.int64), 0, candidates)
    assert set(candidates[0]) == {1, -1}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "fast"}, "method must be"),
        ({"frequent_df": 0}, "frequent_df"),
        ({"candidates": 0}, "candidates"),
        ({"query_terms": 0}, "query_terms"),
        ({"max_postings": 0}, "max_postings"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_parameters_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CosineNeighbours(**kwargs)


@pytest.mark.parametrize("seed", range(4))
def test_scan_gives_the_postings_search_bit_for_bit(seed):
    # The pruned build searches its few hard rows by passes over X (no postings);
    # the lists must equal the postings search exactly, scores to the last bit.
    X = random_rows(300, 60, 0.08, seed)
    X.data[::7] = X.data[1::7][: len(X.data[::7])]  # equal weights make ties
    rows = np.random.default_rng(seed).choice(300, 40, replace=False).astype(np.int64)
    search = CosineNeighbours(method="exact", n_jobs=1).fit(X)
    want_ids, want_scores = search.kneighbors(X[rows], 12, exclude=rows)
    Qt = X[rows].T.tocsr()
    ids = np.empty((40, 12), np.int32)
    scores = np.empty((40, 12), np.float32)
    scan_top_k(X.indptr, X.indices, X.data, Qt.indptr, Qt.indices, Qt.data, rows, ids, scores)
    np.testing.assert_array_equal(ids, want_ids)
    assert scores.tobytes() == want_scores.tobytes()


@pytest.mark.parametrize("max_postings", [None, 1, 5, 40])
def test_champion_postings_from_rows_equal_those_from_postings(max_postings):
    # A build makes them from the rows (never holding the whole transpose); a loaded
    # index from its postings: both must propose the same candidates.
    X = random_rows(200, 50, 0.15, 3)
    prunable = np.arange(50) % 2 == 0
    params = {"frequent_df": 0.12, "max_postings": max_postings, "prunable": prunable}
    from_rows = CosineNeighbours(**params).fit(X)
    from_postings = CosineNeighbours(**params).set_postings(X.T.tocsr())
    a, b = from_rows.rare_postings_, from_postings.rare_postings_
    assert from_rows._postings is None  # the whole transpose was never made
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_rows_with_too_few_candidates_are_searched_exactly():
    # Rows whose rare terms touch fewer rows than the candidate list holds are
    # searched exactly at the end; with many such rows the result is still exact.
    X = random_rows(400, 300, 0.01, 8)
    pruned = CosineNeighbours(candidates=100, n_jobs=2, block_size=33).fit(X)
    ids, scores = pruned.all_kneighbors(X, 5)
    ref_ids, ref_scores = brute_force(X, X, 5, exclude=np.arange(400))
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)
    assert pruned._postings is None


def _pairs(candidates):
    rows = np.repeat(np.arange(len(candidates)), candidates.shape[1])
    kept = candidates.ravel() >= 0
    return rows[kept], candidates.ravel()[kept]


def test_a_pair_both_rows_propose_is_kept_once_by_the_row_with_more_terms():
    X = topical_corpus(500, 10, 11).tocsr()
    X.data[np.random.default_rng(0).random(X.nnz) < 0.3] = 0.0  # rows of varied lengths
    X.eliminate_zeros()
    X = normalize(X)
    search = CosineNeighbours(frequent_df=0.05, candidates=30, block_size=64).fit(X)
    before = np.concatenate([search.block_candidates(X, 10, a, b)[0] for a, b in search.blocks()])
    after = before.copy()
    drop_mutual_pairs(search, after, X)
    found = {(min(i, j), max(i, j)) for i, j in zip(*_pairs(before), strict=True)}
    rows, others = _pairs(after)
    kept = sorted((min(i, j), max(i, j)) for i, j in zip(rows, others, strict=True))
    assert kept == sorted(found), "every pair found is kept, and once"
    mutual = {(i, j) for i, j in zip(*_pairs(before), strict=True) if i in before[j]}
    assert len(mutual) > 100, "the corpus must have pairs found from both sides"
    lengths = np.diff(X.indptr)
    assert len({(lengths[i], lengths[j]) for i, j in mutual if lengths[i] != lengths[j]}) > 10
    key = lengths * len(lengths) + np.arange(len(lengths))  # length, then row id
    assert all((key[i] > key[j]) == (j in after[i]) for i, j in mutual)


def test_pruned_lists_equal_scoring_every_pair_from_both_sides():
    # The reference scores each pair a row proposes, from that row, and offers it
    # to both rows: what the search did before pairs were kept on one side.
    X = topical_corpus(400, 10, 12)
    k = 8
    search = CosineNeighbours(frequent_df=0.05, candidates=25, block_size=50, n_jobs=2).fit(X)
    ids, scores = search.all_kneighbors(X, k)
    candidates = np.concatenate(
        [search.block_candidates(X, k, a, b)[0] for a, b in search.blocks()]
    )
    exact = (X @ X.T).toarray()
    np.fill_diagonal(exact, -np.inf)
    # Rows with too few candidates are searched exactly; their lists are offered too.
    searched = np.flatnonzero((candidates < 0).all(axis=1))
    assert 0 < len(searched) < 50
    candidates[searched, :k] = np.argsort(-exact[searched], axis=1, kind="stable")[:, :k]
    offered = np.zeros_like(exact, dtype=bool)
    rows, others = _pairs(candidates)
    offered[rows, others] = offered[others, rows] = True
    ref = np.where(offered, exact, -np.inf)
    ref_ids = np.argsort(-ref, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, np.take_along_axis(exact, ref_ids, axis=1), rtol=1e-5)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (7, 3), (300, 40)])
def test_transposed_is_scipys_transpose(n_jobs, shape):
    X = sp.random(*shape, density=0.2, random_state=3, dtype=np.float32, format="csr")
    keep = np.ones((shape[0], 1), dtype=np.float32)
    keep[2::5] = 0  # some empty rows
    X = sp.csr_matrix(X.multiply(keep))
    X.eliminate_zeros()
    expected = X.T.tocsr()
    got = transposed(X, n_jobs)
    assert got.shape == expected.shape
    for name in ("indptr", "indices", "data"):
        assert getattr(got, name).dtype == getattr(expected, name).dtype, name
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_kneighbors_reaching_gives_the_lists_and_every_row_reached():
    X = random_rows(400, 30, 0.15, 5)
    search = CosineNeighbours(method="exact", n_jobs=2).fit(X)
    queries = np.array([0, 7, 99, 398])
    cut = np.random.default_rng(0).choice(np.array([0.1, 0.3, np.inf], np.float32), 400)
    ids, scores, rows, which = search.kneighbors_reaching(X[queries], 6, cut, exclude=queries)
    expected_ids, expected_scores = search.kneighbors(X[queries], 6, exclude=queries)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    dense = (X[queries] @ X.T).toarray()
    dense[np.arange(4), queries] = 0
    reached = sorted(zip(*np.nonzero((dense > 0) & (dense >= cut - 1e-6)), strict=True))
    assert sorted(zip(which.tolist(), rows.tolist(), strict=True)) == [
        (int(q), int(j)) for q, j in reached
    ]


def test_kneighbors_reaching_refuses_what_it_cannot_search():
    X = random_rows(50, 10, 0.3, 2)
    search = CosineNeighbours(method="exact").fit(X)
    with pytest.raises(ValueError, match="cut must have shape"):
        search.kneighbors_reaching(X[:2], 3, np.zeros(49, np.float32), exclude=np.arange(2))
    with pytest.raises(ValueError, match="features"):
        search.kneighbors_reaching(X[:2, :9], 3, np.zeros(50, np.float32), exclude=np.arange(2))
    with pytest.raises(ValueError, match="non-negative query"):
        search.kneighbors_reaching(-X[:2], 3, np.zeros(50, np.float32), exclude=np.arange(2))
    loaded = CosineNeighbours(method="exact").set_postings(X.T.tocsr())
    with pytest.raises(ValueError, match="fitted on rows"):
        loaded.kneighbors_reaching(X[:2], 3, np.zeros(50, np.float32), exclude=np.arange(2))


def test_negative_query_weights_are_searched_reading_every_posting():
    # A bound is a largest weight: times a negative query weight it bounds nothing.
    # Column 0 is rare (rows 0-2), column 1 in every row (so it has bounds).
    X = np.zeros((300, 2), dtype=np.float32)
    X[:, 1] = 1.0
    X[0] = [1.0, 1.0]  # scores 1 - 0.9 = 0.1
    X[1] = [0.6, 0.0]  # 0.6: the best
    X[2] = [0.5, 0.1]  # 0.41
    query = sp.csr_matrix(np.array([[1.0, -0.9]], dtype=np.float32))
    ids, scores = CosineNeighbours(method="exact").fit(sp.csr_matrix(X)).kneighbors(query, 2)
    assert ids.tolist() == [[1, 2]]
    np.testing.assert_allclose(scores, [[0.6, 0.41]], rtol=1e-6)
