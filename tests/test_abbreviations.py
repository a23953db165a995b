import re

from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.abbreviations import (
    _LAST_CLAUSE_BREAK,
    AbbreviationTable,
    _best_long_form_by_character,
    best_long_form,
    find_definitions,
    learn_abbreviations,
)


def test_schwartz_hearst_finds_the_shortest_long_form():
    assert best_long_form("ACLF", "patients with acute-on-chronic liver failure") == (
        "acute-on-chronic liver failure"
    )
    assert best_long_form("MSC", "human mesenchymal stem cells") == "mesenchymal stem cells"
    assert best_long_form("XYZ", "nothing that spells it") is None


def test_definitions_stop_at_the_clause_and_skip_implausible_ones():
    text = (
        "Background. Mesenchymal stem cells (MSCs) help. We measured (IL6) levels; "
        "the end stage renal disease (ESRD) group (n = 12) and (AB) alone."
    )
    found = dict(find_definitions(text))
    assert found == {"MSCs": "Mesenchymal stem cells", "ESRD": "end stage renal disease"}


def test_learning_keeps_frequent_unambiguous_forms_only():
    texts = ["Urinary tract infections (UTIs) recur."] * 3 + [
        "Parkinson disease (PD) here.",
        "Progressive disease (PD) there.",
        "Rare thing form (RTF) once.",
    ] * 2
    assert learn_abbreviations(texts) == {"UTI": "urinary tract infections"}
    assert learn_abbreviations(texts, min_count=2) == {
        "RTF": "rare thing form",
        "UTI": "urinary tract infections",
    }


def test_expansion_adds_each_long_form_once_and_is_case_sensitive():
    table = AbbreviationTable({"MSC": "mesenchymal stem cells", "ALF": "acute liver failure"})
    assert table.expand(["MSC-EVs", "MSCs", "alf"]) == [
        "MSC-EVs",
        "MSCs",
        "alf",
        "mesenchymal stem cells",
    ]
    assert table.expand([]) == []


# Characters that make lowering tricky (İ lowers to two, a final Σ by its context),
# word breaks, clause breaks and letters a short form spells.
_TRICKY = st.sampled_from([*"acdfhlmsACDFHLMS -()[].;:,\t0İiΣςßK", "\u03c3"])  # small sigma


@settings(max_examples=400, deadline=None, derandomize=True)
@given(short=st.text(_TRICKY, min_size=1, max_size=6), text=st.text(_TRICKY, max_size=40))
def test_long_form_search_equals_lowering_one_character_at_a_time(short, text):
    assert best_long_form(short, text) == _best_long_form_by_character(short, text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(_TRICKY, max_size=60))
def test_the_last_clause_break_is_the_last_of_all_breaks(text):
    breaks = list(re.finditer(r"[.;:]\s|[()\[\]]", text))
    found = _LAST_CLAUSE_BREAK.match(text)
    assert (found.end() if found else None) == (breaks[-1].end() if breaks else None)
