"""Command line: `python -m diamond_model COMMAND` (init, ingest, retrain, predict, models, ...)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from diamond_model.access import ensure_access_code
from diamond_model.pipeline import Pipeline, RetrainInProgressError, RetrainOutcome
from diamond_model.quote import neutralise_formulas, price_table
from diamond_model.registry import RegistryError
from diamond_model.settings import Settings, get_settings
from diamond_model.store import AlreadyIngestedError, FileTooLargeError
from diamond_model.training import NotEnoughDataError
from diamond_model.validation import UnusableFileError

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
        f"R² {metrics['r2']:.4f}  coverage {metrics.get('coverage', float('nan')):.1f}%"
    )


def _print_outcome(outcome: RetrainOutcome) -> None:
    print(f"run {outcome.run_id}: {outcome.status}")
    for comparison in outcome.comparisons:
        print(f"  on {comparison.name} (n={comparison.n}):")
        print(f"    candidate  {_metrics_line(comparison.candidate)}")
        print(f"    champion   {_metrics_line(comparison.champion)}")
    if not outcome.comparisons and outcome.candidate_metrics:
        print(f"  candidate  {_metrics_line(outcome.candidate_metrics)}")
    print(f"  {outcome.reason}")


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
    report, outcome = pipeline.ingest(
        path.read_bytes(), path.name, args.by, retrain=False if args.no_retrain else None
    )
    print(
        f"batch {report.batch_id}: {report.rows_total} rows, {report.rows_accepted} accepted, "
        f"{report.rows_rejected} rejected"
    )
    if report.ignored_columns:
        print(f"ignored columns: {', '.join(report.ignored_columns)}")
    for row in report.rejections.itertuples(index=False):
        where = f" [{row.column}]" if row.column else ""
        print(f"  line {row.line}{where}: {row.reason}")
    if outcome is not None:
        _print_outcome(outcome)
    return EXIT_OK


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    outcome = pipeline.retrain(trigger="cli", wait_seconds=args.wait, force=args.force)
    _print_outcome(outcome)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = _pipeline(settings)
    champion = pipeline.cache().get()
    if champion is None:
        print("error: no model is trained yet; run `init` or `retrain` first", file=sys.stderr)
        return EXIT_NO_MODEL
    version, model = champion
    priced = price_table(model, Path(args.input).read_bytes(), settings.interval_level)
    neutralise_formulas(priced).to_csv(args.output, index=False, float_format="%.2f")
    n_errors = int((priced["error"] != "").sum())
    print(
        f"priced {len(priced) - n_errors} of {len(priced)} rows with model v{version} "
        f"({100 * settings.interval_level:g}% ranges) -> {args.output}"
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
        print(
            f"{mark}{v.version:>7}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.status:9}  "
            f"{v.train_rows:>6}  {_metrics_line(v.metrics)}"
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
    appraisals, rejected = _pipeline(settings).store.export(Path(args.directory))
    print(f"wrote {appraisals} and {rejected}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.evaluation import compare_models, summarise

    appraisals = _pipeline(settings).store.appraisals()
    folds = compare_models(appraisals, n_splits=args.folds, n_repeats=args.repeats)
    print(summarise(folds).to_string())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diamond_model",
        description="Diamond appraisal engine. Settings come from DIAMOND_* environment variables.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("init", help="create the schema; seed data and first model if empty")
    ingest = commands.add_parser("ingest", help="validate and store an appraisal CSV")
    ingest.add_argument("file", help="CSV with carat,cut,color,clarity,depth,table,price,x,y,z")
    ingest.add_argument("--no-retrain", action="store_true", help="store only; do not retrain")
    ingest.add_argument("--by", default="cli", help="who uploads the batch (recorded)")
    retrain = commands.add_parser("retrain", help="train a candidate; promote it if not worse")
    retrain.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for a running retrain"
    )
    retrain.add_argument("--force", action="store_true", help="train even if no data changed")
    predict = commands.add_parser("predict", help="price every row of a CSV")
    predict.add_argument("input", help="CSV with at least carat, cut, color, clarity")
    predict.add_argument("-o", "--output", required=True, help="where to write the priced CSV")
    commands.add_parser("models", help="list model versions and the champion")
    promote = commands.add_parser("promote", help="make a stored version the champion")
    promote.add_argument("version", type=int)
    commands.add_parser("rollback", help="return to the previous champion")
    export = commands.add_parser("export", help="write appraisals.csv and rejected.csv")
    export.add_argument("directory")
    compare = commands.add_parser("compare", help="cross-validate the candidate models")
    compare.add_argument("--folds", type=int, default=5)
    compare.add_argument("--repeats", type=int, default=1)
    return parser


HANDLERS = {
    "init": cmd_init,
    "ingest": cmd_ingest,
    "retrain": cmd_retrain,
    "predict": cmd_predict,
    "models": cmd_models,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "export": cmd_export,
    "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = get_settings()
    try:
        return HANDLERS[args.command](args, settings)
    except (
        UnusableFileError,
        FileTooLargeError,
        AlreadyIngestedError,
        RegistryError,
        NotEnoughDataError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except FileNotFoundError as error:
        print(f"error: no such file: {error.filename}", file=sys.stderr)
        return EXIT_INPUT
    except RetrainInProgressError as error:
        print(f"busy: {error}", file=sys.stderr)
        return EXIT_BUSY
