"""Freed heap handed back to the system between build stages."""

import platform

import numpy as np
import psutil
import pytest

from recommender.infra import release_free_memory
from recommender.infra.memory import _malloc_trim


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_is_returned_to_the_system():
    assert _malloc_trim() is not None
    process = psutil.Process()
    # Many arrays below glibc's mmap threshold land in the heap; freeing them all but
    # the last leaves the heap's top pinned, so glibc keeps the memory until trimmed.
    arrays = [np.ones(16_000, dtype=np.float64) for _ in range(8_000)]  # ~1 GB
    keep = arrays[-1]
    del arrays
    before = process.memory_info().rss
    release_free_memory()
    after = process.memory_info().rss
    assert keep.sum() == 16_000
    assert before - after > 500 * 2**20
