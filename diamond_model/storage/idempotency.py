"""Idempotency records: the first answer to a retried POST, kept for 24 hours per client key.

One row per (key, Idempotency-Key); its primary key makes the first of two concurrent requests
the only one that runs, on every worker and both databases. A row without a status is a request
still being answered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from diamond_model.storage.store import Store
from diamond_model.storage.tables import IdempotencyRecord, utcnow

KEPT = timedelta(hours=24)


@dataclass(frozen=True)
class Remembered:
    request_hash: str
    status: int | None  # None: the first request is still being answered
    body: bytes
    content_type: str


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def claim(store: Store, owner: str, key: str, request_hash: str) -> Remembered | None:
    """Claim (owner, key) for this request: None when it is ours to answer, otherwise what the
    earlier request with that key left (an expired one is forgotten and the claim retried)."""
    for _ in range(2):
        try:
            with store.session() as session, session.begin():
                session.add(
                    IdempotencyRecord(
                        owner=owner, key=key, request_hash=request_hash, created_at=utcnow()
                    )
                )
            return None
        except IntegrityError:
            found = recall(store, owner, key)
            if found is not None:
                return found
    return recall(store, owner, key)


def recall(store: Store, owner: str, key: str) -> Remembered | None:
    with store.session() as session:
        row = session.get(IdempotencyRecord, (owner, key))
        if row is None:
            return None
        if row.created_at < utcnow() - KEPT:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.owner == owner, IdempotencyRecord.key == key
                )
            )
            session.commit()
            return None
        return Remembered(row.request_hash, row.status, row.body or b"", row.content_type or "")


def remember(
    store: Store, owner: str, key: str, status: int, body: bytes, content_type: str
) -> None:
    with store.session() as session, session.begin():
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)
            .values(status=status, body=body, content_type=content_type[:100])
        )


def forget(store: Store, owner: str, key: str) -> None:
    """Let a retry run again (the first attempt failed on our side)."""
    with store.session() as session, session.begin():
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.owner == owner,
                IdempotencyRecord.key == key,
                IdempotencyRecord.status.is_(None),
            )
        )


def purge(store: Store) -> int:
    with store.session() as session, session.begin():
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - KEPT)
        )
        return int(getattr(result, "rowcount", 0) or 0)
