"""What the API clients bring, as the owner reads it: usage by day and month across a month's
end, income at each client's price or the default, statements a bookkeeper can add up, limits
changed and checked (both databases)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest
from sqlalchemy import insert

from diamond_model.enums import Scope
from diamond_model.learning.loop import LearningLoop
from diamond_model.serving.business import income_by_month, month_bounds, statement, usage_by
from diamond_model.serving.keys import ClientKeyError, KeyStore
from diamond_model.storage.tables import Usage

QUOTE = frozenset({Scope.QUOTE})


def hours(store, key_id: int, rows: list[tuple[str, int, int, int, int]]) -> None:
    """Usage rows as the servers' meters flush them: (hour, requests, stones, errors, refused)."""
    with store.session() as session, session.begin():
        session.execute(
            insert(Usage),
            [
                {
                    "key_id": key_id,
                    "hour": datetime.fromisoformat(hour),
                    "requests": requests,
                    "stones": stones,
                    "errors": errors,
                    "refused": refused,
                }
                for hour, requests, stones, errors, refused in rows
            ],
        )


@pytest.fixture
def two_clients(pipeline: LearningLoop) -> KeyStore:
    """'gioielli' at its own $30 per 1,000 stones, 'orafo' at the default; a month's end between."""
    keys = KeyStore(pipeline.store)
    _, own = keys.create("gioielli", QUOTE, 5_000, 60, price_per_1000=30.0)
    _, default = keys.create("orafo", QUOTE)
    hours(
        pipeline.store,
        own.id,
        [
            ("2026-11-29T10:00", 10, 1_200, 1, 0),
            ("2026-11-29T15:00", 4, 300, 0, 2),
            ("2026-11-30T23:00", 2, 500, 0, 0),
            ("2026-12-01T00:00", 3, 250, 0, 0),
        ],
    )
    hours(pipeline.store, default.id, [("2026-11-30T09:00", 6, 2_345, 2, 1)])
    return keys


def test_usage_adds_up_by_day_and_month_across_a_months_end(two_clients: KeyStore) -> None:
    daily = usage_by(two_clients, "day").set_index(["client", "day"])
    assert daily.loc[("gioielli", "2026-11-29")].tolist() == [14, 1_500, 1, 2]
    assert daily.loc[("gioielli", "2026-11-30"), "stones"] == 500
    assert daily.loc[("gioielli", "2026-12-01"), "stones"] == 250, "midnight UTC starts a day"
    monthly = usage_by(two_clients, "month").set_index(["client", "month"])
    assert monthly.loc[("gioielli", "2026-11")].tolist() == [16, 2_000, 1, 2]
    assert monthly.loc[("orafo", "2026-11")].tolist() == [6, 2_345, 2, 1]
    assert list(usage_by(two_clients, "month")["month"])[0] == "2026-12", "newest first"


def test_income_is_each_clients_stones_at_its_price_or_the_default(two_clients: KeyStore) -> None:
    income = income_by_month(two_clients, default_price=20.0).set_index(["client", "month"])
    assert income.loc[("gioielli", "2026-11"), "income"] == pytest.approx(60.00)  # 2,000 at $30
    assert income.loc[("gioielli", "2026-12"), "income"] == pytest.approx(7.50)
    assert income.loc[("orafo", "2026-11"), "price_per_1000"] == 20.0
    assert income.loc[("orafo", "2026-11"), "income"] == pytest.approx(46.90)  # 2,345 at $20


def test_a_statement_is_the_months_days_and_adds_up_in_a_spreadsheet(
    two_clients: KeyStore,
) -> None:
    sheet = statement(two_clients, "gioielli", "2026-11", 20.0, today=date(2026, 12, 2))
    assert [(line.day.isoformat(), line.stones) for line in sheet.lines] == [
        ("2026-11-29", 1_500),
        ("2026-11-30", 500),
    ], "December's hour is not November's"
    assert (sheet.stones, sheet.requests, sheet.amount) == (2_000, 16, 60.0)
    rows = list(csv.DictReader(io.StringIO(sheet.csv().decode("utf-8"))))
    days, total = rows[:-1], rows[-1]
    assert total["date"] == "total" and float(total["amount"]) == 60.0
    assert sum(int(r["stones"]) for r in days) == int(total["stones"]) == 2_000
    assert sum(float(r["amount"]) for r in days) == pytest.approx(float(total["amount"]))
    empty = statement(two_clients, "orafo", "2026-10", 20.0)
    assert (empty.lines, empty.amount) == ((), 0.0)
    with pytest.raises(ClientKeyError, match="write it as 2026-11"):
        month_bounds("November")
    with pytest.raises(ClientKeyError, match="write it as 2026-11"):
        month_bounds("2026-13")
    assert month_bounds("2026-12") == (datetime(2026, 12, 1), datetime(2027, 1, 1))


def test_limits_and_price_are_changed_and_checked(two_clients: KeyStore) -> None:
    changed = two_clients.change("orafo", 100, None, 12.5)
    assert (changed.stones_per_day, changed.requests_per_minute, changed.price_per_1000) == (
        100,
        None,
        12.5,
    )
    income = income_by_month(two_clients, 20.0).set_index(["client", "month"])
    assert income.loc[("orafo", "2026-11"), "income"] == pytest.approx(29.31)  # 2,345 at $12.50
    for bad, words in (
        ((0, None, None), "at least 1"),
        ((None, -5, None), "at least 1"),
        ((None, None, -1.0), "between $0 and $1,000,000"),
    ):
        with pytest.raises(ClientKeyError, match=re.escape(words)):
            two_clients.change("orafo", *bad)
    with pytest.raises(ClientKeyError, match="no key named 'nobody'"):
        two_clients.change("nobody", None, None, None)
    assert two_clients.get("orafo").price_per_1000 == 12.5, "a refused change changes nothing"
