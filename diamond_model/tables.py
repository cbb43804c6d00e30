"""SQLAlchemy 2 table definitions: batches, appraisals, rejected rows, model versions, runs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column


def utcnow() -> datetime:
    """Naive UTC timestamp: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Batch(Base):
    """One uploaded file: who sent it, when, its content hash and what became of its rows."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    ignored_columns: Mapped[str] = mapped_column(Text, default="")


class Appraisal(Base):
    """One stone as the expert appraised it."""

    __tablename__ = "appraisals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    carat: Mapped[float] = mapped_column(Float)
    cut: Mapped[str] = mapped_column(String(16), index=True)
    color: Mapped[str] = mapped_column(String(2), index=True)
    clarity: Mapped[str] = mapped_column(String(8), index=True)
    depth: Mapped[float] = mapped_column(Float)
    table_pct: Mapped[float] = mapped_column("table", Float)
    price: Mapped[float] = mapped_column(Float)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    z: Mapped[float] = mapped_column(Float)


class RejectedRow(Base):
    """A problem found in an uploaded row; a row with several problems has several entries."""

    __tablename__ = "rejected_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class ModelVersion(Base):
    """A trained model with its provenance, evaluation and the serialized artefact."""

    __tablename__ = "model_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    algorithm: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JSON)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    train_rows: Mapped[int] = mapped_column(Integer)
    holdout_rows: Mapped[int] = mapped_column(Integer)
    max_batch_id: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON)
    calibration: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    training_seconds: Mapped[float] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artefact: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class ChampionEvent(Base):
    """Each change of champion; replaying them (promote pushes, rollback pops) gives the history."""

    __tablename__ = "champion_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class Champion(Base):
    """A single row naming the serving model: what every process checks before a quote."""

    __tablename__ = "champion"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrainingRun(Base):
    """One retrain attempt, recorded whatever its outcome."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    candidate_metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    champion_metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Lock(Base):
    """A named lease; taken with one conditional UPDATE, so it works the same on every database."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120), nullable=True)
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
