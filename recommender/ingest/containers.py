"""What the readers share to open what holds the studies: zips and folders.

A zip's members are listed once and read straight from the file (two ``pread`` s and
one inflate, with zipfile's checks and messages), a folder's files are listed in a
fixed order and read with a size limit, and a file named for a trial is always read
as one. Every reader (:mod:`recommender.ingest.ctgov_json`,
:mod:`recommender.ingest.ctgov_xml`) and the parallel runs use these.
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
from pathlib import Path

from recommender.ingest.errors import RecordError, SourceError, one_line
from recommender.ingest.limits import format_size, size_refusal

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
    # A header whose fields make no sense (a negative offset, a size past any file).
    ValueError,
    OverflowError,
    struct.error,
)

#: A file named for a trial (``NCT01234567.json``) is meant to be a study, so one
#: that is not is a failure to report, never a file to ignore.
_STUDY_FILE_NAME = re.compile(r"NCT\d{8}\.(json|xml)", re.IGNORECASE)


def named_as_study(name: str) -> bool:
    """Whether the base name of ``name`` is an NCT id with a ``.json``/``.xml`` suffix."""
    return _STUDY_FILE_NAME.fullmatch(path.basename(name)) is not None


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


def list_files(root: Path, suffix: str) -> list[Path]:
    """Files under ``root`` (recursively) ending in ``suffix`` (any case), sorted by path.

    Sorted so that "last one read wins" means the same on every file system.
    """
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == suffix and p.is_file())


def read_file(path: Path, max_bytes: int) -> bytes | RecordError:
    """A file's bytes, or the :class:`RecordError` saying why they are not read.

    A file over ``max_bytes`` is refused by its size, unread; reading stops at
    ``max_bytes + 1`` bytes all the same, for a file that grows meanwhile.
    """
    try:
        reason = size_refusal(path.stat().st_size, max_bytes, "file")
        if reason:
            return RecordError(reason)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        return RecordError(f"unreadable file: {one_line(err)}")
    if len(data) > max_bytes:
        return RecordError(size_refusal(len(data), max_bytes, "file"))
    return data
