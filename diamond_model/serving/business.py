"""What the API clients bring: usage by day and month, the income it implies, monthly statements.

Usage is what the servers count per key per hour (`metering.Meter`, flushed every few seconds):
requests, stones priced, errors and requests refused for a limit. A client is charged for the
stones priced, at its key's price per 1,000 stones or the installation's default
(`Settings.price_per_1000_stones`). Hours and months are UTC, as the servers count them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from diamond_model.serving.keys import ClientKey, ClientKeyError, KeyStore

MONTH = re.compile(r"(\d{4})-(\d{2})")
COUNTS = ("requests", "stones", "errors", "refused")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first hour, first hour of the next month) of a month written 2026-11."""
    found = MONTH.fullmatch(month.strip())
    if found is None or not 1 <= int(found[2]) <= 12:
        raise ClientKeyError(f"'{month}' is not a month: write it as 2026-11 (year-month).")
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1)
    end = datetime(year + number // 12, number % 12 + 1, 1)
    return start, end


def price_of(client: ClientKey, default: float) -> float:
    """Dollars per 1,000 stones for this client."""
    return default if client.price_per_1000 is None else client.price_per_1000


def limits(client: ClientKey, per_day: str, per_minute: str) -> list[str]:
    """The key's limits that are set, in the caller's units ('5,000 stones a day', …)."""
    return [
        f"{value:,} {what}"
        for value, what in (
            (client.stones_per_day, per_day),
            (client.requests_per_minute, per_minute),
        )
        if value
    ]


def charge(stones: int, price_per_1000: float) -> float:
    """What `stones` priced cost at `price_per_1000`, in dollars and cents."""
    return round(stones * price_per_1000 / 1000, 2)


def usage_by(keys: KeyStore, period: str, since: datetime | None = None) -> pd.DataFrame:
    """Usage per client per day ('day', labelled 2026-11-28) or month ('month', 2026-11):
    client, period, requests, stones, errors, refused; newest period first."""
    if period not in ("day", "month"):
        raise ValueError("period is 'day' or 'month'")
    names = {client.id: client.name for client in keys.list()}
    hourly = keys.all_usage(since)
    if hourly.empty:
        return pd.DataFrame(columns=["client", period, *COUNTS])
    hours = pd.to_datetime(hourly["hour"])
    hourly["client"] = hourly["key_id"].map(names)
    hourly[period] = hours.dt.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")
    grouped = hourly.groupby(["client", period], as_index=False)[list(COUNTS)].sum()
    return grouped.sort_values([period, "client"], ascending=[False, True]).reset_index(drop=True)


def income_by_month(keys: KeyStore, default_price: float) -> pd.DataFrame:
    """Per client and month: stones priced, the price per 1,000 and what it comes to."""
    monthly = usage_by(keys, "month")
    prices = {client.name: price_of(client, default_price) for client in keys.list()}
    monthly["price_per_1000"] = monthly["client"].map(prices).astype(float)
    monthly["income"] = [
        charge(int(stones), price)
        for stones, price in zip(monthly["stones"], monthly["price_per_1000"], strict=True)
    ]
    return monthly[["client", "month", "stones", "price_per_1000", "income"]]


@dataclass(frozen=True)
class StatementLine:
    day: date
    requests: int
    stones: int


@dataclass(frozen=True)
class Statement:
    """One client's month: the stones priced each day, the price and the amount due."""

    client: str
    month: str
    lines: tuple[StatementLine, ...]
    price_per_1000: float
    drawn_on: date

    @property
    def stones(self) -> int:
        return sum(line.stones for line in self.lines)

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)

    @property
    def amount(self) -> float:
        return charge(self.stones, self.price_per_1000)

    def csv(self) -> bytes:
        """The statement as a bookkeeper's CSV: one row per day with use, then the total."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            ["client", "month", "date", "requests", "stones", "price_per_1000", "amount"]
        )
        for line in self.lines:
            writer.writerow(
                [
                    self.client,
                    self.month,
                    line.day.isoformat(),
                    line.requests,
                    line.stones,
                    f"{self.price_per_1000:.2f}",
                    f"{charge(line.stones, self.price_per_1000):.2f}",
                ]
            )
        writer.writerow(
            [
                self.client,
                self.month,
                "total",
                self.requests,
                self.stones,
                f"{self.price_per_1000:.2f}",
                f"{self.amount:.2f}",
            ]
        )
        return out.getvalue().encode("utf-8")


def statement(
    keys: KeyStore, name: str, month: str, default_price: float, today: date | None = None
) -> Statement:
    """The month's statement of the client named `name` (at its price when drawn)."""
    client = keys.get(name)
    start, end = month_bounds(month)
    hourly = keys.all_usage(start, end)
    mine = hourly.loc[hourly["key_id"] == client.id]
    days = pd.to_datetime(mine["hour"]).dt.date
    daily = mine.assign(day=days).groupby("day", as_index=False)[["requests", "stones"]].sum()
    lines = tuple(
        StatementLine(day, int(requests), int(stones))
        for day, requests, stones in daily[["day", "requests", "stones"]].itertuples(index=False)
    )
    return Statement(
        client=client.name,
        month=f"{start:%Y-%m}",
        lines=lines,
        price_per_1000=price_of(client, default_price),
        drawn_on=today or date.today(),
    )
