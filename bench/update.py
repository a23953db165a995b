"""Time ``recommender update`` of N changed studies on a full index, and list what it rewrote.

Copies the index (``models/index`` unless ``--index``) to ``--work`` (a temporary
folder unless given; the original is not touched), writes N studies taken from the
registry download (``$RECOMMENDER_DATA/ctg-studies.json.zip``, else
``../shared/data/ctg-studies.json.zip``, else the sample in ``data/sample``), changed
as a day of the registry changes them (40% a new status, 40% an amended summary, 20%
new registrations), updates the copy with them and prints the update's stages and
which files of the new version are new and which were hard-linked from the previous
one::

    python -m bench.update
    python -m bench.update --index /tmp/idx --registry ../shared/data/ctg-studies.json.zip \\
        --work /tmp/bench-update --changed 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from recommender.index import TrialIndex
from recommender.pipelines.update import update_index


def changed_studies(registry: Path, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    with zipfile.ZipFile(registry) as archive:
        names = sorted(name for name in archive.namelist() if name.endswith(".json"))
        studies = [json.loads(archive.read(name)) for name in rng.sample(names, min(n, len(names)))]
    top = max(int(Path(name).stem[3:]) for name in names)
    for i, study in enumerate(studies):
        protocol = study["protocolSection"]
        if i % 5 < 2:
            status = protocol.setdefault("statusModule", {})
            status["overallStatus"] = (
                "TERMINATED" if status.get("overallStatus") != "TERMINATED" else "COMPLETED"
            )
        elif i % 5 < 4:
            module = protocol.setdefault("descriptionModule", {})
            summary = module.get("briefSummary", "")
            module["briefSummary"] = summary + " Amended: enrolment extended."
        else:
            protocol["identificationModule"]["nctId"] = f"NCT{top + 1 + i:08d}"
    return studies


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.update`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.update", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--index", type=Path, default=Path("models/index"), help="index to copy (%(default)s)"
    )
    parser.add_argument(
        "--registry", type=Path, help="registry download the studies come from (see above)"
    )
    parser.add_argument(
        "--work", type=Path, help="scratch folder, emptied first (default: a temporary one)"
    )
    parser.add_argument(
        "--changed", type=int, default=1000, help="studies changed (%(default)s; at most all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def default_registry() -> Path:
    """The registry download ``make serve`` would build from."""
    data = Path(os.environ.get("RECOMMENDER_DATA") or "../shared/data")
    sample = Path("data/sample/ctg-studies-sample.json.zip")
    for registry in (data / "ctg-studies.json.zip", sample):
        if registry.exists():
            return registry
    raise SystemExit(f"no registry download at {data} or data/sample: give --registry")


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    args.registry = args.registry or default_registry()
    if args.work is None:
        with tempfile.TemporaryDirectory(prefix="bench-update-") as folder:
            args.work = Path(folder)
            update_copy(args)
    else:
        update_copy(args)


def update_copy(args: argparse.Namespace) -> None:
    """Update a copy of ``args.index`` in ``args.work`` and print what it did."""
    if args.work.exists():
        shutil.rmtree(args.work)
    source = args.work / "changes"
    source.mkdir(parents=True)
    studies = changed_studies(args.registry, args.changed, args.seed)
    for study in studies:
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
        (source / f"{nct_id}.json").write_text(json.dumps(study))
    served = args.work / "index"
    shutil.copytree(TrialIndex.load(args.index, verify=False).path, served)
    started = time.perf_counter()
    summary = update_index(served, [source], n_jobs=-1)
    total = time.perf_counter() - started
    meta = TrialIndex.load(served).meta
    linked = set(meta["linked_from_previous"])
    print(f"update of {len(studies):,} studies: {total:.1f} s; stages {summary.seconds}")
    print(f"neighbour lists: {summary.neighbours}")
    print("linked from the previous version: " + ", ".join(sorted(linked)))
    print("written anew: " + ", ".join(sorted(set(meta["files"]) - linked)) + ", meta.json")


if __name__ == "__main__":
    main()
