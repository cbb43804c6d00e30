"""Held suspects and corrections: the expert confirms a held price as it was, or corrects a stored
appraisal's price or grades, with a reason. The old values are kept (`corrections`); the new ones
go through the same validation and the same suspect check as an upload; a retrain follows.

The dashboard, the CLI (`review`, `correct`) and the API (`/v1/appraisals/held`,
`PATCH /v1/appraisals/{id}`) all call `correct`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from diamond_model.data.identity import stone_keys
from diamond_model.data.schema import APPRAISAL_COLUMNS, GRADES, grade_dtype
from diamond_model.data.validation import validate
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.outcomes import Retraining, RetrainOutcome
from diamond_model.learning.training import stone_columns
from diamond_model.pricing.estimates import estimate_prices
from diamond_model.storage import audit
from diamond_model.storage.tables import Appraisal, Batch, Correction, utcnow

CORRECTABLE = ("price", "carat", "cut", "color", "clarity")
ATTRIBUTE = {"table": "table_pct"}


class CorrectionError(ValueError):
    """A correction that cannot be made; the message says what to change."""


class UnknownAppraisalError(CorrectionError):
    """No stored appraisal with that id."""


@dataclass(frozen=True)
class Corrected:
    """What a correction did."""

    appraisal_id: int
    before: dict[str, Any]
    after: dict[str, Any]
    held: bool  # still held for review (the new price is still a suspect)
    retraining: Retraining | None

    def sentences(self) -> list[str]:
        changed = [
            f"{name} {self.before[name]} → {self.after[name]}"
            for name in CORRECTABLE
            if self.before[name] != self.after[name]
        ]
        out = [
            f"Appraisal {self.appraisal_id}: "
            + (", ".join(changed) if changed else "confirmed as it was")
            + "."
        ]
        if self.held:
            out.append(
                "The price is still far beyond the model's own errors, so it stays held for "
                "review: confirm it if it is right."
            )
        if self.retraining is not None:
            out.append(self.retraining.note)
        return out


def held_appraisals(loop: LearningLoop) -> pd.DataFrame:
    """Appraisals held for review in active batches, oldest first, with the stored id."""
    return loop.store.appraisals(held=True)


def _values(row: Appraisal) -> dict[str, Any]:
    return {c: getattr(row, ATTRIBUTE.get(c, c)) for c in APPRAISAL_COLUMNS}


def _still_suspect(loop: LearningLoop, values: dict[str, Any], batch: Batch) -> bool:
    """The upload's suspect check for one appraisal: its price against the serving model's at
    the level its batch was read at."""
    champion = loop.champion()
    if champion is None:
        return False
    frame = pd.DataFrame([values])
    for grade in GRADES:
        frame[grade] = frame[grade].astype(grade_dtype(grade))
    frame = frame.astype({c: float for c in APPRAISAL_COLUMNS if c not in GRADES})
    found = estimate_prices(champion.model, stone_columns(frame), loop.settings.interval_level)
    level = math.log1p(float((batch.live or {}).get("level_pct", 0.0)) / 100)
    distance = math.log(float(values["price"])) - float(found.log_price[0]) - level
    return abs(distance) > champion.model.suspect_limit


def correct(
    loop: LearningLoop,
    appraisal_id: int,
    changes: dict[str, object],
    by: str,
    reason: str,
    confirm: bool = False,
    retrain: bool | None = None,
    start: Callable[[str], RetrainOutcome | int] | None = None,
) -> Corrected:
    """Correct (or, with `confirm`, accept as it is) one stored appraisal, keeping the old values.

    `changes` may set price, carat, cut, color and clarity. A corrected price that is still a
    suspect stays held unless `confirm` says the expert checked it."""
    if not reason.strip():
        raise CorrectionError("Say why (a reason is recorded with every correction).")
    unknown = sorted(set(changes) - set(CORRECTABLE))
    if unknown:
        raise CorrectionError(
            f"{', '.join(unknown)} cannot be corrected here; only {', '.join(CORRECTABLE)}."
        )
    with loop.store.session() as session, session.begin():
        row = session.get(Appraisal, appraisal_id)
        if row is None:
            raise UnknownAppraisalError(
                f"There is no stored appraisal {appraisal_id}; `review` lists the held ones."
            )
        batch = session.get(Batch, row.batch_id)
        assert batch is not None  # a foreign key
        before = _values(row)
        asked = {**before, **changes}
        cells = {
            c: ""
            if asked[c] is None or (isinstance(asked[c], float) and math.isnan(asked[c]))
            else str(asked[c])
            for c in APPRAISAL_COLUMNS
        }
        result = validate(pd.DataFrame([cells]), "appraisal", lines=np.array([row.line]))
        if result.n_rejected:
            problems = "; ".join(
                f"{r.column}: {r.reason}" for r in result.rejections.itertuples(index=False)
            )
            raise CorrectionError(f"The corrected appraisal is not valid: {problems}.")
        accepted = result.accepted.iloc[0]
        after = {
            c: (
                str(accepted[c])
                if c in GRADES
                else (None if pd.isna(accepted[c]) else float(accepted[c]))
            )
            for c in APPRAISAL_COLUMNS
        }
        held = not confirm and _still_suspect(loop, after, batch)
        for column, value in after.items():
            setattr(row, ATTRIBUTE.get(column, column), value)
        row.stone_key = int(stone_keys(pd.DataFrame([after]))[0])
        row.held = held
        changed = {c: (before[c], after[c]) for c in CORRECTABLE if before[c] != after[c]}
        audit.record(
            session,
            by,
            "correct" if changed else "confirm",
            f"appraisal {appraisal_id}",
            "; ".join([*(f"{c} {a} → {b}" for c, (a, b) in changed.items()), reason.strip()])
            + (" (still held for review)" if held else ""),
        )
        session.add(
            Correction(
                appraisal_id=appraisal_id,
                at=utcnow(),
                by=by[:120],
                reason=reason.strip()[:500],
                before=_json(before),
                after={**_json(after), "held": held},
            )
        )
    should = loop.settings.auto_retrain if retrain is None else retrain
    retraining = None
    if should and not held:
        retraining = loop.retrain_after(f"appraisal {appraisal_id} corrected", start)
    return Corrected(appraisal_id, _json(before), _json(after), held, retraining)


def _json(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (
            None
            if isinstance(v, float) and math.isnan(v)
            else v.item()
            if hasattr(v, "item")
            else v
        )
        for k, v in values.items()
    }


def corrections(loop: LearningLoop) -> pd.DataFrame:
    """Every correction, newest first: who, when, why, and the values before and after."""
    with loop.store.engine.connect() as connection:
        rows = connection.execute(
            select(
                Correction.id,
                Correction.appraisal_id,
                Correction.at,
                Correction.by,
                Correction.reason,
                Correction.before,
                Correction.after,
            ).order_by(Correction.id.desc())
        ).all()
    return pd.DataFrame(
        rows, columns=["id", "appraisal_id", "at", "by", "reason", "before", "after"]
    )
