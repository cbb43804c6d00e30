"""The store on SQLite and PostgreSQL: atomic batches, one rule for duplicates, set-aside
measurements kept as missing with notes, withdraw and restore, comparables, the lease."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from diamond_model.data.validation import UnusableFileError
from diamond_model.learning.loop import LearningLoop
from diamond_model.pricing.comparables import closest
from diamond_model.storage import lease
from diamond_model.storage.store import FileTooLargeError, Store
from diamond_model.storage.tables import Appraisal, Batch, RejectedRow, SetAside
from tests.helpers import BUNDLED_STORED, csv_bytes, dated


def counts(store: Store) -> tuple[int, int, int, int]:
    with store.session() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(t)))
            for t in (Batch, Appraisal, RejectedRow, SetAside)
        )


def test_the_bundled_file_is_stored_with_its_defects_reported(
    pipeline: LearningLoop, dataset_bytes: bytes
) -> None:
    submission = pipeline.ingest(dataset_bytes, "diamonds.csv", "tester")
    preview = submission.preview
    assert (preview.result.total_rows, preview.result.n_accepted) == (5000, 4990)
    assert submission.stored == BUNDLED_STORED, "line 4945 repeats line 2431"
    assert preview.duplicate_of_line == {4945: 2431}
    batches, stored, rejected, set_aside = counts(pipeline.store)
    assert (batches, stored, rejected) == (1, BUNDLED_STORED, 10)
    notes = pipeline.store.set_aside_rows(submission.batch_id)
    zero = notes.query("line == 4323")
    assert set(zero["column"]) == {"x", "y", "z"} and (zero["value"] == "0.0").all()
    row = pipeline.store.appraisals().set_index("line").loc[4323]
    assert row["price"] == 18034 and np.isnan(row["x"]), "kept, its millimetres missing"
    batch = pipeline.store.batch(submission.batch_id)
    assert batch.uploaded_by == "tester" and batch.rows_set_aside == notes["line"].nunique() == 7
    assert set_aside == len(notes) == 9, "x, y, z of line 4323 are three notes"
    assert batch.rows_duplicate == 1


@pytest.mark.parametrize(
    "variant",
    ["identical", "crlf", "semicolon", "one-extra-row", "reordered"],
)
def test_re_uploads_in_another_format_add_nothing_but_what_is_new(
    pipeline: LearningLoop, appraisals: pd.DataFrame, variant: str
) -> None:
    first = appraisals.iloc[:300]
    pipeline.ingest(csv_bytes(first), "first.csv", "tester")
    again = {
        "identical": csv_bytes(first),
        "crlf": csv_bytes(first, crlf=True),
        "semicolon": csv_bytes(first, sep=";"),
        "one-extra-row": csv_bytes(appraisals.iloc[:301]),
        "reordered": csv_bytes(first.iloc[::-1][list(first.columns[::-1])]),
    }[variant]
    submission = pipeline.ingest(again, "again.csv", "tester")
    expected = 1 if variant == "one-extra-row" else 0
    assert pipeline.store.count_appraisals() == 300 + expected
    assert submission.stored == expected
    if variant != "identical":
        table = submission.preview.duplicates_table()
        assert len(table) == 300 and table["repeats"].str.startswith("batch 1, line ").all()
    assert "already stored" in " ".join(submission.preview.sentences() + submission.sentences())


def test_a_dated_reappraisal_is_a_new_appraisal_and_an_undated_repeat_is_not(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    rows = appraisals.iloc[:50]
    pipeline.ingest(csv_bytes(dated(rows, date(2026, 3, 1))), "march.csv", "tester")
    later = pipeline.ingest(csv_bytes(dated(rows, date(2026, 4, 1))), "april.csv", "tester")
    assert later.stored == 50, "same stones and prices, appraised again a month later"
    undated = pipeline.ingest(csv_bytes(rows), "undated.csv", "tester")
    assert undated.stored == 0, "no date in the file: the same stone at the same price"
    kept = pipeline.ingest(
        csv_bytes(rows.assign(note="x")), "twins.csv", "tester", keep_duplicates=True
    )
    assert kept.stored == 50, "kept explicitly"


def test_an_upload_without_dates_is_dated_the_day_it_was_stored(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    rows = appraisals.iloc[:30].drop(columns="appraised_on", errors="ignore")
    pipeline.ingest(csv_bytes(rows), "undated.csv", "tester", upload_date=date(2026, 6, 15))
    pipeline.ingest(csv_bytes(dated(appraisals.iloc[30:40], date(2026, 2, 1))), "d.csv", "t")
    pipeline.ingest(
        csv_bytes(appraisals.iloc[40:45].drop(columns="appraised_on", errors="ignore")),
        "today.csv",
        "t",
    )
    stored = pipeline.store.appraisals()
    days = pd.to_datetime(stored["appraised_on"]).dt.date
    assert (days[stored["batch_id"] == 1] == date(2026, 6, 15)).all() and len(days) == 45
    assert (days[stored["batch_id"] == 2] == date(2026, 2, 1)).all(), "a date given is kept"
    assert (days[stored["batch_id"] == 3] == date.today()).all(), "by default, the upload's day"


def test_a_failure_midway_leaves_the_database_unchanged(
    pipeline: LearningLoop, small_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pipeline.store
    original = store._insert_rows

    def insert_then_fail(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_insert_rows", insert_then_fail)
    with pytest.raises(OSError, match="disk full"):
        pipeline.ingest(small_csv, "a.csv", "tester")
    assert counts(store) == (0, 0, 0, 0)
    monkeypatch.undo()
    assert pipeline.ingest(small_csv, "a.csv", "tester").stored == 1200, (
        "the file can be sent again"
    )


def test_unusable_file_writes_nothing(pipeline: LearningLoop) -> None:
    with pytest.raises(UnusableFileError, match="Required column"):
        pipeline.ingest(b"carat,cut\n1,Ideal\n", "bad.csv", "tester")
    assert counts(pipeline.store) == (0, 0, 0, 0)


def test_upload_limits(pipeline: LearningLoop, small_csv: bytes) -> None:
    pipeline.store.max_upload_bytes = 1000
    with pytest.raises(FileTooLargeError, match="the limit is 1,000"):
        pipeline.ingest(small_csv, "big.csv", "tester")
    pipeline.store.max_upload_bytes, pipeline.store.max_rows = 10**9, 100
    with pytest.raises(FileTooLargeError, match="1,200 rows; the limit is 100"):
        pipeline.ingest(small_csv, "big.csv", "tester")
    assert counts(pipeline.store) == (0, 0, 0, 0)


def test_withdrawn_batches_stay_stored_but_are_not_used(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:100]), "a.csv", "tester")
    second = pipeline.ingest(csv_bytes(appraisals.iloc[100:160]), "b.csv", "tester")
    version = pipeline.store.data_version()
    pipeline.set_withdrawn(second.batch_id, True, note="wrong prices")
    assert pipeline.store.count_appraisals() == 100
    assert pipeline.store.count_appraisals(include_withdrawn=True) == 160
    assert len(pipeline.store.appraisals(batch_id=second.batch_id)) == 60, "kept for audit"
    assert pipeline.store.data_version() != version
    batch = pipeline.store.batch(second.batch_id)
    assert batch.withdrawn_at is not None and batch.withdrawn_note == "wrong prices"
    stone = appraisals.iloc[130]
    nearby = pipeline.store.comparables(stone.to_dict(), 0.25, 8)
    assert (nearby["batch_id"] != second.batch_id).all(), "no comparables from a withdrawn batch"
    again = pipeline.ingest(csv_bytes(appraisals.iloc[100:160]), "b.csv", "tester")
    assert again.already_stored and "restore" in again.sentences()[0]
    pipeline.set_withdrawn(second.batch_id, False)
    assert pipeline.store.count_appraisals() == 160
    assert pipeline.store.data_version() == (version[0], version[1])


def test_comparables_are_the_nearest_stones_within_one_grade(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals), "all.csv", "tester")
    stone = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS2"}
    nearby = closest(pipeline.store.comparables(stone, 0.25, 8), stone, 8)
    assert len(nearby) == 8
    assert nearby["carat"].between(0.8, 1.25).all()
    assert nearby["color"].astype(str).isin(["H", "G", "F"]).all()
    assert nearby["distance"].is_monotonic_increasing
    assert "appraised_on" in nearby


@pytest.mark.parametrize("carat", [0.3, 0.71, 1.0, 1.5, 2.6])
def test_comparables_from_narrow_windows_are_those_of_the_full_window(
    pipeline: LearningLoop, appraisals: pd.DataFrame, carat: float
) -> None:
    """The store tries ±2, 5 and 10 % before ±25 %: the rows must be exactly the 160 nearest of
    the full window, in the same order (checked against pandas on every stored appraisal)."""
    pipeline.ingest(csv_bytes(appraisals), "all.csv", "tester")
    stone = {"carat": carat, "cut": "Ideal", "color": "G", "clarity": "VS2"}
    got = pipeline.store.comparables(stone, 0.25, 8)
    every = pipeline.store.appraisals()
    inside = every[
        every["color"].astype(str).isin(["H", "G", "F"])
        & every["clarity"].astype(str).isin(["SI1", "VS2", "VS1"])
        & every["carat"].between(carat / 1.25, carat * 1.25)
    ]
    expected = inside.assign(gap=(inside["carat"] - carat).abs()).sort_values(["gap", "id"])
    assert got["id"].tolist() == expected["id"].head(160).tolist()


def test_appraisals_filter_by_batch_and_grade(pipeline: LearningLoop, small_csv: bytes) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")
    ideal = pipeline.store.appraisals(grades={"cut": "Ideal"})
    assert len(ideal) > 0 and (ideal["cut"] == "Ideal").all()
    assert len(pipeline.store.appraisals(grades={"cut": ["Ideal", "Fair"]})) > len(ideal)
    assert len(pipeline.store.appraisals(batch_id=2)) == 0
    page = pipeline.store.appraisals(limit=10, offset=5)
    assert page["line"].tolist() == list(range(7, 17))


def test_the_lease_is_exclusive_until_released_or_lapsed(pipeline: LearningLoop) -> None:
    store = pipeline.store
    token = lease.acquire(store, "retrain", seconds=60)
    assert token is not None
    assert lease.acquire(store, "retrain", seconds=60) is None
    assert lease.request_follow_up(store, "retrain")
    assert not lease.release(store, "retrain", token), "a follow-up was asked for: still held"
    assert lease.release(store, "retrain", token), "asked once: now released"
    assert not lease.request_follow_up(store, "retrain"), "nobody holds it"
    assert lease.acquire(store, "retrain", seconds=-1) is not None
    assert lease.acquire(store, "retrain", seconds=60) is not None, "a lapsed lease is taken over"


def test_failed_attempts_are_counted_across_window_boundaries(pipeline: LearningLoop) -> None:
    from datetime import datetime, timedelta

    from diamond_model.serving.metering import Attempts, Backoff

    attempts = Attempts(pipeline.store, Backoff(10, timedelta(minutes=10)), timedelta(minutes=10))
    boundary = datetime(2026, 11, 26, 23, 40)
    for _ in range(6):
        assert attempts.failed("guesser", boundary - timedelta(seconds=1)) is None
    for _ in range(4):
        assert attempts.failed("guesser", boundary + timedelta(seconds=1)) is None
    # Ten either side of a boundary: the eleventh waits (a fixed window would count 5 of 10).
    assert attempts.failed("guesser", boundary + timedelta(seconds=2)) == 1
    assert attempts.waiting("guesser", boundary + timedelta(seconds=2)) == 1
    assert attempts.waiting("guesser", boundary + timedelta(seconds=3)) is None, "only a second"
    assert attempts.waiting("someone else", boundary) is None
    later = boundary + timedelta(minutes=25)
    assert attempts.failed("guesser", later) is None, "old failures are forgotten"


def test_each_failure_past_the_free_ones_doubles_the_wait_up_to_the_cap(
    pipeline: LearningLoop,
) -> None:
    from datetime import datetime, timedelta

    from diamond_model.serving.metering import Attempts, Backoff

    attempts = Attempts(pipeline.store, Backoff(3, timedelta(seconds=60)), timedelta(minutes=10))
    now = datetime(2026, 11, 26, 10, 0, 5)
    waits = [attempts.failed("tab", now) for _ in range(11)]
    assert waits == [None, None, None, 1, 2, 4, 8, 16, 32, 60, 60]
    assert attempts.waiting("tab", now + timedelta(seconds=59)) == 1
    assert attempts.waiting("tab", now + timedelta(seconds=60)) is None, "a wait, not a lockout"


def test_quote_records_are_kept_for_the_retention_and_then_purged(pipeline: LearningLoop) -> None:
    from datetime import timedelta

    from diamond_model.serving.quote_records import QuoteLog
    from diamond_model.storage.tables import utcnow

    log = QuoteLog(pipeline.store, retention_days=1)
    now = utcnow()

    def record(quote_id: str, age: timedelta) -> dict[str, object]:
        return {
            "id": quote_id,
            "created_at": now - age,
            "key_id": None,
            "model_version": 1,
            "market_period": "2026-01",
            "stone": {"carat": 1.0},
            "answer": {"price": 6000.0},
        }

    log.add([record("old", timedelta(days=2)), record("new", timedelta(hours=1))])
    assert log.get("old") is not None, "pending records answer before they are written"
    log.flush()
    assert log.count() == 1, "the expired record was purged as the batch was written"
    assert log.get("old") is None
    assert log.get("new")["answer"] == {"price": 6000.0}
