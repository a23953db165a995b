"""Time the save of a full index: ``save_index`` on the parts of a built index.

Loads an index (not timed), then writes it again as a new index under ``--out`` and
prints the seconds the save took. Run it with ``PYTHONPATH`` naming two checkouts
in turn to compare their saves on the same parts (the build's "save" stage)::

    for i in 1 2 3; do
        PYTHONPATH=/path/to/before python bench/save.py --index /tmp/idx --out /tmp/s/a
        PYTHONPATH=$PWD           python bench/save.py --index /tmp/idx --out /tmp/s/b
    done
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from recommender.index import TrialIndex, save_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
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
