"""Errors of reading and downloading registry data.

Two levels of error when reading, because they are handled differently: a
:class:`RecordError` spoils one study (one zip member, file or line), which is
skipped and listed in the ingest report; a :class:`SourceError` spoils a whole source
(missing path, unknown format, a zip that is not a zip), which the caller must fix
before anything is read. Downloading (``recommender fetch``) raises
:class:`FetchError` when the registry cannot be reached and :class:`FetchUsageError`
for what the user must change.
"""

from __future__ import annotations

from recommender.core import TrialRecord


class RecordError(ValueError):
    """One item of a source is not a readable study; the message says why."""


class NotAStudyError(RecordError):
    """A file of a folder or zip that is plainly not a study (a label file, notes).

    Registry folders often carry such files beside the studies (the seed cluster's
    ``expected_related.json``). They are noted as *ignored* in the ingest report,
    not counted as skipped studies: nothing was lost by passing them over.
    """


class SourceError(ValueError):
    """A source cannot be read at all (missing, unknown format, corrupt container)."""


class FetchError(Exception):
    """The registry could not be reached or kept failing; the resume state is kept."""


class FetchUsageError(ValueError):
    """A bad argument, a request the server refused (4xx) or a folder that cannot be resumed."""


#: What a reader yields for each item of a source: the item's name (zip member,
#: file, ``"line 17"``) and either its record or the reason it was skipped.
Outcome = tuple[str, TrialRecord | RecordError]


def one_line(message: object, limit: int = 300) -> str:
    """Return ``message`` as a single line of at most ``limit`` characters.

    Skip reasons are shown one per line in reports, and parser messages can carry
    newlines or long offending snippets.
    """
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unexpected(error: Exception) -> RecordError:
    """A :class:`RecordError` for an error no reader check foresaw in one item.

    Readers turn it into a skipped item, with the error's kind and message, rather
    than let it stop the read: a download of 600,000 files must not depend on every
    one of them being well-formed.
    """
    return RecordError(f"not readable: {type(error).__name__}: {one_line(error)}")


def not_unicode(record: TrialRecord) -> RecordError:
    """The reason to skip a record whose text holds a lone surrogate, naming the field.

    Python's json reads an unpaired ``\\ud800`` escape into a str that no UTF-8 file
    (the spool, the index) can hold.
    """
    stack: list[tuple[str, object]] = [("", record)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if any("\ud800" <= c <= "\udfff" for c in value):
                return RecordError(
                    f"text is not valid Unicode: {path} holds a lone surrogate "
                    "(an unpaired \\uD800-\\uDFFF escape)"
                )
        elif isinstance(value, tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
        elif hasattr(value, "__dataclass_fields__"):
            names = reversed(list(value.__dataclass_fields__))
            stack.extend((f"{path}.{n}".lstrip("."), getattr(value, n)) for n in names)
    return RecordError("text is not valid Unicode")
