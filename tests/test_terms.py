"""The compiled term pass must find exactly the terms ItemAnalyzer defines."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.text import ItemAnalyzer
from recommender.text._tokenizer_compiled import (
    TermTable,
    count_known_terms,
    count_new_terms,
    encode_texts,
    term_hashes,
)
from recommender.text.counting import frequent_columns, merge_counts, spell_terms

ANALYZERS = [
    ItemAnalyzer(),
    ItemAnalyzer(ngram_range=(1, 3), whole_items=True),
    ItemAnalyzer(ngram_range=(1, 1), whole_items=True),
    ItemAnalyzer(ngram_range=(2, 2)),
    ItemAnalyzer(ngram_range=(1, 2), stop_words=frozenset({"liver", "of"})),
    ItemAnalyzer(ngram_range=(1, 1), whole_items=True, item_words=False),
]

DOCS = [
    ["Acute-on-chronic liver failure", "Stem cells for the liver"],
    ["Liver failure, acute on chronic", "mesenchymal stem cells"],
    [],
    ["µg/mL of İstanbul ß CAFÉ_au_lait x² ǅemal", "the and of"],
    ["", "   ", "--"],
    ["Breast cancer", "tamoxifen after surgery for breast cancer BREAST CANCER"],
]


def counted_terms(docs, analyzer, chunks):
    """Each document's terms and counts, as the vectoriser's compiled path finds them."""
    texts = [encode_texts(docs[a:b]) for a, b in chunks]
    parts = [count_new_terms(t, analyzer) for t in texts]
    counted = merge_counts(parts)
    terms, counts = spell_terms(counted, frequent_columns(counted.counts, 1, 1.0), texts)
    assert terms == sorted(set(terms))
    return rows_as_dicts(counts, terms), terms


def rows_as_dicts(counts, terms):
    return [{terms[j]: int(n) for j, n in zip(r.indices, r.data, strict=True)} for r in counts]


@pytest.mark.parametrize("analyzer", ANALYZERS, ids=repr)
def test_compiled_counts_equal_the_python_definition(analyzer):
    found, _ = counted_terms(DOCS, analyzer, [(0, 2), (2, 3), (3, 3), (3, 6)])
    assert found == [dict(Counter(analyzer(doc))) for doc in DOCS]


def test_an_item_without_its_words_is_one_term_however_short():
    sponsor = ANALYZERS[-1]
    assert sponsor(["Sun Yat-sen University", "Novartis", "  ", "The"]) == [
        "sun yat sen university",
        "novartis",
        "the",
    ]
    found, _ = counted_terms([["Sun Yat-sen University", "Novartis"]], sponsor, [(0, 1)])
    assert found == [{"sun yat sen university": 1, "novartis": 1}]


def test_a_stop_word_alone_or_at_an_ngram_edge_is_dropped_but_kept_inside():
    found, _ = counted_terms([["Acute-On-Chronic Liver Failure", "MSC"]], ANALYZERS[1], [(0, 1)])
    assert set(found[0]) == {
        "acute on chronic liver failure", "acute", "chronic", "liver", "failure", "msc",
        "chronic liver", "liver failure", "acute on chronic", "chronic liver failure",
    }  # fmt: skip


def test_known_terms_are_counted_in_the_table_columns_and_others_ignored():
    table = TermTable(["asthma", "liver", "liver failure"])
    texts = encode_texts([["Liver failure: LIVER, asthma, zebra"], [], ["liver-failure"]])
    counts = count_known_terms(texts, ItemAnalyzer(ngram_range=(1, 2)), table)
    assert counts.toarray().tolist() == [[1, 2, 1], [0, 0, 0], [0, 1, 1]]
    assert counts.has_sorted_indices


def test_an_empty_table_or_corpus_counts_nothing():
    assert count_known_terms(encode_texts([["liver"]]), ItemAnalyzer(), TermTable([])).nnz == 0
    counted = count_new_terms(encode_texts([]), ItemAnalyzer())
    assert counted.counts.shape == (0, 0)


def test_a_term_hash_is_the_hash_of_its_spelling():
    texts = encode_texts([["Liver  Failure", "liver-failure"]])
    counted = count_new_terms(texts, ItemAnalyzer(ngram_range=(2, 2)))
    assert counted.keys.tolist() == term_hashes(["liver failure"]).tolist()
    assert counted.counts.toarray().tolist() == [[2]]


def test_encoding_lowers_and_respells_only_non_ascii_items():
    texts = encode_texts([["A-b"], ["CC", "dd"], [], ["Éé_FF"]])
    assert bytes(texts.buffer) == "a-bccddéé ff".encode()
    assert texts.item_ends.tolist() == [3, 5, 7, 14] and texts.doc_ends.tolist() == [1, 3, 3, 4]


# Letters, digits, separators and characters whose case or word status is tricky.
ALPHABET = st.sampled_from([*"abcXYZ019 -_,.\t\n", "é", "İ", "ß", "µ", "²", "ǅ", "ﬁ", "ῼ"])
WORDS = st.sampled_from(["the", "of", "liver", "Liver", "failure", "on", "acute", "é", "x"])
ITEM = st.one_of(
    st.text(ALPHABET, max_size=30),
    st.lists(WORDS, max_size=8).map(" ".join),
)
CORPORA = st.lists(st.lists(ITEM, max_size=4), max_size=8)


@settings(max_examples=150, deadline=None)
@given(docs=CORPORA, analyzer=st.sampled_from(ANALYZERS), cut=st.integers(0, 8))
def test_random_texts_give_the_python_definitions_counts(docs, analyzer, cut):
    cut = min(cut, len(docs))
    found, _ = counted_terms(docs, analyzer, [(0, cut), (cut, len(docs))])
    assert found == [dict(Counter(analyzer(doc))) for doc in docs]
    # The vocabulary found, as a fixed table, counts the same documents the same way.
    _, terms = counted_terms(docs, analyzer, [(0, len(docs))])
    known = count_known_terms(encode_texts(docs), analyzer, TermTable(terms))
    assert rows_as_dicts(known, terms) == found


def test_the_stop_words_are_scikit_learns():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SKLEARN_STOP_WORDS

    from recommender.text import ENGLISH_STOP_WORDS

    assert ENGLISH_STOP_WORDS == SKLEARN_STOP_WORDS
