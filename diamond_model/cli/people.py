"""People who sign in to expert mode: people add, list, disable."""

from __future__ import annotations

import argparse
import sys

from diamond_model.cli.common import EXIT_OK, open_pipeline
from diamond_model.serving.people import People, Role
from diamond_model.settings import Settings


def cmd_people(args: argparse.Namespace, settings: Settings) -> int:
    people = People(open_pipeline(settings).store)
    if args.action == "add":
        code = sys.stdin.readline().strip() if args.code_from_stdin else None
        made = people.add(args.name, Role(args.role), code)
        if code is None:
            print(f"{args.name} ({args.role}) can sign in with this code (shown once): {made}")
        else:
            print(f"{args.name} ({args.role}) can sign in with the code given")
    elif args.action == "disable":
        people.disable(args.name)
        print(f"{args.name} can no longer sign in")
    else:
        for person in people.all():
            state = "disabled" if person.disabled_at else "active"
            print(f"{person.name:30} {person.role:7} {state:8} since {person.created_at:%Y-%m-%d}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the people commands to the parser."""
    people = commands.add_parser("people", help="who may sign in to the dashboard's expert mode")
    actions = people.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a person; their code is shown once")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.EXPERT.value)
    add.add_argument(
        "--code-from-stdin", action="store_true", help="read the code from standard input"
    )
    disable = actions.add_parser("disable", help="stop someone signing in (kept in the audit)")
    disable.add_argument("name")
    actions.add_parser("list", help="everyone, with role and state")
    people.set_defaults(handler=cmd_people)
