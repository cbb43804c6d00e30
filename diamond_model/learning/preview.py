"""What an uploaded batch holds, before anything is stored: accepted and rejected rows, measurements
set aside, rows already stored, how its prices compare with the serving model, and how its stones
differ from the model's training data. The CLI, the API and the dashboard only present this.

The serving model's reading of a batch (`LiveScore`) is also its live accuracy, kept with the
batch, and the evidence the retraining gate uses to tell a market move from a poisoned batch:

    A batch is CONSISTENT when, after removing its common level (the median of log(price/quote)),
    its prices disagree with the serving model no more than twice as much as the model's own
    out-of-fold errors (robust spread ratio ≤ 2), and that level is within ±30 % of the model's.
    A consistent batch that moves the level is a market move: the next model follows it. A batch
    whose prices do not follow its stones (ratio > 2: shuffled, mistyped or another currency per
    row) or whose level jumps beyond ±30 % (a unit or currency error for the whole file) is
    stored, but no candidate trained on it is promoted until it is withdrawn.

The ratio is 1.0–1.2 for real batches at any level (`exploration.ipynb`, section on time) and 8–10
for the same stones with their prices shuffled.

Level, spread and accuracy are read without the batch's suspect prices (`learning.suspects`);
a batch more than a quarter suspects is refused as a whole ("too many suspects").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, cast

import numpy as np
import pandas as pd

from diamond_model.data.identity import already_stored, duplicates_within, stone_keys
from diamond_model.data.reading import RawTable
from diamond_model.data.schema import APPRAISED_ON, MEASUREMENTS
from diamond_model.data.validation import ValidationResult
from diamond_model.learning.suspects import SUSPECT_SHARE_LIMIT, Suspect, likely_cause
from diamond_model.learning.training import stone_columns
from diamond_model.learning.versions import Champion
from diamond_model.pricing.estimates import estimate_prices
from diamond_model.pricing.market import robust_sd
from diamond_model.pricing.model import PricingModel

SPREAD_LIMIT = 2.0
LEVEL_LIMIT = 0.30
MIN_TO_JUDGE = 20
SHOWN_LINES = 5


@dataclass(frozen=True)
class LiveScore:
    """The serving model's reading of a batch's prices, before any training on them. Level,
    spread and accuracy are read on the prices that are not suspects."""

    model_version: int
    n: int
    level_pct: float
    level_se_pct: float
    mape: float
    median_error_pct: float
    coverage: float
    spread_ratio: float
    verdict: str
    suspects: list[dict[str, Any]] = field(default_factory=list)
    suspect_limit_pct: float = 0.0  # a suspect is farther than this from the model's price

    @property
    def consistent(self) -> bool:
        return self.verdict in ("consistent", "too few to judge")

    @property
    def suspect_lines(self) -> list[int]:
        return [int(s["line"]) for s in self.suspects]

    def suspect_list(self) -> list[Suspect]:
        return [Suspect(**s) for s in self.suspects]

    def sentences(self) -> list[str]:
        """The reading in plain words, the same in the CLI, the API and the dashboard."""
        direction = "above" if self.level_pct >= 0 else "below"
        which = "its other prices" if self.suspects else "its prices"
        out = [
            f"This batch's prices are {abs(self.level_pct):.1f} % ± {self.level_se_pct:.1f} % "
            f"{direction} what the current model (v{self.model_version}) quotes for the same "
            f"stones; the typical miss on {which} is {abs(self.median_error_pct):.1f} %, and "
            f"{self.coverage:.0f} % of them fall inside the quoted ranges."
        ]
        if self.suspects:
            shown = "; ".join(s.words() for s in self.suspect_list()[:SHOWN_LINES])
            more = len(self.suspects) - SHOWN_LINES
            out.append(
                f"{len(self.suspects)} of the {self.n:,} prices are suspects: after the batch's "
                f"level is removed they are more than {self.suspect_limit_pct:.0f} % from the "
                "model's price, farther than 999 in 1,000 of its own errors. They are held for "
                "review when the batch is stored (kept out of training and of every accuracy "
                f"figure until confirmed or corrected): {shown}"
                + (f"; and {more} more" if more > 0 else "")
                + "."
            )
        out.append(_verdict_words(self))
        return out

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LiveScore:
        """From the decoded JSON that `as_dict` stored (keys it does not know are left out)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _verdict_words(score: LiveScore) -> str:
    others = (
        f"The other {score.n - len(score.suspects):,} prices" if score.suspects else "The prices"
    )
    if score.verdict == "consistent":
        if abs(score.level_pct) > 2 * score.level_se_pct and abs(score.level_pct) >= 2:
            return (
                f"{others} follow the stones as the model knows them, at another level: a "
                "market move that the next model will follow."
            )
        return f"{others} follow the stones as the model knows them."
    if score.verdict == "too few to judge":
        return f"Fewer than {MIN_TO_JUDGE} appraisals: too few to judge the batch as a whole."
    if score.verdict == "too many suspects":
        share = 100 * len(score.suspects) / max(score.n, 1)
        return (
            f"{share:.0f} % of the prices are suspects, more than the "
            f"{100 * SUSPECT_SHARE_LIMIT:.0f} % that separate slips explain: the file as a whole "
            "looks wrong (a shifted column, prices of other stones, another currency). No model "
            "trained on this batch will be promoted until it is withdrawn."
        )
    if score.verdict == "implausible level":
        return (
            f"A {score.level_pct:+.0f} % level is beyond any market move (more than "
            f"±{100 * LEVEL_LIMIT:.0f} %): check the currency or units. No model trained on "
            "this batch will be promoted until it is withdrawn."
        )
    return (
        f"{others} do not follow the stones: after the shift they disagree with the model "
        f"{score.spread_ratio:.1f} times as much as its usual errors (the limit is "
        f"{SPREAD_LIMIT:g}). No model trained on this batch will be promoted until it is withdrawn."
    )


def live_score(
    model: PricingModel, version: int, batch: pd.DataFrame, lines: np.ndarray, level: float
) -> LiveScore:
    """Price the batch's stones with the serving model at its latest level and compare.

    A suspect is a price whose distance from the model's, once the batch's own level (the median
    over its prices) is removed, is beyond the model's 99.9th-percentile out-of-fold error. The
    level is read again without the suspects, and the suspects again against it."""
    found = estimate_prices(model, stone_columns(batch), level)
    prices = batch["price"].to_numpy(dtype=float)
    carats = batch["carat"].to_numpy(dtype=float)
    ratio = np.log(prices) - found.log_price
    limit = model.suspect_limit
    suspect = np.abs(ratio - np.median(ratio)) > limit
    clean = ~suspect if (~suspect).any() else np.ones(len(ratio), dtype=bool)
    shift = float(np.median(ratio[clean]))
    suspect = np.abs(ratio - shift) > limit
    clean = ~suspect if (~suspect).any() else np.ones(len(ratio), dtype=bool)
    spread = robust_sd(ratio[clean] - shift)
    n_clean = int(clean.sum())
    se = float(np.sqrt(np.pi / 2) * spread / np.sqrt(max(n_clean, 1)))
    spread_ratio = spread / model.typical_miss if model.typical_miss > 0 else float("inf")
    if len(ratio) < MIN_TO_JUDGE:
        verdict = "too few to judge"
    elif suspect.mean() > SUSPECT_SHARE_LIMIT:
        verdict = "too many suspects"
    elif spread_ratio > SPREAD_LIMIT:
        verdict = "inconsistent"
    elif abs(np.expm1(shift)) > LEVEL_LIMIT:
        verdict = "implausible level"
    else:
        verdict = "consistent"
    at_level = found.price * np.exp(shift)
    order = np.flatnonzero(suspect)
    order = order[np.argsort(-np.abs(ratio[order] - shift))]
    suspects = []
    for k in order:
        cause, factor = likely_cause(float(ratio[k] - shift), float(carats[k]))
        suspects.append(
            asdict(
                Suspect(
                    line=int(lines[k]),
                    price=float(prices[k]),
                    model_price=float(round(at_level[k], 0)),
                    cause=cause,
                    likely_price=None if factor is None else float(round(prices[k] * factor, 0)),
                )
            )
        )
    kept_prices = prices[clean]
    inside = (kept_prices >= found.low[clean]) & (kept_prices <= found.high[clean])
    return LiveScore(
        model_version=version,
        n=len(ratio),
        level_pct=float(100 * np.expm1(shift)),
        level_se_pct=float(100 * se),
        mape=float(100 * np.mean(np.abs(found.price[clean] - kept_prices) / kept_prices)),
        median_error_pct=float(100 * np.median(np.abs(found.price[clean] / kept_prices - 1))),
        coverage=float(100 * inside.mean()),
        spread_ratio=float(spread_ratio),
        verdict=verdict,
        suspects=suspects,
        suspect_limit_pct=float(100 * np.expm1(limit)),
    )


@dataclass
class BatchPreview:
    """An uploaded file checked against the rules, the store and the serving model."""

    filename: str
    sha256: str
    raw: RawTable
    result: ValidationResult
    upload_date: date
    keys: np.ndarray
    dates: np.ndarray
    duplicate_of_line: dict[int, int]
    duplicate_of_stored: pd.DataFrame
    existing_batch: int | None = None
    existing_withdrawn: bool = False
    live: LiveScore | None = None
    drift: pd.DataFrame | None = None
    missing_columns: list[str] = field(default_factory=list)
    sheet: str | None = None  # the workbook sheet read (None: the first, or a CSV file)

    @property
    def accepted(self) -> pd.DataFrame:
        return self.result.accepted

    @property
    def n_duplicates(self) -> int:
        return len(self.duplicate_of_line) + len(self.duplicate_of_stored)

    def duplicate_mask(self) -> np.ndarray:
        """Accepted rows that repeat an earlier row of the file or a stored appraisal."""
        lines = self.accepted["line"].to_numpy()
        repeated = set(self.duplicate_of_line) | set(
            lines[self.duplicate_of_stored["position"].to_numpy(dtype=int)].tolist()
        )
        return np.isin(lines, list(repeated))

    def rows_to_store(self, keep_duplicates: bool, hold_suspects: bool = True) -> pd.DataFrame:
        """Accepted rows with their date and key, without duplicates unless they are kept;
        `held` marks the suspects (held for review unless `hold_suspects` is off)."""
        dated = ~np.isnat(self.accepted[APPRAISED_ON].to_numpy(dtype="datetime64[D]"))
        suspects = self.live.suspect_lines if self.live is not None and hold_suspects else []
        rows = self.accepted.assign(
            appraised_on=self.dates,
            stone_key=self.keys,
            dated=dated,
            held=self.accepted["line"].isin(suspects).to_numpy(),
        )
        return rows if keep_duplicates else rows.loc[~self.duplicate_mask()]

    def duplicates_table(self) -> pd.DataFrame:
        """line, repeats: which stored appraisal or earlier line each duplicate repeats."""
        lines = self.accepted["line"].to_numpy()
        rows = [
            {"line": line, "repeats": f"line {first} of this file"}
            for line, first in sorted(self.duplicate_of_line.items())
        ]
        rows += [
            {
                "line": int(lines[int(cast(int, r.position))]),
                "repeats": f"batch {r.batch_id}, line {r.line}",
            }
            for r in self.duplicate_of_stored.itertuples(index=False)
        ]
        return pd.DataFrame(rows, columns=["line", "repeats"]).sort_values("line", kind="stable")

    def sentences(self) -> list[str]:
        """The preview in plain words."""
        result = self.result
        out = [
            f"{self.filename}: {result.total_rows:,} rows, {result.n_accepted:,} accepted, "
            f"{result.n_rejected:,} rejected."
        ]
        if self.existing_batch is not None:
            state = " (withdrawn: restore it instead)" if self.existing_withdrawn else ""
            out.append(f"This file is already stored as batch {self.existing_batch}{state}.")
        if self.n_duplicates:
            stored = self.duplicate_of_stored
            where = ", ".join(f"batch {b}" for b in sorted(stored["batch_id"].unique()))
            out.append(
                f"{self.n_duplicates:,} rows are already stored"
                + (f" ({where})" if where else "")
                + (
                    f" or repeat an earlier line ({len(self.duplicate_of_line):,})"
                    if self.duplicate_of_line
                    else ""
                )
                + ": they will not be stored again."
            )
        out[1:1] = result.read_as
        notes = result.notes
        if not notes.empty:
            out.append(
                f"{notes['line'].nunique():,} rows have measurements set aside (stored as "
                "missing, the raw values kept in the report)."
            )
        if self.missing_columns:
            out.append(
                f"The file has no {', '.join(self.missing_columns)} column: those measurements "
                "are stored as missing."
            )
        if result.ignored_columns:
            out.append(f"Ignored columns: {', '.join(result.ignored_columns)}.")
        if self.live is not None:
            out += self.live.sentences()
        if self.drift is not None and (self.drift["shift"] == "large").any():
            large = self.drift.loc[self.drift["shift"] == "large", "feature"]
            out.append(
                "Its stones differ a lot from the model's training data in "
                + ", ".join(large)
                + " (see the drift table)."
            )
        return out


def upload_digest(data: bytes, sheet: str | None = None) -> str:
    """What identifies an upload: the file's bytes, and the sheet when one is named (two sheets
    of one workbook are two batches)."""
    digest = hashlib.sha256(data)
    if sheet is not None:
        digest.update(b"\0sheet:" + sheet.encode())
    return digest.hexdigest()


def prepare(
    data: bytes,
    filename: str,
    raw: RawTable,
    result: ValidationResult,
    upload_date: date,
    stored_matches: Callable[[np.ndarray], pd.DataFrame] | None,
    existing: tuple[int, bool] | None,
    champion: Champion | None,
    level: float,
    sheet: str | None = None,
) -> BatchPreview:
    """Assemble the preview from the validated file, the store's matches and the champion."""
    accepted = result.accepted
    keys = stone_keys(accepted)
    given = accepted[APPRAISED_ON].to_numpy(dtype="datetime64[D]")
    dated = ~np.isnat(given)
    dates = np.where(dated, given, np.datetime64(upload_date, "D"))
    first = duplicates_within(keys, dates)
    lines = accepted["line"].to_numpy()
    within = {
        int(lines[k]): int(lines[first[k]]) for k in np.flatnonzero(first != np.arange(len(keys)))
    }
    stored = already_stored(
        keys, dates, dated, stored_matches(keys) if stored_matches is not None else pd.DataFrame()
    )
    stored = stored[~np.isin(lines[stored["position"].to_numpy(dtype=int)], list(within))]
    preview = BatchPreview(
        filename=filename,
        sha256=upload_digest(data, sheet),
        sheet=sheet,
        raw=raw,
        result=result,
        upload_date=upload_date,
        keys=keys,
        dates=dates,
        duplicate_of_line=within,
        duplicate_of_stored=stored.reset_index(drop=True),
        missing_columns=[
            m for m in MEASUREMENTS if m not in {str(c).strip().lower() for c in raw.frame.columns}
        ],
    )
    if existing is not None:
        preview.existing_batch, preview.existing_withdrawn = existing
    if champion is not None and len(accepted):
        version, model = champion
        fresh = ~preview.duplicate_mask()
        if fresh.any():
            preview.live = live_score(model, version, accepted.loc[fresh], lines[fresh], level)
            preview.drift = model.profile.compare(accepted.loc[fresh])
    return preview
