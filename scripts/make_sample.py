"""Make the small real-data sample committed under ``data/sample/``.

The sample lets the README's first command work on a machine without the full
corpus. It is a deterministic selection from the shared registry extract:

* every study whose text mentions liver failure (the reference case's neighbourhood,
  so the sample still has something to get wrong),
* a seeded random choice of other studies, most with full fields,
* the six reference trials of ``seed-cluster/`` and ``expected_related.json``.

The studies are written exactly as the registry's bulk download has them: one API v2
JSON file per study in a zip.

Usage: ``python scripts/make_sample.py [--data ../shared/data] [--out data/sample]``
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import zipfile
from pathlib import Path

LIVER = re.compile(r"liver failure|hepatic failure|acute.on.chronic|\bACLF\b", re.IGNORECASE)


def _topic_text(study: dict) -> str:
    """Title, conditions and keywords: where a study says what it is about."""
    protocol = study.get("protocolSection", {})
    conditions = protocol.get("conditionsModule", {})
    parts = [protocol.get("identificationModule", {}).get("briefTitle", "")]
    parts += conditions.get("conditions", []) + conditions.get("keywords", [])
    return " | ".join(parts)


def select(names: list[str], archive: zipfile.ZipFile, n_rich: int, n_plain: int, seed: int):
    rng = random.Random(seed)
    liver, rich, plain = [], [], []
    for name in names:
        study = json.loads(archive.read(name))
        if LIVER.search(_topic_text(study)):
            liver.append(name)
        elif "conditionsModule" in study.get("protocolSection", {}):
            rich.append(name)
        else:
            plain.append(name)
    chosen = set(liver)
    chosen |= set(rng.sample(rich, min(n_rich, len(rich))))
    chosen |= set(rng.sample(plain, min(n_plain, len(plain))))
    return sorted(chosen), len(liver)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--rich", type=int, default=1800, help="studies with full fields")
    parser.add_argument("--plain", type=int, default=800, help="studies with texts only")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    source = args.data / "ctg-studies.json.zip"
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "ctg-studies-sample.json.zip"
    with zipfile.ZipFile(source) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".json"))
        chosen, n_liver = select(names, archive, args.rich, args.plain, args.seed)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for name in chosen:
                # A fixed timestamp keeps the zip byte-identical from run to run.
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, archive.read(name), compresslevel=9)

    seeds = args.out / "seed-cluster"
    seeds.mkdir(exist_ok=True)
    for path in sorted((args.data / "seed-cluster").glob("*.json")):
        shutil.copyfile(path, seeds / path.name)
    print(
        f"{target}: {len(chosen):,} studies ({n_liver} about liver failure), "
        f"{target.stat().st_size / 1e6:.1f} MB; {seeds}: seed cluster"
    )


if __name__ == "__main__":
    main()
