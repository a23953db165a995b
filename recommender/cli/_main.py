"""The ``recommender`` command: one module per subcommand, each with ``add_parser`` and
``run``; this module puts them together.

Exit codes: 0 success, 2 bad usage or bad input (a malformed id, a missing source,
an unusable index), 3 the machine refused (a full disk, no permission, a read-only or
missing folder, a worker killed, memory run out), 4 another build or update is writing
the same index, 1 any other failure. Each is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recommender.cli import build, evaluate, export, fetch, labels, serve, similar, update
from recommender.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_ENVIRONMENT,
    EXIT_FAILURE,
    BadInput,
    environment_error,
)
from recommender.core import InvalidNctIdError
from recommender.core.version import __version__
from recommender.evaluation import LabelFormatError
from recommender.index import DamagedIndexError, NotInIndexError, WriterConflictError
from recommender.infra import WorkerDiedError
from recommender.ingest import SourceError

# In the order `recommender --help` lists them.
COMMANDS = {
    "build": build,
    "similar": similar,
    "serve": serve,
    "evaluate": evaluate,
    "labels": labels,
    "fetch": fetch,
    "update": update,
    "export": export,
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recommender",
        description="Similar-clinical-trial recommendations from ClinicalTrials.gov records.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
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
    except WriterConflictError as exc:
        print(f"recommender {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except (OSError, MemoryError, WorkerDiedError) as exc:
        # The machine, not the input: a traceback would say nothing more to act on.
        print(f"recommender {args.command}: error: {environment_error(exc)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print(f"recommender {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILURE
