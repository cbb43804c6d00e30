"""The SQL store: batches stored atomically, appraisals read back (withdrawn batches left out),
and comparables. The engine lives in `engine`, the retraining lease's SQL in `lease`.

SQLite is the embedded default, PostgreSQL the scale-out option; both run the same statements.

About 490 lines: `Store` owns every transaction that writes appraisals (a batch with its
rejections, notes and audit entry, written one batch at a time), and the reads that must filter
exactly as those writes mark rows (withdrawn batches, held suspects); kept together so one file
says what "in use" means.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVarTuple, cast

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Result,
    Row,
    Select,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from diamond_model.data.identity import already_stored
from diamond_model.data.reading import RawTable
from diamond_model.data.schema import APPRAISAL_COLUMNS, APPRAISED_ON, GRADES, grade_dtype
from diamond_model.data.validation import ValidationResult, validate_csv
from diamond_model.storage import audit, migrate
from diamond_model.storage.engine import make_engine
from diamond_model.storage.tables import (
    Appraisal,
    Batch,
    ChampionPointer,
    Lock,
    RejectedRow,
    SetAside,
    utcnow,
)

log = logging.getLogger(__name__)
Columns = TypeVarTuple("Columns")

RETRAIN_LOCK = "retrain"
WRITE_LOCK = 0x6469616D  # PostgreSQL advisory lock held while a batch is written ("diam")
KEY_CHUNK = 900  # stay under SQLite's 999 bound parameters per statement
STORED_COLUMNS = ["id", "batch_id", "line", *APPRAISAL_COLUMNS, APPRAISED_ON, "stone_key"]
NARROW_WINDOWS = (0.02, 0.05, 0.1)  # comparables: weight windows tried before the full one


class AlreadyIngestedError(ValueError):
    """The same file content is stored already; nothing was written."""

    def __init__(self, batch_id: int, filename: str, withdrawn: bool = False) -> None:
        self.batch_id = batch_id
        self.withdrawn = withdrawn
        hint = (
            f" It is withdrawn: `restore {batch_id}` brings it back."
            if withdrawn
            else " Nothing was added."
        )
        super().__init__(f"This file is already stored as batch {batch_id} ('{filename}').{hint}")


class FileTooLargeError(ValueError):
    """The upload is over the configured size or row limit."""


class UnknownBatchError(ValueError):
    """No batch with that id."""


@dataclass(frozen=True)
class StoredBatch:
    """What was written for one batch."""

    batch_id: int
    rows_stored: int
    rows_duplicate: int


def in_use() -> ColumnElement[bool]:
    """SQL condition: the appraisal is used (its batch is active and it is not held)."""
    return active_batches() & Appraisal.held.is_(False)


def active_batches() -> ColumnElement[bool]:
    """SQL condition: the appraisal's batch is not withdrawn."""
    withdrawn = select(Batch.id).where(Batch.withdrawn_at.is_not(None))
    return Appraisal.batch_id.not_in(withdrawn)


class Store:
    """Appraisals and their batches in one SQL database (SQLite or PostgreSQL)."""

    def __init__(self, url: str, max_upload_bytes: int = 20_000_000, max_rows: int = 200_000):
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.max_upload_bytes = max_upload_bytes
        self.max_rows = max_rows

    def create_schema(self) -> tuple[str | None, str]:
        """Upgrade the schema to the latest migration and add the singleton rows; safe to call
        any number of times, from several processes at once. Returns (revision before, after)."""
        revisions = migrate.upgrade(self.engine)
        with self.session() as session:
            # One row, one commit: a pending row would be flushed by the next `get`, and its
            # clash with another process's row would then escape the `except` below.
            for kind, key, row in (
                (ChampionPointer, 1, lambda: ChampionPointer(id=1, version=None)),
                (Lock, RETRAIN_LOCK, lambda: Lock(name=RETRAIN_LOCK)),
            ):
                if session.get(kind, key) is None:
                    session.add(row())
                    try:
                        session.commit()
                    except IntegrityError:  # another process created it first
                        session.rollback()
        return revisions

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(1)).scalar() == 1

    # ---- uploads ------------------------------------------------------------------------------

    def read_upload(
        self, data: bytes, today: date | None = None, sheet: str | None = None
    ) -> tuple[RawTable, ValidationResult]:
        """Validate an appraisal file within the size and row limits, writing nothing."""
        if len(data) > self.max_upload_bytes:
            raise FileTooLargeError(
                f"The file is {len(data):,} bytes; the limit is {self.max_upload_bytes:,}. "
                "Split it into smaller files."
            )
        raw, result = validate_csv(data, "appraisal", today, sheet)
        if result.total_rows > self.max_rows:
            raise FileTooLargeError(
                f"The file has {result.total_rows:,} rows; the limit is {self.max_rows:,}. "
                "Split it into smaller files."
            )
        return raw, result

    def find_batch_by_hash(self, sha256: str) -> Batch | None:
        with self.session() as session:
            return session.scalar(select(Batch).where(Batch.sha256 == sha256))

    def stored_matches(
        self, keys: np.ndarray, connection: Connection | None = None
    ) -> pd.DataFrame:
        """Active stored appraisals with any of these stone keys: key, date, batch and line."""
        columns = ["stone_key", "appraised_on", "batch_id", "line"]
        unique = np.unique(keys).tolist()
        parts: list[Row[int, date, int, int]] = []
        with nullcontext(connection) if connection is not None else self.engine.connect() as conn:
            for start in range(0, len(unique), KEY_CHUNK):
                chunk = unique[start : start + KEY_CHUNK]
                query = select(
                    Appraisal.stone_key, Appraisal.appraised_on, Appraisal.batch_id, Appraisal.line
                ).where(Appraisal.stone_key.in_(chunk), active_batches())
                parts.extend(conn.execute(query).all())
        return pd.DataFrame(parts, columns=columns)

    def insert_batch(
        self,
        *,
        sha256: str,
        filename: str,
        uploaded_by: str,
        result: ValidationResult,
        raw: RawTable,
        rows: pd.DataFrame,
        live: dict[str, object] | None,
        skip_stored: bool = True,
    ) -> StoredBatch:
        """Write a batch, its rows, rejections and set-aside notes in one transaction.

        Batches are written one at a time (SQLite's single writer; a transaction-scoped advisory
        lock on PostgreSQL), and with `skip_stored` the rows are checked once more, inside that
        transaction, against what is stored: two uploads previewed at the same moment cannot both
        store the same appraisal. `rows` carries `dated` (the file gave the row's date)."""
        rejected = result.rejections
        positions = {line: k for k, line in enumerate(raw.lines.tolist())}
        lines = [line for line in rejected["line"].unique().tolist() if line in positions]
        texts = raw.raw_text(np.asarray([positions[line] for line in lines], dtype=int))
        raw_text = dict(zip(lines, texts, strict=True))
        duplicates = result.n_accepted - len(rows)
        try:
            with self.session() as session, session.begin():
                batch = Batch(
                    filename=filename[:255],
                    sha256=sha256,
                    uploaded_by=uploaded_by[:120],
                    uploaded_at=utcnow(),
                    rows_total=result.total_rows,
                    rows_accepted=len(rows),
                    rows_rejected=result.n_rejected,
                    rows_duplicate=duplicates,
                    rows_set_aside=int(result.notes["line"].nunique()) if len(result.notes) else 0,
                    rows_held=int(rows["held"].sum()) if "held" in rows else 0,
                    ignored_columns=",".join(result.ignored_columns),
                    live=live,
                )
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
                session.add(batch)
                session.flush()  # on SQLite the first write: from here this transaction is alone
                if skip_stored and len(rows):
                    repeated = self._stored_since_preview(session, rows)
                    if repeated.any():
                        rows = rows.loc[~repeated]
                        duplicates = result.n_accepted - len(rows)
                        batch.rows_accepted, batch.rows_duplicate = len(rows), duplicates
                        batch.rows_held = int(rows["held"].sum()) if "held" in rows else 0
                self._insert_rows(session, batch.id, rows, rejected, raw_text, result.notes)
                batch_id = batch.id
                audit.record(
                    session,
                    uploaded_by,
                    "upload",
                    f"batch {batch_id}",
                    f"{filename}: {len(rows):,} appraisals stored ({batch.rows_held:,} held for "
                    f"review), {result.n_rejected:,} rows rejected, {duplicates:,} already stored",
                )
        except IntegrityError as error:
            again = self.find_batch_by_hash(sha256)
            if again is not None:  # the same file was stored concurrently
                raise AlreadyIngestedError(again.id, again.filename) from error
            raise
        log.info("stored %s as batch %d: %d appraisals", filename, batch_id, len(rows))
        return StoredBatch(batch_id=batch_id, rows_stored=len(rows), rows_duplicate=duplicates)

    def _stored_since_preview(self, session: Session, rows: pd.DataFrame) -> np.ndarray:
        """Which `rows` repeat an active stored appraisal now (stored after their preview)."""
        keys = rows["stone_key"].to_numpy(dtype=np.int64)
        stored = self.stored_matches(keys, session.connection())
        dates = pd.to_datetime(rows[APPRAISED_ON]).to_numpy(dtype="datetime64[D]")
        repeats = already_stored(keys, dates, rows["dated"].to_numpy(dtype=bool), stored)
        mask = np.zeros(len(rows), dtype=bool)
        mask[repeats["position"].to_numpy(dtype=int)] = True
        return mask

    def _insert_rows(
        self,
        session: Session,
        batch_id: int,
        rows: pd.DataFrame,
        rejected: pd.DataFrame,
        raw_text: dict[int, str],
        notes: pd.DataFrame,
    ) -> None:
        # Core inserts are keyed by column name, so "table" (attribute `table_pct`) stays "table".
        records = rows[["line", *APPRAISAL_COLUMNS, APPRAISED_ON, "stone_key"]].assign(
            batch_id=batch_id,
            held=rows["held"].astype(bool) if "held" in rows else False,
        )
        records = records.astype({"cut": str, "color": str, "clarity": str})
        records[APPRAISED_ON] = [d.date() for d in pd.to_datetime(records[APPRAISED_ON])]
        if len(records):
            session.execute(Appraisal.__table__.insert(), _records(records))
        if len(rejected):
            # Rows with the wrong number of fields are not in the table; their value is the row.
            raw = [
                raw_text.get(line, value)
                for line, value in zip(rejected["line"], rejected["value"], strict=True)
            ]
            problems = rejected.assign(
                batch_id=batch_id, raw=raw, value=rejected["value"].astype(str).str.slice(0, 500)
            )
            session.execute(RejectedRow.__table__.insert(), _records(problems))
        kept = notes[notes["line"].isin(rows["line"])] if len(notes) else notes
        if len(kept):
            session.execute(
                SetAside.__table__.insert(),
                _records(kept.assign(batch_id=batch_id, value=kept["value"].astype(str).str[:500])),
            )

    # ---- withdraw and restore -----------------------------------------------------------------

    def set_withdrawn(
        self, batch_id: int, withdrawn: bool, note: str = "", session: Session | None = None
    ) -> Batch:
        """Withdraw a batch (kept for audit, no longer used) or restore it; inside `session`'s
        transaction when one is given (the caller commits), in its own otherwise."""
        if session is None:
            with self.session() as own, own.begin():
                return self.set_withdrawn(batch_id, withdrawn, note, own)
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise UnknownBatchError(
                f"There is no batch {batch_id}; `python -m diamond_model batches` lists them."
            )
        batch.withdrawn_at = utcnow() if withdrawn else None
        batch.withdrawn_note = note[:500] if withdrawn else ""
        session.flush()
        return batch

    # ---- reads --------------------------------------------------------------------------------

    def _filtered(
        self,
        query: Select[*Columns],
        batch_id: int | None,
        grades: dict[str, str | list[str]] | None,
        include_withdrawn: bool,
    ) -> Select[*Columns]:
        if batch_id is not None:
            query = query.where(Appraisal.batch_id == batch_id, Appraisal.held.is_(False))
        elif not include_withdrawn:
            query = query.where(in_use())
        for column, value in (grades or {}).items():
            values = [value] if isinstance(value, str) else list(value)
            query = query.where(getattr(Appraisal, column).in_(values))
        return query

    def count_appraisals(
        self,
        batch_id: int | None = None,
        grades: dict[str, str | list[str]] | None = None,
        include_withdrawn: bool = False,
    ) -> int:
        query = self._filtered(
            select(func.count(Appraisal.id)), batch_id, grades, include_withdrawn
        )
        with self.session() as session:
            return int(session.scalar(query) or 0)

    def appraisals(
        self,
        batch_id: int | None = None,
        grades: dict[str, str | list[str]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_withdrawn: bool = False,
        held: bool = False,
    ) -> pd.DataFrame:
        """Stored appraisals as a typed frame (grades as ordered categories), oldest first.

        Withdrawn batches are left out unless asked for (or a batch is named); `held` gives the
        suspects held for review (in active batches) instead of the appraisals in use."""
        columns = [
            Appraisal.id,
            Appraisal.batch_id,
            Appraisal.line,
            *(
                getattr(Appraisal, "table_pct" if c == "table" else c).label(c)
                for c in APPRAISAL_COLUMNS
            ),
            Appraisal.appraised_on,
            Appraisal.stone_key,
        ]
        query = (
            select(*columns)
            .where(Appraisal.held.is_(True), active_batches())
            .order_by(Appraisal.id)
            if held
            else self._filtered(
                select(*columns).order_by(Appraisal.id), batch_id, grades, include_withdrawn
            )
        )
        if limit is not None:
            query = query.limit(limit).offset(offset)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return typed_appraisals(pd.DataFrame(rows, columns=STORED_COLUMNS))

    def comparables(self, stone: dict[str, object], window: float, n: int) -> pd.DataFrame:
        """Active appraisals within one grade of the stone's colour and clarity and within
        ±`window` of its weight, nearest weight first (at most 20 × n of them).

        Narrow weight windows are tried first: when ±2 % already holds 20 × n stones, every
        stone outside it is farther, so the answer is the same, and the database sorts a few
        hundred rows instead of every stone of those grades (32 ms → 3 ms at 180,000 stored
        appraisals, `make bench`)."""
        carat = float(cast(float, stone["carat"]))  # a stone's weight is a number
        near = {}
        for grade in ("color", "clarity"):
            scale = GRADES[grade]
            rank = scale.index(str(stone[grade]))
            near[grade] = list(scale[max(0, rank - 1) : rank + 2])
        bounds = [(carat * (1 - w), carat * (1 + w)) for w in NARROW_WINDOWS if w < window]
        bounds.append((carat / (1 + window), carat * (1 + window)))
        with self.engine.connect() as connection:
            for low, high in bounds:
                query = (
                    select(
                        Appraisal.id,
                        Appraisal.batch_id,
                        Appraisal.line,
                        *(
                            getattr(Appraisal, "table_pct" if c == "table" else c).label(c)
                            for c in APPRAISAL_COLUMNS
                        ),
                        Appraisal.appraised_on,
                        Appraisal.stone_key,
                    )
                    .where(
                        Appraisal.color.in_(near["color"]),
                        Appraisal.clarity.in_(near["clarity"]),
                        Appraisal.carat.between(low, high),
                        in_use(),
                    )
                    .order_by(func.abs(Appraisal.carat - carat), Appraisal.id)
                    .limit(20 * n)
                )
                rows = connection.execute(query).all()
                if len(rows) == 20 * n:
                    break
        return typed_appraisals(pd.DataFrame(rows, columns=STORED_COLUMNS))

    def max_batch_id(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.max(Batch.id))) or 0)

    def data_version(self) -> tuple[int, int]:
        """(latest batch, active appraisals): changes whenever appraisals are added, withdrawn
        or restored."""
        with self.session() as session:
            latest = session.scalar(select(func.max(Batch.id))) or 0
            active = session.scalar(select(func.count(Appraisal.id)).where(in_use()))
        return int(latest), int(active or 0)

    def batches(self) -> pd.DataFrame:
        """Every batch, oldest first, with a boolean `withdrawn`. A missing `withdrawn_at` or
        `live` is None, never pandas' NaT or NaN (which `is not None` and JSON both misread)."""
        columns = [c.name for c in Batch.__table__.columns]
        with self.engine.connect() as connection:
            rows = connection.execute(select(Batch.__table__).order_by(Batch.id)).all()
        frame = pd.DataFrame(rows, columns=columns)
        frame["withdrawn"] = frame["withdrawn_at"].notna().astype(bool)
        for column in ("withdrawn_at", "live"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        return frame

    def batch(self, batch_id: int) -> Batch | None:
        with self.session() as session:
            return session.get(Batch, batch_id)

    def rejected_rows(self, batch_id: int | None = None) -> pd.DataFrame:
        return self._findings(RejectedRow, batch_id, ["raw"])

    def set_aside_rows(self, batch_id: int | None = None) -> pd.DataFrame:
        return self._findings(SetAside, batch_id, [])

    def _findings(
        self, table: type[RejectedRow] | type[SetAside], batch_id: int | None, extra: list[str]
    ) -> pd.DataFrame:
        names = ["batch_id", "line", "column", "value", "reason", *extra]
        query = select(*(getattr(table, n) for n in names)).order_by(
            table.batch_id, table.line, table.id
        )
        if batch_id is not None:
            query = query.where(table.batch_id == batch_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return pd.DataFrame(rows, columns=names)


def typed_appraisals(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored rows with grades as ordered categories, numbers as floats and dates as dates."""
    frame = frame.copy()
    for column in GRADES:
        frame[column] = frame[column].astype(grade_dtype(column))
    for column in ("carat", "depth", "table", "price", "x", "y", "z"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame[APPRAISED_ON] = pd.to_datetime(frame[APPRAISED_ON])
    if "stone_key" in frame:
        frame["stone_key"] = frame["stone_key"].astype(np.int64)
    return frame


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts of plain Python values (no numpy scalars, NaN as None) for executemany."""
    clean = frame.astype(object).where(frame.notna(), None)
    return cast(list[dict[str, object]], clean.to_dict(orient="records"))  # str column names


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched (its result is a CursorResult)."""
    return int(cast("CursorResult[Any]", result).rowcount)
