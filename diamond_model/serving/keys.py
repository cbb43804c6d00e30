"""Client keys for the business API: created with scopes and limits, shown once, stored as a hash.

A key reads `dk_<prefix>_<secret>`: the prefix names it in lists and logs, the 32-byte secret is
what makes it a key. Only SHA-256 of the whole key is stored (a random 256-bit secret needs no
slow hash: nothing can be guessed), and a presented key is compared with `hmac.compare_digest`.
Serving processes check keys against an in-memory copy (`KeyRing`) refreshed every few seconds,
so a revocation takes effect within that time and no quote waits for the database.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from diamond_model.enums import Scope
from diamond_model.serving.periodic import Periodic
from diamond_model.storage.store import Store
from diamond_model.storage.tables import ApiKey, Usage, utcnow

log = logging.getLogger(__name__)

KEY_PREFIX = "dk_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
REFRESH_SECONDS = 5.0


class ClientKeyError(ValueError):
    """A key request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class ClientKey:
    """A key as the server knows it (never the secret)."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    stones_per_day: int | None
    requests_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    price_per_1000: float | None = None  # None: the installation's default price

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, separator, secret = key[len(KEY_PREFIX) :].partition("_")
    return prefix if separator and secret else None


def _client(row: ApiKey) -> ClientKey:
    return ClientKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(Scope(s) for s in row.scopes.split() if s),
        stones_per_day=row.stones_per_day,
        requests_per_minute=row.requests_per_minute,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        price_per_1000=row.price_per_1000,
    )


USAGE_COLUMNS = ("hour", "requests", "stones", "errors", "refused")


def _check_terms(
    stones_per_day: int | None, requests_per_minute: int | None, price_per_1000: float | None
) -> None:
    for limit, what in (
        (stones_per_day, "stones per day"),
        (requests_per_minute, "requests per minute"),
    ):
        if limit is not None and limit < 1:
            raise ClientKeyError(f"The limit of {what} must be at least 1 (or left out: no limit).")
    if price_per_1000 is not None and not (0 <= price_per_1000 <= 1_000_000):
        raise ClientKeyError(
            "The price per 1,000 stones must be between $0 and $1,000,000 (or left out: the "
            "default price)."
        )


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    known = {s.value: s for s in Scope}
    unknown = [v for v in values if v not in known]
    if unknown or not values:
        raise ClientKeyError(
            f"Unknown scope(s): {', '.join(unknown)}. Use one or more of: " + ", ".join(known)
            if unknown
            else f"Give at least one scope: {', '.join(known)}."
        )
    return frozenset(known[v] for v in values)


class KeyStore:
    """Keys in the product's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        name: str,
        scopes: frozenset[Scope],
        stones_per_day: int | None = None,
        requests_per_minute: int | None = None,
        price_per_1000: float | None = None,
    ) -> tuple[str, ClientKey]:
        """A new key: (the key, shown this once, and what is stored about it)."""
        if not NAME.fullmatch(name):
            raise ClientKeyError(
                f"'{name}' cannot name a key: use letters, digits, '.', '_' or '-' (up to 80)."
            )
        _check_terms(stones_per_day, requests_per_minute, price_per_1000)
        prefix = secrets.token_hex(4)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiKey(
            name=name,
            prefix=prefix,
            key_hash=_digest(key),
            scopes=" ".join(sorted(scopes)),
            stones_per_day=stones_per_day,
            requests_per_minute=requests_per_minute,
            price_per_1000=price_per_1000,
            created_at=utcnow(),
        )
        try:
            with self.store.session() as session, session.begin():
                session.add(row)
                session.flush()
                created = _client(row)
        except IntegrityError as error:
            raise ClientKeyError(
                f"A key named '{name}' exists already; choose another name."
            ) from error
        return key, created

    def list(self) -> list[ClientKey]:
        with self.store.session() as session:
            return [_client(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    def get(self, name: str) -> ClientKey:
        with self.store.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.name == name))
        if row is None:
            raise ClientKeyError(f"There is no key named '{name}'; `keys list` shows them.")
        return _client(row)

    def change(
        self,
        name: str,
        stones_per_day: int | None,
        requests_per_minute: int | None,
        price_per_1000: float | None,
    ) -> ClientKey:
        """Set a key's limits (None: no limit) and its price (None: the default); the servers
        apply new limits within `REFRESH_SECONDS`."""
        self.get(name)
        _check_terms(stones_per_day, requests_per_minute, price_per_1000)
        with self.store.session() as session, session.begin():
            session.execute(
                update(ApiKey)
                .where(ApiKey.name == name)
                .values(
                    stones_per_day=stones_per_day,
                    requests_per_minute=requests_per_minute,
                    price_per_1000=price_per_1000,
                )
            )
        return self.get(name)

    def revoke(self, name: str) -> ClientKey:
        self.get(name)
        with self.store.session() as session, session.begin():
            session.execute(
                update(ApiKey)
                .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get(name)

    def verify(self, key: str) -> ClientKey | None:
        """The key's record if it is one of ours (revoked ones included), else None."""
        prefix = _prefix_of(key)
        if prefix is None:
            return None
        with self.store.session() as session:
            rows = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).all()
        digest = _digest(key)
        for row in rows:
            if hmac.compare_digest(row.key_hash, digest):
                return _client(row)
        return None

    def digests(self) -> dict[str, builtins.list[tuple[str, ClientKey]]]:
        """Every key's digest by prefix: what a `KeyRing` holds."""
        with self.store.session() as session:
            rows = session.scalars(select(ApiKey)).all()
        out: dict[str, list[tuple[str, ClientKey]]] = {}
        for row in rows:
            out.setdefault(row.prefix, []).append((row.key_hash, _client(row)))
        return out

    def usage(self, name: str, since: datetime | None = None) -> pd.DataFrame:
        """Hourly requests, stones, errors and refusals of one key (UTC hours)."""
        key = self.get(name)
        frame = self.all_usage(since)
        return frame.loc[frame["key_id"] == key.id, list(USAGE_COLUMNS)].reset_index(drop=True)

    def all_usage(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Every key's hourly usage in [since, until): key_id, hour, requests, stones, errors,
        refused."""
        query = select(
            Usage.key_id, Usage.hour, Usage.requests, Usage.stones, Usage.errors, Usage.refused
        )
        if since is not None:
            query = query.where(Usage.hour >= since)
        if until is not None:
            query = query.where(Usage.hour < until)
        with self.store.engine.connect() as connection:
            rows = connection.execute(query.order_by(Usage.hour, Usage.key_id)).all()
        return pd.DataFrame(rows, columns=["key_id", *USAGE_COLUMNS])


class KeyRing:
    """The keys in memory, refreshed in the background: checking a key never waits on a query."""

    def __init__(self, keys: KeyStore, interval: float = REFRESH_SECONDS) -> None:
        self.keys = keys
        self.interval = interval
        self._digests: dict[str, list[tuple[str, ClientKey]]] = {}
        self._watch = Periodic("key-ring", interval, self.refresh)

    def refresh(self) -> None:
        try:
            self._digests = self.keys.digests()
        except SQLAlchemyError as error:  # keep the last known keys while the database is away
            log.warning(
                "key refresh failed, keeping %d known prefixes: %s", len(self._digests), error
            )

    def check(self, key: str) -> ClientKey | None:
        """The key's record (revoked ones included) or None; constant-time comparison."""
        prefix = _prefix_of(key)
        if prefix is None:
            return None
        digest = _digest(key)
        for stored, client in self._digests.get(prefix, []):
            if hmac.compare_digest(stored, digest):
                return client
        return None

    def watch(self) -> None:
        """Read the keys now and keep them current in the background (idempotent)."""
        self._watch.start(now=True)

    def close(self) -> None:
        self._watch.close()
