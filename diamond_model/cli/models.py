"""Model versions and retraining: retrain, unlock, models, promote, rollback, market, compare."""

from __future__ import annotations

import argparse
import sys

from diamond_model.cli.common import (
    EXIT_NO_MODEL,
    EXIT_OK,
    metrics_line,
    open_pipeline,
    print_outcome,
)
from diamond_model.enums import RunStatus
from diamond_model.settings import Settings


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = open_pipeline(settings)
    outcome = pipeline.retrain(trigger="cli", wait_seconds=args.wait, force=args.force)
    print_outcome(outcome)
    if outcome.status is RunStatus.SKIPPED:
        print("(`retrain --force` trains anyway)")
    return EXIT_OK


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> int:
    print(open_pipeline(settings).unlock())
    return EXIT_OK


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    versions = open_pipeline(settings).registry.versions()
    if not versions:
        print("no models yet; run `init` or `retrain`")
        return EXIT_OK
    print(
        f"{'':2}{'version':>7}  {'created (UTC)':19}  {'status':9}  {'rows':>6}  metrics (held out)"
    )
    for v in versions:
        mark = "* " if v.is_champion else "  "
        kept = "" if v.servable else f"  (not servable: {v.unservable_reason})"
        print(
            f"{mark}{v.version:>7}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.status:9}  "
            f"{v.train_rows:>6}  {metrics_line(v.metrics)}{kept}"
        )
    print("* = champion (serving)")
    return EXIT_OK


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    open_pipeline(settings).registry.promote(
        args.version, "promoted by hand", args.override, by=args.by
    )
    print(f"version {args.version} is now the champion")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    version = open_pipeline(settings).registry.rollback(by=args.by)
    print(f"rolled back: version {version} is now the champion")
    return EXIT_OK


def cmd_market(args: argparse.Namespace, settings: Settings) -> int:
    champion = open_pipeline(settings).champion()
    if champion is None:
        print("error: no model is trained yet", file=sys.stderr)
        return EXIT_NO_MODEL
    version, model = champion
    print(f"market index of model v{version} (quotes use {model.market.latest_label}):")
    print(model.market.frame().round(2).to_string(index=False))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.learning.evaluation import compare_models, summarise

    appraisals = open_pipeline(settings).store.appraisals()
    folds = compare_models(appraisals, n_splits=args.folds, n_repeats=args.repeats)
    print(summarise(folds).to_string())
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the models commands to the parser."""
    retrain = commands.add_parser("retrain", help="train a candidate; promote it if not worse")
    retrain.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for a running retrain"
    )
    retrain.add_argument("--force", action="store_true", help="train even if no data changed")
    retrain.set_defaults(handler=cmd_retrain)
    commands.add_parser(
        "unlock", help="clear a retraining lease left by a crashed process"
    ).set_defaults(handler=cmd_unlock)
    commands.add_parser("models", help="list model versions and the champion").set_defaults(
        handler=cmd_models
    )
    promote = commands.add_parser("promote", help="make a stored version the champion")
    promote.add_argument("version", type=int)
    promote.add_argument(
        "--override",
        default="",
        metavar="REASON",
        help="serve a version the gate refused; the reason is recorded",
    )
    promote.add_argument("--by", default="cli", help="who promotes it (recorded)")
    promote.set_defaults(handler=cmd_promote)
    rollback = commands.add_parser("rollback", help="return to the previous champion")
    rollback.add_argument("--by", default="cli", help="who rolls back (recorded)")
    rollback.set_defaults(handler=cmd_rollback)
    commands.add_parser("market", help="print the serving model's market index").set_defaults(
        handler=cmd_market
    )
    compare = commands.add_parser("compare", help="cross-validate the candidate models")
    compare.add_argument("--folds", type=int, default=5)
    compare.add_argument("--repeats", type=int, default=1)
    compare.set_defaults(handler=cmd_compare)
