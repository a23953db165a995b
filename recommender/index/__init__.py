"""The on-disk index: a folder of arrays and JSON per version, written atomically
(:func:`save_index`), loaded memory-mapped and verified (:class:`TrialIndex`), with
versions behind one served symlink (:mod:`recommender.index.versions`)."""

from recommender.index.errors import (
    DamagedIndexError,
    IndexBusyError,
    IndexChangedError,
    NotInIndexError,
    TrialIndexError,
    WriterConflictError,
)
from recommender.index.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    read_meta,
    sha256_file,
    verify_index,
)
from recommender.index.loaded import Neighbour, TrialIndex
from recommender.index.save import save_index
from recommender.index.updated_records import UpdatedRecords
from recommender.index.versions import (
    META_FILE,
    Staging,
    check_replaceable,
    hold_version,
    remove_stale,
    resolve_index_folder,
    served_version,
    versions_folder,
)
from recommender.index.writer import VersionWriter
from recommender.index.writers import WriterLock

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "META_FILE",
    "DamagedIndexError",
    "IndexBusyError",
    "IndexChangedError",
    "Neighbour",
    "NotInIndexError",
    "Staging",
    "TrialIndex",
    "TrialIndexError",
    "UpdatedRecords",
    "VersionWriter",
    "WriterConflictError",
    "WriterLock",
    "check_replaceable",
    "hold_version",
    "read_meta",
    "remove_stale",
    "resolve_index_folder",
    "save_index",
    "served_version",
    "sha256_file",
    "verify_index",
    "versions_folder",
]
