"""The owner's three answers for the serving model (Home, and the monthly report): the figures
gathered from the registry and the store, the words from `diamond_model.reports.owner`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from app import views
from app.services import Services
from diamond_model.learning.training import prices_at_their_months
from diamond_model.learning.versions import RegistryError
from diamond_model.reports.owner import (
    Answer,
    Change,
    champion_at,
    change,
    is_it_getting_better,
    is_it_good,
    previous_champion,
    what_changed,
)
from diamond_model.storage.tables import utcnow

MONTH = timedelta(days=30)


@dataclass(frozen=True)
class ThreeAnswers:
    good: Answer
    better: Answer
    changed: Answer
    mape: float


def three_answers(svc: Services, version: int, now: datetime | None = None) -> ThreeAnswers:
    """Is it good, is it getting better, what changed: for `version`, the serving model."""
    now = now or utcnow()
    registry, level = svc.registry, svc.settings.interval_level
    info = registry.info(version)
    if info is None:
        raise RegistryError(f"Version {version} is not stored.")
    metrics, _ = views.accuracy(info)
    appraisals = svc.store.appraisals()
    typical_price = float(appraisals["price"].median()) if len(appraisals) else 0.0
    events = registry.champion_events()
    reference = registry.reference_set()
    prices = reference["price"].to_numpy(dtype=float)
    current = (
        prices_at_their_months(registry.exam(version), reference, level) if len(prices) else None
    )

    def against(other: int | None) -> Change | None:
        if other is None or other == version or current is None:
            return None
        try:
            before = prices_at_their_months(registry.exam(other), reference, level)
        except RegistryError:  # an artefact that cannot be read is not compared with
            return None
        return change(other, prices, np.asarray(before), np.asarray(current))

    month_ago = champion_at(events, now - MONTH)
    first = pd.Timestamp(events["at"].iloc[0]).to_pydatetime() if len(events) else None
    better = is_it_getting_better(
        version,
        events,
        against(previous_champion(events, version)),
        against(month_ago),
        first,
        same_as_month_ago=month_ago == version,
    )
    changed = what_changed(svc.store.batches(), svc.champion().model.market, len(appraisals))
    return ThreeAnswers(
        is_it_good(metrics, typical_price), better, changed, float(metrics.get("mape") or 0)
    )
