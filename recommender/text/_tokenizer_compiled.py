"""The terms of :mod:`recommender.text.tokenizer`, found and counted by a compiled pass.

The texts are lower-cased and UTF-8 encoded in bulk (:func:`encode_texts`), then one
compiled pass (numba, no GIL, so chunks run on threads) finds the words, forms the
n-grams and phrases and counts every term by its 64-bit FNV-1a hash, the hash of the
term's spelling (its words joined by single spaces, :func:`term_hashes`):
:func:`count_new_terms` while fitting, :func:`count_known_terms` with a fitted
vocabulary. It must find exactly the terms :class:`ItemAnalyzer` finds; the tests
compare the two term for term.

Two different terms sharing a hash would be counted as one. For the roughly ten
million distinct terms of a full registry the chance of that happening anywhere is
about three in a million, and its effect would be one merged column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.sparse as sp
from numba import njit

from recommender.text.tokenizer import WORD, ItemAnalyzer, words


@dataclass(frozen=True)
class EncodedTexts:
    """Documents (each a list of strings) as one buffer of lower-cased UTF-8 bytes.

    An item holding non-ASCII characters is stored as its words joined by single
    spaces, so the compiled pass needs to know only ASCII: a byte is part of a word
    when it is a letter, a digit or any byte of a multi-byte character.

    Attributes
    ----------
    buffer : ndarray of shape (n_bytes,), dtype uint8
        Every item's bytes, back to back.
    item_ends : ndarray of shape (n_items,), dtype int64
        Where each item ends in ``buffer`` (it starts where the previous one ends).
    doc_ends : ndarray of shape (n_docs,), dtype int64
        Where each document's items end in ``item_ends``.
    """

    buffer: np.ndarray
    item_ends: np.ndarray
    doc_ends: np.ndarray

    def __len__(self) -> int:
        return len(self.doc_ends)

    def spell(self, start: int, stop: int) -> str:
        """The term whose words span bytes ``start:stop``, words joined by spaces."""
        return " ".join(words(self.buffer[start:stop].tobytes().decode("utf-8")))


def encode_texts(docs: Sequence[Sequence[str]]) -> EncodedTexts:
    """Lower-case and encode ``docs`` (lists of strings) into one byte buffer."""
    items = [item.lower() for doc in docs for item in doc]
    items = [s if s.isascii() else " ".join(WORD.findall(s)) for s in items]
    encoded = [s.encode("utf-8") for s in items]
    item_ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
    doc_ends = np.cumsum(np.fromiter(map(len, docs), np.int64, len(docs)))
    buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return EncodedTexts(buffer, item_ends, doc_ends)


def term_hashes(terms: Sequence[str]) -> np.ndarray:
    """The hash of each term's spelling, shape (len(terms),), dtype uint64.

    A term is its words joined by single spaces, as :class:`ItemAnalyzer` spells it.
    """
    encoded = [t.encode("utf-8") for t in terms]
    ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded))).astype(np.int64)
    return _hash_spans(np.frombuffer(b"".join(encoded), dtype=np.uint8), ends)


@dataclass
class HashedCounts:
    """Term counts of consecutive documents, columns named by term hash.

    Attributes
    ----------
    keys : ndarray of shape (n_terms,), dtype uint64
        Each column's term hash.
    spans : ndarray of shape (n_terms, 2), dtype int64
        Bytes of one occurrence of each term in the buffer counted, to spell it by.
    counts : csr_matrix of shape (n_docs, n_terms), dtype int32
    sources : ndarray of shape (n_terms,), dtype int64
        Which of the merged parts' buffers each span is in (all 0 for a single part).
    """

    keys: np.ndarray
    spans: np.ndarray
    counts: sp.csr_matrix
    sources: np.ndarray


def count_new_terms(texts: EncodedTexts, analyzer: ItemAnalyzer) -> HashedCounts:
    """Count every term of ``texts``, columns in order of first appearance."""
    keys, spans, indptr, indices, data = _count_terms(*_pass_arguments(texts, analyzer))
    counts = sp.csr_matrix((data, indices, indptr), shape=(len(texts), len(keys)))
    return HashedCounts(keys, spans, counts, np.zeros(len(keys), dtype=np.int64))


class TermTable:
    """A fixed vocabulary looked up by term hash: term ``i`` is column ``i``.

    Parameters
    ----------
    terms : sequence of str
    """

    def __init__(self, terms: Sequence[str]) -> None:
        self.keys = term_hashes(terms)
        self.slots = _table_slots(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def count_known_terms(
    texts: EncodedTexts, analyzer: ItemAnalyzer, table: TermTable
) -> sp.csr_matrix:
    """Count the terms of ``texts`` found in ``table``, in its columns.

    Returns
    -------
    counts : csr_matrix of shape (n_docs, len(table)), dtype int32, indices sorted
    """
    arguments = _pass_arguments(texts, analyzer)
    indptr, indices, data = _count_known(*arguments, table.slots, table.keys)
    return sp.csr_matrix((data, indices, indptr), shape=(len(texts), len(table)))


@cache
def stop_table(stop_words: frozenset[str]) -> TermTable:
    """The stop words by hash, for the compiled pass (made once per set of words)."""
    return TermTable(sorted(stop_words))


def _pass_arguments(texts: EncodedTexts, analyzer: ItemAnalyzer) -> tuple:
    """What both compiled counting passes take, in their order."""
    low, high = analyzer.ngram_range
    stop = stop_table(analyzer.stop_words)
    longest = int(np.diff(texts.item_ends, prepend=0).max()) if len(texts.item_ends) else 0
    return (
        texts.buffer, texts.item_ends, texts.doc_ends, low, high, analyzer.whole_items,
        analyzer.item_words,
        stop.slots, stop.keys, longest,
    )  # fmt: skip


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)

_FNV_PRIME = np.uint64(0x100000001B3)

_SPACE = np.uint64(0x20)

_EMPTY = -1


@njit(nogil=True, cache=True, inline="always")
def _is_word_byte(b):
    return b >= 128 or (97 <= b <= 122) or (48 <= b <= 57)


@njit(nogil=True, cache=True)
def _hash_spans(buffer, ends):
    out = np.empty(ends.shape[0], dtype=np.uint64)
    start = 0
    for i in range(ends.shape[0]):
        h = _FNV_OFFSET
        for j in range(start, ends[i]):
            h = (h ^ np.uint64(buffer[j])) * _FNV_PRIME
        out[i] = h
        start = ends[i]
    return out


@njit(nogil=True, cache=True, inline="always")
def _slot_of(key, mask):
    # murmur3's finaliser: FNV's low bits alone spread poorly over a table.
    key ^= key >> np.uint64(33)
    key *= np.uint64(0xFF51AFD7ED558CCD)
    key ^= key >> np.uint64(33)
    key *= np.uint64(0xC4CEB9FE1A85EC53)
    key ^= key >> np.uint64(33)
    return np.int64(key & np.uint64(mask))


@njit(nogil=True, cache=True)
def _find(slots, keys, key):
    """Slot holding ``key``, or the empty slot where it would go (linear probing)."""
    mask = slots.shape[0] - 1
    s = _slot_of(key, mask)
    while slots[s] != _EMPTY and keys[slots[s]] != key:
        s = (s + 1) & mask
    return s


@njit(nogil=True, cache=True)
def _table_slots(keys):
    size = 16
    while size < 2 * keys.shape[0]:
        size *= 2
    slots = np.full(size, _EMPTY, dtype=np.int64)
    for column in range(keys.shape[0]):
        slots[_find(slots, keys, keys[column])] = column
    return slots


@njit(nogil=True, cache=True)
def _item_terms(
    buffer, start, stop, low, high, whole_items, item_words, stop_slots, stop_keys, scratch,
    out, n,
):  # fmt: skip
    """Hash and span of every term of one item, written to ``out`` from column ``n``;
    returns the new count.

    scratch: (4, max_words) int64 work space for word starts, ends, hashes, stop flags;
    out: (3, >= n + max_words * n_sizes + 1) int64 rows hash (as int64 bits), span
    start, span end.
    """
    word_starts, word_ends, word_hashes = scratch[0], scratch[1], scratch[2].view(np.uint64)
    n_words = 0
    i = start
    while i < stop:
        if not _is_word_byte(buffer[i]):
            i += 1
            continue
        h = _FNV_OFFSET
        word_starts[n_words] = i
        while i < stop and _is_word_byte(buffer[i]):
            h = (h ^ np.uint64(buffer[i])) * _FNV_PRIME
            i += 1
        word_ends[n_words] = i
        word_hashes[n_words] = h
        n_words += 1

    is_stop = scratch[3]
    for w in range(n_words):
        is_stop[w] = stop_slots[_find(stop_slots, stop_keys, word_hashes[w])] != _EMPTY

    hashes = out[0].view(np.uint64)
    if whole_items and n_words and (n_words > high or not item_words):
        hashes[n] = _join_hash(buffer, word_starts, word_ends, word_hashes, 0, n_words)
        out[1, n] = word_starts[0]
        out[2, n] = word_ends[n_words - 1]
        n += 1
    if not item_words:
        return n
    for size in range(low, high + 1):
        for first in range(n_words - size + 1):
            last = first + size - 1
            if is_stop[first] or is_stop[last]:
                continue
            hashes[n] = _join_hash(buffer, word_starts, word_ends, word_hashes, first, last + 1)
            out[1, n] = word_starts[first]
            out[2, n] = word_ends[last]
            n += 1
    return n


@njit(nogil=True, cache=True)
def _doc_terms(
    buffer, item_ends, first_item, stop_item, low, high, whole_items, item_words, stop_slots,
    stop_keys, scratch, out,
):  # fmt: skip
    """Every term of items ``first_item:stop_item`` (one document); returns ``out``,
    grown when the document needs more room, and the count."""
    item_room = scratch.shape[1] * (high - low + 1) + 1
    n = 0
    for item in range(first_item, stop_item):
        if out.shape[1] - n < item_room:
            bigger = np.empty((3, 2 * (n + item_room)), dtype=np.int64)
            bigger[:, :n] = out[:, :n]
            out = bigger
        start = item_ends[item - 1] if item else 0
        n = _item_terms(buffer, start, item_ends[item], low, high, whole_items, item_words,
                        stop_slots, stop_keys, scratch, out, n)  # fmt: skip
    return out, n


@njit(nogil=True, cache=True, inline="always")
def _join_hash(buffer, word_starts, word_ends, word_hashes, first, stop):
    """Hash of words ``first:stop`` joined by single spaces (FNV continues word to word)."""
    h = word_hashes[first]
    for w in range(first + 1, stop):
        h = (h ^ _SPACE) * _FNV_PRIME
        for j in range(word_starts[w], word_ends[w]):
            h = (h ^ np.uint64(buffer[j])) * _FNV_PRIME
    return h


@njit(nogil=True, cache=True)
def _work_space(longest_item, low, high):
    max_words = longest_item // 2 + 1
    max_terms = max_words * (high - low + 1) + 1
    return np.empty((4, max_words), np.int64), np.empty((3, max_terms), np.int64)


@njit(nogil=True, cache=True)
def _grow(array, size):
    bigger = np.empty(size, dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


@njit(nogil=True, cache=True)
def _count_terms(
    buffer, item_ends, doc_ends, low, high, whole_items, item_words, stop_slots, stop_keys,
    longest,
):  # fmt: skip
    scratch, out = _work_space(longest, low, high)
    slots = np.full(1 << 12, _EMPTY, dtype=np.int64)
    keys = np.empty(1 << 11, dtype=np.uint64)
    span_starts = np.empty(1 << 11, dtype=np.int64)
    span_ends = np.empty(1 << 11, dtype=np.int64)
    last_doc = np.empty(1 << 11, dtype=np.int64)
    entry = np.empty(1 << 11, dtype=np.int64)  # a column's entry in the current row
    n_keys = 0
    indptr = np.zeros(doc_ends.shape[0] + 1, dtype=np.int64)
    indices = np.empty(1 << 12, dtype=np.int32)
    data = np.empty(1 << 12, dtype=np.int32)
    nnz = 0
    for doc in range(doc_ends.shape[0]):
        first_item = doc_ends[doc - 1] if doc else 0
        out, n = _doc_terms(buffer, item_ends, first_item, doc_ends[doc], low, high,
                            whole_items, item_words, stop_slots, stop_keys, scratch,
                            out)  # fmt: skip
        hashes = out[0].view(np.uint64)
        for t in range(n):
            s = _find(slots, keys, hashes[t])
            column = slots[s]
            if column == _EMPTY:
                column = n_keys
                n_keys += 1
                if n_keys > keys.shape[0]:
                    keys = _grow(keys, 2 * keys.shape[0])
                    span_starts = _grow(span_starts, 2 * span_starts.shape[0])
                    span_ends = _grow(span_ends, 2 * span_ends.shape[0])
                    last_doc = _grow(last_doc, 2 * last_doc.shape[0])
                    entry = _grow(entry, 2 * entry.shape[0])
                keys[column] = hashes[t]
                span_starts[column] = out[1, t]
                span_ends[column] = out[2, t]
                last_doc[column] = -1
                if 2 * n_keys > slots.shape[0]:
                    slots = _table_slots(keys[:n_keys])  # keep it at most half full
                else:
                    slots[s] = column
            if last_doc[column] == doc:
                data[entry[column]] += 1
                continue
            if nnz == indices.shape[0]:
                indices = _grow(indices, 2 * nnz)
                data = _grow(data, 2 * nnz)
            last_doc[column] = doc
            entry[column] = nnz
            indices[nnz] = column
            data[nnz] = 1
            nnz += 1
        indptr[doc + 1] = nnz
    spans = np.empty((n_keys, 2), dtype=np.int64)
    spans[:, 0] = span_starts[:n_keys]
    spans[:, 1] = span_ends[:n_keys]
    return keys[:n_keys].copy(), spans, indptr, indices[:nnz].copy(), data[:nnz].copy()


@njit(nogil=True, cache=True)
def _count_known(
    buffer, item_ends, doc_ends, low, high, whole_items, item_words, stop_slots, stop_keys,
    longest, slots, keys,
):  # fmt: skip
    # Used for a few documents at a time (a query, an update), so nothing here is
    # the vocabulary's size: a document's columns are gathered, sorted and counted.
    scratch, out = _work_space(longest, low, high)
    indptr = np.zeros(doc_ends.shape[0] + 1, dtype=np.int64)
    indices = np.empty(1 << 10, dtype=np.int32)
    data = np.empty(1 << 10, dtype=np.int32)
    nnz = 0
    for doc in range(doc_ends.shape[0]):
        first_item = doc_ends[doc - 1] if doc else 0
        out, n = _doc_terms(buffer, item_ends, first_item, doc_ends[doc], low, high,
                            whole_items, item_words, stop_slots, stop_keys, scratch,
                            out)  # fmt: skip
        hashes = out[0].view(np.uint64)
        found = np.empty(n, dtype=np.int32)
        n_found = 0
        for t in range(n):
            column = slots[_find(slots, keys, hashes[t])]
            if column != _EMPTY:
                found[n_found] = column
                n_found += 1
        columns = np.sort(found[:n_found])
        if nnz + n_found > indices.shape[0]:
            indices = _grow(indices, 2 * (nnz + n_found))
            data = _grow(data, 2 * (nnz + n_found))
        for j in range(n_found):
            if j and columns[j] == columns[j - 1]:
                data[nnz - 1] += 1
            else:
                indices[nnz] = columns[j]
                data[nnz] = 1
                nnz += 1
        indptr[doc + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()
