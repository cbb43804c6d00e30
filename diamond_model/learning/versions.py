"""What a stored model version is, read without its artefact: provenance, figures, whether it
may serve (and why not), and the `Champion` value a quote is priced with.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from diamond_model.pricing import artefact
from diamond_model.pricing.model import LEGACY_FORMAT, MODEL_FORMAT, PricingModel
from diamond_model.storage.tables import Batch, ModelVersion
from diamond_model.words import sentence

log = logging.getLogger(__name__)
T = TypeVar("T")


class Champion(NamedTuple):
    """The model that prices quotes, with its version: one value, so a response never pairs a
    version with another version's model."""

    version: int
    model: PricingModel


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown version, nothing to roll back to)."""


class GateOverrideError(RegistryError):
    """Promoting a version the gate refused, without saying why it should serve anyway."""


class ArtefactRefusedError(RegistryError):
    """A stored model that will not be served: an old pickle, changed bytes, or unreadable."""


@dataclass(frozen=True)
class VersionInfo:
    """A model version without its artefact."""

    version: int
    created_at: datetime
    algorithm: str
    train_rows: int
    holdout_rows: int
    max_batch_id: int
    data_fingerprint: str
    metrics: dict[str, float]
    reference_metrics: dict[str, float] | None
    params: dict[str, object]
    status: str
    training_seconds: float
    run_id: int | None
    format: int
    is_champion: bool
    learned_from: list[int]
    judged_on: list[int]
    gate_refused: bool
    withdrawn_from: list[int]  # batches it learned from that are withdrawn now

    @property
    def servable(self) -> bool:
        return self.unservable_reason is None

    @property
    def unservable_reason(self) -> str | None:
        """Why this version cannot serve, in words; None when it can."""
        if self.format != MODEL_FORMAT:
            return refusal(self.version, self.format, b"", None)
        if self.withdrawn_from:
            return (
                f"v{self.version} learned from withdrawn batch "
                f"{', '.join(map(str, self.withdrawn_from))}; restore the batch to serve it again"
            )
        if self.metrics.get("monotone_violations", 0) > 0:
            return (
                f"v{self.version} prices a better grade or a heavier stone lower "
                f"({self.metrics['monotone_violations']:,.0f} of "
                f"{self.metrics.get('monotone_checked', 0):,.0f} comparisons when it was "
                "trained); it is never served: retrain"
            )
        return None


def refusal(version: int, fmt: int, blob: bytes | None, sha256: str | None) -> str | None:
    """Why a stored version cannot be served, checked on its bytes before any is parsed."""
    if fmt == LEGACY_FORMAT:
        return (
            f"version {version} is stored as a pickle by the previous release; "
            "`python -m diamond_model init` re-saves it safely"
        )
    if fmt != MODEL_FORMAT:
        return (
            f"version {version} was trained by the first release (format {fmt}) and is kept "
            "for the record only; promote a later version or retrain"
        )
    if blob is None:
        return f"version {version} has no stored model"
    return None


def read_artefact(version: int, fmt: int, blob: bytes | None, sha256: str | None) -> PricingModel:
    """The model of one stored version, or ArtefactRefusedError saying why not (logged)."""
    reason = refusal(version, fmt, blob, sha256)
    if reason is None:
        try:
            return artefact.read(blob, sha256)  # type: ignore[arg-type]
        except artefact.ArtefactError as error:
            reason = f"version {version} is refused: {error}"
    log.error("model %s", reason)
    raise ArtefactRefusedError(sentence(reason) + ".")


def json_safe(values: Mapping[str, T]) -> dict[str, T | None]:
    """Metrics with NaN/inf replaced by None: PostgreSQL's JSON refuses NaN."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


def withdrawn_batches(session: Session) -> set[int]:
    return set(session.scalars(select(Batch.id).where(Batch.withdrawn_at.is_not(None))).all())


def version_info(row: ModelVersion, champion: int | None, withdrawn: set[int]) -> VersionInfo:
    learned = list(row.learned_from or [])
    return VersionInfo(
        version=row.version,
        created_at=row.created_at,
        algorithm=row.algorithm,
        train_rows=row.train_rows,
        holdout_rows=row.holdout_rows,
        max_batch_id=row.max_batch_id,
        data_fingerprint=row.data_fingerprint,
        metrics=row.metrics,
        reference_metrics=row.reference_metrics,
        params=row.params,
        status=row.status,
        training_seconds=row.training_seconds,
        run_id=row.run_id,
        format=row.format,
        is_champion=row.version == champion,
        learned_from=learned,
        judged_on=list(row.judged_on or []),
        gate_refused=bool(row.gate_refused),
        withdrawn_from=sorted(set(learned) & withdrawn),
    )
