"""Limits and metering for client keys, shared by every worker through the database.

Counters are fixed windows (one per key per minute for requests, per UTC day for stones, per
client per ten minutes for failed key attempts) in the `counters` table, incremented by one
conditional UPDATE (`count + n <= limit`), which the database applies atomically under
concurrency on PostgreSQL and SQLite alike. So a key is never served beyond its limit, whatever
the number of workers or processes.

To keep the database off most requests, a worker claims a small allowance at a time (1/50 of
the limit, at least one) and spends it from memory; a request the allowance does not cover
claims again. The cost: near the limit, the other workers may still hold part of their last
allowance, so with W workers a key can be refused up to (W - 1)/50 of its limit early (never
late): 2 % with the two workers of `make api`. Limits under 50 claim one at a time and are
exact both ways. Usage (requests, stones, errors per key per hour)
is added up in memory and flushed every two seconds with atomic `count + delta` upserts, so
billing counts are exact; a killed worker loses at most its last two seconds of counts.

Why not the `limits` package: its strategies are what this module does, but its storages are
memory (per process, not shared), Redis, Memcached and MongoDB, none of which this product runs;
a SQL storage on the database both workers already share is the smaller moving part.
"""

from __future__ import annotations

import calendar
import logging
import math
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from diamond_model.serving.keys import ClientKey
from diamond_model.serving.periodic import Periodic
from diamond_model.storage.store import Store
from diamond_model.storage.tables import ApiKey, Counter, Usage, utcnow

log = logging.getLogger(__name__)

ALLOWANCE_SHARE = 50
FLUSH_SECONDS = 2.0
FAILED_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Backoff:
    """How a source that keeps failing is slowed: `free` failures in the window cost nothing,
    each one after that doubles the wait (1 s, 2 s, 4 s, …) up to `cap`."""

    free: int
    cap: timedelta

    def delay(self, failures: float) -> int:
        """Seconds to wait after this many failures in the window (0: none)."""
        over = math.ceil(failures - 1e-9) - self.free  # a part of a failure counts whole
        if over <= 0:
            return 0
        return int(min(self.cap.total_seconds(), 2 ** min(over - 1, 30)))


# A wrong API key, per client address: keys are long random secrets, so this keeps guessers
# and broken clients quiet rather than protecting the keys; a valid key is never slowed.
KEY_GUESSES = Backoff(free=10, cap=timedelta(minutes=10))
# The dashboard's code form, per browser session: a person mistypes a few times at most.
SESSION_GUESSES = Backoff(free=5, cap=timedelta(minutes=15))
# ... and per person (or per installation's shared code), across every session, which a new tab
# cannot escape: gentler, capped at a minute, so a stranger can slow a person's sign-in by at
# most that and can never lock them out.
PERSON_GUESSES = Backoff(free=10, cap=timedelta(minutes=1))


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, and when to come back (seconds)."""

    detail: str
    retry_after: int


def _upsert(store: Store, table: type) -> postgresql.Insert | sqlite.Insert:
    if store.engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True)
class Window:
    """One limit of a key: `minute` (requests) or `day` (stones), what is left, seconds to reset."""

    name: str
    limit: int
    left: int
    reset: int

    @property
    def length(self) -> int:
        return 60 if self.name == "minute" else 86_400


class Counters:
    """Fixed-window counters in the database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, key: str, amount: int, limit: int, expires_at: datetime) -> tuple[bool, int]:
        """Add `amount` to the window unless that would pass `limit`: (added, the window's count
        across every process now)."""
        with self.store.session() as session, session.begin():
            session.execute(
                _upsert(self.store, Counter)
                .values(key=key, count=0, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            result = session.execute(
                update(Counter)
                .where(Counter.key == key, Counter.count + amount <= limit)
                .values(count=Counter.count + amount)
            )
            count = int(session.scalar(select(Counter.count).where(Counter.key == key)) or 0)
        return cast(CursorResult[Any], result).rowcount == 1, count

    def add(self, key: str, amount: int, expires_at: datetime) -> int:
        """Add without a limit; returns the new count."""
        with self.store.session() as session, session.begin():
            statement = _upsert(self.store, Counter).values(
                key=key, count=amount, expires_at=expires_at
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"], set_={"count": Counter.count + amount}
                )
            )
            return int(session.scalar(select(Counter.count).where(Counter.key == key)) or 0)

    def hold(self, key: str, until: datetime) -> None:
        """A row that means 'wait' until it expires (set, or moved to the new time)."""
        with self.store.session() as session, session.begin():
            statement = _upsert(self.store, Counter).values(key=key, count=1, expires_at=until)
            session.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_={"expires_at": until})
            )

    def purge(self, now: datetime) -> None:
        with self.store.session() as session, session.begin():
            session.execute(delete(Counter).where(Counter.expires_at < now))


def _minute(now: datetime) -> tuple[str, datetime]:
    start = now.replace(second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M"), start + timedelta(minutes=1)


def _day(now: datetime) -> tuple[str, datetime]:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%d"), start + timedelta(days=1)


class Meter:
    """Per-process admission against the shared limits, and usage added up for billing."""

    def __init__(self, store: Store, flush_every: float = FLUSH_SECONDS) -> None:
        self.store = store
        self.counters = Counters(store)
        self.flush_every = flush_every
        self._lock = threading.Lock()  # never held across a database call
        self._claiming = threading.Lock()  # one claim at a time per process
        self._allowance: dict[str, int] = {}
        self._claimed: dict[str, int] = {}  # each window's count in the database, last seen
        self._purged = datetime.min
        self._usage: dict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self._last_used: dict[int, datetime] = {}
        self._watch = Periodic("meter", flush_every, self.flush)

    def _windows(
        self, client: ClientKey, requests: int, stones: int, now: datetime
    ) -> list[tuple[str, int, int, datetime, str]]:
        windows = []
        if client.requests_per_minute and requests:
            label, end = _minute(now)
            windows.append(
                (
                    f"rpm:{client.id}:{label}",
                    requests,
                    client.requests_per_minute,
                    end,
                    "requests per minute",
                )
            )
        if client.stones_per_day and stones:
            label, end = _day(now)
            windows.append(
                (f"spd:{client.id}:{label}", stones, client.stones_per_day, end, "stones per day")
            )
        return windows

    def covered(
        self, client: ClientKey, requests: int, stones: int, now: datetime | None = None
    ) -> bool:
        """Whether this process's allowances cover the request (no database needed)."""
        now = now or utcnow()
        windows = self._windows(client, requests, stones, now)
        return all(self._allowance.get(key, 0) >= need for key, need, *_ in windows)

    def admit(
        self, client: ClientKey, requests: int, stones: int, now: datetime | None = None
    ) -> Refusal | None:
        """Spend the request and its stones from the allowances, claiming more when needed; a
        refusal says which limit and when it resets. May query the database: call it off the
        event loop unless `covered` said no claim is needed."""
        now = now or utcnow()
        for key, need, limit, end, what in self._windows(client, requests, stones, now):
            if not self._take(key, need, limit, end):
                wait = max(1, math.ceil((end - now).total_seconds()))
                if need > limit:
                    detail = (
                        f"This request has {need:,} stones; the key's limit is {limit:,} {what}."
                    )
                else:
                    detail = (
                        f"The key '{client.name}' has used its {limit:,} {what}; the window resets "
                        f"in {wait} s."
                    )
                return Refusal(detail, wait)
        return None

    def _spend(self, key: str, need: int) -> bool:
        with self._lock:
            held = self._allowance.get(key, 0)
            if held >= need:
                self._allowance[key] = held - need
                return True
            return False

    def _take(self, key: str, need: int, limit: int, end: datetime) -> bool:
        if self._spend(key, need):
            return True
        # Claims are rare (one per allowance) and serialised, so two threads of this process do
        # not both claim for the same shortfall; the short lock above is never held across one.
        with self._claiming:
            if self._spend(key, need):
                return True
            with self._lock:
                held = self._allowance.get(key, 0)
            chunk = max(1, limit // ALLOWANCE_SHARE)
            try:
                for amount in (need - held + chunk - 1, need - held):
                    if amount <= 0:
                        continue
                    added, count = self.counters.claim(key, amount, limit, end)
                    with self._lock:
                        self._claimed[key] = count
                        if added:
                            self._allowance[key] = self._allowance.get(key, 0) + amount - need
                    if added:
                        return True
                return False
            except SQLAlchemyError as error:  # the database is away: serve, count in memory
                log.warning("limit check for %s skipped, database unavailable: %s", key, error)
                return True

    def remaining(self, client: ClientKey, now: datetime | None = None) -> list[Window]:
        """Each of the key's limits with what is left and when it resets, as this process knows
        it: the window's count across every process at its last claim, less what this process
        has not spent yet of its allowance. Never more than is really left (other workers'
        unspent allowances count as spent), and it falls with every request answered here."""
        now = now or utcnow()
        out = []
        for name, limit, (label, end), prefix in (
            ("minute", client.requests_per_minute, _minute(now), "rpm"),
            ("day", client.stones_per_day, _day(now), "spd"),
        ):
            if not limit:
                continue
            key = f"{prefix}:{client.id}:{label}"
            with self._lock:
                used = self._claimed.get(key, 0) - self._allowance.get(key, 0)
            reset = max(1, math.ceil((end - now).total_seconds()))
            out.append(Window(name, limit, max(0, limit - used), reset))
        return out

    def record(
        self, client: ClientKey | None, stones: int = 0, error: bool = False, refused: bool = False
    ) -> None:
        """Add one request (its stones, whether it failed, whether a limit refused it) to this
        hour's usage."""
        if client is None:
            return
        now = utcnow()
        hour = now.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            counts = self._usage[(client.id, hour)]
            counts[0] += 1
            counts[1] += stones
            counts[2] += int(error)
            counts[3] += int(refused)
            self._last_used[client.id] = now

    def flush(self) -> None:
        """Write the usage added up since the last flush (atomic increments)."""
        with self._lock:
            usage, self._usage = self._usage, defaultdict(lambda: [0, 0, 0, 0])
            last_used, self._last_used = self._last_used, {}
            minute = _minute(utcnow())[0]
            for windows in (self._allowance, self._claimed):  # past minutes are over
                for key in [k for k in windows if k.startswith("rpm") and not k.endswith(minute)]:
                    del windows[key]
        now = utcnow()
        if now - self._purged > timedelta(hours=1):
            self._purged = now
            try:
                self.counters.purge(now)
            except SQLAlchemyError as error:
                log.warning("old counters not purged: %s", error)
        if not usage and not last_used:
            return
        try:
            with self.store.session() as session, session.begin():
                for (key_id, hour), (requests, stones, errors, refused) in usage.items():
                    statement = _upsert(self.store, Usage).values(
                        key_id=key_id,
                        hour=hour,
                        requests=requests,
                        stones=stones,
                        errors=errors,
                        refused=refused,
                    )
                    session.execute(
                        statement.on_conflict_do_update(
                            index_elements=["key_id", "hour"],
                            set_={
                                "requests": Usage.requests + requests,
                                "stones": Usage.stones + stones,
                                "errors": Usage.errors + errors,
                                "refused": Usage.refused + refused,
                            },
                        )
                    )
                for key_id, when in last_used.items():
                    session.execute(
                        update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when)
                    )
        except SQLAlchemyError as error:  # keep the counts for the next flush
            log.warning("usage flush failed, keeping the counts: %s", error)
            with self._lock:
                for k, kept in usage.items():
                    counts = self._usage[k]
                    for position, value in enumerate(kept):
                        counts[position] += value
                for key_id, when in last_used.items():
                    self._last_used.setdefault(key_id, when)

    def watch(self) -> None:
        """Flush usage every `flush_every` seconds in the background (idempotent)."""
        self._watch.start()

    def close(self) -> None:
        self._watch.close()
        self.flush()


class Attempts:
    """Failed keys or access codes per source, answered with a growing wait (a `Backoff`),
    never a lockout of everyone behind one address.

    A source is what failed: one client address for API keys, one browser session or one
    person's name for the dashboard's code. Failures are a sliding-window count (this window's
    plus the previous window's, weighted by the share of it still inside the window: a fixed
    window would forget every failure at each boundary). After a failure past the free ones the
    source waits; during the wait a further try is refused without being checked or counted.
    """

    def __init__(
        self, store: Store, backoff: Backoff = KEY_GUESSES, window: timedelta = FAILED_WINDOW
    ) -> None:
        self.counters = Counters(store)
        self.backoff = backoff
        self.window = window

    def _windows(self, now: datetime) -> tuple[int, float, datetime]:
        """(this window's start in epoch seconds, the share of it already gone, its end)."""
        seconds = int(self.window.total_seconds())
        epoch = calendar.timegm(now.timetuple())
        start = epoch // seconds * seconds
        end = datetime.fromtimestamp(start + seconds, UTC).replace(tzinfo=None)
        return start, (epoch - start) / seconds, end

    def _count(self, source: str, start: int) -> int:
        """Failures counted in the window starting at `start` (epoch seconds)."""
        with self.counters.store.session() as session:
            count = session.scalar(
                select(Counter.count).where(Counter.key == f"fail:{source}:{start}")
            )
        return count or 0

    def failed(self, source: str, now: datetime | None = None) -> int | None:
        """Count a failure; returns the seconds the source now waits, or None (no wait)."""
        now = now or utcnow()
        start, gone, end = self._windows(now)
        # Kept one window longer than it counts: the next window weighs it.
        current = self.counters.add(f"fail:{source}:{start}", 1, end + self.window)
        previous = self._count(source, start - int(self.window.total_seconds()))
        count = current + previous * (1 - gone)
        log.warning("failed key or access code from %s (%.0f in the last window)", source, count)
        delay = self.backoff.delay(count)
        if delay == 0:
            return None
        self.counters.hold(f"wait:{source}", now + timedelta(seconds=delay))
        return delay

    def waiting(self, source: str, now: datetime | None = None) -> int | None:
        """Seconds left of the source's wait, or None (one database read)."""
        now = now or utcnow()
        with self.counters.store.session() as session:
            until = session.scalar(
                select(Counter.expires_at).where(Counter.key == f"wait:{source}")
            )
        if until is None or until <= now:
            return None
        return max(1, math.ceil((until - now).total_seconds()))
