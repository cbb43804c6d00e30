"""Client keys for the API: keys create, list, revoke, usage."""

from __future__ import annotations

import argparse
from datetime import datetime

from diamond_model.cli.common import (
    EXIT_OK,
    open_pipeline,
)
from diamond_model.settings import Settings


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.serving.keys import KeyStore, parse_scopes

    keys = KeyStore(open_pipeline(settings).store)
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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the keys commands to the parser."""
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
    keys.set_defaults(handler=cmd_keys)
