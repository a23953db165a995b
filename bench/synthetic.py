"""A synthetic registry of any size with the real corpus's term statistics.

    python -m bench.synthetic --studies 600000 --out /tmp/synthetic-600k.jsonl

The first pass over the real corpus is written as it is (so the 114,697-study point
of a scaling curve is the real corpus). Every further study is a real one, picked at
random, with its free texts perturbed: each word is replaced, with probability
``--mix``, by a word drawn from the corpus's own word frequencies, and with
probability ``--novel`` by a new word, so the vocabulary keeps growing with size as
a real registry's does (Heaps' law) instead of saturating; a condition or
intervention list is swapped for another study's with probability ``--mix``. Topical
structure (which words go together) is kept, which is what the neighbour search's
cost depends on. Output: API v2 studies as JSON lines, readable by
``recommender build --source``.
"""

from __future__ import annotations

import argparse
import copy
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TEXT_FIELDS = (
    ("identificationModule", "briefTitle"),
    ("identificationModule", "officialTitle"),
    ("descriptionModule", "briefSummary"),
    ("descriptionModule", "detailedDescription"),
)
LIST_MODULES = ("conditionsModule", "armsInterventionsModule")


def read_studies(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".json"))
        return [json.loads(archive.read(n)) for n in names]


def word_pool(studies: list[dict], rng: np.random.Generator, size: int = 2_000_000) -> list[str]:
    """Words drawn from the corpus in proportion to their frequency."""
    words: list[str] = []
    for study in rng.choice(len(studies), size=min(len(studies), 20_000), replace=False):
        for module, field in TEXT_FIELDS:
            words.extend(studies[study]["protocolSection"].get(module, {}).get(field, "").split())
    return [words[i] for i in rng.integers(0, len(words), size=size)]


class Perturber:
    """Rewrites a study's texts as described in the module docstring."""

    def __init__(self, studies, rng, mix: float, novel: float) -> None:
        self.studies, self.rng, self.mix, self.novel = studies, rng, mix, novel
        self.pool = word_pool(studies, rng)
        self.next_novel = 0

    def text(self, value: str) -> str:
        words = value.split()
        if not words:
            return value
        draw = self.rng.random(len(words))
        for i in np.flatnonzero(draw < self.mix + self.novel):
            if draw[i] < self.novel:
                words[i] = f"syn{np.base_repr(self.next_novel, 36).lower()}"
                self.next_novel += 1
            else:
                words[i] = self.pool[self.rng.integers(len(self.pool))]
        return " ".join(words)

    def study(self, template: dict, nct_number: int) -> dict:
        study = copy.deepcopy(template)
        protocol = study["protocolSection"]
        protocol["identificationModule"]["nctId"] = f"NCT{nct_number:08d}"
        for module, field in TEXT_FIELDS:
            if field in protocol.get(module, {}):
                protocol[module][field] = self.text(protocol[module][field])
        for module in LIST_MODULES:
            if module in protocol and self.rng.random() < self.mix:
                donor = self.studies[self.rng.integers(len(self.studies))]["protocolSection"]
                if module in donor:
                    protocol[module] = copy.deepcopy(donor[module])
        return study


def generate(source: Path, n_studies: int, out: Path, *, mix: float, novel: float, seed: int):
    rng = np.random.default_rng(seed)
    studies = read_studies(source)
    perturber = Perturber(studies, rng, mix, novel)
    with open(out, "w", encoding="utf-8") as handle:
        for i in range(n_studies):
            if i < len(studies):
                study = studies[i]
            else:
                template = studies[rng.integers(len(studies))]
                # Ids from NCT90000000 up cannot collide with real ones for decades.
                study = perturber.study(template, 90_000_000 + i)
            handle.write(json.dumps(study, separators=(",", ":")) + "\n")
    return out


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.synthetic`` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.synthetic", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--studies", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=Path("../shared/data/ctg-studies.json.zip"))
    parser.add_argument("--mix", type=float, default=0.2)
    parser.add_argument("--novel", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    generate(args.source, args.studies, args.out, mix=args.mix, novel=args.novel, seed=args.seed)
    print(f"{args.out}: {args.studies:,} studies, {args.out.stat().st_size / 2**20:,.0f} MB")


if __name__ == "__main__":
    main()
