"""Command line: `python -m diamond_model COMMAND` (init, ingest, retrain, predict, models, ...).

Exit codes: 0 done (an idempotent no-op included), 1 bad input (the message says what and how to
fix it), 3 a retrain is already running, 4 no model trained yet.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from diamond_model.cli import data, keys, models, operations, people, review
from diamond_model.cli.common import EXIT_BUSY, EXIT_INPUT
from diamond_model.data.reading import UnusableFileError
from diamond_model.learning.outcomes import RetrainInProgressError
from diamond_model.learning.review import CorrectionError
from diamond_model.learning.training import NotEnoughDataError
from diamond_model.learning.versions import RegistryError
from diamond_model.serving.keys import ClientKeyError
from diamond_model.serving.people import PersonError
from diamond_model.settings import Settings, get_settings
from diamond_model.storage.atomic import TargetError
from diamond_model.storage.backup import BackupError
from diamond_model.storage.store import AlreadyIngestedError, FileTooLargeError, UnknownBatchError

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diamond_model",
        description="Diamond appraisal engine. Settings come from DIAMOND_* environment variables.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (operations, data, review, models, keys, people):
        group.register(commands)
    return parser


def _stop(signum: int, _: FrameType | None) -> None:
    """SIGTERM ends the command like Ctrl-C does: a retrain records itself and lets go."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _stop)
    settings = get_settings()
    try:
        handler: Handler = args.handler
        return handler(args, settings)
    except (
        UnusableFileError,
        FileTooLargeError,
        AlreadyIngestedError,
        UnknownBatchError,
        RegistryError,
        NotEnoughDataError,
        TargetError,
        BackupError,
        ClientKeyError,
        CorrectionError,
        PersonError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except FileNotFoundError as error:
        print(f"error: no such file: {error.filename}", file=sys.stderr)
        return EXIT_INPUT
    except RetrainInProgressError as error:
        print(f"busy: {error}", file=sys.stderr)
        return EXIT_BUSY
