import re

from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.core import RecordStore, TrialRecord, write_records
from recommender.text import AbbreviationTable, learn_abbreviations, record_texts
from recommender.text.abbreviations import (
    _LAST_CLAUSE_BREAK,
    _best_long_form_by_character,
    best_long_form,
    choose_long_forms,
    count_definitions,
    find_definitions,
    merge_definitions,
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


def _expand_word_by_word(long_forms: dict[str, str], items: list[str]) -> list[str]:
    """The expansion as first written: every word looked up in turn."""
    found: dict[str, None] = {}
    for item in items:
        for word in dict.fromkeys(re.findall(r"[^\W_]+", item)):
            long = long_forms.get(word)
            if not long and word.endswith("s") and word[:-1].isupper():
                long = long_forms.get(word[:-1])
            if long:
                found[long] = None
    return items + [long for long in found if long not in items]


_SHORT_FORMS = {"MSC": "mesenchymal stem cells", "EV": "extracellular vesicles",
                "ALFs": "not a plural", "Ab": "antibody", "ÉPO": "erythropoietin",
                "ALF": "acute liver failure", "A": "ampere"}  # fmt: skip
_WORDS = st.sampled_from([*_SHORT_FORMS, "MSCs", "EVs", "ALFss", "Abs", "ÉPOs", "As", "msc",
                          "x_MSC", "cells", "İ", "ς", " ", "-", "(", "_", "2s", "ms", "ÉÉ",
                          "éMSC", "aB", "acute liver failure"])  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(items=st.lists(st.lists(_WORDS, max_size=12).map("".join), max_size=4))
def test_expansion_equals_looking_up_every_word_in_turn(items):
    # Same long forms in the same order (the order of the vector's columns, hence
    # the bits of its norm, follows it), found with set operations instead.
    # With a short form that holds no capital A-Z, every word must be looked at.
    for long_forms in (_SHORT_FORMS, {**_SHORT_FORMS, "ms": "multiple sclerosis", "ÉÉ": "e"}):
        table = AbbreviationTable(long_forms)
        assert table.expand(items) == _expand_word_by_word(long_forms, items)


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


def _prose_records(n: int) -> list[TrialRecord]:
    forms = [
        ("acute-on-chronic liver failure", "ACLF"),
        ("mesenchymal stem cells", "MSCs"),
        ("overall survival", "OS"),
        ("optical surface", "OS"),
    ]
    return [
        TrialRecord(
            nct_id=f"NCT{i:08d}",
            brief_title=f"Trial {i}",
            brief_summary=f"We study {forms[i % 4][0]} ({forms[i % 4][1]}) and {forms[i % 3][0]} "
            f"({forms[i % 3][1]}) in arm {i}.",
        )
        for i in range(n)
    ]


def test_definitions_counted_in_runs_merge_to_those_of_all_texts():
    texts = [r.brief_summary for r in _prose_records(40)]
    runs = [count_definitions(texts[a : a + 7]) for a in range(0, 40, 7)]

    def in_order(seen):  # the order decides ties in count
        return [(short, list(longs.items())) for short, longs in seen.items()]

    assert in_order(merge_definitions(runs)) == in_order(count_definitions(texts))
    assert choose_long_forms(count_definitions(texts)) == learn_abbreviations(texts)


def test_abbreviations_learned_by_worker_processes_equal_one_process(tmp_path, monkeypatch):
    records = _prose_records(60)
    write_records(records, tmp_path / "records.jsonl", tmp_path / "offsets.npy")
    store = RecordStore(tmp_path / "records.jsonl", tmp_path / "offsets.npy")
    monkeypatch.setattr(record_texts, "RUN_RECORDS", 9)  # seven runs
    table = record_texts.learn_abbreviations_of(store, n_jobs=2)
    assert table == record_texts.learn_abbreviations_of(records, n_jobs=1)
    assert table == learn_abbreviations([record_texts.prose(r) for r in records])
    assert table["ACLF"] == "acute on chronic liver failure"
    assert table["OS"] == "overall survival"  # 35 of its 50 definitions
