"""Defaults shared by every way of asking for recommendations (CLI, JSON API, page)."""

# Results per query when none is asked for: the same in `recommender similar`, the
# JSON API (`k`) and the HTML page, so the three show the same list.
DEFAULT_RESULTS = 10
