"""Time the save of a full index: ``save_index`` on the parts of a built index.

Loads an index (``models/index`` unless ``--index``; not timed), then writes it again
as a new index under ``--out`` (a temporary folder, removed after, unless given) and
prints the seconds the save took. Run it with ``PYTHONPATH`` naming two checkouts
in turn to compare their saves on the same parts (the build's "save" stage)::

    python -m bench.save
    for i in 1 2 3; do
        PYTHONPATH=/path/to/before python -m bench.save --index /tmp/idx --out /tmp/s/a
        PYTHONPATH=$PWD           python -m bench.save --index /tmp/idx --out /tmp/s/b
    done
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from recommender.index import TrialIndex, save_index


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.save`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.save", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--index", type=Path, default=Path("models/index"), help="index to save again (%(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to save it (default: a temporary folder, removed after)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="bench-save-") as folder:
            args.out = Path(folder) / "index"
            save_again(args)
    else:
        save_again(args)


def save_again(args: argparse.Namespace) -> None:
    """Load ``args.index`` and time saving it at ``args.out``."""
    index = TrialIndex.load(args.index, verify=False)
    records = list(index.records)
    vectors = index.vectors.copy()  # in memory, as after a build
    neighbours = index.neighbour_indices[:], index.neighbour_scores[:]
    for stale in (args.out, args.out.with_name(f".{args.out.name}.versions")):
        if stale.is_symlink():
            stale.unlink()
        elif stale.exists():
            shutil.rmtree(stale)
    started = time.perf_counter()
    save_index(
        args.out,
        records=records,
        vectorizer=index.vectorizer,
        vectors=vectors,
        neighbour_indices=neighbours[0],
        neighbour_scores=neighbours[1],
        meta={},
        report={},
    )
    print(f"save {time.perf_counter() - started:.2f} s ({len(records):,} studies)")


if __name__ == "__main__":
    main()
