"""The texts the vectoriser reads from records: each field group's items, encoded for
the compiled term count, and the prose in which trials define their abbreviations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from recommender.core import RecordStore, TrialRecord
from recommender.infra import OrderedPool, worker_count
from recommender.text._tokenizer_compiled import EncodedTexts, encode_texts
from recommender.text.abbreviations import (
    AbbreviationTable,
    choose_long_forms,
    count_definitions,
    learn_abbreviations,
    merge_definitions,
)

if TYPE_CHECKING:
    from recommender.text.fields import FieldGroup

# Records per run of the abbreviation pass.
RUN_RECORDS = 8192


class ProseFields(msgspec.Struct):
    """The fields :func:`prose` reads, decoded alone from records on disk."""

    brief_title: str = ""
    official_title: str = ""
    brief_summary: str = ""
    detailed_description: str = ""


def prose(record: TrialRecord | ProseFields) -> str:
    """The texts in which a trial defines its abbreviations, in their original case."""
    parts = (
        record.brief_title,
        record.official_title,
        record.brief_summary,
        record.detailed_description,
    )
    return " ".join(part for part in parts if part)


def learn_abbreviations_of(records: Sequence[TrialRecord], n_jobs: int = 1) -> dict[str, str]:
    """:func:`~recommender.text.abbreviations.learn_abbreviations` of the records' prose.

    On a :class:`~recommender.core.store.RecordStore` (a build's records, on disk) runs of
    records are read by ``n_jobs`` worker processes, which open the store by its
    paths: a pure-Python pass holding the GIL, 2.9 s on one core for the registry
    corpus. The same table either way (tested).
    """
    bounds = [(a, min(a + RUN_RECORDS, len(records))) for a in range(0, len(records), RUN_RECORDS)]
    workers = worker_count(n_jobs)
    if type(records) is not RecordStore or workers < 2 or len(bounds) < 2:
        # Exactly a RecordStore: a segmented store (an updated index's) is not one file.
        return learn_abbreviations(_prose_texts(records, 0, len(records)))
    paths = (records.lines_path, records.offsets_path)
    tasks = ((_count_run, (paths, a, b)) for a, b in bounds)
    with OrderedPool(workers, "a process learning abbreviations", stage="abbreviations") as pool:
        return choose_long_forms(merge_definitions(pool.results(tasks)))


def encode_groups(
    records: Iterable[TrialRecord],
    groups: Sequence[FieldGroup],
    abbreviations: AbbreviationTable,
    free_texts: Sequence[str] | None = None,
) -> list[EncodedTexts]:
    """Each group's texts of ``records``, encoded for the compiled pass.

    ``free_texts`` (one per record, optional) are one more item of each group that
    ``reads_free_text``.
    """
    records = list(records)
    if free_texts is not None and len(free_texts) != len(records):
        raise ValueError(f"{len(free_texts)} free texts for {len(records)} records")
    extra = [[text] if text else [] for text in free_texts or ()]
    # Groups that read the same items the same way share one encoding: a thin query's
    # prose, read into both list groups, is expanded and encoded once.
    encoded: dict[tuple, EncodedTexts] = {}
    for g in groups:
        if _reading(g) not in encoded:
            encoded[_reading(g)] = encode_texts(_group_items(g, records, abbreviations, extra))
    return [encoded[_reading(g)] for g in groups]


def _reading(group: FieldGroup) -> tuple:
    """What decides the items a group reads from a record (not how it counts them)."""
    return (
        tuple(group.fields),
        group.name_parts,
        group.expand_abbreviations,
        group.reads_free_text,
    )


def _group_items(
    group: FieldGroup,
    records: list[TrialRecord],
    abbreviations: AbbreviationTable,
    extra: list[list[str]],
) -> list[list[str]]:
    items = [group.items(r) for r in records]
    if group.expand_abbreviations and len(abbreviations):
        items = [abbreviations.expand(found) for found in items]
    if extra and group.reads_free_text:
        items = [found + more for found, more in zip(items, extra, strict=True)]
    return items


def _prose_texts(records: Sequence[TrialRecord], start: int, stop: int) -> Iterator[str]:
    """:func:`prose` of records ``start:stop``; from disk, only its four fields are decoded."""
    if isinstance(records, RecordStore):
        return map(prose, records.iter_fields(ProseFields, start, stop))
    return map(prose, records[start:stop])


def _count_run(paths: tuple[Path, Path], start: int, stop: int) -> dict[str, dict[str, int]]:
    # In a worker process.
    return count_definitions(_prose_texts(RecordStore(*paths), start, stop))
