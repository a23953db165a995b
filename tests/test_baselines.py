"""The baselines: their text, their exact TF-IDF and BM25 protocols, free-text ranking."""

from dataclasses import replace

import bm25s
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.core import Intervention, TrialRecord
from recommender.evaluation import TextQuerySet, evaluate_text
from recommender.evaluation.baselines import (
    PLAIN_FIELDS,
    BM25Ranker,
    concatenated_text,
    field_group_ranker,
    tfidf_ranker,
)
from recommender.text import DEFAULT_FIELD_GROUPS


def record(number: int, title: str, **fields) -> TrialRecord:
    return TrialRecord(f"NCT{number:08d}", brief_title=title, **fields)


def drugs(*names: str) -> tuple[Intervention, ...]:
    return tuple(Intervention(name) for name in names)


# Three topics, every topical word in two records or more (min_df=2 keeps it).
RECORDS = [
    record(
        1,
        "Budesonide inhaler for asthma in children",
        conditions=("Asthma",),
        interventions=(Intervention("Budesonide", other_names=("Pulmicort",)),),
        condition_mesh_terms=("Respiratory Tract Diseases",),
    ),
    record(2, "Formoterol inhaler for adult asthma", conditions=("Asthma",)),
    record(3, "Asthma education for school children", conditions=("Asthma",)),
    record(4, "Tamoxifen after surgery for breast cancer", interventions=drugs("Tamoxifen")),
    record(
        5,
        "Letrozole versus tamoxifen",
        brief_summary="Aromatase inhibitor in women with breast cancer.",
        conditions=("Breast Cancer",),
    ),
    record(6, "Stem cells for liver failure", keywords=("liver failure", "stem cells")),
    record(7, "A registry of acute liver failure", official_title="Outcomes of liver failure"),
]
IDS = [r.nct_id for r in RECORDS]
ASTHMA, CANCER, LIVER = IDS[:3], IDS[3:5], IDS[5:]


def test_concatenated_text_reads_the_plain_fields_and_intervention_names_only():
    trial = TrialRecord(
        "NCT00000001",
        brief_title="Title",
        official_title="Official",
        acronym="ACR",
        brief_summary="Summary.",
        detailed_description="Details.",
        conditions=("Asthma", ""),
        keywords=("inhaler",),
        interventions=(Intervention("Budesonide", other_names=("Pulmicort",)),),
        condition_mesh_terms=("Asthma",),
        eligibility_criteria="Adults.",
    )
    expected = "Title . Official . Summary. . Details. . Asthma . inhaler . Budesonide"
    assert concatenated_text(trial) == concatenated_text(trial, PLAIN_FIELDS) == expected
    assert concatenated_text(trial, ("condition_mesh_terms", "brief_title")) == "Asthma . Title"


def test_tfidf_ranker_is_the_reference_protocol():
    ranker = tfidf_ranker(RECORDS)
    reference = TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english")
    expected = reference.fit_transform([concatenated_text(r) for r in RECORDS])
    assert ranker.vectors.dtype == np.float32 and ranker.vectors.shape == expected.shape
    np.testing.assert_allclose(ranker.vectors.toarray(), expected.toarray(), rtol=1e-6)
    assert ranker.top_k([IDS[0]], 10)[0][0] in ASTHMA[1:]  # never the query itself
    assert IDS[0] not in ranker.top_k([IDS[0]], 10)[0]


def test_tfidf_ranker_ranks_free_text_with_its_fitted_vocabulary():
    ranker = tfidf_ranker(RECORDS)
    texts = ["A boy whose asthma needs an inhaler", "liver failure", "zebra", ""]
    found = ranker.top_k_text(texts, 3)
    assert set(found[0][:2]) == {IDS[0], IDS[1]}  # asthma and inhaler
    assert found[0][2] == IDS[2]  # asthma alone
    assert set(found[1]) == set(LIVER)
    assert found[2] == [] and found[3] == []
    # Intervention names are read, other names are not (and MeSH is not a plain field).
    everything = tfidf_ranker(RECORDS, min_df=1)
    assert everything.top_k_text(["budesonide"], 3) == [[IDS[0]]]
    assert everything.top_k_text(["pulmicort"], 3) == [[]]
    assert everything.top_k_text(["respiratory"], 3) == [[]]


def bm25_reference(texts: list[str], query: str, k: int) -> list[str]:
    """Plain bm25s over ``texts``: the ids of the top-k positive scores."""
    tokenize = dict(stopwords="en", return_ids=False, show_progress=False)
    model = bm25s.BM25(k1=1.2, b=0.75)
    model.index(bm25s.tokenize(texts, **tokenize), show_progress=False)
    scores = model.get_scores(bm25s.tokenize([query], **tokenize)[0])
    order = np.argsort(-scores, kind="stable")[:k]
    return [IDS[i] for i in order if scores[i] > 0]


@pytest.fixture(scope="module")
def bm25():
    return BM25Ranker(RECORDS)


@pytest.mark.parametrize("text", ["children with asthma and an inhaler", "breast cancer"])
def test_bm25_ranks_text_as_plain_bm25s_does(bm25, text):
    texts = [concatenated_text(r) for r in RECORDS]
    assert bm25.top_k_text([text], 4) == [bm25_reference(texts, text, 4)]
    assert bm25.top_k_text([text], 4)[0][0] in ASTHMA + CANCER


def test_bm25_free_text_edge_cases(bm25):
    assert bm25.top_k_text(["the and of"], 3) == [[]]  # only stop words
    zebra, liver = bm25.top_k_text(["zebra", "liver"], 5)
    assert zebra == [] and sorted(liver) == LIVER
    assert bm25.top_k_text([], 5) == []
    assert bm25.top_k_text(["pulmicort", "budesonide"], 5) == [[], [IDS[0]]]


def test_bm25_trial_queries_never_return_the_query(bm25):
    ranking = bm25.top_k([IDS[5]], 5)[0]
    assert ranking == [IDS[6]]  # the other liver trial; nothing else shares a word
    scores = bm25.score(IDS[5], [IDS[6], IDS[5], "NCT00000099"])
    assert scores[0] > 0 and scores[1] == scores[2] == -np.inf


def test_field_group_ranker_ranks_free_text():
    groups = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]
    ranker = field_group_ranker(RECORDS, groups)
    found = ranker.top_k_text(["breast cancer treated with tamoxifen", "liver failure"], 2)
    assert set(found[0]) == set(CANCER) and set(found[1]) == set(LIVER)


def test_baselines_score_free_text_queries(bm25):
    queries = TextQuerySet(
        texts={"liver": "acute liver failure", "cancer": "breast cancer"},
        judgements={
            "liver": {IDS[6]: 2, IDS[5]: 2, "NCT00000099": 2},
            "cancer": {IDS[4]: 1},
        },
    )
    for ranker in (tfidf_ranker(RECORDS), bm25):
        result = evaluate_text(ranker, queries, ks=(2,))
        assert result.dropped_judgements == 1 and result.queries == 2
        liver, cancer = result.per_query["liver"], result.per_query["cancer"]
        assert liver["ndcg@2"] == pytest.approx(1) and liver["recall@2"] == 1
        assert cancer["recall@2"] == 1 and cancer["precision@2"] == 1 / 2
