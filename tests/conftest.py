"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real corpus lives next to the repository (``<repo>/../shared/data``), never in it.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real registry corpus folder (``$RECOMMENDER_DATA``); skips the test if absent."""
    path = Path(os.environ.get("RECOMMENDER_DATA", DEFAULT_DATA_DIR))
    if not path.is_dir():
        pytest.skip(f"registry corpus not found at {path} (set RECOMMENDER_DATA)")
    return path
