"""Command line: `python -m diamond_model COMMAND` (init, ingest, retrain, predict, models, ...).

Exit codes: 0 done (an idempotent no-op included), 1 bad input (the message says what and how to
fix it), 3 a retrain is already running, 4 no model trained yet.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType

from diamond_model.data.reading import UnusableFileError, neutralise_formulas
from diamond_model.learning.loop import Pipeline
from diamond_model.learning.outcomes import RetrainInProgressError, RetrainOutcome
from diamond_model.learning.registry import RegistryError
from diamond_model.learning.training import NotEnoughDataError
from diamond_model.pricing.quote import price_table
from diamond_model.serving.access import ensure_access_code
from diamond_model.serving.keys import ClientKeyError
from diamond_model.settings import Settings, get_settings
from diamond_model.storage.atomic import TargetError, write_atomically
from diamond_model.storage.backup import BackupError
from diamond_model.storage.store import AlreadyIngestedError, FileTooLargeError, UnknownBatchError

EXIT_OK, EXIT_INPUT, EXIT_BUSY, EXIT_NO_MODEL = 0, 1, 3, 4


def _pipeline(settings: Settings) -> Pipeline:
    pipeline = Pipeline.from_settings(settings)
    pipeline.store.create_schema()
    return pipeline


def _metrics_line(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return "-"
    return (
        f"MAPE {metrics['mape']:.2f}%  MAE ${metrics['mae']:,.0f}  RMSE ${metrics['rmse']:,.0f}  "
        f"R² {metrics['r2']:.4f}  coverage {metrics.get('coverage') or float('nan'):.1f}%"
    )


def _print_outcome(outcome: RetrainOutcome) -> None:
    for run in (outcome, *outcome.follow_ups):
        print(f"run {run.run_id}: {run.status}")
        for comparison in run.comparisons:
            print(f"  on {comparison.name} (n={comparison.n}):")
            print(f"    candidate  {_metrics_line(comparison.candidate)}")
            print(f"    champion   {_metrics_line(comparison.champion)}")
        if not run.comparisons and run.candidate_metrics:
            print(f"  candidate  {_metrics_line(run.candidate_metrics)}")
        print(f"  {run.reason}")
    print(outcome.last.headline)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = Pipeline.from_settings(settings)
    for message in pipeline.initialise():
        print(message)
    code, created = ensure_access_code(settings)
    if created:
        print(f"expert access code (shown once; also in {settings.access_code_file}): {code}")
    version = pipeline.registry.champion_version()
    print(
        f"database ready: {pipeline.store.count_appraisals():,} appraisals, "
        f"champion {'v' + str(version) if version else 'none'}"
    )
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file at {path}", file=sys.stderr)
        return EXIT_INPUT
    pipeline = _pipeline(settings)
    preview = pipeline.preview(path.read_bytes(), path.name)
    for sentence in preview.sentences():
        print(sentence)
    if args.dry_run:
        _print_findings(preview.result.rejections, "rejected")
        _print_findings(preview.result.notes, "set aside")
        return EXIT_OK
    submission = pipeline.submit(
        preview,
        args.by,
        retrain=False if args.no_retrain else None,
        keep_duplicates=args.keep_duplicates,
    )
    if not submission.already_stored:
        _print_findings(preview.result.rejections, "rejected")
        _print_findings(preview.result.notes, "set aside")
    for sentence in submission.sentences():
        print(sentence)
    if submission.outcome is not None:
        _print_outcome(submission.outcome)
    return EXIT_OK


def _print_findings(findings: object, kind: str) -> None:
    for row in findings.itertuples(index=False):  # type: ignore[attr-defined]
        where = f" [{row.column}]" if row.column else ""
        print(f"  line {row.line}{where} {kind}: {row.reason}")


def cmd_withdraw(args: argparse.Namespace, settings: Settings, withdrawn: bool = True) -> int:
    pipeline = _pipeline(settings)
    for batch_id in args.batch:
        batch, retraining = pipeline.set_withdrawn(
            batch_id,
            withdrawn,
            note=getattr(args, "note", ""),
            retrain=False if args.no_retrain else None,
        )
        verb = "withdrawn (kept for the record, no longer used)" if withdrawn else "restored"
        print(f"batch {batch.id} ('{batch.filename}', {batch.rows_accepted:,} appraisals) {verb}")
        if retraining.outcome is not None:
            _print_outcome(retraining.outcome)
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

    for line in restore(Pipeline.from_settings(settings).store, Path(targets[0])):
        print(line)
    return EXIT_OK


def cmd_batches(args: argparse.Namespace, settings: Settings) -> int:
    batches = _pipeline(settings).store.batches()
    if batches.empty:
        print("no batches stored yet")
        return EXIT_OK
    print(f"{'batch':>5}  {'uploaded (UTC)':16}  {'stored':>7}  {'rejected':>8}  state      file")
    for row in batches.itertuples(index=False):
        state = "withdrawn" if row.withdrawn_at is not None else "active"
        print(
            f"{row.id:>5}  {row.uploaded_at:%Y-%m-%d %H:%M}  {row.rows_accepted:>7,}  "
            f"{row.rows_rejected:>8,}  {state:9}  {row.filename}"
        )
    return EXIT_OK


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    outcome = pipeline.retrain(trigger="cli", wait_seconds=args.wait, force=args.force)
    _print_outcome(outcome)
    return EXIT_OK


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> int:
    print(_pipeline(settings).unlock())
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    champion = pipeline.champion()
    if champion is None:
        print("error: no model is trained yet; run `init` or `retrain` first", file=sys.stderr)
        return EXIT_NO_MODEL
    version, model = champion
    priced = price_table(model, Path(args.input).read_bytes(), settings.interval_level)
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


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    versions = _pipeline(settings).registry.versions()
    if not versions:
        print("no models yet; run `init` or `retrain`")
        return EXIT_OK
    print(
        f"{'':2}{'version':>7}  {'created (UTC)':19}  {'status':9}  {'rows':>6}  metrics (held out)"
    )
    for v in versions:
        mark = "* " if v.is_champion else "  "
        kept = "" if v.servable else "  (earlier release: kept for the record)"
        print(
            f"{mark}{v.version:>7}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.status:9}  "
            f"{v.train_rows:>6}  {_metrics_line(v.metrics)}{kept}"
        )
    print("* = champion (serving)")
    return EXIT_OK


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    _pipeline(settings).registry.promote(args.version)
    print(f"version {args.version} is now the champion")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    version = _pipeline(settings).registry.rollback()
    print(f"rolled back: version {version} is now the champion")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.storage.backup import export_csv

    for path in export_csv(_pipeline(settings).store, Path(args.directory), args.force):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.storage.backup import backup

    summary = backup(_pipeline(settings).store, Path(args.file), args.force)
    counts = summary["counts"]
    print(
        f"wrote {args.file}: {counts['appraisals']:,} appraisals, {counts['batches']:,} batches, "
        f"{counts['model_versions']} model versions, champion v{summary['champion']}"
    )
    return EXIT_OK


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.serving.keys import KeyStore, parse_scopes

    keys = KeyStore(_pipeline(settings).store)
    if args.action == "create":
        key, client = keys.create(
            args.name, parse_scopes(args.scopes), args.stones_per_day, args.requests_per_minute
        )
        print(
            f"key '{client.name}' ({', '.join(sorted(client.scopes))}) created. It is shown once:"
        )
        print(key)
        return EXIT_OK
    if args.action == "revoke":
        client = keys.revoke(args.name)
        print(f"key '{client.name}' revoked at {client.revoked_at:%Y-%m-%d %H:%M} UTC")
        return EXIT_OK
    if args.action == "usage":
        since = datetime.fromisoformat(args.since) if args.since else None
        usage = keys.usage(args.name, since)
        if usage.empty:
            print(
                f"no usage recorded for '{args.name}'" + (f" since {args.since}" if since else "")
            )
        else:
            print(usage.to_string(index=False))
            totals = usage[["requests", "stones", "errors"]].sum()
            print(
                f"total: {totals['requests']:,} requests, {totals['stones']:,} stones, "
                f"{totals['errors']:,} errors"
            )
        return EXIT_OK
    listed = keys.list()
    if not listed:
        print("no keys yet: `keys create NAME --scopes quote`")
    for client in listed:
        limits = ", ".join(
            f"{value:,} {what}"
            for value, what in (
                (client.stones_per_day, "stones/day"),
                (client.requests_per_minute, "requests/min"),
            )
            if value
        )
        state = f"revoked {client.revoked_at:%Y-%m-%d}" if client.revoked_at else "active"
        used = (
            f"last used {client.last_used_at:%Y-%m-%d %H:%M}"
            if client.last_used_at
            else "never used"
        )
        print(
            f"{client.name:20} dk_{client.prefix}_…  {' '.join(sorted(client.scopes)):35} "
            f"{limits or 'no limits':30} {state:18} {used}"
        )
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.learning.evaluation import compare_models, summarise

    appraisals = _pipeline(settings).store.appraisals()
    folds = compare_models(appraisals, n_splits=args.folds, n_repeats=args.repeats)
    print(summarise(folds).to_string())
    return EXIT_OK


def cmd_market(args: argparse.Namespace, settings: Settings) -> int:
    champion = _pipeline(settings).champion()
    if champion is None:
        print("error: no model is trained yet", file=sys.stderr)
        return EXIT_NO_MODEL
    version, model = champion
    print(f"market index of model v{version} (quotes use {model.market.latest_label}):")
    print(model.market.frame().round(2).to_string(index=False))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diamond_model",
        description="Diamond appraisal engine. Settings come from DIAMOND_* environment variables.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("init", help="upgrade the schema; seed data and a first model if empty")
    ingest = commands.add_parser("ingest", help="validate and store an appraisal CSV")
    ingest.add_argument(
        "file", help="CSV with carat,cut,color,clarity,price (+ depth,table,x,y,z,appraised_on)"
    )
    ingest.add_argument("--no-retrain", action="store_true", help="store only; do not retrain")
    ingest.add_argument("--dry-run", action="store_true", help="preview only; store nothing")
    ingest.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="store rows identical to stored appraisals as further stones",
    )
    ingest.add_argument("--by", default="cli", help="who uploads the batch (recorded)")
    withdraw = commands.add_parser("withdraw", help="stop using a batch (kept for the record)")
    withdraw.add_argument("batch", type=int, nargs="+")
    withdraw.add_argument("--note", default="", help="why (recorded)")
    withdraw.add_argument("--no-retrain", action="store_true")
    restore = commands.add_parser(
        "restore", help="use withdrawn batches again (numbers), or restore a backup (a file)"
    )
    restore.add_argument("targets", nargs="+", metavar="BATCH|FILE")
    restore.add_argument("--no-retrain", action="store_true")
    commands.add_parser("batches", help="list stored batches")
    retrain = commands.add_parser("retrain", help="train a candidate; promote it if not worse")
    retrain.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for a running retrain"
    )
    retrain.add_argument("--force", action="store_true", help="train even if no data changed")
    commands.add_parser("unlock", help="clear a retraining lease left by a crashed process")
    predict = commands.add_parser("predict", help="price every row of a CSV")
    predict.add_argument("input", help="CSV with at least carat, cut, color, clarity")
    predict.add_argument("-o", "--output", required=True, help="where to write the priced CSV")
    commands.add_parser("models", help="list model versions and the champion")
    promote = commands.add_parser("promote", help="make a stored version the champion")
    promote.add_argument("version", type=int)
    commands.add_parser("rollback", help="return to the previous champion")
    commands.add_parser("market", help="print the serving model's market index")
    export = commands.add_parser("export", help="write appraisals.csv and rejected.csv")
    export.add_argument("directory")
    export.add_argument("--force", action="store_true", help="replace existing files")
    backup = commands.add_parser("backup", help="write the whole store to one file (zip)")
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    keys = commands.add_parser("keys", help="client keys for the API: create, list, revoke, usage")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_actions.add_parser("create", help="a new key (shown once)")
    create.add_argument("name")
    create.add_argument(
        "--scopes", nargs="+", default=["quote"], help="quote, data:write, models:write"
    )
    create.add_argument("--stones-per-day", type=int, default=None)
    create.add_argument("--requests-per-minute", type=int, default=None)
    key_actions.add_parser("list", help="every key, its scopes, limits and last use")
    revoke = key_actions.add_parser("revoke", help="stop a key working")
    revoke.add_argument("name")
    usage = key_actions.add_parser("usage", help="a key's usage per hour")
    usage.add_argument("name")
    usage.add_argument("--since", default=None, help="UTC date or time, e.g. 2026-11-01")
    compare = commands.add_parser("compare", help="cross-validate the candidate models")
    compare.add_argument("--folds", type=int, default=5)
    compare.add_argument("--repeats", type=int, default=1)
    return parser


HANDLERS = {
    "init": cmd_init,
    "ingest": cmd_ingest,
    "withdraw": cmd_withdraw,
    "restore": cmd_restore,
    "batches": cmd_batches,
    "retrain": cmd_retrain,
    "unlock": cmd_unlock,
    "predict": cmd_predict,
    "models": cmd_models,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "market": cmd_market,
    "export": cmd_export,
    "backup": cmd_backup,
    "keys": cmd_keys,
    "compare": cmd_compare,
}


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
        return HANDLERS[args.command](args, settings)
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
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except FileNotFoundError as error:
        print(f"error: no such file: {error.filename}", file=sys.stderr)
        return EXIT_INPUT
    except RetrainInProgressError as error:
        print(f"busy: {error}", file=sys.stderr)
        return EXIT_BUSY
