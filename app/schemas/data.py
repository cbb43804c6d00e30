"""Uploads, batches and stored appraisals."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.common import Clarity, Color, Cut, UtcDatetime


class RejectionOut(BaseModel):
    line: int = Field(description="Line in the uploaded file.")
    column: str
    value: str = Field(description="The cell as uploaded.")
    reason: str


class BatchInfo(BaseModel):
    """One uploaded file and what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    sha256: str
    uploaded_by: str
    uploaded_at: UtcDatetime
    rows_total: int
    rows_accepted: int = Field(description="Appraisals stored from it.")
    rows_rejected: int
    rows_duplicate: int = Field(description="Rows already stored, not added again.")
    rows_set_aside: int = Field(description="Rows stored with measurements set aside.")
    rows_held: int = Field(0, description="Suspect prices stored but held for review.")
    ignored_columns: list[str]
    withdrawn: bool = Field(description="Withdrawn: kept for the record, no longer used.")
    withdrawn_at: UtcDatetime | None = Field(
        description="When it was withdrawn (kept, no longer used), if it was."
    )
    live: dict[str, Any] | None = Field(
        description="The serving model's reading of it at upload (see the preview)."
    )

    @field_validator("ignored_columns", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [c for c in value.split(",") if c] if isinstance(value, str) else value


class BatchDetail(BatchInfo):
    rejections: list[RejectionOut]
    set_aside: list[RejectionOut] = Field(description="Measurements stored as missing, and why.")


class SuspectOut(BaseModel):
    line: int
    price: float
    model_price: float = Field(description="The serving model's price at the batch's level.")
    cause: str = Field(description="A likely slip (×10, ÷10, ×1000, per carat), or empty.")
    likely_price: float | None = Field(description="The price without that slip.")


class PreviewOut(BaseModel):
    """What the upload holds, before anything is stored."""

    sentences: list[str] = Field(description="The preview in plain words.")
    read_as: list[str] = Field(
        default_factory=list,
        description="How the file was read, when it was not plain UTF-8 CSV with this API's "
        "column names: the encoding or the workbook's sheet, and header names read as columns.",
        examples=[
            ["Read as Windows-1252 text (not UTF-8): …", "Read the header 'Carati' as carat."]
        ],
    )
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    rows_duplicate: int
    rejections: list[RejectionOut]
    set_aside: list[RejectionOut]
    duplicates: list[dict[str, Any]] = Field(description="line and which appraisal it repeats.")
    level_percent: float | None = Field(None, description="Its prices against the model (%).")
    level_se_percent: float | None = None
    verdict: str | None = Field(
        None,
        description="consistent, inconsistent, implausible level, too many suspects, "
        "too few to judge.",
    )
    suspects: list[SuspectOut] = Field(
        default_factory=list,
        description="Prices far beyond the model's own errors: held for review when stored.",
    )
    drift: list[dict[str, Any]] = Field(description="Per feature: typical values and PSI.")


class CorrectionIn(BaseModel):
    """New values for a stored appraisal (only those given change), and why."""

    price: float | None = Field(None, gt=0, le=5_000_000)
    carat: float | None = Field(None, gt=0, le=100)
    cut: Cut | None = None
    color: Color | None = None
    clarity: Clarity | None = None
    reason: str = Field(min_length=1, max_length=500, description="Recorded with the old values.")
    confirm: bool = Field(
        False, description="The (new or unchanged) price is right: stop holding it for review."
    )


class CorrectionOut(BaseModel):
    appraisal_id: int
    before: dict[str, Any]
    after: dict[str, Any]
    held: bool = Field(description="Still held for review (the price is still a suspect).")
    sentences: list[str]
    training_run_url: str | None = None


class IngestOut(BaseModel):
    preview: PreviewOut
    stored: bool = Field(description="False for a dry run or a file already stored.")
    batch: BatchInfo | None = None
    batch_url: str | None = None
    training_run_url: str | None = Field(None, description="Set when a retrain was started.")
    training_note: str | None = None


class WithdrawIn(BaseModel):
    note: str = Field("", max_length=500, description="Why (kept with the batch).")


class AppraisalOut(BaseModel):
    id: int
    batch_id: int
    line: int
    appraised_on: str
    carat: float
    cut: str
    color: str
    clarity: str
    depth: float | None
    table: float | None
    price: float
    x: float | None
    y: float | None
    z: float | None


class AppraisalPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AppraisalOut]


class AuditOut(BaseModel):
    at: UtcDatetime
    who: str = Field(description="A person (dashboard), an API key's name, or the system.")
    action: str = Field(
        description="upload, correct, confirm, withdraw, restore, promote, rollback, fallback."
    )
    subject: str = Field(description="What it was done to: 'batch 3', 'v4', 'appraisal 812'.")
    detail: str
