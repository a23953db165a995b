from dataclasses import replace

import numpy as np
import pytest
from scipy.sparse.linalg import norm as sparse_norm

from recommender.core import Intervention, TrialRecord
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


def test_norm_power_one_gives_unit_rows_and_empty_record_is_zero():
    X = FieldGroupVectorizer(_groups(), norm_power=1.0).fit_transform(RECORDS)
    assert X.dtype == np.float32 and X.shape[0] == 4
    norms = sparse_norm(X, axis=1)
    np.testing.assert_allclose(norms[:3], 1.0, rtol=1e-5)
    assert norms[3] == 0.0


def test_pivoted_rows_keep_part_of_their_length():
    """With norm power p, a row's norm becomes (norm / pivot) ** (1 - p): a richer
    record keeps a longer vector, an average one has norm 1."""
    raw = FieldGroupVectorizer(_groups(), norm_power=0.0)
    raw_norms = sparse_norm(raw.fit_transform(RECORDS), axis=1)[:3] * raw.pivot_
    vectorizer = FieldGroupVectorizer(_groups(), norm_power=0.6)
    norms = sparse_norm(vectorizer.fit_transform(RECORDS), axis=1)[:3]
    np.testing.assert_allclose(vectorizer.pivot_, raw_norms.mean(), rtol=1e-5)
    np.testing.assert_allclose(norms, (raw_norms / vectorizer.pivot_) ** 0.4, rtol=1e-4)
    assert len(set(np.round(norms, 4))) == 3


def test_record_with_only_some_groups_still_gets_a_vector():
    X = FieldGroupVectorizer(_groups()).fit_transform(RECORDS)
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    text = vectorizer.groups.index(next(g for g in vectorizer.groups if g.name == "text"))
    cols = X[2].indices
    assert len(cols) > 0
    assert set(vectorizer.group_of_column(cols)) == {text}


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
        ({"read_when_missing": -1}, "read_when_missing must be >= 0"),
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


def test_a_single_group_is_bm25_over_scikit_learn_counts():
    """Written out from the BM25 formula over CountVectorizer counts, independently of
    recommender.text.weighting: smoothed IDF, saturation k1, length normalisation b, rows
    divided by norm ** p * pivot ** (1 - p), twice (group, then whole row)."""
    from sklearn.feature_extraction.text import CountVectorizer

    k1, b, p = 1.5, 0.75, 0.5
    group = FieldGroup(
        "titles", ("brief_title",), ngram_range=(1, 2), min_df=1, max_df=1.0, k1=k1, b=b,
        norm_power=p,
    )  # fmt: skip
    titles = [[r.brief_title] if r.brief_title else [] for r in RECORDS]
    reference = CountVectorizer(analyzer=ItemAnalyzer(ngram_range=(1, 2)))
    tf = reference.fit_transform(titles).toarray().astype(np.float64)
    n, df = tf.shape[0], (tf > 0).sum(axis=0)
    idf = np.log((1 + n) / (1 + df)) + 1
    length = tf.sum(axis=1, keepdims=True)
    avg = length[length > 0].mean()
    with np.errstate(invalid="ignore"):
        w = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
    w = np.nan_to_num(w)
    for _ in range(2):
        norms = np.linalg.norm(w, axis=1, keepdims=True)
        pivot = norms[norms > 0].mean()
        w = np.where(norms > 0, w / np.maximum(norms, 1e-30) ** p / pivot ** (1 - p), 0)
    vectorizer = FieldGroupVectorizer([group], norm_power=p, n_jobs=2)
    np.testing.assert_allclose(vectorizer.fit_transform(RECORDS).toarray(), w, rtol=1e-5)
    assert vectorizer.feature_names() == reference.get_feature_names_out().tolist()


def test_free_text_is_one_more_item_of_the_free_text_groups_only():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    assert [g.name for g in vectorizer.groups if g.reads_free_text] == [
        "titles", "text", "eligibility"
    ]  # fmt: skip
    base = TrialRecord("NCT00000009", conditions=("Asthma",))
    text = "Liver failure treated with stem cells"
    # A brief title is read by both the titles and the whole-text group.
    as_fields = replace(base, brief_title=text, eligibility_criteria=text)
    with_text = vectorizer.transform([base], free_texts=[text])
    assert (with_text != vectorizer.transform([as_fields])).nnz == 0
    as_condition = vectorizer.transform([replace(base, conditions=("Asthma", text))])
    assert (with_text != as_condition).nnz > 0
    assert (with_text != vectorizer.transform([base])).nnz > 0
    empty = vectorizer.transform([base], free_texts=[""])
    assert (empty != vectorizer.transform([base])).nnz == 0


def test_free_texts_must_match_the_records():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    with pytest.raises(ValueError, match="2 free texts for 1 records"):
        vectorizer.transform(RECORDS[:1], free_texts=["a", "b"])


def test_short_forms_in_lists_meet_their_long_forms():
    """A condition written as "ACLF" shares terms with one spelled out, once the
    corpus has defined the abbreviation; without the table they share none."""
    define = "Acute-on-chronic liver failure (ACLF) is common. "
    records = [
        TrialRecord(f"NCT0000010{i}", brief_summary=define * 1 + f"Study {i}.") for i in range(3)
    ] + [
        TrialRecord("NCT00000201", conditions=("ACLF",)),
        TrialRecord("NCT00000202", conditions=("Acute-on-chronic liver failure",)),
    ]
    groups = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS[:1]]
    vectorizer = FieldGroupVectorizer(groups)
    X = vectorizer.fit_transform(records)
    assert vectorizer.abbreviations_.long_forms == {"ACLF": "acute on chronic liver failure"}
    assert (X[3] @ X[4].T).toarray()[0, 0] > 0
    plain = FieldGroupVectorizer(groups, learn_abbreviations=False).fit_transform(records)
    assert (plain[3] @ plain[4].T).toarray()[0, 0] == 0


def _group_columns(vectorizer, name):
    i = [g.name for g in vectorizer.groups].index(name)
    return slice(vectorizer.offsets_[i], vectorizer.offsets_[i + 1])


def test_a_query_without_lists_reads_its_prose_into_them():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    draft = TrialRecord(
        "NCT00000009",
        brief_title="Mesenchymal stem cells for acute-on-chronic liver failure",
    )
    row = vectorizer.transform([draft])
    query = vectorizer.transform_queries([draft])
    for name in ("conditions", "interventions"):
        columns = _group_columns(vectorizer, name)
        assert row[:, columns].nnz == 0  # an indexed row of it reads no list
        assert query[:, columns].nnz > 0
    # The words of trial 1's condition meet it in its group, and only the query's.
    columns = _group_columns(vectorizer, "conditions")
    names = vectorizer.feature_names()[columns]
    phrase = columns.start + names.index("chronic liver failure")
    assert row[0, phrase] == 0 and query[0, phrase] > 0
    X = vectorizer.transform(RECORDS)
    assert (query @ X.T)[0, 0] > (row @ X.T)[0, 0]
    # The other groups read the draft as an indexed row of it would (up to the norm).
    titles = _group_columns(vectorizer, "titles")
    own, asked = row[:, titles].toarray(), query[:, titles].toarray()
    assert (own != 0).sum() > 0 and np.array_equal(own != 0, asked != 0)
    assert np.allclose(asked[own != 0] / own[own != 0], asked.max() / own.max())


def test_a_query_with_a_condition_or_an_intervention_is_read_as_it_is():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    for record in RECORDS[:2]:  # trial 2 lists a condition and no intervention
        query = vectorizer.transform_queries([record])
        assert (query != vectorizer.transform([record])).nnz == 0


def test_reading_prose_is_scaled_by_read_when_missing_and_off_at_zero():
    draft = TrialRecord("NCT00000009", brief_summary="liver failure and asthma")
    shares = []
    for scale in (0.0, 1.0, 2.0):
        groups = [replace(g, read_when_missing=scale) if g.read_when_missing else g
                  for g in _groups()]  # fmt: skip
        vectorizer = FieldGroupVectorizer(groups, norm_power=0.0).fit(RECORDS)
        query = vectorizer.transform_queries([draft])
        shares.append(abs(query[:, _group_columns(vectorizer, "conditions")]).sum())
    assert shares[0] == 0
    assert shares[2] == pytest.approx(2 * shares[1], rel=1e-5)


def test_free_text_alone_is_never_read_into_the_lists():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    draft = TrialRecord("NCT00000009")
    note = ["Liver failure treated with stem cells"]
    query = vectorizer.transform_queries([draft], free_texts=note)
    assert (query != vectorizer.transform([draft], free_texts=note)).nnz == 0


def test_read_when_missing_survives_the_state_and_old_states_read_none():
    vectorizer = FieldGroupVectorizer(_groups()).fit(RECORDS)
    draft = [TrialRecord("NCT00000009", brief_title="liver failure")]
    params, vocabularies, idfs = vectorizer.get_state()
    rebuilt = FieldGroupVectorizer.from_state(params, vocabularies, idfs)
    assert (rebuilt.transform_queries(draft) != vectorizer.transform_queries(draft)).nnz == 0
    # An index written before the setting existed reads queries as it always did.
    for group in params["groups"]:
        del group["read_when_missing"]
    old = FieldGroupVectorizer.from_state(params, vocabularies, idfs)
    assert (old.transform_queries(draft) != old.transform(draft)).nnz == 0


def test_prose_read_into_lists_keeps_only_terms_a_list_would_mean():
    records = [
        *RECORDS,
        TrialRecord("NCT00000005", conditions=("Diabetes Mellitus, Type 2", "Phase 2 study")),
        TrialRecord("NCT00000006", conditions=("Randomized patients",)),
    ]
    vectorizer = FieldGroupVectorizer(_groups()).fit(records)
    draft = TrialRecord("NCT00000009", brief_title="Phase 2 randomized study of liver failure")
    query = vectorizer.transform_queries([draft])
    columns = _group_columns(vectorizer, "conditions")
    names = vectorizer.feature_names()[columns]
    read = {names[c - columns.start] for c in query.indices if columns.start <= c < columns.stop}
    assert "liver failure" in read
    assert {"2", "phase 2", "phase", "randomized", "study"} & set(names)  # in the model...
    assert not {"2", "phase 2", "phase", "randomized", "study"} & read  # ...not read from prose
    # The listed condition still meets them: only prose is filtered.
    listed = vectorizer.transform_queries([TrialRecord("NCT00000009", conditions=("Phase 2",))])
    assert listed[:, columns].nnz > 0


def test_groups_that_read_the_same_items_share_one_encoding():
    from recommender.text.abbreviations import AbbreviationTable
    from recommender.text.record_texts import encode_groups

    table = AbbreviationTable({"ACLF": "acute on chronic liver failure"})
    prose = ("brief_title", "brief_summary")
    same = [FieldGroup("a", prose, expand_abbreviations=True),
            FieldGroup("b", list(prose), expand_abbreviations=True, ngram_range=(1, 3)),
            FieldGroup("c", prose)]  # fmt: skip
    records = [TrialRecord("NCT00000009", brief_title="MSCs in ACLF", brief_summary="a trial")]
    a, b, c = encode_groups(records, same, table)
    assert a is b and c is not a  # how a group counts is not what it reads
    for group, shared in zip(same, (a, b, c), strict=True):
        alone = encode_groups(records, [group], table)[0]
        assert bytes(alone.buffer) == bytes(shared.buffer)
        assert np.array_equal(alone.item_ends, shared.item_ends)
    assert b"acute on chronic liver failure" in bytes(a.buffer)
    assert b"acute on chronic" not in bytes(c.buffer)
