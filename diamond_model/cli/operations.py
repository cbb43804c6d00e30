"""Running the store: init (upgrade and seed), backup, the monthly report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from diamond_model.cli.common import (
    EXIT_OK,
    open_pipeline,
)
from diamond_model.learning.loop import LearningLoop
from diamond_model.serving.access import ensure_access_code
from diamond_model.serving.people import People, Role
from diamond_model.settings import Settings

FIRST_PERSON = "owner"  # whoever installs holds the installation's code


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = LearningLoop.from_settings(settings)
    for message in pipeline.initialise():
        print(message)
    code, created = ensure_access_code(settings)
    if created:
        print(f"expert access code (shown once; also in {settings.access_code_file}): {code}")
    people = People(pipeline.store)
    if people.count() == 0:
        people.add(FIRST_PERSON, Role.OWNER, code, shortest=1)
        print(
            f"'{FIRST_PERSON}' signs in with that code (the owner: everything, client keys "
            "included); add everyone else by name: `python -m diamond_model people add NAME`"
        )
    version = pipeline.registry.champion_version()
    print(
        f"database ready: {pipeline.store.count_appraisals():,} appraisals, "
        f"champion {'v' + str(version) if version else 'none'}"
    )
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.storage.backup import backup

    summary = backup(open_pipeline(settings).store, Path(args.file), args.force)
    counts = cast(dict[str, int], summary["counts"])
    print(
        f"wrote {args.file}: {counts['appraisals']:,} appraisals, {counts['batches']:,} batches, "
        f"{counts['model_versions']} model versions, champion v{summary['champion']}"
    )
    return EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.reports.monthly_report import monthly_report, report_pdf
    from diamond_model.reports.quote_sheet import Shop
    from diamond_model.storage.atomic import write_atomically

    pipeline = open_pipeline(settings)
    report = monthly_report(
        pipeline.registry,
        pipeline.store,
        settings.interval_level,
        settings.price_per_1000_stones,
        args.month,
    )
    if report.answers is not None:
        for answer in (report.answers.good, report.answers.better, report.answers.changed):
            print(f"{answer.question} {answer.verdict}")
            for sentence in answer.sentences:
                print(f"  - {sentence}")
    print(
        f"API clients in {report.title}: {report.stones:,} stones, ${report.income:,.2f} "
        f"from {len(report.clients)} client(s); {report.refused:,} requests refused for a limit"
    )
    shop = Shop.of(settings)
    output = Path(args.output or f"report-{report.month}.pdf")
    write_atomically(output, report_pdf(report, shop), overwrite=True)
    print(f"-> {output}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operations commands to the parser."""
    report = commands.add_parser(
        "report", help="the owner's month on one page (PDF): the model and the API clients"
    )
    report.add_argument("--month", required=True, help="e.g. 2026-11 (UTC)")
    report.add_argument("-o", "--output", default=None, help="default report-MONTH.pdf")
    report.set_defaults(handler=cmd_report)
    commands.add_parser(
        "init", help="upgrade the schema; seed data and a first model if empty"
    ).set_defaults(handler=cmd_init)
    backup = commands.add_parser("backup", help="write the whole store to one file (zip)")
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    backup.set_defaults(handler=cmd_backup)
