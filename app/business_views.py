"""The Business page's tables and texts, from `diamond_model.serving.business` (no Streamlit
here: the page lays them out, tests read them)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from diamond_model.enums import Scope
from diamond_model.serving.business import charge, income_by_month, limits, price_of, usage_by
from diamond_model.serving.keys import ClientKey, KeyStore

SCOPE_NAMES = {
    Scope.QUOTE: "price stones",
    Scope.DATA_READ: "read appraisals",
    Scope.DATA_WRITE: "upload appraisals",
    Scope.MODELS_WRITE: "retrain and promote",
    Scope.ADMIN: "everything",
}
FIRST_STONE = '{"carat": 0.5, "cut": "Ideal", "color": "E", "clarity": "VS1"}'


@dataclass(frozen=True)
class Month:
    """This month's business so far: stones, income, requests refused, clients that used it."""

    label: str
    stones: int
    income: float
    refused: int
    clients_active: int


def this_month(keys: KeyStore, default_price: float, today: date) -> Month:
    label = f"{today:%Y-%m}"
    monthly = income_by_month(keys, default_price)
    now = monthly.loc[monthly["month"] == label]
    counts = usage_by(keys, "month")
    counts = counts.loc[counts["month"] == label]
    return Month(
        label=f"{today:%B %Y}",
        stones=int(now["stones"].sum()),
        income=float(now["income"].sum()),
        refused=int(counts["refused"].sum()),
        clients_active=int((now["stones"] > 0).sum()),
    )


def limits_words(client: ClientKey) -> str:
    """'5,000 stones a day, 60 requests a minute', or 'no limits'."""
    return ", ".join(limits(client, "stones a day", "requests a minute")) or "no limits"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def clients(keys: KeyStore, default_price: float, today: date) -> pd.DataFrame:
    """One row per client key: what it may do, its limits and price, when it was last used, and
    this month's stones and income."""
    monthly = income_by_month(keys, default_price)
    now = monthly.loc[monthly["month"] == f"{today:%Y-%m}"].set_index("client")
    rows = []
    for client in keys.list():
        own = client.price_per_1000 is not None
        stones = int(now["stones"].get(client.name, 0))
        rows.append(
            {
                "Client": client.name,
                "State": "active" if client.active else f"revoked {client.revoked_at:%Y-%m-%d}",
                "May": ", ".join(SCOPE_NAMES.get(s, str(s)) for s in sorted(client.scopes)),
                "Limits": limits_words(client),
                "Price per 1,000 stones": f"${price_of(client, default_price):,.2f}"
                + ("" if own else " (default)"),
                "Last used": _when(client.last_used_at),
                "Stones this month": stones,
                "Income this month": f"${float(now['income'].get(client.name, 0.0)):,.2f}",
            }
        )
    return pd.DataFrame(rows)


def usage_table(keys: KeyStore, default_price: float, period: str) -> pd.DataFrame:
    """Usage by day or month, newest first, in the owner's words (income by month only)."""
    frame = usage_by(keys, period)
    prices = {client.name: price_of(client, default_price) for client in keys.list()}
    out = pd.DataFrame(
        {
            "Day" if period == "day" else "Month": frame[period],
            "Client": frame["client"],
            "Requests": frame["requests"].astype(int),
            "Stones priced": frame["stones"].astype(int),
            "Failed": frame["errors"].astype(int),
            "Refused for a limit": frame["refused"].astype(int),
        }
    )
    if period == "month":
        out["Income"] = [
            f"${charge(int(s), prices.get(c, default_price)):,.2f}"
            for c, s in zip(frame["client"], frame["stones"], strict=True)
        ]
    return out


def first_call(api_url: str, key: str) -> str:
    """The first `curl` a new client sends: one stone priced."""
    return (
        f"curl -s {shlex.quote(api_url.rstrip('/') + '/v1/quotes')} \\\n"
        f"  -H {shlex.quote('X-API-Key: ' + key)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(FIRST_STONE)}"
    )
