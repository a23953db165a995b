from dataclasses import replace

import numpy as np
import pytest
from scipy.sparse.linalg import norm as sparse_norm

from recommender.records import Intervention, TrialRecord
from recommender.text import DEFAULT_FIELD_GROUPS, FieldGroup, FieldGroupVectorizer, ItemAnalyzer


def _groups(**weights):
    """The default groups with pruning off (a tiny corpus has few repeated terms)."""
    return [
        replace(g, weight=weights.get(g.name, g.weight), min_df=1, max_df=1.0)
        for g in DEFAULT_FIELD_GROUPS
    ]


RECORDS = [
    TrialRecord(
        "NCT00000001",
        brief_title="Stem cells in liver failure",
        conditions=("Acute-On-Chronic Liver Failure",),
        interventions=(Intervention("Mesenchymal stem cells", "BIOLOGICAL", ("MSC",)),),
    ),
    TrialRecord("NCT00000002", brief_title="Liver failure registry", conditions=("Liver Failure",)),
    TrialRecord("NCT00000003", brief_summary="Asthma inhalers in children."),
    TrialRecord("NCT00000004"),
]


def test_analyzer_keeps_phrases_and_inner_stop_words():
    analyzer = ItemAnalyzer(ngram_range=(1, 3), whole_items=True)
    terms = analyzer(["Acute-On-Chronic Liver Failure", "MSC"])
    assert terms[0] == "acute on chronic liver failure"
    assert "on" not in terms  # a stop word alone is dropped
    assert "acute on chronic" in terms and "liver failure" in terms
    assert "on chronic" not in terms  # n-grams do not start or end on a stop word
    assert "failure msc" not in terms  # n-grams never cross items
    assert terms[-1] == "msc"


def test_rows_are_unit_norm_and_empty_record_is_zero():
    X = FieldGroupVectorizer(_groups()).fit_transform(RECORDS)
    assert X.dtype == np.float32 and X.shape[0] == 4
    norms = sparse_norm(X, axis=1)
    np.testing.assert_allclose(norms[:3], 1.0, rtol=1e-5)
    assert norms[3] == 0.0


def test_record_with_only_some_groups_still_gets_a_vector():
    X = FieldGroupVectorizer(_groups()).fit_transform(RECORDS)
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    summaries = vectorizer.groups.index(next(g for g in vectorizer.groups if g.name == "summaries"))
    cols = X[2].indices
    assert len(cols) > 0
    assert set(vectorizer.group_of_column(cols)) == {summaries}


def test_group_weights_change_the_balance():
    heavy_conditions = FieldGroupVectorizer(_groups(conditions=5.0, titles=0.1))
    heavy_titles = FieldGroupVectorizer(_groups(conditions=0.1, titles=5.0))
    a = heavy_conditions.fit_transform(RECORDS)
    b = heavy_titles.fit_transform(RECORDS)
    # Records 1 and 2 share "liver failure" in conditions and titles alike, but the
    # share of each group in their cosine follows the weights.
    assert (a[0] @ a[1].T).toarray()[0, 0] != pytest.approx((b[0] @ b[1].T).toarray()[0, 0])


def test_state_round_trip_gives_identical_vectors():
    vectorizer = FieldGroupVectorizer(_groups())
    X = vectorizer.fit_transform(RECORDS)
    rebuilt = FieldGroupVectorizer.from_state(*vectorizer.get_state())
    Y = rebuilt.transform(RECORDS)
    assert (X != Y).nnz == 0
    assert rebuilt.feature_names() == vectorizer.feature_names()


def test_transform_ignores_unknown_words_and_needs_fit():
    vectorizer = FieldGroupVectorizer(_groups())
    with pytest.raises(RuntimeError, match="not fitted"):
        vectorizer.transform(RECORDS)
    vectorizer.fit(RECORDS)
    unseen = vectorizer.transform([TrialRecord("NCT00000009", brief_title="zebrafish xylophone")])
    assert unseen.nnz == 0


def test_group_with_no_terms_is_left_out():
    records = [TrialRecord("NCT00000001", brief_title="a b c"), TrialRecord("NCT00000002")]
    vectorizer = FieldGroupVectorizer(_groups())
    X = vectorizer.fit_transform(records)
    assert vectorizer.models_["conditions"] is None
    assert X.shape[1] == vectorizer.n_features_
    FieldGroupVectorizer.from_state(*vectorizer.get_state()).transform(records)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fields": ("no_such_field",)}, "unknown record fields"),
        ({"weight": 0}, "weight must be > 0"),
        ({"ngram_range": (2, 1)}, "bad ngram_range"),
    ],
)
def test_field_group_validates_its_parameters(kwargs, message):
    params = {"name": "x", "fields": ("brief_title",), **kwargs}
    with pytest.raises(ValueError, match=message):
        FieldGroup(**params)


def test_duplicate_group_names_are_refused():
    group = FieldGroup("x", ("brief_title",))
    with pytest.raises(ValueError, match="unique"):
        FieldGroupVectorizer([group, group])


def test_parallel_chunks_give_the_same_vectors_as_one_process():
    records = RECORDS * 5  # repeated records so that chunks share terms
    one = FieldGroupVectorizer(_groups(), n_jobs=1).fit_transform(records)
    two = FieldGroupVectorizer(_groups(), n_jobs=2).fit_transform(records)
    assert (one != two).nnz == 0


def test_a_single_group_equals_scikit_learn_tfidf_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recommender.text import ItemAnalyzer

    group = FieldGroup("titles", ("brief_title",), ngram_range=(1, 2), min_df=1, max_df=1.0)
    titles = [[r.brief_title] if r.brief_title else [] for r in RECORDS]
    reference = TfidfVectorizer(analyzer=ItemAnalyzer(ngram_range=(1, 2)), sublinear_tf=True)
    expected = reference.fit_transform(titles).toarray()
    vectorizer = FieldGroupVectorizer([group], n_jobs=2)
    np.testing.assert_allclose(vectorizer.fit_transform(RECORDS).toarray(), expected, rtol=1e-6)
    assert vectorizer.feature_names() == reference.get_feature_names_out().tolist()


def test_free_text_is_one_more_item_of_every_group():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    base = TrialRecord("NCT00000009", conditions=("Asthma",))
    text = "Liver failure treated with stem cells"
    everywhere = replace(
        base,
        conditions=("Asthma", text),
        interventions=(Intervention(text),),
        brief_title=text,
        brief_summary=text,
    )
    with_text = vectorizer.transform([base], free_texts=[text])
    assert (with_text != vectorizer.transform([everywhere])).nnz == 0
    assert (with_text != vectorizer.transform([base])).nnz > 0
    empty = vectorizer.transform([base], free_texts=[""])
    assert (empty != vectorizer.transform([base])).nnz == 0


def test_free_texts_must_match_the_records():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    with pytest.raises(ValueError, match="2 free texts for 1 records"):
        vectorizer.transform(RECORDS[:1], free_texts=["a", "b"])
