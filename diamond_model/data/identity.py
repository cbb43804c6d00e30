"""One rule for an appraisal that is already stored: the same stone at the same price, on the
same date when the file gives one. Applied within a file and across batches alike, on parsed
values, so a re-saved file (other line endings, `;` separators, one extra row) adds nothing new.

Two genuinely different stones can share every number (small stones of the same grades and
millimetres, appraised at the same price): the expert keeps them explicitly with
`ingest --keep-duplicates` (the dashboard's "keep rows identical to stored ones" box, the API's
`keep_duplicates=true`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from diamond_model.data.schema import APPRAISAL_COLUMNS, GRADES


def _text(values: pd.Series, column: str) -> np.ndarray:
    if column in GRADES:
        return np.asarray(values.astype(object), dtype=str)
    # numpy writes the shortest repr that reads back the same float, and "nan" for missing.
    return np.asarray(values, dtype=float).round(4).astype(str)


def stone_keys(frame: pd.DataFrame) -> np.ndarray:
    """A signed 64-bit key per row from its stone and price (BLAKE2b of the canonical values):
    stable across processes, library versions and file formats."""
    if frame.empty:
        return np.zeros(0, dtype=np.int64)
    text = _text(frame[APPRAISAL_COLUMNS[0]], APPRAISAL_COLUMNS[0])
    for column in APPRAISAL_COLUMNS[1:]:
        text = np.char.add(np.char.add(text, "|"), _text(frame[column], column))
    digests = b"".join(
        hashlib.blake2b(row.encode(), digest_size=8).digest() for row in text.tolist()
    )
    return np.frombuffer(digests, dtype="<i8").copy()


def duplicates_within(keys: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Position of the first copy of each row (itself when it is the first), by key and date."""
    frame = pd.DataFrame({"key": keys, "date": dates, "position": np.arange(len(keys))})
    return frame.groupby(["key", "date"], dropna=False)["position"].transform("first").to_numpy()


def already_stored(
    keys: np.ndarray, dates: np.ndarray, dated: np.ndarray, stored: pd.DataFrame
) -> pd.DataFrame:
    """For each new row that repeats a stored active appraisal: (position, batch_id, line).

    `stored` has stone_key, appraised_on, batch_id, line for the stored rows with these keys. A
    new row without a date in its file repeats a stored one with the same key whatever its date;
    a dated row repeats only a stored one of the same date.
    """
    columns = ["position", "batch_id", "line"]
    if stored.empty or not len(keys):
        return pd.DataFrame(columns=columns)
    new = pd.DataFrame({"stone_key": keys, "date": dates, "dated": dated})
    new["position"] = np.arange(len(keys))
    matches = new.merge(stored, on="stone_key")
    same_day = matches["appraised_on"].astype("datetime64[ns]") == matches["date"].astype(
        "datetime64[ns]"
    )
    matches = matches[~matches["dated"] | same_day]
    return matches.sort_values(["position", "batch_id", "line"]).drop_duplicates("position")[
        columns
    ]


def data_fingerprint(keys: np.ndarray, dates: np.ndarray) -> str:
    """SHA-256 of the (stone key, date) pairs, independent of their order: the data version."""
    keys = np.asarray(keys, dtype="<i8")
    days = np.asarray(dates, dtype="datetime64[D]").astype("<i8")
    order = np.lexsort((days, keys))
    return hashlib.sha256(keys[order].tobytes() + days[order].tobytes()).hexdigest()


def held_out(keys: np.ndarray, fraction: float) -> np.ndarray:
    """The same appraisals are held out by every retrain: by their key, whatever the batch."""
    return (np.asarray(keys).astype(np.uint64) % np.uint64(10_000)) < int(round(fraction * 10_000))
