"""The audit list: who did what, appended in the transaction of the change itself, so an entry
exists exactly when its change does."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from diamond_model.storage.tables import AuditEntry, utcnow

SYSTEM = "system"  # what the product did by itself (a fall-back after a withdrawal)


def record(session: Session, who: str, action: str, subject: str, detail: str = "") -> None:
    """Append one entry inside the caller's transaction."""
    session.add(
        AuditEntry(
            at=utcnow(),
            who=(who or "unknown")[:120],
            action=action[:32],
            subject=subject[:120],
            detail=detail[:2000],
        )
    )


def entries(engine: Engine, limit: int = 500, offset: int = 0) -> pd.DataFrame:
    """The newest entries first: at, who, action, subject, detail."""
    query = (
        select(
            AuditEntry.at, AuditEntry.who, AuditEntry.action, AuditEntry.subject, AuditEntry.detail
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["at", "who", "action", "subject", "detail"])
