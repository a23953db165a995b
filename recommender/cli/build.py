"""``recommender build``: an index from registry downloads."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from recommender.cli._common import (
    EXIT_OK,
    BadInput,
    add_wait,
    checked,
    jobs,
    positive_int,
    stderr_log,
)
from recommender.core import DEFAULT_INDEX, STORED_NEIGHBOURS
from recommender.ingest import ReadLimits
from recommender.pipelines import BuildSummary, build_index


def add_parser(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser("build", help="build an index from registry downloads")
    build.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="registry file or folder (API v2 JSON zip/folder/JSONL/pages, legacy XML "
        "zip/folder); repeat for several, the last one wins for a trial in several",
    )
    build.add_argument("--out", type=Path, default=DEFAULT_INDEX, help="index folder (%(default)s)")
    build.add_argument(
        "-k", type=positive_int, default=STORED_NEIGHBOURS, help="neighbours stored per trial"
    )
    build.add_argument("--jobs", type=jobs, default=-1, help="cores to use (-1: all)")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.add_argument(
        "--exact",
        action="store_true",
        help="exhaustive neighbour search (slower; then `update` gives what a rebuild would)",
    )
    _add_read_limits(build)
    build.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster (e.g. tcp://10.0.0.5:8786) instead of local cores; "
        "needs the dask extra; checked before any source is read",
    )
    build.add_argument(
        "--if-changed",
        action="store_true",
        help="do nothing when the index at --out was built from the same sources (sizes, "
        "SHA-256) with the same parameters; rebuild, saying why, otherwise",
    )
    add_wait(build)


def _add_read_limits(build: argparse.ArgumentParser) -> None:
    """The limits that keep a damaged or hostile download from taking the machine."""
    from recommender.ingest.limits import (
        DEFAULT_MAX_FILE_BYTES,
        DEFAULT_MAX_TEXT_CHARS,
        format_size,
        parse_size,
    )

    build.add_argument(
        "--max-file-size",
        type=checked(parse_size),
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="SIZE",
        help="skip, unread, a study file, zip member (unpacked) or JSON line larger than "
        f"this, e.g. 16M, 500k, 1G ({format_size(DEFAULT_MAX_FILE_BYTES)})",
    )
    build.add_argument(
        "--max-text-chars",
        type=positive_int,
        default=DEFAULT_MAX_TEXT_CHARS,
        metavar="N",
        help="cut a longer text field (summary, description, ...) to this (%(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from recommender.pipelines import SchedulerError

    try:
        return _build(args)
    except SchedulerError as exc:
        raise BadInput(f"--scheduler {args.scheduler}: {exc}") from None


def _build(args: argparse.Namespace) -> int:
    method = "exact" if args.exact else "pruned"
    limits = ReadLimits(args.max_file_size, args.max_text_chars)
    if args.if_changed:
        from recommender.pipelines import check_index

        check = check_index(args.out, args.source, k=args.k, neighbour_method=method, limits=limits)
        if check.current:
            print(f"index at {args.out} is current (built {check.built_at}); nothing to do")
            return EXIT_OK
        print(f"building the index at {args.out}: {check.reason}", file=sys.stderr)
    summary = build_index(
        args.source,
        args.out,
        k=args.k,
        n_jobs=args.jobs,
        progress=not args.quiet,
        log=stderr_log(args.quiet),
        scheduler=args.scheduler,
        neighbour_method=method,
        limits=limits,
        wait=args.wait,
    )
    print(format_build_summary(summary))
    return EXIT_OK


def format_build_summary(summary: BuildSummary) -> str:
    report = summary.report
    lines = [f"index written to {summary.path}"]
    for source in report.sources:
        lines.append(
            f"  {source.path} ({source.format}): {source.read:,} studies read, "
            f"{source.skipped:,} skipped"
            + (f", {source.ignored:,} ignored (not studies)" if source.ignored else "")
        )
    lines.append(f"studies indexed: {summary.studies:,}")
    lines.append(f"duplicates replaced by a later source: {report.replaced:,}")
    lines.append(f"skipped: {len(report.skipped):,}")
    reasons = Counter(item.reason for item in report.skipped)
    for reason, count in reasons.most_common(10):
        example = next(i for i in report.skipped if i.reason == reason)
        lines.append(f"  {count:,} x {reason} (e.g. {example.source}: {example.item})")
    if report.truncated:
        first = report.truncated[0]
        lines.append(
            f"texts cut to {report.limits.max_text_chars:,} characters: "
            f"{len(report.truncated):,} studies (e.g. {first.source}: {first.reason})"
        )
    if report.ignored:
        names = ", ".join(item.item for item in report.ignored[:3])
        more = f" and {len(report.ignored) - 3:,} more" if len(report.ignored) > 3 else ""
        lines.append(f"ignored, not studies: {len(report.ignored):,} ({names}{more})")
    vocab = ", ".join(f"{name} {size:,}" for name, size in summary.vocabulary.items())
    lines.append(f"vocabulary: {vocab}; {summary.nonzeros:,} non-zeros")
    lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items()))
    return "\n".join(lines)
