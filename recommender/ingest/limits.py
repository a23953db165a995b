"""How much of a source one study may take: bytes per study file, characters per text.

Registry downloads come from outside, and a damaged or hostile one can be very large
in a small package: a 1 MB zip can unpack one member to a gigabyte, a JSON study can
carry a 200 MB summary that would then be indexed and served whole. Two limits guard
against that, each with a reason in the ingest report, while the rest of the source
is read as usual:

* ``max_file_bytes``: a study file, zip member or JSON line larger than this is
  refused *before* it is read or decompressed (a zip member by its declared size,
  and by the bytes it really unpacks to, for a member whose header lies);
* ``max_text_chars``: a text field (a summary, a description, a criteria text, a
  condition name) longer than this is cut to it at a word boundary; the study is
  kept and the cut is noted.

The defaults are far above what the registry accepts (its longest field, a detailed
description, may hold 32,000 characters; its largest studies, with results, weigh a
few MB).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import msgspec

from recommender.core import TrialRecord

_ENCODER = msgspec.json.Encoder()

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_TEXT_CHARS = 100_000

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)


@dataclass(frozen=True)
class ReadLimits:
    """Limits on what one study may take when a source is read.

    Parameters
    ----------
    max_file_bytes : int, default 16 MiB
        Largest study file, zip member (unpacked) or JSON line, in bytes; a larger
        one is skipped, unread, with its size in the reason.
    max_text_chars : int, default 100,000
        Longest text field, in characters; a longer one is cut to it.
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_text_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def too_large(self, size: int, what: str = "study file") -> str | None:
        """The skip reason for a ``what`` of ``size`` bytes, or None when it is allowed."""
        return size_refusal(size, self.max_file_bytes, what)


DEFAULT_LIMITS = ReadLimits()


def size_refusal(size: int, max_bytes: int, what: str) -> str | None:
    """Why a ``what`` of ``size`` bytes is not read, or None when it is within ``max_bytes``."""
    if size <= max_bytes:
        return None
    return (
        f"{what} of {format_size(size)} is over the limit of {format_size(max_bytes)} "
        "per study (--max-file-size); not read"
    )


def parse_size(text: str) -> int:
    """Bytes from ``"16M"``, ``"16MB"``, ``"16MiB"``, ``"500k"``, ``"1G"`` or ``"1048576"``.

    Units are powers of 1024. Raises ``ValueError`` for anything else or for 0.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 16M, 500k, 1G or bytes)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 1:
        raise ValueError(f"{text!r}: the size must be at least 1 byte")
    return size


def format_size(size: int) -> str:
    """``16777216`` -> ``"16 MiB"``; ``1288490189`` -> ``"1.2 GiB"``; small sizes in bytes."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def cap_texts(record: TrialRecord, max_chars: int) -> tuple[TrialRecord, list[str]]:
    """``record`` with every text longer than ``max_chars`` cut, and what was cut.

    Returns
    -------
    record : TrialRecord
        The same object when nothing was too long.
    cut : list of str
        ``"brief_summary (209,715,200 characters)"`` for each text that was cut,
        with its path (``interventions[0].description``) inside the record.
    """
    # A text never has more characters than the record's JSON has bytes: a record
    # that short (nearly every one) is returned without walking its fields.
    if len(_ENCODER.encode(record)) <= max_chars:
        return record, []
    cut: list[str] = []
    capped = _cap(record, max_chars, "", cut)
    return capped, cut


# The id names the study: cut, it would be no id at all (--max-text-chars 5).
_NEVER_CUT = frozenset({"nct_id"})


def _cap(value, max_chars: int, path: str, cut: list[str]):
    """``value`` (a text, a tuple, a record or part of one) with long texts cut."""
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value
        cut.append(f"{path} ({len(value):,} characters)")
        return _cut_at_word(value, max_chars)
    if isinstance(value, tuple):
        items = tuple(_cap(item, max_chars, f"{path}[{i}]", cut) for i, item in enumerate(value))
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if field.name in _NEVER_CUT:
                continue
            old = getattr(value, field.name)
            name = f"{path}.{field.name}" if path else field.name
            new = _cap(old, max_chars, name, cut)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def _cut_at_word(text: str, max_chars: int) -> str:
    # A cut word would become a term of its own; end at the last whole word when
    # one ends in the last tenth of the allowed length.
    head = text[:max_chars]
    if not text[max_chars].isspace():
        space = head.rfind(" ")
        if space >= max_chars * 0.9:
            head = head[:space]
    return head.rstrip()
