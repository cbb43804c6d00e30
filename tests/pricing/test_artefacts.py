"""Stored models are data, never code: a tampered, truncated or pickled artefact is refused by the
watcher, a pin, `restore` and `init`, while the last good model keeps serving; backups taken under
write traffic restore exactly; restore refuses in words."""

from __future__ import annotations

import gzip
import io
import stat
import sys
import threading
import time
import uuid
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sqlalchemy import insert, select

from diamond_model.enums import Scope
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.versions import ArtefactRefusedError
from diamond_model.pricing import artefact
from diamond_model.pricing.model import LEGACY_FORMAT, MODEL_FORMAT, PricingModel
from diamond_model.pricing.quote import quote_frame
from diamond_model.serving.champion import ChampionCache
from diamond_model.serving.keys import KeyStore
from diamond_model.storage.backup import BackupError, backup, manifest, restore
from diamond_model.storage.tables import (
    ModelVersion,
    QuoteRecord,
    utcnow,
)
from tests.helpers import add_version, csv_bytes, make_settings, payload_bytes, point_champion_at


def opened(url: str, folder: Path) -> LearningLoop:
    pipeline = LearningLoop.from_settings(make_settings(url, folder))
    pipeline.store.create_schema()
    return pipeline


def v1_blob(pipeline: LearningLoop) -> bytes:
    with pipeline.store.engine.connect() as connection:
        return connection.scalar(select(ModelVersion.artefact).where(ModelVersion.version == 1))


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_artefact_reads_back_to_the_same_quotes(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    blob = artefact.write(pricing_model)
    assert blob[:2] == b"\x1f\x8b", "gzip-compressed JSON, not a pickle"
    back = artefact.read(blob, artefact.digest(blob))
    stones = appraisals.iloc[4000:4600].drop(columns=["price", "appraised_on"])
    before = [repr(q) for q in quote_frame(pricing_model, stones, 0.9, True).quotes]
    after = [repr(q) for q in quote_frame(back, stones, 0.9, True).quotes]
    assert after == before  # prices, ranges, confidence and every explanation step, exactly


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda blob: blob[: len(blob) // 2], "do not match the hash"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "do not match the hash"),
    ],
)
def test_changed_bytes_are_refused_before_they_are_read(
    pricing_model: PricingModel, change, reason: str
) -> None:
    blob = artefact.write(pricing_model)
    with pytest.raises(artefact.ArtefactError, match=reason):
        artefact.read(change(blob), artefact.digest(blob))


def test_bytes_that_match_their_hash_but_are_no_model_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pickle_blob = payload_bytes(marker)
    truncated = gzip.compress(b'{"format": 3, "full": {')
    for blob, reason in (
        (pickle_blob, "not a gzip-compressed JSON model"),
        (truncated, "not readable"),
        (gzip.compress(b'{"format": 2}'), "format 2, not 3"),
    ):
        with pytest.raises(artefact.ArtefactError, match=reason):
            artefact.read(blob, artefact.digest(blob))
    with pytest.raises(artefact.ArtefactError, match=r"(os|posix)\.system"):
        artefact.read_legacy(pickle_blob)
    assert not marker.exists()


def test_a_pickle_payload_is_never_run_by_the_watcher_a_pin_restore_or_init(
    seeded_url: str, empty_database, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    marker = tmp_path / "payload-ran"
    pipeline = opened(seeded_url, tmp_path / "a")
    cache = ChampionCache(pipeline.registry, interval=0.05)
    cache.watch()
    try:
        assert cache.current.version == 1
        evil = payload_bytes(marker)
        # As this release's format with a matching hash (whoever writes the row writes the hash),
        # and as the previous release's format.
        as_new = add_version(pipeline, evil, MODEL_FORMAT, artefact.digest(evil))
        as_old = add_version(pipeline, evil, LEGACY_FORMAT, None)
        point_champion_at(pipeline, as_new)
        assert wait_until(lambda: cache.refused is not None)
        assert cache.current.version == 1, "the last good model keeps serving"
        assert "not a gzip-compressed JSON model" in cache.problem
        point_champion_at(pipeline, as_old)
        assert wait_until(
            lambda: cache.refused is not None and f"version {as_old}" in cache.refused
        )
        assert "pickle by the previous release" in cache.refused and cache.current.version == 1
        for pinned in (as_new, as_old):  # both served (champion events exist), both refused
            with pytest.raises(ArtefactRefusedError):
                cache.version(pinned)
        # A later good promotion is still applied.
        pipeline.registry.promote(1, note="back to the good one")
        assert wait_until(lambda: cache.healthy)
        assert cache.current.version == 1
    finally:
        cache.close()

    # init's upgrade reads the old-format row with an allow-list and leaves it refused.
    messages = pipeline.initialise()
    assert any(f"v{as_old} not re-saved" in m and ".system" in m for m in messages)
    with pipeline.store.session() as session:
        assert session.get(ModelVersion, as_old).format == LEGACY_FORMAT

    # A backup carrying the payload as a current-format model is refused whole, before commit.
    path = tmp_path / "with-payload.zip"
    backup(pipeline.store, path)
    kind = "sqlite" if seeded_url.startswith("sqlite") else "postgresql"
    target = opened(empty_database(kind), tmp_path / "b")
    with pytest.raises(BackupError, match=f"Model version {as_new} in the backup is refused"):
        restore(target.store, path)
    assert manifest(target.store)["counts"]["batches"] == 0, "nothing was restored"
    assert not marker.exists(), "no stored byte ran as code"
    pipeline.store.dispose()
    target.store.dispose()


def test_a_pickle_as_a_versions_exam_is_refused_by_the_gate_and_by_restore(
    seeded_url: str, empty_database, tmp_path: Path
) -> None:
    """The exam (the recipe fitted without the held-out appraisals) is read by the gate and the
    Performance page: it is checked like the served artefact, never unpickled."""
    marker = tmp_path / "payload-ran"
    pipeline = opened(seeded_url, tmp_path / "a")
    good, evil = v1_blob(pipeline), payload_bytes(marker)
    version = add_version(
        pipeline, good, MODEL_FORMAT, artefact.digest(good), (evil, artefact.digest(evil))
    )
    held_out = pipeline.registry.info(1).holdout_rows
    assert pipeline.registry.load(version).n_train == pipeline.registry.exam(1).n_train + held_out
    with pytest.raises(ArtefactRefusedError, match="not a gzip-compressed JSON model"):
        pipeline.registry.exam(version)
    path = tmp_path / "with-exam-payload.zip"
    backup(pipeline.store, path)
    kind = "sqlite" if seeded_url.startswith("sqlite") else "postgresql"
    target = opened(empty_database(kind), tmp_path / "b")
    with pytest.raises(BackupError, match=f"Model version {version} in the backup is refused"):
        restore(target.store, path)
    assert manifest(target.store)["counts"]["batches"] == 0, "nothing was restored"
    assert not marker.exists(), "no stored byte ran as code"
    pipeline.store.dispose()
    target.store.dispose()


def test_a_truncated_champion_artefact_leaves_the_last_good_model_serving(
    seeded_url: str, tmp_path: Path
) -> None:
    pipeline = opened(seeded_url, tmp_path / "a")
    good = v1_blob(pipeline)
    cut = good[: len(good) // 3]
    # Truncated after it was recorded (hash of the whole), and truncated with its own hash.
    broken = [add_version(pipeline, cut, MODEL_FORMAT, artefact.digest(good))]
    broken.append(add_version(pipeline, cut, MODEL_FORMAT, artefact.digest(cut)))
    repaired = add_version(pipeline, good, MODEL_FORMAT, artefact.digest(good))
    cache = ChampionCache(pipeline.registry, interval=0.05)
    cache.watch()
    try:
        for version, words in zip(broken, ("do not match the hash", "not readable"), strict=True):
            point_champion_at(pipeline, version)
            assert wait_until(lambda v=version: cache.refused and f"version {v}" in cache.refused)
            assert words in cache.refused and cache.current.version == 1
            assert cache.watching
        pipeline.registry.promote(repaired)
        assert wait_until(lambda: cache.current.version == repaired)
        assert cache.healthy and cache.problem is None
    finally:
        cache.close()
    pipeline.store.dispose()


def previous_release_pickle(model: object) -> bytes:
    """What the previous release stored: a joblib pickle naming its flat modules
    (`diamond_model.model.PricingModel`, `diamond_model.market.MarketIndex`, ...)."""
    moved = {old: sys.modules[new] for old, new in artefact.LEGACY_MODULES.items()}
    classes = [
        value
        for module in moved.values()
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == module.__name__
    ]
    originals = {cls: cls.__module__ for cls in classes}
    flat = {new: old for old, new in artefact.LEGACY_MODULES.items()}
    try:
        sys.modules.update(moved)
        for cls in classes:
            cls.__module__ = flat[cls.__module__]
        buffer, plain = io.BytesIO(), io.BytesIO()
        joblib.dump(model, buffer, compress=3)
        joblib.dump(model, plain)
    finally:
        for cls, name in originals.items():
            cls.__module__ = name
        for old in moved:
            del sys.modules[old]
    assert b"diamond_model.model" in plain.getvalue()
    assert b"diamond_model.pricing" not in plain.getvalue()
    return buffer.getvalue()


def test_init_re_saves_the_previous_releases_pickles_safely(
    seeded_url: str, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    pipeline = opened(seeded_url, tmp_path / "a")
    model = pipeline.registry.load(1)
    old = add_version(pipeline, previous_release_pickle(model), LEGACY_FORMAT, None)
    pipeline.registry.promote(1)
    with pytest.raises(ArtefactRefusedError, match="init"):
        pipeline.registry.load(old)
    assert f"model v{old} re-saved in the safe format" in pipeline.initialise()
    with pipeline.store.session() as session:
        row = session.get(ModelVersion, old)
        assert row.format == MODEL_FORMAT and row.artefact_sha256 == artefact.digest(row.artefact)
    stones = appraisals.iloc[4000:4300].drop(columns=["price", "appraised_on"])
    upgraded = pipeline.registry.load(old)
    assert [repr(q) for q in quote_frame(upgraded, stones, 0.9, True).quotes] == [
        repr(q) for q in quote_frame(model, stones, 0.9, True).quotes
    ]
    assert pipeline.initialise() == [], "nothing left to do the second time"
    pipeline.store.dispose()


def test_a_backup_taken_under_write_traffic_restores_with_every_count_matching(
    seeded_url: str, empty_database, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    pipeline = opened(seeded_url, tmp_path / "a")
    stop = threading.Event()
    written = {"quotes": 0, "batches": 0}
    errors: list[BaseException] = []

    def traffic() -> None:
        start = 2000
        try:
            while not stop.is_set():
                with pipeline.store.engine.begin() as connection:
                    connection.execute(
                        insert(QuoteRecord),
                        [
                            {
                                "id": str(uuid.uuid4()),
                                "created_at": utcnow(),
                                "key_id": None,
                                "model_version": 1,
                                "market_period": "2026-01",
                                "stone": {"carat": 1.0},
                                "answer": {"price": 5000.0},
                            }
                            for _ in range(50)
                        ],
                    )
                written["quotes"] += 50
                if written["quotes"] % 500 == 0:
                    rows = appraisals.iloc[start : start + 40]
                    pipeline.ingest(csv_bytes(rows), f"b{start}.csv", "expert", retrain=False)
                    start += 40
                    written["batches"] += 1
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=traffic)
    thread.start()
    kind = "sqlite" if seeded_url.startswith("sqlite") else "postgresql"
    try:
        for attempt in range(3):
            wait_until(lambda a=attempt: written["batches"] > a, timeout=30)
            path = tmp_path / f"busy-{attempt}.zip"
            summary = backup(pipeline.store, path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            target = opened(empty_database(kind), tmp_path / f"r{attempt}")
            restore(target.store, path)
            assert manifest(target.store)["counts"] == summary["counts"]
            assert summary["counts"]["quotes"] > 0
            target.store.dispose()
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    assert written["batches"] >= 3, "the backups were taken while batches were being stored"
    pipeline.store.dispose()


def test_restore_refuses_a_database_that_holds_anything_in_words(
    seeded_url: str, empty_database, tmp_path: Path
) -> None:
    pipeline = opened(seeded_url, tmp_path / "a")
    path = tmp_path / "store.zip"
    backup(pipeline.store, path)
    kind = "sqlite" if seeded_url.startswith("sqlite") else "postgresql"
    target = opened(empty_database(kind), tmp_path / "b")
    key, _ = KeyStore(target.store).create("partner", frozenset({Scope.QUOTE}))
    with pytest.raises(BackupError) as refused:
        restore(target.store, path)
    message = str(refused.value)
    assert "not empty (it holds api_keys)" in message
    assert "IntegrityError" not in message and key not in message
    with target.store.engine.connect() as connection:
        hashes = [row[0] for row in connection.exec_driver_sql("SELECT key_hash FROM api_keys")]
    assert all(h not in message for h in hashes)
    pipeline.store.dispose()
    target.store.dispose()
