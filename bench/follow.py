"""A server following its index under load: no failed request while an update is swapped in.

Serves a copy of an index (hard links, so the original is never touched) with
``recommender serve`` as a person starts it (no admin token, the default change check),
sends requests without pause from an asyncio + httpx client — plain lookups
(``GET /similar/{id}``), filtered lookups (an exact search) and free-text queries
(``POST /similar``) for random trials — and, after a few seconds, runs
``recommender update`` on the served path with ``--changed`` studies (new trials, made
from the index's own records). It prints how long the update took, how long after it
the first new trial was served, and, for the requests sent before, during and after
the swap, how many there were, how many failed (a status other than 200, or a
connection error) and their p50 and p99 latency::

    python -m bench.follow --index models/index
    python -m bench.follow --index models/index --workers 2 --changed 100 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from api.server import ServerProcess
from recommender.cli import EXIT_OK, main
from recommender.core import draft_record
from recommender.index import TrialIndex

Request = tuple[str, str, dict | None]


@dataclass
class Sent:
    """The requests sent: when each was answered, how long it took, what came back."""

    at: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.follow", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--index", type=Path, default=Path("models/index"), help="index to copy (%(default)s)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (%(default)s)")
    parser.add_argument("--changed", type=int, default=1, help="new studies (%(default)s)")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load first")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after")
    parser.add_argument("--seed", type=int, default=0, help="which trials are asked for")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def served_copy(index: Path, work: Path) -> Path:
    """``work/models/index``: a link to a hard-linked copy of ``index``'s version."""
    version = TrialIndex.load(index, verify=False).path
    copy = work / "models" / ".index.versions" / version.name
    copy.mkdir(parents=True)
    for path in version.iterdir():
        try:
            os.link(path, copy / path.name)
        except OSError:  # another file system: a copy
            shutil.copy2(path, copy / path.name)
    (work / "models" / "index").symlink_to(Path(".index.versions") / version.name)
    return work / "models" / "index"


def new_studies(index: TrialIndex, n: int, rng: random.Random) -> list[dict]:
    """``n`` studies that are not in the index: records of it under new ids."""
    top = int(str(index.ids[-1])[3:])
    studies = []
    for i in range(n):
        record = index.records[rng.randrange(len(index))]
        protocol = {
            "identificationModule": {
                "nctId": f"NCT{top + 1 + i:08d}",
                "briefTitle": record.display_title.text,
            },
            "descriptionModule": {"briefSummary": record.brief_summary},
            "conditionsModule": {"conditions": list(record.conditions)},
        }
        studies.append({"protocolSection": protocol})
    return studies


def sample_requests(index: TrialIndex, n: int, rng: random.Random) -> list[Request]:
    requests: list[Request] = []
    for _ in range(n):
        position = rng.randrange(len(index))
        nct_id = index.ids[position]
        requests.append(("GET", f"/similar/{nct_id}?k=10", None))
        requests.append(("GET", f"/similar/{nct_id}?k=10&status=RECRUITING", None))
        title = index.records[position].display_title.text
        if index.vectorize(draft_record(), text=title).nnz:  # else a 422: no known word
            requests.append(("POST", "/similar", {"text": title, "k": 10}))
    return requests


def load(url: str, requests: Sequence[Request], concurrency: int, stop: threading.Event) -> Sent:
    """Send ``requests`` round and round until ``stop``; every answer recorded."""
    sent = Sent()

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while not stop.is_set():
            method, path, body = requests[i % len(requests)]
            i += concurrency
            started = time.perf_counter()
            try:
                status = (await client.request(method, path, json=body)).status_code
                problem = None if status == 200 else f"{method} {path}: {status}"
            except httpx.HTTPError as exc:
                problem = f"{method} {path}: {exc!r}"
            now = time.perf_counter()
            sent.at.append(now)
            sent.seconds.append(now - started)
            sent.ok.append(problem is None)
            if problem:
                sent.problems.append(problem)

    async def run() -> None:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            await asyncio.gather(*(worker(client, i) for i in range(concurrency)))

    asyncio.run(run())
    return sent


def wait_until_served(url: str, nct_id: str, since: float, limit: float = 300) -> float:
    """perf_counter time when ``GET /similar/{nct_id}`` first answers 200."""
    with httpx.Client(base_url=url, timeout=60) as http:
        while http.get(f"/similar/{nct_id}").status_code != 200:
            if time.perf_counter() - since > limit:
                raise SystemExit(f"{nct_id} not served {limit:.0f} s after the update")
            time.sleep(0.05)
    return time.perf_counter()


def summary(sent: Sent, start: float, stop: float) -> dict:
    """Requests answered between ``start`` and ``stop`` (perf_counter seconds)."""
    at = np.asarray(sent.at)
    chosen = (at >= start) & (at < stop)
    seconds = np.asarray(sent.seconds)[chosen] * 1000
    return {
        "requests": int(chosen.sum()),
        "failed": int((~np.asarray(sent.ok, dtype=bool)[chosen]).sum()),
        "p50_ms": round(float(np.percentile(seconds, 50)), 1) if len(seconds) else None,
        "p99_ms": round(float(np.percentile(seconds, 99)), 1) if len(seconds) else None,
    }


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-follow-"))
    served = served_copy(args.index, work)
    index = TrialIndex.load(served, verify=False)
    requests = sample_requests(index, 300, rng)
    studies = new_studies(index, args.changed, rng)
    source = work / "changes.jsonl"  # one study a line, as `build` and `update` read
    source.write_text("".join(json.dumps(s) + "\n" for s in studies))
    first_new = studies[0]["protocolSection"]["identificationModule"]["nctId"]
    del index

    with ServerProcess(served, workers=args.workers, startup_timeout=300) as server:
        stop = threading.Event()
        results: list[Sent] = []
        sender = threading.Thread(
            target=lambda: results.append(load(server.url, requests, args.concurrency, stop))
        )
        began = time.perf_counter()
        sender.start()
        try:
            time.sleep(args.before)
            update_started = time.perf_counter()
            update = ["update", "--index", str(served), "--source", str(source), "--quiet"]
            with contextlib.redirect_stdout(io.StringIO()):  # its summary: not ours
                if main(update) != EXIT_OK:
                    raise SystemExit("recommender update failed")
            updated = time.perf_counter()
            followed = wait_until_served(server.url, first_new, updated)
            time.sleep(args.after)
        finally:
            stop.set()
            sender.join()
        ended = time.perf_counter()
        loads = re.findall(r"loaded and verified in ([0-9.]+) s", server.log())
    sent = results[0]
    figures = {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "changed": args.changed,
        "update_s": round(updated - update_started, 2),
        "served_after_update_s": round(followed - updated, 2),
        "load_and_verify_s": [float(seconds) for seconds in loads],
        "before the update": summary(sent, began, update_started),
        "during the update and the swap": summary(sent, update_started, followed),
        "after the swap": summary(sent, followed, ended),
        "all": summary(sent, began, ended),
        "problems": sent.problems[:10],
    }
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def main_bench(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    figures = run(args)
    print(
        f"update of {figures['changed']:,} studies: {figures['update_s']} s; the first new "
        f"trial served {figures['served_after_update_s']} s after it "
        f"({figures['workers']} worker(s), {figures['concurrency']} connections); the new "
        f"version loaded and verified in {', '.join(map(str, figures['load_and_verify_s']))} s"
    )
    print(f"{'requests':<34}{'sent':>8}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name in ("before the update", "during the update and the swap", "after the swap", "all"):
        row = figures[name]
        print(f"{name:<34}{row['requests']:>8}{row['failed']:>8}{row['p50_ms']!s:>9}"
              f"{row['p99_ms']!s:>9}")  # fmt: skip
    for problem in figures["problems"]:
        print(f"  failed: {problem}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if figures["all"]["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main_bench())
