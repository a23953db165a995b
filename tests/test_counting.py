"""The parallel-chunk counting must give exactly scikit-learn's counts and TF-IDF."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from recommender.counting import count_known_terms, count_terms, merge_counts, prune_terms
from recommender.text import ItemAnalyzer

DOCS = [
    ["Acute-on-chronic liver failure", "Stem cells for the liver"],
    ["Liver failure, acute on chronic", "mesenchymal stem cells"],
    ["Asthma in children", "inhaled budesonide for asthma asthma"],
    [],
    ["Breast cancer", "tamoxifen after surgery for breast cancer"],
    ["the and of"],
]


@pytest.mark.parametrize("ngram_range, whole_items", [((1, 1), False), ((1, 3), True)])
@pytest.mark.parametrize("min_df, max_df", [(1, 1.0), (2, 1.0), (1, 0.4), (0.2, 3)])
def test_chunked_counts_equal_count_vectorizer(ngram_range, whole_items, min_df, max_df):
    analyzer = ItemAnalyzer(ngram_range=ngram_range, whole_items=whole_items)
    reference = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df)
    expected = reference.fit_transform(DOCS)
    parts = [count_terms(analyzer.count, DOCS[a:b]) for a, b in ((0, 2), (2, 3), (3, 6))]
    terms, counts = prune_terms(*merge_counts(parts), min_df=min_df, max_df=max_df)
    assert terms == reference.get_feature_names_out().tolist()
    assert (counts != expected).nnz == 0
    tfidf = TfidfTransformer(sublinear_tf=True)
    np.testing.assert_allclose(
        tfidf.fit_transform(counts).toarray(),
        TfidfTransformer(sublinear_tf=True).fit_transform(expected).toarray(),
    )


def test_counting_with_a_fixed_vocabulary_ignores_unknown_terms():
    analyzer = ItemAnalyzer()
    vocabulary = {"asthma": 0, "liver": 1}
    counts = count_known_terms(analyzer.count, [["liver liver asthma zebra"], []], vocabulary)
    assert counts.toarray().tolist() == [[1, 2], [0, 0]]


def test_count_equals_the_listed_terms():
    analyzer = ItemAnalyzer()
    items = ["The liver, the LIVER and the kidney", "kidney-liver"]
    assert analyzer.count(items) == {"liver": 3, "kidney": 2}
