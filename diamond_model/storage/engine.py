"""The database engine with the settings this product needs, and how storage faults are told apart.

SQLite runs in WAL mode with foreign keys on and a 30 s busy timeout; PostgreSQL with a pre-ping
pool. A full or read-only storage is recognised from the drivers' and the OS's codes, never from
an error's wording.
"""

from __future__ import annotations

import errno
import sqlite3
from enum import StrEnum

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from diamond_model.storage import migrate


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard and the API read while a batch or a model is being written.
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:  # a read-only file keeps its mode; reads need none
        if storage_fault(error) is not StorageFault.READ_ONLY:
            raise
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StorageFault(StrEnum):
    """Why a write failed when the database itself answered: no room, or no permission."""

    FULL = "full"
    READ_ONLY = "read-only"


FAULT_WORDS: dict[StorageFault, str] = {
    StorageFault.FULL: "The server's storage is full: nothing was written. Quotes still work; "
    "the operator must free disk space (or grow the volume), then try again.",
    StorageFault.READ_ONLY: "The server's storage is read-only: nothing was written. Quotes and "
    "reads still work; the operator must make the database and its folder writable to store data.",
}

# Decided on the codes the drivers and the OS give, never on an error's wording.
_SQLITE_CODES = {13: StorageFault.FULL, 8: StorageFault.READ_ONLY}  # SQLITE_FULL, SQLITE_READONLY
_SQLSTATES = {"53100": StorageFault.FULL, "25006": StorageFault.READ_ONLY}  # disk_full, read-only
_ERRNOS = {
    errno.ENOSPC: StorageFault.FULL,
    errno.EDQUOT: StorageFault.FULL,
    errno.EROFS: StorageFault.READ_ONLY,
    errno.EACCES: StorageFault.READ_ONLY,
    errno.EPERM: StorageFault.READ_ONLY,
}


def storage_fault(error: BaseException) -> StorageFault | None:
    """Whether `error` (or what it wraps) says the storage is full or read-only."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _ERRNOS:
            return _ERRNOS[cause.errno]
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_CODES:  # extended codes keep the base
            return _SQLITE_CODES[code & 0xFF]
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state in _SQLSTATES:
            return _SQLSTATES[state]
        pending += [getattr(cause, "orig", None), cause.__cause__, cause.__context__]
    return None


def make_engine(url: str) -> Engine:
    """An engine with the settings this product needs on SQLite and PostgreSQL alike."""
    if url.startswith("sqlite"):
        path = migrate.sqlite_file(url)
        if path is not None and not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
