"""Schema upgrades: every database is brought to the head of `migrations/` by Alembic.

A database made by the first release (tables created directly, no Alembic record) is recognised
and stamped at the baseline first. Concurrent starts (two API workers, the dashboard and a cron
job) upgrade once: PostgreSQL serialises them with an advisory lock, SQLite with a file lock.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)

BASELINE = "0001"
ADVISORY_LOCK = 72_131_905  # any constant shared by every process of this product


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "diamond_model.storage:migrations")
    config.attributes["connection"] = connection
    return config


def head() -> str:
    config = Config()
    config.set_main_option("script_location", "diamond_model.storage:migrations")
    return ScriptDirectory.from_config(config).get_current_head() or BASELINE


def _known(revision: str) -> bool:
    config = Config()
    config.set_main_option("script_location", "diamond_model.storage:migrations")
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except Exception:
        return False


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (also a `file:...?mode=ro&uri=true` one); None for
    memory or another database."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("sqlite:///", 1)[-1] if "sqlite:///" in url else ""
    if path.startswith("file:"):
        path = path.removeprefix("file:").split("?", 1)[0]
    else:
        path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def lock_file(database: Path) -> Path:
    """Where concurrent starts on one SQLite file take turns: beside it."""
    return database.with_suffix(".migrate-lock")


@contextmanager
def _exclusive(engine: Engine) -> Iterator[bool]:
    """Hold the upgrade lock; yields False when none can be taken (a read-only folder)."""
    if engine.dialect.name == "sqlite":
        database = sqlite_file(engine.url.render_as_string(hide_password=False))
        if database is None:
            yield True
            return
        try:
            handle = open(lock_file(database), "a")  # closed by the `with` below
        except OSError as error:
            # A folder we cannot write a lock file in is one SQLite cannot write a journal in
            # either: the database is read-only to this process. Serve it if no upgrade is
            # needed (checked by the caller); any upgrade is refused in words.
            log.info("no migrate lock beside %s (%s): read-only use", database, error.strerror)
            yield False
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
        connection.commit()
        try:
            yield True
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK})
            connection.commit()


class ReadOnlyUpgradeError(RuntimeError):
    """The schema needs an upgrade but the database's folder cannot be written."""


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Bring the database to `target`; returns (revision before, revision after)."""
    with _exclusive(engine) as locked, engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it; the copy of a table other tables point at
            # (model_versions) must not trip the foreign keys. They are checked after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                before = current(connection)
                if before is not None and not _known(before):
                    # A newer release upgraded this database; its migrations keep the schema
                    # readable by the release before (README, "Upgrades"), so serve on.
                    log.warning(
                        "database schema %s is newer than this release's %s", before, head()
                    )
                    return before, before
                wanted = head() if target == "head" else target
                if before != wanted and not locked:
                    raise ReadOnlyUpgradeError(
                        f"The database {engine.url.database} is at schema {before or 'none'} and "
                        f"needs {wanted}, but its folder cannot be written (read-only). Make it "
                        "writable and run `python -m diamond_model init` once; after that it can "
                        "be served read-only."
                    )
                if before is None and inspect(connection).has_table("appraisals"):
                    command.stamp(_config(connection), BASELINE)
                    before = BASELINE
                    log.info("first-release database recognised and stamped at the baseline")
                if before != wanted:
                    command.upgrade(_config(connection), target)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the upgrade broke foreign keys: {broken[:5]}")
                after = current(connection) or ""
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
        return before, after
