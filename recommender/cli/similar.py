"""``recommender similar``: the trials most like an indexed trial or a text."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recommender.cli._common import EXIT_OK, BadInput, positive_int
from recommender.core import DEFAULT_INDEX, DEFAULT_RESULTS, DRAFT_ID, TrialRecord
from recommender.index import TrialIndex


def add_parser(commands: argparse._SubParsersAction) -> None:
    similar = commands.add_parser("similar", help="trials most like a trial or a text")
    similar.add_argument("nct_id", nargs="?", help="an indexed trial, e.g. NCT05940610")
    similar.add_argument("--text", help="free text of a trial that is not registered instead")
    similar.add_argument(
        "-k", type=positive_int, default=DEFAULT_RESULTS, help="results (%(default)s)"
    )
    similar.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    similar.add_argument("--json", action="store_true", help="print JSON")
    similar.add_argument("--why", action="store_true", help="show the terms behind each score")


def run(args: argparse.Namespace) -> int:
    if args.nct_id is None and args.text is None:
        raise BadInput("give either an NCT id or --text: neither was given")
    if args.nct_id is not None and args.text is not None:
        raise BadInput("give either an NCT id or --text, not both")
    index = TrialIndex.load(args.index)
    if args.text is not None:
        query = index.vectorize(TrialRecord(DRAFT_ID), text=args.text)
        if query.nnz == 0:
            raise BadInput("none of the words of --text occur in this index")
        results = index.similar_to_vector(query, args.k)
        title = args.text
    else:
        pos = index.position(args.nct_id)
        query = index.vectors[pos]
        results = index.similar(args.nct_id, args.k)
        title = index.records[pos].title
    rows = []
    for n in results:
        row = {
            "rank": n.rank,
            "nct_id": n.nct_id,
            "score": round(n.score, 4),
            "title": index.records[n.position].title,
        }
        if args.why:
            row["why"] = index.explain(query, n.position)
        rows.append(row)
    if args.json:
        print(json.dumps({"query": args.nct_id or args.text, "results": rows}, indent=1))
    else:
        print(f"trials like {args.nct_id or 'your text'}: {title}")
        for row in rows:
            print(f"{row['rank']:>3}  {row['nct_id']}  {row['score']:.3f}  {row['title']}")
            for part in row.get("why", []):
                print(f"{'':22}{part['field']}: {', '.join(part['terms'])}")
    return EXIT_OK
