"""Time ``recommender update`` of N changed studies on a full index, and list what it rewrote.

Copies the index to ``--work`` (the original is not touched), writes N studies taken
from the registry download, changed as a day of the registry changes them (40% a new
status, 40% an amended summary, 20% new registrations), updates the copy with them
and prints the update's stages and which files of the new version are new and which
were hard-linked from the previous one::

    python bench/update.py --index /tmp/idx --registry ../shared/data/ctg-studies.json.zip \\
        --work /tmp/bench-update --changed 1000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
import zipfile
from pathlib import Path

from recommender.index import TrialIndex
from recommender.pipelines.update import update_index


def changed_studies(registry: Path, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    with zipfile.ZipFile(registry) as archive:
        names = sorted(name for name in archive.namelist() if name.endswith(".json"))
        studies = [json.loads(archive.read(name)) for name in rng.sample(names, n)]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--changed", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    source = args.work / "changes"
    source.mkdir(parents=True)
    for study in changed_studies(args.registry, args.changed, args.seed):
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
        (source / f"{nct_id}.json").write_text(json.dumps(study))
    served = args.work / "index"
    shutil.copytree(TrialIndex.load(args.index, verify=False).path, served)
    started = time.perf_counter()
    summary = update_index(served, [source], n_jobs=-1)
    total = time.perf_counter() - started
    meta = TrialIndex.load(served).meta
    linked = set(meta["linked_from_previous"])
    print(f"update of {args.changed:,} studies: {total:.1f} s; stages {summary.seconds}")
    print(f"neighbour lists: {summary.neighbours}")
    print("linked from the previous version: " + ", ".join(sorted(linked)))
    print("written anew: " + ", ".join(sorted(set(meta["files"]) - linked)) + ", meta.json")


if __name__ == "__main__":
    main()
