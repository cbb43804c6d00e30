"""Counter quotes: numbered by the database, so two tills giving quotes at the same moment never
share a number; found again by number, customer and day."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from diamond_model.learning.loop import LearningLoop
from diamond_model.storage import counter_quotes
from tests.helpers import ROOT

TILL = """
import sys, time
from pathlib import Path
from diamond_model.storage import counter_quotes
from diamond_model.storage.store import Store

url, folder, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = Store(url)
(folder / (name + ".ready")).touch()
while not (folder / "go").exists():
    time.sleep(0.005)
numbers = [
    counter_quotes.give(store, name, f"{name} customer {k}", "", 1, "2026-01", {"carat": 1.0},
                        {"price": 1000.0 + k})
    for k in range(25)
]
print(" ".join(map(str, numbers)))
"""


def test_two_tills_giving_quotes_at_once_never_share_a_number(
    pipeline: LearningLoop, tmp_path: Path
) -> None:
    url = pipeline.settings.resolved_database_url
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tills = [
        subprocess.Popen(
            [sys.executable, "-c", TILL, url, str(tmp_path), name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("till-a", "till-b")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{n}.ready").exists() for n in ("till-a", "till-b")):
        assert time.monotonic() < deadline, [t.stderr.read() for t in tills if t.poll()]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    given = []
    for till in tills:
        out, err = till.communicate(timeout=120)
        assert till.returncode == 0, err
        given += [int(n) for n in out.split()]
    assert sorted(given) == list(range(1, 51)), "50 quotes, 50 different numbers, none skipped"
    found = counter_quotes.find(pipeline.store, limit=100)
    assert len(found) == 50 and found["number"].is_monotonic_decreasing, "newest first"
    # Each number finds its own quote, with the number printed inside it.
    row = counter_quotes.get(pipeline.store, given[0])
    assert row is not None and row.printed["number"] == given[0]


def test_quotes_are_found_by_number_customer_or_reference_and_day(
    pipeline: LearningLoop,
) -> None:
    store = pipeline.store
    first = counter_quotes.give(store, "anna", "Maria Bianchi", "ring 18k", 1, "2026-01", {}, {})
    counter_quotes.give(store, "luca", "Luca Verdi", "", 1, "2026-01", {}, {"price": 12.0})
    assert counter_quotes.find(store, number=first)["customer"].tolist() == ["Maria Bianchi"]
    assert counter_quotes.find(store, customer="  bianchi ")["number"].tolist() == [first]
    assert counter_quotes.find(store, customer="RING")["number"].tolist() == [first]
    today = date.today()
    assert len(counter_quotes.find(store, since=today, until=today)) == 2
    assert counter_quotes.find(store, until=today - timedelta(days=1)).empty
    assert counter_quotes.find(store, customer="%").empty, "a LIKE wildcard is not a match-all"
    assert counter_quotes.get(store, 999) is None
