"""The record of retrain runs: opened, finished, abandoned, looked up.

Only the holder of the retraining lease opens a run, so a run still marked running when one is
opened died with its process; `abandon_running` is the one place that says so.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from diamond_model.enums import RunStatus
from diamond_model.storage.store import Store
from diamond_model.storage.tables import TrainingRun, utcnow

LAPSED = "abandoned: the process running it stopped (its lease lapsed)"
CLEARED = "abandoned: the lease was cleared by an operator (unlock)"


class Runs:
    """Retrain runs in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, trigger: str) -> int:
        """Record a new running run (the caller holds the lease); earlier runs still marked
        running are marked abandoned in the same transaction."""
        with self.store.session() as session, session.begin():
            self._abandon_running(session, LAPSED)
            run = TrainingRun(status=RunStatus.RUNNING, trigger=trigger[:120], started_at=utcnow())
            session.add(run)
            session.flush()
            return run.id

    def abandon_running(self, message: str) -> int:
        """Mark every run still running as abandoned with `message`; how many there were."""
        with self.store.session() as session, session.begin():
            return self._abandon_running(session, message)

    @staticmethod
    def _abandon_running(session: Any, message: str) -> int:
        result = session.execute(
            update(TrainingRun)
            .where(TrainingRun.status == RunStatus.RUNNING)
            .values(status=RunStatus.ABANDONED, finished_at=utcnow(), message=message)
        )
        return int(cast(CursorResult[Any], result).rowcount)

    def finish(self, run_id: int, status: RunStatus, message: str, **values: object) -> None:
        with self.store.session() as session, session.begin():
            session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(status=status, message=message, finished_at=utcnow(), **values)
            )

    def last_attempt(self, data: str) -> TrainingRun | None:
        """The latest finished run that trained on exactly this data, if any."""
        with self.store.session() as session:
            return session.scalar(
                select(TrainingRun)
                .where(
                    TrainingRun.data_fingerprint == data,
                    TrainingRun.status.in_([RunStatus.PROMOTED, RunStatus.REJECTED]),
                )
                .order_by(TrainingRun.id.desc())
                .limit(1)
            )

    def all(self) -> list[TrainingRun]:
        """Every run, newest first."""
        with self.store.session() as session:
            return list(session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())))

    def get(self, run_id: int) -> TrainingRun | None:
        with self.store.session() as session:
            return session.get(TrainingRun, run_id)
