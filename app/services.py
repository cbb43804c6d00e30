"""Per-process services shared by the REST API and the dashboard: store, registry, champion cache,
and retrains run in a background thread so quotes keep flowing while a candidate trains."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from diamond_model.pipeline import Pipeline, RetrainOutcome, RunTicket
from diamond_model.quote import Quote, quote_stone
from diamond_model.registry import Registry
from diamond_model.settings import Settings
from diamond_model.store import Store
from diamond_model.training import PricingModel

log = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion has been trained yet."""

    def __init__(self) -> None:
        super().__init__(
            "No price model is trained yet. Run `python -m diamond_model init` (or `make run`), "
            "or upload appraisals and start a retrain."
        )


@dataclass
class Services:
    """What a serving process needs, created once per process."""

    settings: Settings
    pipeline: Pipeline
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cache = self.pipeline.cache()

    @classmethod
    def create(cls, settings: Settings) -> Services:
        pipeline = Pipeline.from_settings(settings)
        pipeline.store.create_schema()
        return cls(settings=settings, pipeline=pipeline)

    @property
    def store(self) -> Store:
        return self.pipeline.store

    @property
    def registry(self) -> Registry:
        return self.pipeline.registry

    def champion(self) -> tuple[int, PricingModel]:
        """(version, model) of the serving champion; raises NoModelError when there is none."""
        current = self.cache.get()
        if current is None:
            raise NoModelError()
        return current

    def quote(self, stone: dict[str, object], explain: bool = True) -> tuple[int, Quote]:
        version, model = self.champion()
        return version, quote_stone(model, stone, self.settings.interval_level, explain)

    def start_retrain(self, trigger: str, force: bool = False) -> int:
        """Begin a retrain (raises RetrainInProgressError if one runs) and finish it in a thread."""
        ticket = self.pipeline.begin(trigger)
        thread = threading.Thread(
            target=self._run, args=(ticket, force), name=f"retrain-{ticket.run_id}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return ticket.run_id

    def _run(self, ticket: RunTicket, force: bool) -> RetrainOutcome | None:
        try:
            return self.pipeline.execute(ticket, force=force)
        except Exception:  # recorded on the run by the pipeline; a thread has no caller to tell
            log.exception("background retrain %d failed", ticket.run_id)
            return None

    def wait_for_background(self, timeout: float = 120.0) -> None:
        """Join finished-or-running retrain threads (tests and orderly shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def close(self) -> None:
        self.wait_for_background()
        self.pipeline.store.dispose()
