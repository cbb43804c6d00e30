"""What a retrain or an upload came to, with the sentences a person reads about it."""

from __future__ import annotations

from dataclasses import dataclass, field

from diamond_model.enums import RunStatus
from diamond_model.learning.gate import Comparison
from diamond_model.learning.preview import BatchPreview
from diamond_model.storage.lease import Lease
from diamond_model.words import sentence


class RetrainInProgressError(RuntimeError):
    """Another retrain holds the lease."""


class RetrainCancelled(BaseException):
    """The process is shutting down: the run is recorded as abandoned and the lease released."""


def headline(
    status: RunStatus,
    promoted: bool,
    candidate_version: int | None,
    champion_version: int | None,
    reason: str,
    run_id: int | None = None,
    trigger: str = "",
) -> str:
    """What a run did (or is doing), in one sentence: the CLI, the API's run and the dashboard
    all say it this way. With `run_id`, the run is named."""
    run = f" (run {run_id})" if run_id is not None else ""
    if status is RunStatus.RUNNING:
        return f"Run {run_id} is retraining ({trigger})…"
    if promoted:
        return f"v{candidate_version} now prices every quote{run}."
    if status is RunStatus.REJECTED:
        keeps = f"v{champion_version}" if champion_version else "The previous model"
        refused = f"v{candidate_version} was not promoted"
        return f"{keeps} keeps pricing: {refused}{run}. {sentence(reason)}"
    return f"Run {run_id}: {sentence(reason)}" if run_id is not None else sentence(reason)


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did and why."""

    run_id: int
    status: RunStatus
    promoted: bool
    reason: str
    candidate_version: int | None = None
    champion_version: int | None = None
    candidate_metrics: dict[str, float] | None = None
    champion_metrics: dict[str, float] | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0
    follow_ups: list[RetrainOutcome] = field(default_factory=list)

    @property
    def last(self) -> RetrainOutcome:
        """The final run of a chain of follow-ups (what serves now)."""
        return self.follow_ups[-1] if self.follow_ups else self

    @property
    def headline(self) -> str:
        """What happened, in one sentence."""
        return headline(
            self.status, self.promoted, self.candidate_version, self.champion_version, self.reason
        )


@dataclass(frozen=True)
class RunTicket:
    """A started run: its id and the lease that `execute` releases."""

    run_id: int
    lease: Lease
    trigger: str


@dataclass(frozen=True)
class Retraining:
    """The retrain a change of data started: its outcome (synchronous) or run id (background),
    or why none ran, in words."""

    note: str
    outcome: RetrainOutcome | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class Submission:
    """What became of an uploaded batch: stored (or already there), and the retraining."""

    preview: BatchPreview
    batch_id: int | None
    stored: int
    already_stored: bool
    retraining: Retraining | None = None
    held: int = 0  # suspect prices stored but held for review

    @property
    def outcome(self) -> RetrainOutcome | None:
        return None if self.retraining is None else self.retraining.outcome

    def sentences(self) -> list[str]:
        if self.already_stored and self.batch_id is None:
            return ["Every appraisal in this file is already stored: nothing added."]
        if self.already_stored:
            withdrawn = " (it is withdrawn: restore it to use it again)"
            return [
                f"Already stored as batch {self.batch_id}"
                + (withdrawn if self.preview.existing_withdrawn else "")
                + ": nothing added."
            ]
        out = [
            f"Stored batch {self.batch_id}: {self.stored:,} appraisals"
            + (
                f" ({self.preview.n_duplicates:,} already stored, not added again)"
                if self.preview.n_duplicates and self.stored < self.preview.result.n_accepted
                else ""
            )
            + "."
        ]
        if self.held:
            out.append(
                f"{self.held:,} suspect prices are held for review: stored, but not used for "
                "training or any figure until confirmed or corrected."
            )
        if self.retraining is not None:
            out.append(self.retraining.note)
        return out
