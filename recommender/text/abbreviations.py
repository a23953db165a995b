"""Abbreviations learned from the registry's own texts, so "ACLF" meets its long form.

Trial texts define their abbreviations as they go: "acute-on-chronic liver failure
(ACLF)", "mesenchymal stem cells (MSC)". :func:`learn_abbreviations` finds such
definitions with the Schwartz-Hearst algorithm (Schwartz & Hearst, "A simple
algorithm for identifying abbreviation definitions in biomedical text", PSB 2003)
and keeps, for each short form, the long form most texts give it.
:class:`AbbreviationTable` then adds the long form beside a short form wherever a
condition or intervention list uses one, so "MSC-EVs" also reads as "mesenchymal
stem cells".

Only list items are expanded, not summaries: on the development labels, expanding
every text made rankings worse (a summary defines its own abbreviations, and every
repeated short form added its long form again), while expanding condition and
intervention names linked trials the lists alone kept apart (``docs/evaluation.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from operator import itemgetter

from recommender.text.stop_words import ENGLISH_STOP_WORDS
from recommender.text.tokenizer import WORD

# WORD's words of ASCII text (case kept: short forms are case-sensitive), found faster.
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
# WORD's words that hold a capital A-Z, the only words that can be a short form (or its
# plural) when every short form holds one, as learned ones do: the scan then skips nine
# in ten words of a description instead of collecting them. The lookbehind starts a
# match only where a word starts; the possessive run cannot backtrack into the word.
_CAPITAL = re.compile(r"[A-Z]")
_CAPITALISED_WORD = re.compile(r"(?<![^\W_])[^\W_A-Z]*+[A-Z][^\W_]*")
_CAPITALISED_ASCII_WORD = re.compile(r"(?<![A-Za-z0-9])[a-z0-9]*+[A-Z][A-Za-z0-9]*")

# "(ACLF)", "(MSCs;", "(CG-BM1,": a parenthesis opening on a short token.
_DEFINITION = re.compile(r"\(\s*([^()\s][^()\s]{0,9})\s*[),;]")
# Where a long form cannot reach back past: sentence ends and other parentheses. The
# greedy prefix makes one match call find the last of them, backtracking from the end.
_LAST_CLAUSE_BREAK = re.compile(r"(?s:.*)(?:[.;:]\s|[()\[\]])")


def _is_short_form(candidate: str) -> bool:
    """2-10 characters, starting alphanumeric, with a letter and two capitals."""
    return (
        2 <= len(candidate) <= 10
        and candidate[0].isalnum()
        and sum(map(str.isupper, candidate)) >= 2
        and candidate.lower() not in ENGLISH_STOP_WORDS
    )


def best_long_form(short: str, text: str) -> str | None:
    """The shortest ending of ``text`` that spells ``short``, as Schwartz-Hearst finds it.

    Each character of the short form, right to left, must match a character of the
    long form; the first one must start a word.
    """
    lowered, chars = text.lower(), short.lower()
    # Lowering whole strings is lowering each character unless one lowers to several
    # (İ: the length changes) or by its context (a final Σ).
    if len(lowered) != len(text) or len(chars) != len(short) or "Σ" in text + short:
        return _best_long_form_by_character(short, text)
    t = len(text) - 1
    for s in range(len(chars) - 1, -1, -1):
        if not chars[s].isalnum():
            continue
        t = lowered.rfind(chars[s], 0, t + 1)
        while s == 0 and t > 0 and text[t - 1].isalnum():
            t = lowered.rfind(chars[s], 0, t)
        if t < 0:
            return None
        t -= 1
    return text[text.rfind(" ", 0, t + 1) + 1 :]


def _best_long_form_by_character(short: str, text: str) -> str | None:
    """:func:`best_long_form` lowering one character at a time (any text)."""
    s, t = len(short) - 1, len(text) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while t >= 0 and (text[t].lower() != char or (s == 0 and t > 0 and text[t - 1].isalnum())):
            t -= 1
        if t < 0:
            return None
        t -= 1
        s -= 1
    return text[text.rfind(" ", 0, t + 1) + 1 :]


def find_definitions(text: str) -> Iterable[tuple[str, str]]:
    """Every ``(short form, long form)`` defined in ``text`` as "long form (SF)"."""
    for match in _DEFINITION.finditer(text):
        short = match.group(1)
        if not _is_short_form(short):
            continue
        before = text[max(0, match.start() - 200) : match.start()]
        last_break = _LAST_CLAUSE_BREAK.match(before)
        if last_break:
            before = before[last_break.end() :]
        words = before.split()
        window = " ".join(words[-min(len(short) + 5, 2 * len(short)) :])
        long = best_long_form(short, window) if window else None
        if long and _plausible(short, long):
            yield short, long


def _plausible(short: str, long: str) -> bool:
    words = WORD.findall(long.lower())
    return len(words) >= 2 and len(long) > len(short) and short.lower() not in words


def _singular(short: str) -> str:
    """ "MSCs" -> "MSC": the plural of an all-capitals short form is the same one."""
    return short[:-1] if short.endswith("s") and short[:-1].isupper() else short


def learn_abbreviations(
    texts: Iterable[str], *, min_count: int = 3, min_share: float = 0.5
) -> dict[str, str]:
    """Short form -> long form, from the definitions in ``texts``.

    Parameters
    ----------
    texts : iterable of str
        Titles, summaries, descriptions, in their original case.
    min_count : int, default 3
        Definitions a long form needs: one author's private abbreviation links nothing.
    min_share : float, default 0.5
        Share of a short form's definitions its commonest long form must exceed; an
        ambiguous short form ("PD": Parkinson's disease, progressive disease, ...)
        is left alone.

    Returns
    -------
    dict of str to str
        Long forms as lower-case words joined by spaces.
    """
    return choose_long_forms(count_definitions(texts), min_count=min_count, min_share=min_share)


def definitions_in(text: str) -> tuple[tuple[str, str], ...]:
    """The definitions in ``text`` as :func:`learn_abbreviations` counts them: short
    forms singular, long forms as lower-case words joined by spaces."""
    return tuple(
        (_singular(short), " ".join(WORD.findall(long.lower())))
        for short, long in find_definitions(text)
    )


def count_definitions(texts: Iterable[str]) -> dict[str, dict[str, int]]:
    """Short form -> how often ``texts`` define it as each long form.

    Plain dicts: a worker process sends them back several times faster than Counters.
    """
    seen: dict[str, dict[str, int]] = {}
    for text in texts:
        for short, long in definitions_in(text):
            longs = seen.setdefault(short, {})
            longs[long] = longs.get(long, 0) + 1
    return seen


def merge_definitions(parts: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """:func:`count_definitions` of consecutive runs of texts, in order, as that of all
    of them."""
    seen: dict[str, dict[str, int]] = {}
    for part in parts:
        for short, longs in part.items():
            total = seen.setdefault(short, {})
            for long, count in longs.items():
                total[long] = total.get(long, 0) + count
    return seen


def choose_long_forms(
    seen: dict[str, dict[str, int]], *, min_count: int = 3, min_share: float = 0.5
) -> dict[str, str]:
    """The table of :func:`learn_abbreviations` from :func:`count_definitions`.

    A tie in count goes to the long form seen first, as counted (runs merged in
    order keep the order of their texts).
    """
    table = {}
    for short, longs in seen.items():
        long, count = max(longs.items(), key=itemgetter(1))
        if count >= min_count and count / sum(longs.values()) > min_share:
            table[short] = long
    return dict(sorted(table.items()))


class AbbreviationTable:
    """Expands the short forms used in list items to their learned long forms.

    Parameters
    ----------
    long_forms : mapping of str to str
        Short form (case-sensitive, singular) -> long form, as
        :func:`learn_abbreviations` returns.
    """

    def __init__(self, long_forms: Mapping[str, str]) -> None:
        self.long_forms = dict(long_forms)
        # Set operations in C find the few short forms of a text (a description has
        # hundreds of words, a prose query two or three short forms): the loop over
        # words in Python was most of the time of reading a query's prose.
        self._shorts = frozenset(self.long_forms)
        self._plurals = frozenset(s + "s" for s in self.long_forms if s.isupper()) - self._shorts
        capitalised = all(_CAPITAL.search(short) for short in self.long_forms)
        self._ascii_words, self._words = (
            (_CAPITALISED_ASCII_WORD, _CAPITALISED_WORD) if capitalised else (_ASCII_WORD, WORD)
        )

    def __len__(self) -> int:
        return len(self.long_forms)

    def expand(self, items: list[str]) -> list[str]:
        """``items`` followed by the long form of each short form they use, once each,
        in the order the short forms first appear."""
        found: dict[str, None] = {}
        long_forms = self.long_forms
        for item in items:
            words = (self._ascii_words if item.isascii() else self._words).findall(item)
            unique = set(words)
            shorts, plurals = unique & self._shorts, unique & self._plurals
            for word in sorted(shorts | plurals, key=words.index):
                found[long_forms[word] if word in shorts else long_forms[word[:-1]]] = None
        return items + [long for long in found if long not in items]
