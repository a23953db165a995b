"""``recommender similar``: the trials most like an indexed trial or a text.

The command asks the Python API (:mod:`recommender.search`) what a notebook would,
so the two give the same results, titles and errors, within the limits of the REST
API (:mod:`recommender.core.queries`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recommender.cli._common import EXIT_OK, BadInput, checked
from recommender.core import (
    DEFAULT_INDEX,
    DEFAULT_RESULTS,
    MAX_RESULTS,
    MAX_TEXT_CHARS,
    QueryError,
    check_results,
)
from recommender.search import Recommender, Results, shown_title


def add_parser(commands: argparse._SubParsersAction) -> None:
    similar = commands.add_parser("similar", help="trials most like a trial or a text")
    similar.add_argument("nct_id", nargs="?", help="an indexed trial, e.g. NCT05940610")
    similar.add_argument(
        "--text",
        help="free text of a trial that is not registered instead (a draft's title and "
        f"summary), at most {MAX_TEXT_CHARS:,} characters",
    )
    similar.add_argument(
        "-k",
        type=checked(_results),
        default=DEFAULT_RESULTS,
        metavar="N",
        help=f"results, 1 to {MAX_RESULTS} (%(default)s)",
    )
    similar.add_argument(
        "--index", type=Path, default=DEFAULT_INDEX, help="index folder (%(default)s)"
    )
    similar.add_argument("--json", action="store_true", help="print JSON")
    similar.add_argument("--why", action="store_true", help="show the terms behind each score")


def _results(text: str) -> int:
    """``-k``: a whole number within the limits of every query (a ValueError otherwise)."""
    try:
        k = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    return check_results(k)


def run(args: argparse.Namespace) -> int:
    if args.nct_id is None and args.text is None:
        raise BadInput("give either an NCT id or --text: neither was given")
    if args.nct_id is not None and args.text is not None:
        raise BadInput("give either an NCT id or --text, not both")
    trials = Recommender.open(args.index)
    try:
        if args.text is not None:
            results = trials.similar_to_text(args.text, args.k, why=args.why)
        else:
            results = trials.similar(args.nct_id, args.k, why=args.why)
    except QueryError as exc:
        raise BadInput(str(exc)) from None
    print(as_json(results, args.nct_id or args.text) if args.json else as_text(results))
    return EXIT_OK


def as_text(results: Results) -> str:
    """The results as the command prints them: a made title in brackets."""
    lines = [f"trials like {results.query or 'your text'}: {shown_title(results)}"]
    for r in results:
        lines.append(f"{r.rank:>3}  {r.nct_id}  {r.score:.3f}  {shown_title(r)}")
        for part in r.why or ():
            lines.append(f"{'':22}{part.field}: {', '.join(part.terms)}")
    return "\n".join(lines)


def as_json(results: Results, query: str) -> str:
    """The results as ``--json`` prints them: the query as given, its title, each
    result's rank, id, score, title (and whether it was made) and ``why``."""
    rows = []
    for r in results:
        row = {
            "rank": r.rank,
            "nct_id": r.nct_id,
            "score": round(r.score, 4),
            "title": r.title,
            "title_made": r.title_made,
        }
        if r.why is not None:
            row["why"] = [
                {"field": w.field, "score": w.score, "terms": list(w.terms)} for w in r.why
            ]
        rows.append(row)
    shown = {"query": query, "title": results.title, "title_made": results.title_made}
    return json.dumps({**shown, "results": rows}, indent=1)
