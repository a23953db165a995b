"""Reasons a clinician would accept: no lone number, protocol word or name fragment is
shown, phrases come before their words, and the shares still add up to the score."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.core import Intervention, TrialRecord
from recommender.neighbours import Explainer
from recommender.text import (
    DEFAULT_FIELD_GROUPS,
    FieldGroupVectorizer,
    parent_organisation,
    person_name,
    readable,
    readable_mask,
    site_name,
)


@pytest.mark.parametrize(
    ("term", "shown"),
    [
        ("2", False),
        ("c", False),
        ("randomized", False),
        ("patients", False),
        ("trial", False),
        ("treatment", False),
        ("phase 2", False),  # a protocol word and a number: nothing to read
        ("randomized trial", False),
        ("type 2", True),
        ("semaglutide", True),
        ("acute on chronic liver failure", True),
        ("hepatitis b", True),
        ("sun yat sen university", True),
    ],
)
def test_a_term_is_shown_when_it_says_something_on_its_own(term, shown):
    assert readable(term) is shown


def test_the_mask_follows_the_terms():
    assert readable_mask(["2", "liver", "study"]).tolist() == [False, True, False]
    assert readable_mask([]).shape == (0,)


def explainer(shown):
    # One row sharing four columns with the query: two groups, columns 0-2 and 3-4.
    row = sp.csr_matrix(np.array([[0.5, 0.4, 0.3, 0.2, 0.1]], dtype=np.float32))
    names = np.array(["liver", "liver failure", "2", "randomized", "study"], dtype=object)
    return Explainer(row, np.array([0, 3, 5]), ["conditions", "eligibility"], names, shown)


def test_hidden_terms_count_in_the_score_but_are_never_listed():
    query = (np.array([0, 1, 2, 3, 4]), np.ones(5, dtype=np.float32))
    why = explainer(readable_mask(["liver", "liver failure", "2", "randomized", "study"]))
    (result,) = why.explain_results(*query, np.array([0]), n_terms=3)
    assert result == [
        {"field": "conditions", "score": pytest.approx(1.2), "terms": ["liver failure", "liver"]},
        {"field": "eligibility", "score": pytest.approx(0.3), "terms": []},
    ]
    everything = explainer(None).explain_results(*query, np.array([0]), n_terms=3)[0]
    assert everything[0]["terms"] == ["liver failure", "liver", "2"]
    assert [part["score"] for part in everything] == [part["score"] for part in result]


def test_phrases_come_before_their_words_whatever_their_share():
    row = sp.csr_matrix(np.array([[0.9, 0.1]], dtype=np.float32))
    names = np.array(["liver", "acute liver failure"], dtype=object)
    why = Explainer(row, np.array([0, 2]), ["conditions"], names)
    (result,) = why.explain_results(np.array([0, 1]), np.ones(2, np.float32), np.array([0]))
    assert result[0]["terms"] == ["acute liver failure", "liver"]


def test_a_sponsor_matches_whole_or_by_a_whole_organisation_it_names():
    sponsor = next(g for g in DEFAULT_FIELD_GROUPS if g.name == "sponsor")
    trial = TrialRecord(
        "NCT00000001", lead_sponsor="Third Affiliated Hospital, Sun Yat-Sen University"
    )
    assert sponsor.items(trial) == [
        "Third Affiliated Hospital, Sun Yat-Sen University",
        "Sun Yat-Sen University",
    ]
    records = [
        trial,
        TrialRecord("NCT00000002", lead_sponsor="Sun Yat-sen University"),
        TrialRecord("NCT00000003", lead_sponsor="Peking University"),
        TrialRecord("NCT00000004", lead_sponsor="Peking University"),
        TrialRecord("NCT00000005", interventions=(Intervention("Sun"),)),
        TrialRecord("NCT00000006", lead_sponsor="Third Affiliated Hospital, Zhengzhou University"),
        TrialRecord("NCT00000007", lead_sponsor="University Hospital, Lille"),
        TrialRecord("NCT00000008", lead_sponsor="University Hospital, Lille"),
        TrialRecord("NCT00000009", lead_sponsor="University Hospital, Angers"),
    ]
    vectorizer = FieldGroupVectorizer([sponsor], learn_abbreviations=False)
    vectors = vectorizer.fit_transform(records).toarray()
    terms = vectorizer.feature_names()
    assert "university" not in terms and "sun" not in terms
    assert "sun yat sen university" in terms and "peking university" in terms
    assert vectors[0] @ vectors[1] > 0  # the parent organisation, whole
    assert vectors[0] @ vectors[2] == 0  # nothing but "university" in common
    assert vectors[0] @ vectors[5] == 0  # another university's Third Affiliated Hospital
    assert vectors[6] @ vectors[7] > 0 and vectors[6] @ vectors[8] == 0  # not the city's
    assert "third affiliated hospital" not in terms and "university hospital" not in terms


@pytest.mark.parametrize(
    ("name", "parent"),
    [
        ("Third Affiliated Hospital, Sun Yat-Sen University", "Sun Yat-Sen University"),
        ("Masonic Cancer Center, University of Minnesota", "University of Minnesota"),
        ("Sun Yat-sen University", None),  # no comma: the whole name is the item
        ("University Hospital, Strasbourg, France", None),  # a place
        ("Centre Hospitalier Universitaire, Amiens", None),
        ("Pfizer, Inc.", None),  # a legal form
        ("Genzyme, a Sanofi Company", None),
        ("Gustave Roussy, Cancer Campus, Grand Paris", None),
        ("Xijing Hospital, Cancer Center", None),  # a unit any hospital may have
        ("National Heart, Lung, and Blood Institute (NHLBI)", None),  # a name with commas
        ("University of California, San Francisco", None),
    ],
)
def test_only_a_named_parent_organisation_is_read_from_a_sponsor(name, parent):
    assert parent_organisation(name) == parent


def test_the_team_group_links_trials_by_whole_names_of_people_and_sites():
    """Officials match by name without degrees, sites without their address;
    roles and sponsors' placeholder sites link nothing and are never terms."""
    team = next(g for g in DEFAULT_FIELD_GROUPS if g.name == "team")
    first = TrialRecord(
        "NCT00000001",
        officials=("Walter Ling, M.D.", "Medical Monitor"),
        sites=("Jonsson Comprehensive Cancer Center, UCLA", "GSK Investigational Site"),
        collaborators=("National Institute on Drug Abuse (NIDA)",),
    )
    assert team.items(first) == [
        "National Institute on Drug Abuse (NIDA)",
        "Walter Ling",
        "Jonsson Comprehensive Cancer Center",
    ]
    monitor, placeholder = ("Medical Monitor",), ("GSK Investigational Site",)
    records = [
        first,
        TrialRecord("NCT00000002", officials=("Walter Ling, MD",)),
        TrialRecord("NCT00000003", sites=("Jonsson Comprehensive Cancer Center",)),
        TrialRecord("NCT00000004", officials=monitor, sites=placeholder),
        TrialRecord("NCT00000005", officials=("Walter Smith",), sites=("UCLA",)),
        TrialRecord("NCT00000006", officials=monitor, sites=("Jonsson Cancer Center",)),
    ]
    vectorizer = FieldGroupVectorizer([team], learn_abbreviations=False)
    vectors = vectorizer.fit_transform(records).toarray()
    terms = vectorizer.feature_names()
    assert vectors[0] @ vectors[1] > 0 and vectors[0] @ vectors[2] > 0
    assert vectors[0] @ vectors[3] == 0 and vectors[0] @ vectors[4] == 0
    assert vectors[3] @ vectors[5] == 0  # a role is nobody's name
    assert "walter ling" in terms and "jonsson comprehensive cancer center" in terms
    assert not {"walter", "ling", "medical monitor", "ucla", "m d", "md"} & set(terms)


@pytest.mark.parametrize(
    ("name", "person"),
    [
        ("Stanislaw R. Burzynski, MD, PhD", "Stanislaw R. Burzynski"),
        ("Heidi H Kong, M.D.", "Heidi H Kong"),
        ("Belshe R", "Belshe R"),
        ("Medical Monitor", None),
        ("GSK Clinical Trials", None),
        ("Bayer Study Director", None),
        ("Pfizer CT.gov Call Center", None),
        ("Call 1-877-CTLILLY (1-877-285-4559) or 1-317-615-4559 Mon - Fri", None),
        ("MD", None),
        (". ., .", None),
    ],
)
def test_an_official_is_read_by_a_persons_name_only(name, person):
    assert person_name(name) == person


@pytest.mark.parametrize(
    ("name", "site"),
    [
        ("National Institutes of Health Clinical Center, 9000 Rockville Pike",
         "National Institutes of Health Clinical Center"),
        ("Memorial Sloan-Kettering Cancer Center", "Memorial Sloan-Kettering Cancer Center"),
        ("Scarborough Hospital - General Site", "Scarborough Hospital - General Site"),
        ("Novartis Investigative Site", None),
        ("GSK Investigational Site", None),
        ("Teva Investigational Site 321", None),
        ("Research Site", None),
        ("Local Institution", None),
        ("For additional information regarding investigative sites for this trial, contact "
         "1-877-CTLILLY (1-877-285-4559, 1-317-615-4559) Mon - Fri from 9 AM to 5 PM", None),
    ],
)  # fmt: skip
def test_a_site_is_read_by_its_name_never_a_placeholder(name, site):
    assert site_name(name) == site
