"""Appraisal batches and files: ingest, withdraw, restore, batches, predict, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diamond_model.cli.common import (
    EXIT_INPUT,
    EXIT_NO_MODEL,
    EXIT_OK,
    open_pipeline,
    print_findings,
    print_outcome,
)
from diamond_model.data.reading import neutralise_formulas
from diamond_model.learning.loop import LearningLoop
from diamond_model.pricing.quote import read_and_price
from diamond_model.settings import Settings
from diamond_model.storage.atomic import write_atomically


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file at {path}", file=sys.stderr)
        return EXIT_INPUT
    pipeline = open_pipeline(settings)
    preview = pipeline.preview(path.read_bytes(), path.name, sheet=args.sheet)
    for sentence in preview.sentences():
        print(sentence)
    if args.dry_run:
        print_findings(preview.result.rejections, "rejected")
        print_findings(preview.result.notes, "note")
        return EXIT_OK
    submission = pipeline.submit(
        preview,
        args.by,
        retrain=False if args.no_retrain else None,
        keep_duplicates=args.keep_duplicates,
    )
    if not submission.already_stored:
        print_findings(preview.result.rejections, "rejected")
        print_findings(preview.result.notes, "note")
    for sentence in submission.sentences():
        print(sentence)
    if submission.outcome is not None:
        print_outcome(submission.outcome)
    return EXIT_OK


def cmd_withdraw(args: argparse.Namespace, settings: Settings, withdrawn: bool = True) -> int:
    pipeline = open_pipeline(settings)
    for batch_id in args.batch:
        batch, retraining = pipeline.set_withdrawn(
            batch_id,
            withdrawn,
            note=getattr(args, "note", ""),
            retrain=False if args.no_retrain else None,
            by=args.by,
        )
        verb = "withdrawn (kept for the record, no longer used)" if withdrawn else "restored"
        print(f"batch {batch.id} ('{batch.filename}', {batch.rows_accepted:,} appraisals) {verb}")
        if retraining.outcome is not None:
            print_outcome(retraining.outcome)
        else:
            print(retraining.note)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """`restore 3 4` restores withdrawn batches; `restore backup.zip` restores a backup."""
    targets: list[str] = args.targets
    if all(t.isdigit() for t in targets):
        clash = [t for t in targets if Path(t).exists()]
        if clash:
            print(
                f"error: '{clash[0]}' is both a batch number and a file; write ./{clash[0]} "
                "for the file",
                file=sys.stderr,
            )
            return EXIT_INPUT
        args.batch = [int(t) for t in targets]
        return cmd_withdraw(args, settings, withdrawn=False)
    if len(targets) != 1:
        print("error: give one backup file, or batch numbers", file=sys.stderr)
        return EXIT_INPUT
    from diamond_model.storage.backup import restore

    for line in restore(LearningLoop.from_settings(settings).store, Path(targets[0])):
        print(line)
    return EXIT_OK


def cmd_batches(args: argparse.Namespace, settings: Settings) -> int:
    batches = open_pipeline(settings).store.batches()
    if batches.empty:
        print("no batches stored yet")
        return EXIT_OK
    print(f"{'batch':>5}  {'uploaded (UTC)':16}  {'stored':>7}  {'rejected':>8}  state      file")
    for row in batches.itertuples(index=False):
        state = "withdrawn" if row.withdrawn else "active"
        print(
            f"{row.id:>5}  {row.uploaded_at:%Y-%m-%d %H:%M}  {row.rows_accepted:>7,}  "
            f"{row.rows_rejected:>8,}  {state:9}  {row.filename}"
        )
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = open_pipeline(settings)
    champion = pipeline.champion()
    if champion is None:
        print("error: no model is trained yet; run `init` or `retrain` first", file=sys.stderr)
        return EXIT_NO_MODEL
    version, model = champion
    priced, read_as = read_and_price(
        model, Path(args.input).read_bytes(), settings.interval_level, args.sheet
    )
    for note in read_as:
        print(note)
    text = neutralise_formulas(priced).to_csv(index=False, float_format="%.2f")
    write_atomically(Path(args.output), text.encode(), overwrite=True)
    n_errors = int((priced["error"] != "").sum())
    print(
        f"priced {len(priced) - n_errors} of {len(priced)} rows with model v{version} "
        f"({100 * settings.interval_level:g}% ranges, market level {model.market.latest_label})"
        f" -> {args.output}"
    )
    if n_errors:
        print(f"{n_errors} rows could not be priced; see the 'error' column")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.storage.backup import export_csv

    for path in export_csv(open_pipeline(settings).store, Path(args.directory), args.force):
        print(f"wrote {path}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the data commands to the parser."""
    ingest = commands.add_parser(
        "ingest", help="validate and store an appraisal file (CSV, .xlsx or .ods)"
    )
    ingest.add_argument(
        "file",
        help="CSV or workbook with carat,cut,color,clarity,price "
        "(+ depth,table,x,y,z,appraised_on; Italian names too)",
    )
    ingest.add_argument("--sheet", help="the workbook's sheet to read (default: the first)")
    ingest.add_argument("--no-retrain", action="store_true", help="store only; do not retrain")
    ingest.add_argument("--dry-run", action="store_true", help="preview only; store nothing")
    ingest.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="store rows identical to stored appraisals as further stones",
    )
    ingest.add_argument("--by", default="cli", help="who uploads the batch (recorded)")
    ingest.set_defaults(handler=cmd_ingest)
    withdraw = commands.add_parser("withdraw", help="stop using a batch (kept for the record)")
    withdraw.add_argument("batch", type=int, nargs="+")
    withdraw.add_argument("--note", default="", help="why (recorded)")
    withdraw.add_argument("--no-retrain", action="store_true")
    withdraw.add_argument("--by", default="cli", help="who withdraws it (recorded)")
    withdraw.set_defaults(handler=cmd_withdraw)
    restore = commands.add_parser(
        "restore", help="use withdrawn batches again (numbers), or restore a backup (a file)"
    )
    restore.add_argument("targets", nargs="+", metavar="BATCH|FILE")
    restore.add_argument("--no-retrain", action="store_true")
    restore.add_argument("--by", default="cli", help="who restores it (recorded)")
    restore.set_defaults(handler=cmd_restore)
    commands.add_parser("batches", help="list stored batches").set_defaults(handler=cmd_batches)
    predict = commands.add_parser("predict", help="price every row of a CSV or workbook")
    predict.add_argument(
        "input", help="CSV, .xlsx or .ods with at least carat, cut, color, clarity"
    )
    predict.add_argument("--sheet", help="the workbook's sheet to read (default: the first)")
    predict.add_argument("-o", "--output", required=True, help="where to write the priced CSV")
    predict.set_defaults(handler=cmd_predict)
    export = commands.add_parser("export", help="write appraisals.csv and rejected.csv")
    export.add_argument("directory")
    export.add_argument("--force", action="store_true", help="replace existing files")
    export.set_defaults(handler=cmd_export)
