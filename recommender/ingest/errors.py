"""Errors of the registry readers, and the zip plumbing both readers share.

Two levels of error, because they are handled differently: a :class:`RecordError`
spoils one study (one zip member, file or line), which is skipped and listed in the
ingest report; a :class:`SourceError` spoils a whole source (missing path, unknown
format, a zip that is not a zip), which the caller must fix before anything is read.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
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

    ``archive`` needs only ``fp`` (the open zip file) and ``open`` of a ZipFile:
    ``open`` is called only for a member :func:`_read_directly` leaves to zipfile.
    """
    reason = size_refusal(info.file_size, max_bytes, "zip member")
    if reason:
        return RecordError(reason)
    try:
        data = _read_directly(archive.fp, info, max_bytes)
        if data is None:
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


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # as zipfile.structFileHeader
_LOCAL_MAGIC = b"PK\x03\x04"
_UTF8_NAME = 0x800
# Encrypted, compressed patch data, strong encryption: zipfile's own reader decides.
_SPECIAL = 0x1 | 0x20 | 0x40
_PLAIN = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _read_directly(fp, info: zipfile.ZipInfo, max_bytes: int) -> bytes | None:
    """A stored or deflated member's bytes (at most ``max_bytes + 1``), read with two
    preads and one inflate; None when zipfile's reader should read it instead.

    About a third cheaper than ``ZipFile.open`` (whose per-read bookkeeping is
    Python), which matters for 100k+ small members; and it needs no ZipFile, whose
    directory a worker process would otherwise read again
    (:mod:`recommender.ingest.parallel`). It checks what zipfile checks and raises
    what zipfile raises: the local header's magic and name, the end of the deflate
    stream, the CRC of a member read whole.
    """
    if info.flag_bits & _SPECIAL or info.compress_type not in _PLAIN:
        return None
    # A compressed size far over the unpacked one is not from a deflater: zipfile's
    # reader, which never holds more than it unpacks, takes that member.
    if info.compress_size > info.file_size + info.file_size // 100 + 1024:
        return None
    try:
        fd = fp.fileno()
    except (AttributeError, OSError):  # a zip in memory
        return None
    header = os.pread(fd, _LOCAL_HEADER.size, info.header_offset)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
        raise zipfile.BadZipFile("Bad magic number for file header")
    fields = _LOCAL_HEADER.unpack(header)
    flags, name_length, extra_length = fields[3], fields[10], fields[11]
    start = info.header_offset + _LOCAL_HEADER.size
    name = os.pread(fd, name_length, start)
    try:
        found = name.decode("utf-8" if flags & _UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        return None
    if found != info.orig_filename:
        raise zipfile.BadZipFile(
            f"File name in directory {info.orig_filename!r} and header {name!r} differ."
        )
    raw = os.pread(fd, info.compress_size, start + name_length + extra_length)
    if len(raw) < info.compress_size:
        raise EOFError("the zip file ends inside this member")
    if info.compress_type == zipfile.ZIP_STORED:
        data = raw[: max_bytes + 1]
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(raw, max_bytes + 1)
        if len(data) <= max_bytes and not inflater.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    if len(data) <= max_bytes and zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return data
