"""Held suspects and corrections: review, correct."""

from __future__ import annotations

import argparse

from diamond_model.cli.common import EXIT_OK, open_pipeline
from diamond_model.learning.review import CORRECTABLE, correct, held_appraisals
from diamond_model.settings import Settings


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    held = held_appraisals(open_pipeline(settings))
    if held.empty:
        print("no appraisals are held for review")
        return EXIT_OK
    print(f"{'id':>7}  {'batch':>5}  {'line':>5}  {'carat':>5}  grades         price")
    for row in held.itertuples(index=False):
        grades = f"{row.cut} {row.color} {row.clarity}"
        print(
            f"{row.id:>7}  {row.batch_id:>5}  {row.line:>5}  {row.carat:>5.2f}  {grades:13}  "
            f"${row.price:,.0f}"
        )
    print("correct one with `correct ID --price P --reason R`, or keep it with `--confirm`")
    return EXIT_OK


def cmd_correct(args: argparse.Namespace, settings: Settings) -> int:
    changes = {name: getattr(args, name) for name in CORRECTABLE if getattr(args, name) is not None}
    done = correct(
        open_pipeline(settings),
        args.appraisal,
        changes,
        by=args.by,
        reason=args.reason,
        confirm=args.confirm,
        retrain=False if args.no_retrain else None,
    )
    for sentence in done.sentences():
        print(sentence)
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the review commands to the parser."""
    commands.add_parser("review", help="list suspect prices held for review").set_defaults(
        handler=cmd_review
    )
    fix = commands.add_parser(
        "correct", help="correct a stored appraisal (or confirm a held one), with a reason"
    )
    fix.add_argument("appraisal", type=int, help="the appraisal's id (`review` lists them)")
    fix.add_argument("--price", type=float)
    fix.add_argument("--carat", type=float)
    fix.add_argument("--cut")
    fix.add_argument("--color")
    fix.add_argument("--clarity")
    fix.add_argument("--reason", required=True, help="why (recorded with the old values)")
    fix.add_argument("--confirm", action="store_true", help="the price is right as it is")
    fix.add_argument("--by", default="cli", help="who corrects it (recorded)")
    fix.add_argument("--no-retrain", action="store_true")
    fix.set_defaults(handler=cmd_correct)
