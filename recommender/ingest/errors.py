"""Errors of the registry readers, and the zip plumbing both readers share.

Two levels of error, because they are handled differently: a :class:`RecordError`
spoils one study (one zip member, file or line), which is skipped and listed in the
ingest report; a :class:`SourceError` spoils a whole source (missing path, unknown
format, a zip that is not a zip), which the caller must fix before anything is read.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
import zlib
from collections.abc import Iterator
from os import PathLike, path

from recommender.ingest.limits import format_size, size_refusal
from recommender.records import TrialRecord


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


#: What a reader yields for each item of a source: the item's name (zip member,
#: file, ``"line 17"``) and either its record or the reason it was skipped.
Outcome = tuple[str, TrialRecord | RecordError]

#: What reading one zip member raises when the member, not the whole zip, is
#: damaged: bad CRC or local header, truncated or corrupt deflate stream,
#: encryption, an unsupported compression method.
ZIP_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
)


#: A file named for a trial (``NCT01234567.json``) is meant to be a study, so one
#: that is not is a failure to report, never a file to ignore.
_STUDY_FILE_NAME = re.compile(r"NCT\d{8}\.(json|xml)", re.IGNORECASE)


def named_as_study(name: str) -> bool:
    """Whether the base name of ``name`` is an NCT id with a ``.json``/``.xml`` suffix."""
    return _STUDY_FILE_NAME.fullmatch(path.basename(name)) is not None


def one_line(message: object, limit: int = 300) -> str:
    """Return ``message`` as a single line of at most ``limit`` characters.

    Skip reasons are shown one per line in reports, and parser messages can carry
    newlines or long offending snippets.
    """
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_zip(
    path: str | PathLike[str] | zipfile.ZipFile,
) -> zipfile.ZipFile | contextlib.nullcontext[zipfile.ZipFile]:
    """Open a zip archive for reading, or raise :class:`SourceError`.

    A file that is not a zip at all (or whose central directory is damaged) spoils
    the whole source, unlike a damaged member, which the readers skip and report.
    An archive already open is used as it is and left open (reading a registry
    zip's directory of 100k+ members takes a second; a build does it once).
    """
    if isinstance(path, zipfile.ZipFile):
        return contextlib.nullcontext(path)
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError as err:
        raise SourceError(f"{path}: no such file") from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise SourceError(f"{path}: not a readable zip archive ({one_line(err)})") from err


def zip_members(archive: zipfile.ZipFile, suffix: str) -> Iterator[zipfile.ZipInfo]:
    """The archive's file members whose name ends with ``suffix`` (any case), in order."""
    for info in archive.infolist():
        if not info.is_dir() and info.filename.lower().endswith(suffix):
            yield info


def read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int
) -> bytes | RecordError:
    """Return one member's bytes, or the :class:`RecordError` saying why it is not read.

    A member whose header declares more than ``max_bytes`` unpacked is refused
    before a byte is decompressed; one whose stream unpacks to more than its header
    says stops at ``max_bytes + 1`` bytes, so memory stays bounded either way.
    """
    reason = size_refusal(info.file_size, max_bytes, "zip member")
    if reason:
        return RecordError(reason)
    try:
        with archive.open(info) as member:
            data = member.read(max_bytes + 1)
    except ZIP_MEMBER_ERRORS as err:
        return RecordError(f"unreadable zip member: {one_line(err)}")
    if len(data) > max_bytes:
        return RecordError(
            f"zip member unpacks to more than the {format_size(info.file_size)} its header "
            f"declares and over the limit of {format_size(max_bytes)} per study "
            "(--max-file-size); not read"
        )
    return data
