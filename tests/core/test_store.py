"""The SQL store on SQLite and PostgreSQL: atomic ingest, no doubles, export, locks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from diamond_model.pipeline import Pipeline
from diamond_model.store import AlreadyIngestedError, FileTooLargeError, Store
from diamond_model.tables import Appraisal, Batch, RejectedRow
from diamond_model.validation import UnusableFileError


def counts(store: Store) -> tuple[int, int, int]:
    with store.session() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(t)))
            for t in (Batch, Appraisal, RejectedRow)
        )


def test_ingest_stores_good_rows_and_rejections(pipeline: Pipeline, dataset_bytes: bytes) -> None:
    report = pipeline.store.ingest(dataset_bytes, "diamonds.csv", "tester")
    assert (report.rows_total, report.rows_accepted, report.rows_rejected) == (5000, 4985, 15)
    assert counts(pipeline.store) == (1, 4985, 17)  # line 4323 has three bad cells
    batch = pipeline.store.batch(report.batch_id)
    assert batch.uploaded_by == "tester" and len(batch.sha256) == 64
    rejected = pipeline.store.rejected_rows(report.batch_id)
    zero = rejected.query("line == 4323")
    assert set(zero["column"]) == {"x", "y", "z"}
    assert zero["raw"].iloc[0] == "2.25,Premium,H,SI2,62.8,59.0,18034,0.0,0.0,0.0"
    stored = pipeline.store.appraisals()
    assert stored["cut"].cat.ordered and stored["price"].min() > 0
    assert stored["line"].iloc[0] == 2


def test_same_content_twice_is_refused_and_nothing_doubles(
    pipeline: Pipeline, small_csv: bytes
) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    before = counts(pipeline.store)
    with pytest.raises(AlreadyIngestedError, match="already ingested as batch 1"):
        pipeline.store.ingest(small_csv, "renamed.csv")
    assert counts(pipeline.store) == before


def test_failure_midway_leaves_the_database_unchanged(
    pipeline: Pipeline, small_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pipeline.store
    original = store._insert_rows

    def insert_then_fail(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_insert_rows", insert_then_fail)
    with pytest.raises(OSError, match="disk full"):
        store.ingest(small_csv, "a.csv")
    assert counts(store) == (0, 0, 0)
    monkeypatch.undo()
    assert store.ingest(small_csv, "a.csv").rows_accepted == 1200, "the file can be sent again"


def test_unusable_file_writes_nothing(pipeline: Pipeline) -> None:
    with pytest.raises(UnusableFileError, match="Required column"):
        pipeline.store.ingest(b"carat,cut\n1,Ideal\n", "bad.csv")
    assert counts(pipeline.store) == (0, 0, 0)


def test_upload_limits(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.max_upload_bytes = 1000
    with pytest.raises(FileTooLargeError, match="the limit is 1,000"):
        pipeline.store.ingest(small_csv, "big.csv")
    pipeline.store.max_upload_bytes, pipeline.store.max_rows = 10**9, 100
    with pytest.raises(FileTooLargeError, match="1,200 rows; the limit is 100"):
        pipeline.store.ingest(small_csv, "big.csv")
    assert counts(pipeline.store) == (0, 0, 0)


def test_export_writes_every_appraisal_and_rejection(
    pipeline: Pipeline, dataset_bytes: bytes, tmp_path: Path
) -> None:
    pipeline.store.ingest(dataset_bytes, "diamonds.csv")
    appraisals_path, rejected_path = pipeline.store.export(tmp_path / "out")
    appraisals = pd.read_csv(appraisals_path)
    rejected = pd.read_csv(rejected_path)
    assert len(appraisals) == 4985 and (appraisals["batch_id"] == 1).all()
    assert list(appraisals.columns[:2]) == ["batch_id", "line"]
    assert len(rejected) == 17 and "reason" in rejected.columns


def test_appraisals_filter_by_batch_and_grade(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    ideal = pipeline.store.appraisals(grades={"cut": "Ideal"})
    assert len(ideal) > 0 and (ideal["cut"] == "Ideal").all()
    assert len(pipeline.store.appraisals(batch_id=2)) == 0
    page = pipeline.store.appraisals(limit=10, offset=5)
    assert page["line"].tolist() == list(range(7, 17))


def test_lock_is_exclusive_until_released_or_expired(pipeline: Pipeline) -> None:
    store = pipeline.store
    token = store.acquire_lock("retrain", seconds=60)
    assert token is not None
    assert store.acquire_lock("retrain", seconds=60) is None
    store.release_lock("retrain", token)
    assert store.acquire_lock("retrain", seconds=-1) is not None, "released: free again"
    assert store.acquire_lock("retrain", seconds=60) is not None, "an expired lease is taken over"
