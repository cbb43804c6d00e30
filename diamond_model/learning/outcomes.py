"""What a retrain or an upload came to, with the sentences a person reads about it."""

from __future__ import annotations

from dataclasses import dataclass, field

from diamond_model.kinds import RunStatus
from diamond_model.learning.gate import Comparison
from diamond_model.learning.preview import BatchPreview
from diamond_model.storage.lease import Lease


class RetrainInProgressError(RuntimeError):
    """Another retrain holds the lease."""


class RetrainCancelled(BaseException):
    """The process is shutting down: the run is recorded as abandoned and the lease released."""


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
        if self.promoted:
            return f"v{self.candidate_version} now prices every quote."
        if self.status == RunStatus.SKIPPED:
            return self.reason[0].upper() + self.reason[1:]
        serving = f"v{self.champion_version}" if self.champion_version else "No model"
        return f"{serving} keeps pricing: v{self.candidate_version} was not promoted."


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
        if self.retraining is not None:
            out.append(self.retraining.note)
        return out
