"""The ``recommender`` command: build an index, ask it for similar trials, serve it.

Exit codes: 0 success, 2 bad usage or bad input (a malformed id, a missing source,
an unusable index), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from recommender.build import DEFAULT_K, BuildSummary, build_index
from recommender.defaults import DEFAULT_RESULTS
from recommender.evaluate import LabelFormatError
from recommender.index import DamagedIndexError, NotInIndexError, TrialIndex
from recommender.ingest import ReadLimits, SourceError
from recommender.records import DRAFT_ID, InvalidNctIdError, TrialRecord

DEFAULT_INDEX = Path("models/index")
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """A problem with what the user gave us; reported without a traceback, exit 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _jobs(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("use a positive number of cores, or -1 for all")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recommender",
        description="Similar-clinical-trial recommendations from ClinicalTrials.gov records.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        "-k", type=_positive_int, default=DEFAULT_K, help="neighbours stored per trial"
    )
    build.add_argument("--jobs", type=_jobs, default=-1, help="cores to use (-1: all)")
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
        help="run on a Dask cluster (e.g. tcp://10.0.0.5:8786) instead of local cores",
    )
    build.add_argument(
        "--if-changed",
        action="store_true",
        help="do nothing when the index at --out was built from the same sources (sizes, "
        "SHA-256) with the same parameters; rebuild, saying why, otherwise",
    )

    similar = commands.add_parser("similar", help="trials most like a trial or a text")
    similar.add_argument("nct_id", nargs="?", help="an indexed trial, e.g. NCT05940610")
    similar.add_argument("--text", help="free text of a trial that is not registered instead")
    similar.add_argument(
        "-k", type=_positive_int, default=DEFAULT_RESULTS, help="results (%(default)s)"
    )
    similar.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    similar.add_argument("--json", action="store_true", help="print JSON")
    similar.add_argument("--why", action="store_true", help="show the terms behind each score")

    serve = commands.add_parser("serve", help="serve the index over HTTP")
    serve.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive_int, default=1)
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from ORIGIN (e.g. https://example.org, or *) call the API from a "
        "browser; repeat for several (default: none, no CORS headers)",
    )
    serve.add_argument(
        "--no-request-log",
        action="store_true",
        help="no JSON line per request on stdout",
    )
    _add_server_limits(serve)
    _add_evaluation_parsers(commands)
    _add_freshness_parsers(commands)
    _add_export_parser(commands)
    return parser


def _add_read_limits(build: argparse.ArgumentParser) -> None:
    from recommender.ingest.limits import (
        DEFAULT_MAX_FILE_BYTES,
        DEFAULT_MAX_TEXT_CHARS,
        format_size,
        parse_size,
    )

    build.add_argument(
        "--max-file-size",
        type=_checked(parse_size),
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="SIZE",
        help="skip, unread, a study file, zip member (unpacked) or JSON line larger than "
        f"this, e.g. 16M, 500k, 1G ({format_size(DEFAULT_MAX_FILE_BYTES)})",
    )
    build.add_argument(
        "--max-text-chars",
        type=_positive_int,
        default=DEFAULT_MAX_TEXT_CHARS,
        metavar="N",
        help="cut a longer text field (summary, description, ...) to this (%(default)s)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    handlers = {"build": run_build, "similar": run_similar, "serve": run_serve}
    handlers |= {"evaluate": run_evaluate, "labels": run_labels}
    handlers |= {"fetch": run_fetch, "update": run_update}
    handlers |= {"export": run_export}
    try:
        return handlers[args.command](args)
    except (
        BadInput,
        InvalidNctIdError,
        NotInIndexError,
        DamagedIndexError,
        SourceError,
        LabelFormatError,
        FileExistsError,  # --out names a folder that is not an index
    ) as exc:
        print(f"recommender {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"recommender {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILURE


def run_build(args: argparse.Namespace) -> int:
    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    method = "exact" if args.exact else "pruned"
    limits = ReadLimits(args.max_file_size, args.max_text_chars)
    if args.if_changed:
        from recommender.freshness_check import check_index

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
        log=log,
        scheduler=args.scheduler,
        neighbour_method=method,
        limits=limits,
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


def run_similar(args: argparse.Namespace) -> int:
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _add_server_limits(serve: argparse.ArgumentParser) -> None:
    from api.protocol import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT

    limits = serve.add_argument_group("limits on clients (per worker)")
    limits.add_argument(
        "--header-timeout",
        type=_seconds,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="a request's headers must arrive within this time, else 408 and close (%(default)s)",
    )
    limits.add_argument(
        "--body-timeout",
        type=_seconds,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="its body within this time after the headers, else 408 and close (%(default)s)",
    )
    limits.add_argument(
        "--keep-alive",
        type=_positive_int,
        default=5,
        metavar="SECONDS",
        help="close a kept-alive connection idle this long between requests (%(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        default=500,
        metavar="N",
        help="open connections served at once; a request beyond them gets 503 (%(default)s)",
    )


def run_serve(args: argparse.Namespace) -> int:
    import functools
    import os

    import uvicorn

    from api.app import CORS_ENV, INDEX_ENV, REQUEST_LOG_ENV
    from api.launch import serve_log_config, use_tcp_nodelay_sockets
    from api.protocol import TimedH11Protocol

    TrialIndex.load(args.index)  # fail here, with a clear message, not in a worker
    # The app factory runs in each worker: its settings travel in the environment.
    # Absolute, not resolved: the served path is a symlink that a rebuild repoints,
    # and the workers must reload from it, not from the version it names today.
    os.environ[INDEX_ENV] = str(args.index.absolute())
    if args.cors_origin:
        os.environ[CORS_ENV] = ",".join(args.cors_origin)
    if args.no_request_log:
        os.environ[REQUEST_LOG_ENV] = "off"
    use_tcp_nodelay_sockets()
    protocol = functools.partial(
        TimedH11Protocol, header_timeout=args.header_timeout, body_timeout=args.body_timeout
    )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=protocol,  # type: ignore[arg-type]  # uvicorn calls it like a protocol class
        timeout_keep_alive=args.keep_alive,
        # The app logs one JSON line per request (api.telemetry) instead of uvicorn.
        access_log=False,
        log_config=serve_log_config(),
        # Uvicorn counts the connection asking too: with N open, the Nth is refused.
        limit_concurrency=args.max_connections + 1,
    )
    return EXIT_OK


# -- evaluation: `recommender evaluate` and `recommender labels` ------------------------


def _add_evaluation_parsers(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="ranking metrics of an index on a labels file or folder"
    )
    evaluate.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    evaluate.add_argument(
        "--labels",
        type=Path,
        required=True,
        help='JSON: {"NCTquery": ["NCTrelated", ...]} or {"NCTquery": {"NCTid": 0|1|2}}; '
        "or a folder of free-text queries in the TREC/BEIR layout (queries.jsonl with "
        '{"_id", "text"} lines, qrels.tsv with query-id, corpus-id, score 0|1|2)',
    )
    evaluate.add_argument("--k", default="1,5,10", help="cut-offs (%(default)s)")
    evaluate.add_argument(
        "--rerank",
        action="store_true",
        help="order only each query's judged candidates (graded labels only)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    labels = commands.add_parser(
        "labels", help="build the MeSH development label set (docs/evaluation.md)"
    )
    labels.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="registry file or folder, e.g. ../shared/data/AllPublicXML-2023-subset.zip",
    )
    labels.add_argument("--out", type=Path, required=True, help="labels JSON to write")
    labels.add_argument("--max-queries", type=_positive_int, default=500)


def run_evaluate(args: argparse.Namespace) -> int:
    from recommender.evaluate import (
        IndexRanker,
        evaluate,
        evaluate_text,
        format_table,
        load_labels,
        load_text_queries,
        parse_ks,
    )

    try:
        ks = parse_ks(args.k)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if args.labels.is_dir():
        if args.rerank:
            raise BadInput(
                f"--rerank needs graded judgements of indexed query trials; {args.labels} "
                "holds free-text queries, which are always ranked over the whole index"
            )
        queries = load_text_queries(args.labels)
        if queries.ignored_judgements:
            print(
                f"recommender evaluate: {queries.ignored_judgements:,} qrels lines of "
                "query ids not in queries.jsonl ignored",
                file=sys.stderr,
            )
        result = evaluate_text(IndexRanker(TrialIndex.load(args.index)), queries, ks)
    else:
        labels = load_labels(args.labels)
        if args.rerank and not labels.graded:
            raise BadInput(f"--rerank needs graded judgements; {args.labels} is a related list")
        ranker = IndexRanker(TrialIndex.load(args.index))
        result = evaluate(ranker, labels, ks, rerank=args.rerank)
    print(json.dumps(result.to_json(), indent=1) if args.json else format_table(result, ks))
    return EXIT_OK


def run_labels(args: argparse.Namespace) -> int:
    from recommender.index import describe_source
    from recommender.ingest import read_records
    from recommender.labels import MeshRule, build_dev_labels, meta_path, write_labels

    records, _ = read_records(args.source)
    built = build_dev_labels(records, MeshRule(max_queries=args.max_queries))
    path = write_labels(built.judgements, args.out)
    meta = built.meta(source={"sources": [describe_source(s) for s in args.source]})
    meta_path(path).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: {built.counts['queries']:,} queries, {built.counts['judgements']:,} judgements")
    print(f"{meta_path(path)}: the rule and counts")
    return EXIT_OK


# -- freshness: `recommender fetch` and `recommender update` ----------------------------


def _checked(parse):
    """An argparse type from a parser that raises ValueError (exit 2 with its message)."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _page_size(text: str) -> int:
    from recommender.fetch import MAX_PAGE_SIZE

    value = int(text)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"must be 1..{MAX_PAGE_SIZE}, got {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"must be a share between 0 and 1, got {value}")
    return value


def _add_freshness_parsers(commands: argparse._SubParsersAction) -> None:
    from recommender.fetch import DEFAULT_BASE_URL, DEFAULT_PAGE_SIZE, check_base_url, parse_day

    fetch = commands.add_parser("fetch", help="download studies from the registry's API v2")
    fetch.add_argument("--out", type=Path, required=True, help="download folder (resumable)")
    fetch.add_argument("--query.cond", dest="cond", metavar="TEXT", help="conditions searched")
    fetch.add_argument("--query.term", dest="term", metavar="TEXT", help="other terms searched")
    fetch.add_argument(
        "--updated-since",
        type=_checked(parse_day),
        metavar="YYYY-MM-DD",
        help="only studies whose last update was posted on or after that day",
    )
    fetch.add_argument("--max", type=_positive_int, metavar="N", help="stop after N studies")
    fetch.add_argument(
        "--page-size",
        type=_checked(_page_size),
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help="studies per request and page file, at most 1000 (%(default)s)",
    )
    fetch.add_argument("--base-url", type=_checked(check_base_url), default=DEFAULT_BASE_URL)
    fetch.add_argument(
        "--rate",
        type=_checked(float),
        default=50.0,
        metavar="PER_MINUTE",
        help="requests per minute at most (%(default)s; 0: no limit)",
    )
    fetch.add_argument("--timeout", type=_checked(float), default=60.0, metavar="SECONDS")
    fetch.add_argument("--retries", type=int, default=5, help="retries per request (%(default)s)")
    fetch.add_argument("--restart", action="store_true", help="discard a started download")
    fetch.add_argument("--quiet", action="store_true", help="no progress lines")

    update = commands.add_parser("update", help="add new and changed studies to an index")
    update.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    update.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="registry file or folder, e.g. a `recommender fetch` folder",
    )
    update.add_argument(
        "--snapshot",
        action="store_true",
        help="the sources hold the whole registry: remove studies absent from them",
    )
    update.add_argument(
        "--max-removed",
        type=_checked(_share),
        default=0.05,
        metavar="SHARE",
        help="refuse a --snapshot that removes more than this share of the index",
    )
    update.add_argument("--out", type=Path, help="write the result here instead of in place")
    update.add_argument("--jobs", type=_jobs, default=-1, help="cores to use (-1: all)")
    update.add_argument(
        "--max-changed",
        type=_checked(_share),
        default=0.10,
        metavar="SHARE",
        help="advise a rebuild above this share of new/rewritten studies",
    )
    update.add_argument(
        "--max-unseen",
        type=_checked(_share),
        default=0.05,
        metavar="SHARE",
        help="advise a rebuild above this extra share of unknown words",
    )
    update.add_argument("--quiet", action="store_true", help="no progress")


def run_fetch(args: argparse.Namespace) -> int:
    from recommender.fetch import (
        FetchError,
        FetchQuery,
        FetchUsageError,
        RegistryClient,
        fetch_studies,
        format_fetch_summary,
    )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    try:
        query = FetchQuery(args.cond, args.term, args.updated_since, args.max, args.page_size)
        with RegistryClient(
            args.base_url,
            timeout=args.timeout,
            retries=args.retries,
            requests_per_minute=args.rate,
            log=log,
        ) as client:
            summary = fetch_studies(args.out, query, client, restart=args.restart, log=log)
    except FetchUsageError as exc:
        raise BadInput(str(exc)) from None
    except FetchError as exc:
        print(
            f"recommender fetch: error: {exc}; the pages so far are kept in {args.out}: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    print(format_fetch_summary(summary))
    return EXIT_OK


def run_update(args: argparse.Namespace) -> int:
    from recommender.update import DriftThresholds, UpdateInputError, update_index

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    try:
        summary = update_index(
            args.index,
            args.source,
            out=args.out,
            snapshot=args.snapshot,
            max_removed_share=args.max_removed,
            thresholds=DriftThresholds(args.max_changed, args.max_unseen),
            n_jobs=args.jobs,
            progress=not args.quiet,
            log=log,
        )
    except UpdateInputError as exc:
        raise BadInput(str(exc)) from None
    print(summary.format())
    return EXIT_OK


# -- `recommender export`: every trial's related list as CSV or JSON lines --------------


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    from recommender.export import FORMATS

    export = commands.add_parser(
        "export", help="write every trial's related list (CSV or JSON lines) for a database"
    )
    export.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    export.add_argument(
        "--format", choices=FORMATS, default="csv", help="rows as %(choices)s (%(default)s)"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="file to write (replaced whole), or - for stdout",
    )
    export.add_argument(
        "--k", type=_positive_int, help="related trials per trial (default: all the index stores)"
    )


def run_export(args: argparse.Namespace) -> int:
    import os

    from recommender.export import ExportError, export_related

    try:
        summary = export_related(TrialIndex.load(args.index), args.out, args.format, k=args.k)
    except ExportError as exc:
        raise BadInput(str(exc)) from None
    except BrokenPipeError:  # `--out - | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if args.out != "-":
        print(
            f"{summary.rows:,} rows ({summary.trials:,} trials, up to {summary.k} each) "
            f"written to {args.out}",
            file=sys.stderr,
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
