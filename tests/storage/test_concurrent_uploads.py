"""Two real processes storing overlapping files at the same moment: no appraisal stored twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from diamond_model.learning.loop import LearningLoop
from diamond_model.storage.tables import Appraisal, Batch
from tests.helpers import ROOT, csv_bytes

# Each process previews its file, says so, waits for the signal, then stores it: both previews
# are made before either batch is written, as when two people press "Store" together.
UPLOADER = """
import sys, time
from pathlib import Path
from diamond_model.learning.loop import LearningLoop
from diamond_model.settings import Settings

url, path, folder = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
settings = Settings(database_url=url, instance_dir=folder, auto_retrain=False)
loop = LearningLoop.from_settings(settings)
preview = loop.preview(path.read_bytes(), path.name)
assert preview.n_duplicates == 0, preview.n_duplicates
(folder / (path.name + ".ready")).touch()
while not (folder / "go").exists():
    time.sleep(0.01)
submission = loop.submit(preview, path.stem, retrain=False)
print(submission.stored)
"""


def test_two_processes_storing_overlapping_files_store_each_stone_once(
    pipeline: LearningLoop, appraisals: pd.DataFrame, tmp_path: Path
) -> None:
    url = pipeline.settings.resolved_database_url
    files = []
    for name, rows in (("a.csv", appraisals.iloc[:2000]), ("b.csv", appraisals.iloc[1000:3000])):
        path = tmp_path / name
        path.write_bytes(csv_bytes(rows))
        files.append(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", UPLOADER, url, str(path), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / (p.name + ".ready")).exists() for p in files):
        assert time.monotonic() < deadline, [w.stderr.read() for w in workers if w.poll()]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    stored = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        stored.append(int(out.split()[-1]))

    assert sorted(stored) == [1000, 2000], "the second writer stored only what was new"
    with pipeline.store.session() as session:
        count = session.scalar(select(func.count(Appraisal.id)))
        distinct = session.scalar(select(func.count(func.distinct(Appraisal.stone_key))))
        duplicates = sorted(session.scalars(select(Batch.rows_duplicate)).all())
    assert count == distinct == 3000
    assert duplicates == [0, 1000], "the batch written second says 1,000 rows were already there"
