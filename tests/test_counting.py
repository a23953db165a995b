"""Chunks counted apart and merged must give exactly scikit-learn's counts and TF-IDF."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from recommender.text import ItemAnalyzer
from recommender.text._tokenizer_compiled import count_new_terms, encode_texts
from recommender.text.counting import count_chunk, frequent_columns, merge_counts, spell_terms

DOCS = [
    ["Acute-on-chronic liver failure", "Stem cells for the liver"],
    ["Liver failure, acute on chronic", "mesenchymal stem cells"],
    ["Asthma in children", "inhaled budesonide for asthma asthma"],
    [],
    ["Breast cancer", "tamoxifen after surgery for breast cancer"],
    ["the and of"],
]


CHUNKS = ((0, 2), (2, 3), (3, 6))


@pytest.mark.parametrize("ngram_range, whole_items", [((1, 1), False), ((1, 3), True)])
@pytest.mark.parametrize("min_df, max_df", [(1, 1.0), (2, 1.0), (1, 0.4), (0.2, 3)])
def test_chunked_counts_equal_count_vectorizer(ngram_range, whole_items, min_df, max_df):
    analyzer = ItemAnalyzer(ngram_range=ngram_range, whole_items=whole_items)
    reference = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df)
    expected = reference.fit_transform(DOCS)
    texts = [encode_texts(DOCS[a:b]) for a, b in CHUNKS]
    parts = [count_new_terms(t, analyzer) for t in texts]
    counted = merge_counts(parts)
    assert parts == []  # each part dropped once copied
    kept = frequent_columns(counted.counts, min_df=min_df, max_df=max_df)
    terms, counts = spell_terms(counted, kept, texts)
    assert terms == reference.get_feature_names_out().tolist()
    assert (counts != expected).nnz == 0
    tfidf = TfidfTransformer(sublinear_tf=True)
    np.testing.assert_allclose(
        tfidf.fit_transform(counts).toarray(),
        TfidfTransformer(sublinear_tf=True).fit_transform(expected).toarray(),
    )


def test_a_counted_chunk_keeps_only_the_spellings_of_its_terms():
    # The vectoriser keeps these, not the chunks' whole texts, until pruning is done.
    analyzer = ItemAnalyzer(ngram_range=(1, 2), whole_items=True)
    docs = [["Acute-on-chronic liver FAILURE", "MSC  therapy"], [], ["liver failure", "Ünï code"]]
    texts = encode_texts(docs * 20)  # a registry repeats its words: spellings are smaller
    counted, spellings = count_chunk(texts, analyzer)
    plain = count_new_terms(texts, analyzer)
    assert spellings.buffer.nbytes < texts.buffer.nbytes
    assert [spellings.spell(a, b) for a, b in counted.spans.tolist()] == [
        texts.spell(a, b) for a, b in plain.spans.tolist()
    ]
    assert (counted.keys == plain.keys).all() and (counted.counts != plain.counts).nnz == 0
    kept = frequent_columns(counted.counts, 1, 1.0)
    assert spell_terms(counted, kept, [spellings])[0] == spell_terms(plain, kept, [texts])[0]
