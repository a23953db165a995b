"""Latency and throughput of the REST service over loopback.

Starts ``recommender serve`` on a free loopback port (with 1, then 2 worker
processes), sends a bounded number of requests from an asyncio + httpx load
generator, and prints p50/p99 latency and requests per second for:

* ``GET /health``: the floor, what the HTTP stack and this load generator cost alone;
* ``GET /similar/{id}?k=10``: random indexed trials, the precomputed-lookup path measured;
* ``GET /?q={id}``: the HTML page of the same trials (the same lookup, rendered);
* ``POST /similar``: the title of a random trial as text, the on-the-fly exact search.

Then it prints, per round, the service's targets: ``/similar/{id}`` throughput as a
share of the ``/health`` floor on the same server (at least 50%), its p99 (at most
20 ms), and how many times slower the page is than the JSON route (at most 2x).
``--rounds N`` measures the endpoints N times back to back: on a shared machine only
figures taken side by side compare.

Usage::

    python -m bench.api_latency --index models/index --requests 2000 --concurrency 16
    python -m bench.api_latency --index models/index --generator wrk --seconds 10
    python -m bench.api_latency --index models/index --generator wrk --workers 1 \
        --rounds 3 --seconds 5 --skip-post

``--generator wrk`` replays the same sampled requests with Debian's ``wrk`` for a
fixed time: a C client, so it takes less CPU from the server than the asyncio one.
The load generator runs on the same machine as the server and competes with it for
the cores; the ``/health`` row shows what that costs. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

from api.server import ServerProcess
from recommender.index import TrialIndex

# (method, path, JSON body or None); sampled once per run from random trials.
Request = tuple[str, str, dict | None]
HEALTH = "GET /health (floor)"
SIMILAR = "GET /similar/{id}"
PAGE = "GET /?q={id} (page)"
POST = "POST /similar (on the fly)"
K = 10
# The service's targets (docs/api.md, "Measuring latency").
FLOOR_SHARE_TARGET, P99_TARGET_MS, PAGE_RATIO_TARGET = 0.5, 20.0, 2.0


@dataclass
class Result:
    """One endpoint measured under one server configuration."""

    workers: int
    endpoint: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    round: int = 1


def sample_requests(index_dir: Path, n: int, seed: int) -> dict[str, list[Request]]:
    """``n`` requests per endpoint, for trials drawn at random (with a fixed seed)."""
    index = TrialIndex.load(index_dir, verify=False)
    rng = random.Random(seed)
    positions = [rng.randrange(len(index)) for _ in range(n)]
    titles = [index.records[p].title or "trial" for p in positions[: min(n, 500)]]
    return {
        "GET /health (floor)": [("GET", "/health", None)] * n,
        SIMILAR: [("GET", f"/similar/{index.ids[p]}?k={K}", None) for p in positions],
        PAGE: [("GET", f"/?q={index.ids[p]}&k={K}", None) for p in positions],
        POST: [("POST", "/similar", {"text": titles[i % len(titles)], "k": K}) for i in range(n)],
    }


async def run_load(
    url: str, requests: Sequence[Request], concurrency: int, max_seconds: float
) -> tuple[list[float], int, float]:
    """Send ``requests`` with ``concurrency`` connections; (latencies s, errors, wall s)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for method, path, body in queue:  # a shared iterator: each request sent once
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


def measure(
    url: str, workers: int, endpoint: str, requests: Sequence[Request], args: argparse.Namespace
) -> Result:
    warmup = requests[: max(1, len(requests) // 20)]
    asyncio.run(run_load(url, warmup, args.concurrency, args.max_seconds))
    latencies, errors, wall = asyncio.run(
        run_load(url, requests, args.concurrency, args.max_seconds)
    )
    ms = np.asarray(latencies) * 1000
    return Result(
        workers=workers,
        endpoint=endpoint,
        requests=len(latencies),
        errors=errors,
        p50_ms=round(float(np.percentile(ms, 50)), 2) if len(ms) else float("nan"),
        p99_ms=round(float(np.percentile(ms, 99)), 2) if len(ms) else float("nan"),
        requests_per_s=round(len(latencies) / wall, 1) if wall else float("nan"),
    )


# wrk's Lua side: replay the sampled requests in turn, report percentiles as JSON.
WRK_SCRIPT = r"""
local plan = {}
for line in io.lines(os.getenv("BENCH_PLAN")) do
  local method, path, body = line:match("^(%u+)\t([^\t]*)\t?(.*)$")
  plan[#plan + 1] = {method, path, body}
end
local n = 0
request = function()
  n = n + 1
  local r = plan[(n % #plan) + 1]
  if r[3] ~= "" then
    return wrk.format(r[1], r[2], {["Content-Type"] = "application/json"}, r[3])
  end
  return wrk.format(r[1], r[2])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"p50_us\": %d, \"p99_us\": %d, \"requests\": %d, \"errors\": %d, "
    .. "\"duration_us\": %d}\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration))
end
"""


def measure_wrk(
    url: str, workers: int, endpoint: str, requests: Sequence[Request], args: argparse.Namespace
) -> Result:
    """The same requests replayed by ``wrk`` for ``--seconds`` (a C client: less CPU)."""
    with tempfile.TemporaryDirectory() as tmp:
        script, plan = Path(tmp) / "plan.lua", Path(tmp) / "plan.tsv"
        script.write_text(WRK_SCRIPT)
        lines = (f"{m}\t{p}\t{json.dumps(b) if b else ''}\n" for m, p, b in requests)
        plan.write_text("".join(lines))
        command = [
            "wrk", "-t", "1", "-c", str(args.concurrency), "-d", f"{args.seconds}s",
            "--timeout", "10s", "-s", str(script), url,
        ]  # fmt: skip
        env = {**os.environ, "BENCH_PLAN": str(plan)}
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, env=env, timeout=args.seconds + 60
        ).stdout
    facts = json.loads(out[out.index("BENCH ") + len("BENCH ") :].splitlines()[0])
    return Result(
        workers=workers,
        endpoint=endpoint,
        requests=facts["requests"],
        errors=facts["errors"],
        p50_ms=round(facts["p50_us"] / 1000, 2),
        p99_ms=round(facts["p99_us"] / 1000, 2),
        requests_per_s=round(facts["requests"] / (facts["duration_us"] / 1e6), 1),
    )


def format_table(results: Sequence[Result]) -> str:
    header = f"{'workers':>7}{'round':>6}  {'endpoint':<28}{'requests':>9}{'errors':>7}"
    header += f"{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}"
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(
            f"{r.workers:>7}{r.round:>6}  {r.endpoint:<28}{r.requests:>9}{r.errors:>7}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.requests_per_s:>9.1f}"
        )
    return "\n".join(rows)


def format_targets(results: Sequence[Result]) -> str:
    """Per worker count and round: the lookup against the floor, its p99, the page."""
    by = {(r.workers, r.round, r.endpoint): r for r in results}
    lines = []
    for workers, round_ in sorted({(r.workers, r.round) for r in results}):
        health, similar = by.get((workers, round_, HEALTH)), by.get((workers, round_, SIMILAR))
        if health is None or similar is None or not health.requests_per_s:
            continue
        share = similar.requests_per_s / health.requests_per_s
        line = (
            f"{workers} worker(s), round {round_}: /similar/{{id}} at {share:.0%} of the "
            f"/health floor (target >= {FLOOR_SHARE_TARGET:.0%}), p99 {similar.p99_ms:.1f} ms "
            f"(target <= {P99_TARGET_MS:g})"
        )
        page = by.get((workers, round_, PAGE))
        if page is not None and page.requests_per_s:
            ratio = similar.requests_per_s / page.requests_per_s
            line += (
                f"; the page takes {ratio:.2f}x the JSON route (target <= {PAGE_RATIO_TARGET:g}x)"
            )
        lines.append(line)
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench.api_latency`` (docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--index", type=Path, default=Path("models/index"), help="index to serve (%(default)s)"
    )
    parser.add_argument("--requests", type=int, default=1000, help="per endpoint and setup")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at once")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="server worker counts to try"
    )
    parser.add_argument("--max-seconds", type=float, default=120, help="cap per measurement")
    parser.add_argument("--seed", type=int, default=0, help="which random trials are asked for")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--generator",
        choices=["httpx", "wrk"],
        default="httpx",
        help="httpx: asyncio, exactly --requests requests (default); wrk: Debian's wrk, "
        "for --seconds, cycling through --requests sampled requests",
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of one wrk run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure the endpoints this many times in turn"
    )
    parser.add_argument("--skip-post", action="store_true", help="leave out POST /similar")
    parser.add_argument(
        "--no-request-log",
        action="store_true",
        help="serve without the per-request log line (to measure what it costs)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = make_parser()
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds, *args.workers) < 1:
        parser.error("--requests, --concurrency, --rounds and --workers must be at least 1")
    if args.generator == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install -y wrk)")
    return args


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    plan = sample_requests(args.index, args.requests, args.seed)
    if args.skip_post:
        del plan[POST]
    results: list[Result] = []
    run = measure_wrk if args.generator == "wrk" else measure
    serve_args = ["--no-request-log"] if args.no_request_log else []
    for workers in args.workers:
        with ServerProcess(args.index, workers=workers, serve_args=serve_args) as server:
            log(f"server with {workers} worker(s) at {server.url}")
            for round_ in range(1, args.rounds + 1):
                for endpoint, requests in plan.items():
                    result = run(server.url, workers, endpoint, requests, args)
                    result.round = round_
                    results.append(result)
                    log(f"  round {round_}, {endpoint}: done")
    log("")
    studies = len(TrialIndex.load(args.index, verify=False))
    volume = f"{args.seconds} s" if args.generator == "wrk" else f"{args.requests} requests"
    log(
        f"index: {args.index} ({studies:,} studies); {args.generator} load generator, "
        f"{volume} per row, concurrency {args.concurrency}"
    )
    log(format_table(results))
    log("")
    log(format_targets(results))
    log(
        "baseline: GET /health is the floor (HTTP + load generator only); "
        "POST /similar is the exact on-the-fly search the lookup avoids"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
