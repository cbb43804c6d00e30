"""SQLAlchemy 2 table definitions (the head of the Alembic migrations in `migrations/`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column


def utcnow() -> datetime:
    """Naive UTC timestamp: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    if TYPE_CHECKING:  # every class here maps one Table (SQLAlchemy says any FromClause)
        __table__: ClassVar[Table]


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
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_set_aside: Mapped[int] = mapped_column(Integer, default=0)
    rows_held: Mapped[int] = mapped_column(Integer, default=0)  # suspects held for review
    # The serving model's reading of the batch before any training (see `preview.LiveScore`).
    live: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    withdrawn_note: Mapped[str] = mapped_column(Text, default="")

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class Appraisal(Base):
    """One stone as the expert appraised it; measurements set aside at upload are NULL."""

    __tablename__ = "appraisals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    carat: Mapped[float] = mapped_column(Float)
    cut: Mapped[str] = mapped_column(String(16), index=True)
    color: Mapped[str] = mapped_column(String(2), index=True)
    clarity: Mapped[str] = mapped_column(String(8), index=True)
    depth: Mapped[float | None] = mapped_column(Float, nullable=True)
    table_pct: Mapped[float | None] = mapped_column("table", Float, nullable=True)
    price: Mapped[float] = mapped_column(Float)
    x: Mapped[float | None] = mapped_column(Float, nullable=True)
    y: Mapped[float | None] = mapped_column(Float, nullable=True)
    z: Mapped[float | None] = mapped_column(Float, nullable=True)
    appraised_on: Mapped[date] = mapped_column(Date, index=True)
    # 64-bit hash of the stone and its price (`dedupe.stone_keys`): finds re-uploads, and decides
    # which appraisals are held out.
    stone_key: Mapped[int] = mapped_column(BigInteger, index=True)
    # A suspect price held for review: stored, but kept out of training, evaluation and
    # comparables until the expert confirms or corrects it (`learning.preview`).
    held: Mapped[bool] = mapped_column(Boolean, default=False)


class Correction(Base):
    """A change the expert made to a stored appraisal (a corrected value, or a held suspect
    confirmed as it was), with who, when and why; `before` keeps the old values."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appraisal_id: Mapped[int] = mapped_column(ForeignKey("appraisals.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)


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


class SetAside(Base):
    """A measurement of a stored appraisal that was unusable and stored as missing."""

    __tablename__ = "set_aside"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class ModelVersion(Base):
    """A trained model with its provenance, evaluation and the serialized artefact."""

    __tablename__ = "model_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    algorithm: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    train_rows: Mapped[int] = mapped_column(Integer)
    holdout_rows: Mapped[int] = mapped_column(Integer)
    max_batch_id: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Accuracy on the fixed reference set of held-out appraisals (see `registry.reference`).
    reference_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    training_seconds: Mapped[float] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    format: Mapped[int] = mapped_column(Integer, default=1)
    artefact: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    # SHA-256 of `artefact`, recorded when the version is created and checked at every load.
    artefact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The same recipe fitted without the held-out appraisals: what the gate, the reference set
    # and the Performance page judge (the served `artefact` has seen them). None for a version
    # from before: it was itself fitted without them, so it is its own exam (`registry.exam`).
    exam_artefact: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    exam_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The active batches it was trained on (its held-out part too), and the batches its figures
    # came from (those and the reference set's): a version that learned from a withdrawn batch
    # is not served.
    learned_from: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    judged_on: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    # The gate refused it; kept whatever happens to it later (promoted by hand, rolled back).
    gate_refused: Mapped[bool] = mapped_column(Boolean, default=False)


class ChampionEvent(Base):
    """Each change of champion; replaying them (promote pushes, rollback pops) gives the history."""

    __tablename__ = "champion_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class ChampionPointer(Base):
    """A single row naming the serving model; `changed_at` is the stamp serving processes watch."""

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
    trigger: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text, default="")
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    candidate_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    champion_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    max_batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Lock(Base):
    """A named lease, taken with one conditional UPDATE and kept alive by a heartbeat; `pending`
    asks the holder to run once more before it lets go (a batch arrived while it worked)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120), nullable=True)
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ApiKey(Base):
    """A business client's key: only its SHA-256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    stones_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Dollars per 1,000 stones priced for this client; None: the installation's default price.
    price_per_1000: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Usage(Base):
    """Requests, stones priced, errors and requests refused for a limit, per key per hour: what
    billing and the Business page read."""

    __tablename__ = "usage"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    stones: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Counter(Base):
    """A fixed-window counter shared by every worker: quota days, rate-limit minutes and failed
    key attempts, keyed like 'rpm:3:2026-11-26T10:15'. Incremented by one atomic UPDATE."""

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class QuoteRecord(Base):
    """A quote as it was given: inputs, answer, model version and market level, for reproduction,
    audit and traffic monitoring; kept for the configured retention."""

    __tablename__ = "quotes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    market_period: Mapped[str] = mapped_column(String(7))
    stone: Mapped[dict[str, Any]] = mapped_column(JSON)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)


class CounterQuote(Base):
    """A quote handed to a customer at the counter: its number (what the customer brings back),
    who gave it and when, the customer's name and reference, the stone, and everything printed,
    so it can be found and reprinted exactly as given. Kept like the sales records they are
    (no retention purge)."""

    __tablename__ = "counter_quotes"

    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    given_by: Mapped[str] = mapped_column(String(120))
    customer: Mapped[str] = mapped_column(String(120), default="", index=True)
    reference: Mapped[str] = mapped_column(String(120), default="")
    model_version: Mapped[int] = mapped_column(Integer)
    market_period: Mapped[str] = mapped_column(String(7))
    stone: Mapped[dict[str, Any]] = mapped_column(JSON)
    printed: Mapped[dict[str, Any]] = mapped_column(JSON)


# Comparables look up stones within one grade of each colour and clarity in a carat window.
Index("ix_appraisals_grades_carat", Appraisal.color, Appraisal.clarity, Appraisal.carat)


class Person(Base):
    """Someone who signs in to the dashboard's expert mode: an expert or the owner. Only a slow
    hash of the personal code is stored (scrypt, `serving.people`)."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AuditEntry(Base):
    """Who did what to the data and the models, written in the same transaction as the change:
    uploads, corrections, withdrawals, restores, promotions, rollbacks and fall-backs."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    who: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(120))
    detail: Mapped[str] = mapped_column(Text, default="")


class IdempotencyRecord(Base):
    """The first answer to a POST sent with an `Idempotency-Key`, per client key (its hash), so a
    retry gets the same answer and is not charged again; kept 24 hours."""

    __tablename__ = "idempotency"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
