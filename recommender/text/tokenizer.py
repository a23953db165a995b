"""What a field group's terms are: the one definition, in plain Python.

:class:`ItemAnalyzer` defines the terms of a list of strings: lower-cased words,
word n-grams within one item, optionally the whole item as one phrase. Read it to
know what the index holds. :data:`WORD` is what a word is, here and wherever else
words are found (abbreviations, drift).

Counting terms this way costs a Python step per term (about 13 of the 14 seconds
the full corpus took to vectorise), so the vectoriser counts the same terms with
its compiled twin, :mod:`recommender.text._tokenizer_compiled`, a pass over the
texts' UTF-8 bytes. A change here must be made there too: the tests check both
definitions agree term for term, on hand-made and random texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from recommender.text.stop_words import ENGLISH_STOP_WORDS

# Words are runs of letters and digits; "acute-on-chronic" gives three words and
# "MSC-EVs" two, so hyphenated and spaced spellings of a term meet.
WORD = re.compile(r"[^\W_]+", re.UNICODE)

# The same words for ASCII text, found about a third faster.
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``."""
    text = text.lower()
    return (_ASCII_WORD if text.isascii() else WORD).findall(text)


@dataclass(frozen=True)
class ItemAnalyzer:
    """Split a list of strings into terms: lower-cased words, n-grams within an item,
    and optionally the whole item as one phrase term.

    Single words that are stop words are dropped, and so are n-grams that begin or
    end with one, but stop words inside an n-gram or phrase are kept: "acute on
    chronic" stays readable in an explanation instead of becoming "acute chronic".
    A phrase term is added for an item of more words than the longest n-gram; with
    ``item_words`` False an item gives its phrase alone, whatever its length, and no
    words or n-grams (a sponsor is matched by its whole name, never by "university").
    """

    ngram_range: tuple[int, int] = (1, 1)
    whole_items: bool = False
    stop_words: frozenset[str] = field(default=ENGLISH_STOP_WORDS, repr=False)
    item_words: bool = True

    def __call__(self, items: Sequence[str]) -> list[str]:
        low, high = self.ngram_range
        stop = self.stop_words
        terms: list[str] = []
        for item in items:
            found = words(item)
            if self.whole_items and found and (len(found) > high or not self.item_words):
                terms.append(" ".join(found))
            if not self.item_words:
                continue
            if low == 1:
                terms.extend(w for w in found if w not in stop)
            for n in range(max(low, 2), high + 1):
                terms.extend(
                    " ".join(found[i : i + n])
                    for i in range(len(found) - n + 1)
                    if found[i] not in stop and found[i + n - 1] not in stop
                )
        return terms
