"""Defaults shared by the engine, the command line and the service."""

from pathlib import Path

# Where `make serve`, every command and the service find the index unless told.
DEFAULT_INDEX = Path("models/index")

# Results per query when none is asked for: the same in `recommender similar`, the
# JSON API (`k`) and the HTML page, so the three show the same list.
DEFAULT_RESULTS = 10

# Neighbours a build stores per trial (`recommender build -k`): a request for up to
# this many, unfiltered, is a lookup in the stored lists; more is an exact search.
STORED_NEIGHBOURS = 50
