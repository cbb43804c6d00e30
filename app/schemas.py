"""Request and response models of the REST API: units, grade scales and examples in the docs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from diamond_model.explain import Explanation
from diamond_model.quote import Quote
from diamond_model.schema import CLARITIES, COLORS, CUTS, EXAMPLE_STONE, GRADE_HELP, RANGES

# Stored times are naive UTC (SQLite keeps no zone); the API says so explicitly.
UtcDatetime = Annotated[
    datetime, AfterValidator(lambda d: d.replace(tzinfo=UTC) if d.tzinfo is None else d)
]

Cut = Enum("Cut", {name.upper().replace(" ", "_"): name for name in CUTS}, type=str)
Color = Enum("Color", {name: name for name in COLORS}, type=str)
Clarity = Enum("Clarity", {name: name for name in CLARITIES}, type=str)


def _grade(scale: tuple[str, ...]) -> BeforeValidator:
    lookup = {" ".join(g.split()).casefold(): g for g in scale}

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            return lookup.get(" ".join(value.split()).casefold(), value)
        return value

    return BeforeValidator(normalise)


def _help(grade: str) -> str:
    return "; ".join(f"{k}: {v}" for k, v in GRADE_HELP[grade].items())


def _range(name: str, unit: str, description: str, example: float, optional: bool) -> Any:
    rng = RANGES[name]
    bounds = {"ge" if rng.low_inclusive else "gt": rng.low, "le": rng.high}
    default = {"default": None} if optional else {}
    return Field(**default, **bounds, description=f"{description} ({unit}).", examples=[example])


CUT_FIELD = Field(description=f"Cut grade, worst to best: {', '.join(CUTS)}. {_help('cut')}")
COLOR_FIELD = Field(
    description=f"Color grade, worst to best: {', '.join(COLORS)}. {_help('color')}"
)
CLARITY_FIELD = Field(
    description=f"Clarity grade, worst to best: {', '.join(CLARITIES)}. {_help('clarity')}"
)

STONE_EXAMPLE = EXAMPLE_STONE


class Stone(BaseModel):
    """A stone to price. The 4Cs are required; measurements are optional but narrow the range."""

    model_config = ConfigDict(allow_inf_nan=False, json_schema_extra={"examples": [STONE_EXAMPLE]})

    carat: float = _range("carat", "ct", "Weight in carats, 1 ct = 0.2 g", 1.1, optional=False)
    cut: Annotated[Cut, _grade(CUTS)] = CUT_FIELD
    color: Annotated[Color, _grade(COLORS)] = COLOR_FIELD
    clarity: Annotated[Clarity, _grade(CLARITIES)] = CLARITY_FIELD
    depth: float | None = _range("depth", "%", "Total depth percentage, 2·z/(x+y)", 62.0, True)
    table: float | None = _range(
        "table", "%", "Table width relative to the widest point", 55.0, True
    )
    x: float | None = _range("x", "mm", "Length", 6.61, True)
    y: float | None = _range("y", "mm", "Width", 6.65, True)
    z: float | None = _range("z", "mm", "Depth", 4.11, True)

    def as_row(self) -> dict[str, object]:
        row = self.model_dump()
        for grade in ("cut", "color", "clarity"):
            row[grade] = row[grade].value
        return row


Cell = float | str | None


class LooseStone(BaseModel):
    """A stone in a batch: checked one by one, so a bad stone is reported in place."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [STONE_EXAMPLE]})

    carat: Cell = Field(None, description="Weight (ct).")
    cut: str | None = Field(None, description=f"One of {', '.join(CUTS)}.")
    color: str | None = Field(None, description=f"One of {', '.join(COLORS)}.")
    clarity: str | None = Field(None, description=f"One of {', '.join(CLARITIES)}.")
    depth: Cell = Field(None, description="Depth (%).")
    table: Cell = Field(None, description="Table (%).")
    x: Cell = Field(None, description="Length (mm).")
    y: Cell = Field(None, description="Width (mm).")
    z: Cell = Field(None, description="Depth (mm).")


class FieldError(BaseModel):
    """One problem with one input field."""

    field: str = Field(description="Which field (for a batch row: the stone's field).")
    value: str | None = Field(None, description="The value received, as text.")
    reason: str = Field(description="What is wrong and what is accepted.")


class Problem(BaseModel):
    """Every error, in the RFC 9457 'problem details' shape (application/problem+json)."""

    type: str = Field(
        description="A URI naming the kind of problem.", examples=["/problems/invalid-input"]
    )
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["cut: 'Excelent' is not a cut grade; use one of Fair, Good, ..."])
    errors: list[FieldError] = Field(default_factory=list)


class IntervalOut(BaseModel):
    low: float = Field(description="Lower end of the likely range ($).")
    high: float = Field(description="Upper end of the likely range ($).")
    level: float = Field(description="Share of real prices the range is calibrated to contain.")


class StepOut(BaseModel):
    feature: str = Field(examples=["clarity"])
    label: str = Field(examples=["Clarity"])
    value: str = Field(examples=["SI2"])
    dollars: float = Field(description="How much this feature moves the price ($).")
    percent: float = Field(description="The same move as a percentage of the price before it.")
    price_after: float = Field(description="Running price after this step ($).")
    sentence: str = Field(
        examples=["Clarity SI2 takes off $1,206 (-21.4%) compared with a typical stone"]
    )


class ExplanationOut(BaseModel):
    """From the price of a typical stone to this one: the steps add up exactly to `price`."""

    base_price: float = Field(description="Price of a typical stone in the training data ($).")
    steps: list[StepOut]
    price: float = Field(description="base_price plus every step's dollars ($).")

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        return cls(
            base_price=explanation.base_price,
            price=explanation.price,
            steps=[
                StepOut(
                    feature=s.feature,
                    label=s.label,
                    value=s.value,
                    dollars=s.dollars,
                    percent=round(s.percent, 3),
                    price_after=s.price_after,
                    sentence=s.sentence,
                )
                for s in explanation.steps
            ],
        )


class QuoteOut(BaseModel):
    """A price with its likely range and why."""

    price: float = Field(description="Estimated price ($).", examples=[4576.44])
    currency: str = "USD"
    interval: IntervalOut
    model_version: int
    inputs_used: str = Field(
        description="'all inputs', or '4Cs only' when measurements are missing."
    )
    missing_inputs: list[str] = Field(description="Measurements not given.")
    warnings: list[str] = Field(description="Extrapolation and data-scarcity warnings, in words.")
    explanation: ExplanationOut | None = None

    @classmethod
    def of(cls, quote: Quote, version: int) -> QuoteOut:
        return cls(
            price=quote.price,
            interval=IntervalOut(low=quote.low, high=quote.high, level=quote.level),
            model_version=version,
            inputs_used=quote.model,
            missing_inputs=list(quote.missing),
            warnings=list(quote.warnings),
            explanation=ExplanationOut.of(quote.explanation) if quote.explanation else None,
        )


class BatchIn(BaseModel):
    stones: list[LooseStone] = Field(
        min_length=1, max_length=10_000, description="Up to 10,000 stones (see the settings)."
    )
    explain: bool = Field(False, description="Include explanations (slower on big batches).")


class BatchItem(BaseModel):
    index: int = Field(description="Position of the stone in the request (0-based) or CSV line.")
    quote: QuoteOut | None = None
    errors: list[FieldError] = Field(default_factory=list)


class BatchOut(BaseModel):
    model_version: int
    priced: int
    failed: int
    results: list[BatchItem]


class StoredAppraisal(BaseModel):
    """An appraisal as stored: its batch, its line in the uploaded file, and the ten columns."""

    batch_id: int
    line: int
    carat: float = Field(description="ct")
    cut: str
    color: str
    clarity: str
    depth: float = Field(description="%")
    table: float = Field(description="%")
    price: float = Field(description="$")
    x: float = Field(description="mm")
    y: float = Field(description="mm")
    z: float = Field(description="mm")


class ComparableOut(StoredAppraisal):
    uploaded_at: UtcDatetime | None
    distance: float = Field(description="0 = identical weight and grades; 0.08 ≈ one grade apart.")


class AppraisalOut(StoredAppraisal):
    id: int


class AppraisalPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AppraisalOut]


class RejectionOut(BaseModel):
    line: int
    column: str
    value: str
    reason: str


class BatchInfo(BaseModel):
    id: int
    filename: str
    sha256: str
    uploaded_by: str
    uploaded_at: UtcDatetime
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    ignored_columns: list[str]


class BatchDetail(BatchInfo):
    rejections: list[RejectionOut]


class IngestOut(BaseModel):
    batch: BatchInfo
    rejections: list[RejectionOut]
    batch_url: str
    training_run_url: str | None = Field(None, description="Set when a retrain was started.")
    training_note: str | None = None


class TrainingRunIn(BaseModel):
    force: bool = Field(False, description="Retrain even when no appraisal changed.")


class TrainingRunOut(BaseModel):
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
    url: str


class ModelOut(BaseModel):
    version: int
    created_at: UtcDatetime
    status: str
    is_champion: bool
    algorithm: str
    train_rows: int
    holdout_rows: int
    metrics: dict[str, float | None]
    summary: list[str] = Field(description="The held-out accuracy in plain words.")


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    database: bool
    champion_version: int | None
    model_loaded: bool
