"""Running the store: init (upgrade and seed), backup."""

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

FIRST_PERSON = "expert"


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = LearningLoop.from_settings(settings)
    for message in pipeline.initialise():
        print(message)
    code, created = ensure_access_code(settings)
    if created:
        print(f"expert access code (shown once; also in {settings.access_code_file}): {code}")
    people = People(pipeline.store)
    if people.count() == 0:
        people.add(FIRST_PERSON, Role.EXPERT, code, shortest=1)
        print(
            f"'{FIRST_PERSON}' signs in to expert mode with that code; "
            "add everyone else by name: `python -m diamond_model people add NAME`"
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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operations commands to the parser."""
    commands.add_parser(
        "init", help="upgrade the schema; seed data and a first model if empty"
    ).set_defaults(handler=cmd_init)
    backup = commands.add_parser("backup", help="write the whole store to one file (zip)")
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    backup.set_defaults(handler=cmd_backup)
