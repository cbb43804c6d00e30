"""Upgrades: a database made by the first release is upgraded to this one with nothing lost, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from diamond_model.data.identity import stone_keys
from diamond_model.data.schema import APPRAISAL_COLUMNS, BUNDLED_APPRAISED_ON, BUNDLED_UPLOADER
from diamond_model.learning.loop import LearningLoop
from diamond_model.storage import migrate
from tests.helpers import make_settings

UPLOADED = datetime(2026, 6, 2, 9, 30)


def fill_first_release(url: str, appraisals: pd.DataFrame) -> None:
    """The rows the first release wrote: two batches, appraisals, a rejection, a model, runs."""
    engine = create_engine(url)
    rows = appraisals.dropna(subset=["x", "y", "z", "depth", "table"]).iloc[:300]
    with engine.begin() as connection:
        for batch_id, who in ((1, BUNDLED_UPLOADER), (2, "dashboard")):
            connection.execute(
                text(
                    "INSERT INTO batches (filename, sha256, uploaded_by, uploaded_at, "
                    "rows_total, rows_accepted, rows_rejected, ignored_columns) VALUES "
                    "(:f, :s, :who, :at, 150, 150, 1, '')"
                ),
                {"f": f"b{batch_id}.csv", "s": f"{batch_id:064d}", "who": who, "at": UPLOADED},
            )
        for k, row in enumerate(
            rows.astype({"cut": str, "color": str, "clarity": str}).itertuples()
        ):
            values = {c: getattr(row, c) for c in APPRAISAL_COLUMNS}
            connection.execute(
                text(
                    "INSERT INTO appraisals (batch_id, line, carat, cut, color, clarity, depth, "
                    '"table", price, x, y, z) VALUES (:batch, :line, :carat, :cut, :color, '
                    ":clarity, :depth, :table, :price, :x, :y, :z)"
                ),
                {"batch": 1 + k // 150, "line": 2 + k % 150, **values},
            )
        connection.execute(
            text(
                'INSERT INTO rejected_rows (batch_id, line, "column", value, reason, raw) '
                "VALUES (2, 9, 'price', '-1', 'Price must be more than $0', 'raw row')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO model_versions (created_at, algorithm, params, "
                "data_fingerprint, train_rows, holdout_rows, max_batch_id, metrics, calibration, "
                "status, training_seconds, run_id, artefact) VALUES (:at, 'LightGBM', '{}', "
                ":fp, 240, 60, 2, '{\"mape\": 7.1}', '{}', 'champion', 2.5, 1, :blob)"
            ),
            {"at": UPLOADED, "fp": "f" * 64, "blob": b"first-release pickle"},
        )
        connection.execute(
            text("INSERT INTO champion (id, version, changed_at) VALUES (1, 1, :at)"),
            {"at": UPLOADED},
        )
        connection.execute(
            text(
                "INSERT INTO champion_events (version, kind, at, note) "
                "VALUES (1, 'promote', :at, 'run 1')"
            ),
            {"at": UPLOADED},
        )
        connection.execute(
            text(
                'INSERT INTO training_runs (started_at, finished_at, status, "trigger", message, '
                "promoted, candidate_version) "
                "VALUES (:at, :at, 'promoted', 'init', 'promoted: first', "
                ":yes, 1)"
            ),
            {"at": UPLOADED, "yes": True},
        )
        connection.execute(text("INSERT INTO locks (name) VALUES ('retrain')"))
    engine.dispose()


@pytest.mark.parametrize("recorded", [True, False], ids=["alembic-baseline", "create-all"])
def test_a_first_release_database_upgrades_with_nothing_lost(
    database_url: str, tmp_path: Path, appraisals: pd.DataFrame, recorded: bool
) -> None:
    engine = create_engine(database_url)
    migrate.upgrade(engine, "0001")
    if not recorded:  # the first release made its tables with create_all: no Alembic record
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    fill_first_release(database_url, appraisals)

    pipeline = LearningLoop.from_settings(make_settings(database_url, tmp_path))
    before, after = pipeline.store.create_schema()
    assert (before, after) == ("0001", migrate.head())
    stored = pipeline.store.appraisals()
    assert len(stored) == 300
    expected = (
        appraisals.dropna(subset=["x", "y", "z", "depth", "table"])
        .iloc[:300]
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        stored[list(APPRAISAL_COLUMNS)].reset_index(drop=True),
        expected[list(APPRAISAL_COLUMNS)],
        check_dtype=False,
    )
    assert (stored["stone_key"].to_numpy() == stone_keys(expected)).all()
    by_batch = stored.groupby("batch_id")["appraised_on"].first()
    assert by_batch[1] == pd.Timestamp(BUNDLED_APPRAISED_ON), "the bundled file's documented date"
    assert by_batch[2] == pd.Timestamp(date(2026, 6, 2)), "other batches: their upload date"
    assert len(pipeline.store.rejected_rows()) == 1
    old = pipeline.registry.info(1)
    assert old.is_champion and old.format == 1 and not old.servable and old.metrics["mape"] == 7.1
    assert pipeline.registry.history() == [1]
    assert pipeline.runs()[0].status == "promoted"

    # init replaces a champion this release cannot load, keeping the old one for the record.
    messages = pipeline.initialise()
    assert any("trained model v2" in m for m in messages)
    assert pipeline.registry.champion_version() == 2
    assert pipeline.registry.info(1).status == "archived"
    assert pipeline.initialise() == []
    pipeline.store.dispose()


def test_concurrent_starts_upgrade_once(database_url: str, tmp_path: Path) -> None:
    import threading

    results, errors = [], []

    def start() -> None:
        try:
            pipeline = LearningLoop.from_settings(make_settings(database_url, tmp_path))
            results.append(pipeline.store.create_schema())
            pipeline.store.dispose()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(before or "" for before, _ in results) == ["", migrate.head(), migrate.head()]
