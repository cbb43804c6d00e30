"""Models, training runs, health and usage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import UtcDatetime


class ModelOut(BaseModel):
    """A model version, read from the registry's record."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    created_at: UtcDatetime
    status: str
    is_champion: bool
    servable: bool = Field(
        description="False for versions an earlier release trained, and for versions that "
        "learned from a batch withdrawn since."
    )
    learned_from: list[int] = Field(description="The batches it was trained on.")
    judged_on: list[int] = Field(description="The batches its figures come from.")
    withdrawn_from: list[int] = Field(description="Batches it learned from that are withdrawn.")
    gate_refused: bool = Field(
        description="The promotion gate refused it when it was trained (kept if it was later "
        "promoted by hand with an override)."
    )
    algorithm: str
    train_rows: int
    holdout_rows: int
    metrics: dict[str, float | None] = Field(description="On its held-out appraisals.")
    reference_metrics: dict[str, float | None] | None = Field(
        description="On the fixed reference set every version is compared on."
    )


class PromoteIn(BaseModel):
    override: str = Field(
        "",
        max_length=500,
        description="Needed to serve a version the gate refused: why it should serve anyway "
        "(recorded in the champion history).",
    )


class TrainingRunIn(BaseModel):
    force: bool = Field(False, description="Retrain even when no appraisal changed.")


class TrainingRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str = Field(description="running, promoted, rejected, skipped, failed or abandoned.")
    trigger: str
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    promoted: bool
    message: str = Field(description="Why it was promoted or not, in words.")
    candidate_version: int | None
    champion_version: int | None
    candidate_metrics: dict[str, float | None] | None
    champion_metrics: dict[str, float | None] | None
    url: str = ""


class Liveness(BaseModel):
    status: str = Field(examples=["alive"])


class Readiness(BaseModel):
    ready: bool
    detail: str


class Health(BaseModel):
    """From memory: never waits on the database."""

    status: str = Field(description="ok, or degraded (no model, or the database unreachable).")
    champion_version: int | None
    model_loaded: bool
    database: bool | None = Field(description="The last readiness check (at most 1 s old).")
    detail: str


class UsageHour(BaseModel):
    hour: UtcDatetime
    requests: int
    stones: int = Field(description="Stones priced (what is charged).")
    errors: int = Field(description="Requests that failed; their stones are not counted.")
    refused: int = Field(
        0, description="Requests refused for a limit (429); their stones are not counted."
    )


class UsageOut(BaseModel):
    key: str
    scopes: list[str]
    stones_per_day: int | None
    requests_per_minute: int | None
    hours: list[UsageHour]
    stones_left_today: int | None = Field(
        None, description="Stones this key may still price today (UTC); none without a limit."
    )
    requests_left_this_minute: int | None = Field(
        None, description="Requests left in this minute; none without a limit."
    )
