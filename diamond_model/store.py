"""The SQL store: ingesting validated batches atomically, reading appraisals back, exporting."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from diamond_model.schema import APPRAISAL_COLUMNS, GRADES, grade_dtype
from diamond_model.tables import Appraisal, Base, Batch, Champion, Lock, RejectedRow, utcnow
from diamond_model.validation import RawTable, ValidationResult, validate_csv

log = logging.getLogger(__name__)

RETRAIN_LOCK = "retrain"


class AlreadyIngestedError(ValueError):
    """The same file content was ingested before; nothing was written."""

    def __init__(self, batch_id: int, filename: str) -> None:
        self.batch_id = batch_id
        super().__init__(
            f"This file was already ingested as batch {batch_id} ('{filename}'); "
            "nothing was added. Upload only new appraisals."
        )


class FileTooLargeError(ValueError):
    """The upload is over the configured size or row limit."""


@dataclass(frozen=True)
class IngestReport:
    """What became of an uploaded file."""

    batch_id: int
    filename: str
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rejections: pd.DataFrame
    ignored_columns: list[str]


def _sqlite_pragmas(dbapi_connection: object, _: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the dashboard and the API read while a batch or a model is being written.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with the settings this product needs on SQLite and PostgreSQL alike."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Appraisals and their batches in one SQL database (SQLite or PostgreSQL)."""

    def __init__(self, url: str, max_upload_bytes: int = 20_000_000, max_rows: int = 200_000):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.max_upload_bytes = max_upload_bytes
        self.max_rows = max_rows

    def create_schema(self) -> None:
        """Create missing tables and the singleton rows; safe to call any number of times."""
        Base.metadata.create_all(self.engine)
        with self.session() as session:
            if session.get(Champion, 1) is None:
                session.add(Champion(id=1, version=None))
            if session.get(Lock, RETRAIN_LOCK) is None:
                session.add(Lock(name=RETRAIN_LOCK))
            try:
                session.commit()
            except IntegrityError:  # another process created them first
                session.rollback()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(1)).scalar() == 1

    # ---- ingest -------------------------------------------------------------------------------

    def check_upload(self, data: bytes) -> None:
        if len(data) > self.max_upload_bytes:
            raise FileTooLargeError(
                f"The file is {len(data):,} bytes; the limit is {self.max_upload_bytes:,}. "
                "Split it into smaller files."
            )

    def preview(self, data: bytes) -> tuple[RawTable, ValidationResult]:
        """Validate an appraisal file without writing anything."""
        self.check_upload(data)
        raw, result = validate_csv(data, "appraisal")
        if result.total_rows > self.max_rows:
            raise FileTooLargeError(
                f"The file has {result.total_rows:,} rows; the limit is {self.max_rows:,}. "
                "Split it into smaller files."
            )
        return raw, result

    def find_batch_by_hash(self, sha256: str) -> Batch | None:
        with self.session() as session:
            return session.scalar(select(Batch).where(Batch.sha256 == sha256))

    def ingest(self, data: bytes, filename: str, uploaded_by: str = "unknown") -> IngestReport:
        """Validate and store a file in one transaction: its batch, good rows and rejections."""
        digest = hashlib.sha256(data).hexdigest()
        existing = self.find_batch_by_hash(digest)
        if existing is not None:
            raise AlreadyIngestedError(existing.id, existing.filename)
        raw, result = self.preview(data)
        rejected = result.rejections
        positions = {line: k for k, line in enumerate(raw.lines.tolist())}
        lines = [line for line in rejected["line"].unique().tolist() if line in positions]
        texts = raw.raw_text(np.asarray([positions[line] for line in lines], dtype=int))
        raw_text = dict(zip(lines, texts, strict=True))
        try:
            with self.session() as session, session.begin():
                batch = Batch(
                    filename=filename[:255],
                    sha256=digest,
                    uploaded_by=uploaded_by[:120],
                    rows_total=result.total_rows,
                    rows_accepted=result.n_accepted,
                    rows_rejected=result.n_rejected,
                    ignored_columns=",".join(result.ignored_columns),
                )
                session.add(batch)
                session.flush()
                self._insert_rows(session, batch.id, result, rejected, raw_text)
                batch_id = batch.id
        except IntegrityError as error:
            again = self.find_batch_by_hash(digest)
            if again is not None:  # the same file was ingested concurrently
                raise AlreadyIngestedError(again.id, again.filename) from error
            raise
        log.info("ingested %s as batch %d: %d accepted", filename, batch_id, result.n_accepted)
        return IngestReport(
            batch_id=batch_id,
            filename=filename,
            rows_total=result.total_rows,
            rows_accepted=result.n_accepted,
            rows_rejected=result.n_rejected,
            rejections=rejected,
            ignored_columns=result.ignored_columns,
        )

    def _insert_rows(
        self,
        session: Session,
        batch_id: int,
        result: ValidationResult,
        rejected: pd.DataFrame,
        raw_text: dict[int, str],
    ) -> None:
        # Core inserts are keyed by column name, so "table" (attribute `table_pct`) stays "table".
        records = result.accepted.assign(batch_id=batch_id).astype(
            {"cut": str, "color": str, "clarity": str}
        )
        if len(records):
            session.execute(Appraisal.__table__.insert(), _plain(records))
        if len(rejected):
            # Rows with the wrong number of fields are not in the table; their value is the row.
            raw = [
                raw_text.get(line, value)
                for line, value in zip(rejected["line"], rejected["value"], strict=True)
            ]
            problems = rejected.assign(
                batch_id=batch_id, raw=raw, value=rejected["value"].astype(str).str.slice(0, 500)
            )
            session.execute(RejectedRow.__table__.insert(), _plain(problems))

    # ---- reads --------------------------------------------------------------------------------

    def count_appraisals(
        self, batch_id: int | None = None, grades: dict[str, str] | None = None
    ) -> int:
        query = select(func.count(Appraisal.id))
        if batch_id is not None:
            query = query.where(Appraisal.batch_id == batch_id)
        for column, value in (grades or {}).items():
            query = query.where(getattr(Appraisal, column) == value)
        with self.session() as session:
            return int(session.scalar(query) or 0)

    def appraisals(
        self,
        batch_id: int | None = None,
        max_batch_id: int | None = None,
        grades: dict[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        carat_between: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """Stored appraisals as a typed frame (grades as ordered categories), oldest first."""
        query = select(Appraisal).order_by(Appraisal.id)
        if batch_id is not None:
            query = query.where(Appraisal.batch_id == batch_id)
        if max_batch_id is not None:
            query = query.where(Appraisal.batch_id <= max_batch_id)
        if carat_between is not None:
            query = query.where(Appraisal.carat.between(*carat_between))
        for column, value in (grades or {}).items():
            query = query.where(getattr(Appraisal, column) == value)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        columns = [
            Appraisal.id,
            Appraisal.batch_id,
            Appraisal.line,
            *(
                getattr(Appraisal, "table_pct" if c == "table" else c).label(c)
                for c in APPRAISAL_COLUMNS
            ),
        ]
        query = query.with_only_columns(*columns)
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all())
        if frame.empty:
            frame = pd.DataFrame(columns=["id", "batch_id", "line", *APPRAISAL_COLUMNS])
        for column in GRADES:
            frame[column] = frame[column].astype(grade_dtype(column))
        for column in ("carat", "depth", "table", "price", "x", "y", "z"):
            frame[column] = frame[column].astype(float)
        return frame

    def appraisals_near(self, carat: float, window: float = 0.25) -> pd.DataFrame:
        """Appraisals within ±`window` of a carat weight, with their batch's upload time."""
        low, high = carat / (1 + window), carat * (1 + window)
        frame = self.appraisals(carat_between=(low, high))
        if frame.empty:
            return frame.assign(uploaded_at=pd.Series(dtype="datetime64[ns]"))
        uploads = self.batches()[["id", "uploaded_at"]].rename(columns={"id": "batch_id"})
        return frame.merge(uploads, on="batch_id", how="left")

    def max_batch_id(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.max(Batch.id))) or 0)

    def batches(self) -> pd.DataFrame:
        with self.engine.connect() as connection:
            rows = connection.execute(select(Batch).order_by(Batch.id)).mappings().all()
            frame = pd.DataFrame(
                [{k: v for k, v in row.items()} for row in rows],
            )
        columns = [c.name for c in Batch.__table__.columns]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame.columns = columns
        return frame

    def batch(self, batch_id: int) -> Batch | None:
        with self.session() as session:
            return session.get(Batch, batch_id)

    def rejected_rows(self, batch_id: int | None = None) -> pd.DataFrame:
        query = select(
            RejectedRow.batch_id,
            RejectedRow.line,
            RejectedRow.column,
            RejectedRow.value,
            RejectedRow.reason,
            RejectedRow.raw,
        ).order_by(RejectedRow.batch_id, RejectedRow.line, RejectedRow.id)
        if batch_id is not None:
            query = query.where(RejectedRow.batch_id == batch_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        columns = ["batch_id", "line", "column", "value", "reason", "raw"]
        return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)

    def export(self, directory: Path) -> tuple[Path, Path]:
        """Write every stored appraisal and every rejected row to CSV files in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        appraisals_path, rejected_path = directory / "appraisals.csv", directory / "rejected.csv"
        appraisals = self.appraisals()
        appraisals[["batch_id", "line", *APPRAISAL_COLUMNS]].to_csv(appraisals_path, index=False)
        self.rejected_rows().to_csv(rejected_path, index=False)
        return appraisals_path, rejected_path

    # ---- locks --------------------------------------------------------------------------------

    def acquire_lock(self, name: str, seconds: int) -> str | None:
        """Take the named lease if free or expired; returns the holder token, or None."""
        token = uuid.uuid4().hex
        now = utcnow()
        with self.session() as session, session.begin():
            result = session.execute(
                update(Lock)
                .where(Lock.name == name)
                .where((Lock.holder.is_(None)) | (Lock.expires_at < now))
                .values(holder=token, acquired_at=now, expires_at=now + timedelta(seconds=seconds))
            )
        return token if result.rowcount == 1 else None

    def release_lock(self, name: str, token: str) -> None:
        with self.session() as session, session.begin():
            session.execute(
                update(Lock)
                .where(Lock.name == name, Lock.holder == token)
                .values(holder=None, expires_at=None)
            )

    def lock_state(self, name: str) -> Lock | None:
        with self.session() as session:
            return session.get(Lock, name)


def _plain(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts of plain Python values (no numpy scalars, NaN as None) for executemany."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict(orient="records")
