"""Quotes handed to customers at the counter: given (a number from the database, so two tills
never share one), found again by number, date or customer, and reprinted as they were given."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, or_, select

from diamond_model.storage.store import Store
from diamond_model.storage.tables import CounterQuote, utcnow

FOUND_COLUMNS = ("number", "created_at", "given_by", "customer", "reference", "stone", "price")


def give(
    store: Store,
    given_by: str,
    customer: str,
    reference: str,
    model_version: int,
    market_period: str,
    stone: dict[str, object],
    printed: dict[str, Any],
) -> int:
    """Record one quote and return its number (the database's own, unique across processes);
    the number is written into `printed` too, in the same transaction."""
    with store.session() as session, session.begin():
        row = CounterQuote(
            created_at=utcnow(),
            given_by=(given_by.strip() or "the counter")[:120],
            customer=customer.strip()[:120],
            reference=reference.strip()[:120],
            model_version=model_version,
            market_period=market_period,
            stone={k: v for k, v in stone.items() if v is not None},
            printed=printed,
        )
        session.add(row)
        session.flush()
        row.printed = {**printed, "number": row.number}
        return int(row.number)


def get(store: Store, number: int) -> CounterQuote | None:
    with store.session() as session:
        row = session.get(CounterQuote, number)
        if row is not None:
            session.expunge(row)
        return row


def find(
    store: Store,
    number: int | None = None,
    customer: str = "",
    since: date | None = None,
    until: date | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """The newest quotes first matching every filter given: the number, a piece of the customer's
    name or reference (any case), and the days from `since` to `until` (both included, UTC)."""
    query = select(CounterQuote).order_by(CounterQuote.number.desc()).limit(limit)
    if number is not None:
        query = query.where(CounterQuote.number == number)
    if customer.strip():
        # Typed text is matched as text: % and _ are not wildcards here.
        typed = customer.strip().lower().replace("\\", "\\\\")
        pattern = "%" + typed.replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                func.lower(CounterQuote.customer).like(pattern, escape="\\"),
                func.lower(CounterQuote.reference).like(pattern, escape="\\"),
            )
        )
    if since is not None:
        query = query.where(CounterQuote.created_at >= datetime.combine(since, time.min))
    if until is not None:
        query = query.where(
            CounterQuote.created_at < datetime.combine(until + timedelta(days=1), time.min)
        )
    with store.session() as session:
        rows = session.scalars(query).all()
        found = [
            (
                row.number,
                row.created_at,
                row.given_by,
                row.customer,
                row.reference,
                row.stone,
                float(row.printed.get("price", float("nan"))),
            )
            for row in rows
        ]
    return pd.DataFrame(found, columns=list(FOUND_COLUMNS))
