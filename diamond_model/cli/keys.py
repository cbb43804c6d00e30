"""Client keys for the API: keys create, list, change, revoke, usage, statement."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from diamond_model.cli.common import (
    EXIT_OK,
    open_pipeline,
)
from diamond_model.serving.business import limits, price_of
from diamond_model.serving.keys import ClientKey
from diamond_model.settings import Settings


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from diamond_model.serving.keys import KeyStore, parse_scopes

    keys = KeyStore(open_pipeline(settings).store)
    if args.action == "create":
        key, client = keys.create(
            args.name,
            parse_scopes(args.scopes),
            args.stones_per_day,
            args.requests_per_minute,
            args.price_per_1000,
        )
        print(
            f"key '{client.name}' ({', '.join(sorted(client.scopes))}) created. It is shown once:"
        )
        print(key)
        return EXIT_OK
    if args.action == "change":
        current = keys.get(args.name)
        client = keys.change(
            args.name,
            current.stones_per_day if args.stones_per_day is KEEP else args.stones_per_day,
            current.requests_per_minute
            if args.requests_per_minute is KEEP
            else args.requests_per_minute,
            current.price_per_1000 if args.price_per_1000 is KEEP else args.price_per_1000,
        )
        print(f"key '{client.name}': {terms(client, settings.price_per_1000_stones)}")
        return EXIT_OK
    if args.action == "statement":
        from diamond_model.reports.quote_sheet import Shop
        from diamond_model.reports.statement import statement_pdf
        from diamond_model.serving.business import statement
        from diamond_model.storage.atomic import write_atomically

        sheet = statement(keys, args.name, args.month, settings.price_per_1000_stones)
        print(
            f"{sheet.client}, {sheet.month}: {sheet.requests:,} requests, {sheet.stones:,} stones "
            f"at ${sheet.price_per_1000:,.2f} per 1,000 = ${sheet.amount:,.2f}"
        )
        shop = Shop.of(settings)
        for path, data in ((args.csv, sheet.csv), (args.pdf, lambda: statement_pdf(sheet, shop))):
            if path:
                write_atomically(Path(path), data(), overwrite=True)
                print(f"  -> {path}")
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
            totals = usage[["requests", "stones", "errors", "refused"]].sum()
            print(
                f"total: {totals['requests']:,} requests, {totals['stones']:,} stones, "
                f"{totals['errors']:,} errors, {totals['refused']:,} refused for a limit"
            )
        return EXIT_OK
    listed = keys.list()
    if not listed:
        print("no keys yet: `keys create NAME --scopes quote`")
    for client in listed:
        limits = terms(client, settings.price_per_1000_stones)
        state = f"revoked {client.revoked_at:%Y-%m-%d}" if client.revoked_at else "active"
        used = (
            f"last used {client.last_used_at:%Y-%m-%d %H:%M}"
            if client.last_used_at
            else "never used"
        )
        print(
            f"{client.name:20} dk_{client.prefix}_…  {' '.join(sorted(client.scopes)):35} "
            f"{limits:45} {state:18} {used}"
        )
    return EXIT_OK


KEEP = object()  # an option of `keys change` left out: that term stays as it is


def terms(client: ClientKey, default_price: float) -> str:
    """'5,000 stones/day, 60 requests/min, $20.00 per 1,000 stones (default)'."""
    set_ = limits(client, "stones/day", "requests/min")
    own = client.price_per_1000 is not None
    price = price_of(client, default_price)
    return ", ".join(
        [*(set_ or ["no limits"]), f"${price:,.2f} per 1,000 stones{'' if own else ' (default)'}"]
    )


def _limit(text: str) -> int | None:
    if text.strip().lower() in ("none", "no", "0"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number (or 'none')") from None


def _price(text: str) -> float | None:
    if text.strip().lower() == "default":
        return None
    try:
        return float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a price in dollars (or 'default')"
        ) from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the keys commands to the parser."""
    keys = commands.add_parser(
        "keys", help="client keys for the API: create, list, change, revoke, usage, statement"
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_actions.add_parser("create", help="a new key (shown once)")
    create.add_argument("name")
    create.add_argument(
        "--scopes", nargs="+", default=["quote"], help="quote, data:write, models:write"
    )
    create.add_argument("--stones-per-day", type=int, default=None)
    create.add_argument("--requests-per-minute", type=int, default=None)
    create.add_argument(
        "--price-per-1000",
        type=float,
        default=None,
        help="dollars per 1,000 stones (default: DIAMOND_PRICE_PER_1000_STONES)",
    )
    change = key_actions.add_parser("change", help="a key's limits or price (others kept)")
    change.add_argument("name")
    change.add_argument("--stones-per-day", type=_limit, default=KEEP, help="a number, or none")
    change.add_argument("--requests-per-minute", type=_limit, default=KEEP, help="or none")
    change.add_argument("--price-per-1000", type=_price, default=KEEP, help="dollars, or default")
    key_actions.add_parser("list", help="every key, its scopes, limits and last use")
    revoke = key_actions.add_parser("revoke", help="stop a key working")
    revoke.add_argument("name")
    usage = key_actions.add_parser("usage", help="a key's usage per hour")
    usage.add_argument("name")
    usage.add_argument("--since", default=None, help="UTC date or time, e.g. 2026-11-01")
    statement = key_actions.add_parser("statement", help="a client's month: stones, price, total")
    statement.add_argument("name")
    statement.add_argument("--month", required=True, help="e.g. 2026-11 (UTC)")
    statement.add_argument("--csv", default=None, help="write the statement as CSV here")
    statement.add_argument("--pdf", default=None, help="write the statement as PDF here")
    keys.set_defaults(handler=cmd_keys)
