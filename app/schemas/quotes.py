"""Stones in, quotes out: price, range, confidence, market level, explanation, records."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

from app.schemas.common import Clarity, Color, Cut, FieldError, UtcDatetime, grade
from diamond_model.data.schema import CLARITIES, COLORS, CUTS, EXAMPLE_STONE, GRADE_HELP, RANGES
from diamond_model.pricing.contributions import Explanation
from diamond_model.pricing.quote import Quote, conflict_question

Number = Annotated[float, Strict()]  # an int or a float; true/false and "1.2" are refused


def _help(grade_name: str) -> str:
    return "; ".join(f"{k}: {v}" for k, v in GRADE_HELP[grade_name].items())


def _range(name: str, unit: str, description: str, example: float, optional: bool) -> Any:
    rng = RANGES[name]
    bounds = {"ge" if rng.low_inclusive else "gt": rng.low, "le": rng.high}
    default = {"default": None} if optional else {}
    return Field(**default, **bounds, description=f"{description} ({unit}).", examples=[example])


class Stone(BaseModel):
    """A stone to price. The 4Cs are required; measurements are optional. Measurements that are
    implausible or disagree with the carat are set aside (the quote says which and why)."""

    model_config = ConfigDict(allow_inf_nan=False, json_schema_extra={"examples": [EXAMPLE_STONE]})

    carat: Number = _range("carat", "ct", "Weight in carats, 1 ct = 0.2 g", 1.1, optional=False)
    cut: Annotated[Cut, grade("cut")] = Field(
        description=f"Cut grade, worst to best: {', '.join(CUTS)}. {_help('cut')}. Report names "
        "read too: GIA/IGI/HRD 'Excellent' (and 'EX') as Ideal, 'VG' as Very Good; 'Poor' is "
        "refused (below these appraisals)."
    )
    color: Annotated[Color, grade("color")] = Field(
        description=f"Colour grade, worst to best: {', '.join(COLORS)}. {_help('color')}. K to Z "
        "are refused: grades beyond these appraisals, to be priced by the expert."
    )
    clarity: Annotated[Clarity, grade("clarity")] = Field(
        description=f"Clarity grade, worst to best: {', '.join(CLARITIES)}. {_help('clarity')}. "
        "'VS-1' and 'VS 1' read as VS1, 'P1' as I1; I2, I3 and FL are refused (beyond these "
        "appraisals)."
    )
    depth: Number | None = Field(
        None, description="Total depth percentage, 2·z/(x+y) (%).", examples=[62.0]
    )
    table: Number | None = Field(
        None, description="Table width relative to the widest point (%).", examples=[55.0]
    )
    x: Number | None = Field(None, description="Length (mm).", examples=[6.61])
    y: Number | None = Field(None, description="Width (mm).", examples=[6.65])
    z: Number | None = Field(None, description="Total depth (mm).", examples=[4.11])

    def as_row(self) -> dict[str, object]:
        row = self.model_dump()
        for name in ("cut", "color", "clarity"):
            row[name] = row[name].value
        return row


Cell = float | str | None


class LooseStone(BaseModel):
    """A stone in a batch: checked one by one, so a bad stone is reported in place."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_STONE]})

    carat: Cell = Field(None, description="Weight (ct).")
    cut: str | None = Field(None, description=f"One of {', '.join(CUTS)}.")
    color: str | None = Field(None, description=f"One of {', '.join(COLORS)}.")
    clarity: str | None = Field(None, description=f"One of {', '.join(CLARITIES)}.")
    depth: Cell = Field(None, description="Depth (%).")
    table: Cell = Field(None, description="Table (%).")
    x: Cell = Field(None, description="Length (mm).")
    y: Cell = Field(None, description="Width (mm).")
    z: Cell = Field(None, description="Total depth (mm).")


class IntervalOut(BaseModel):
    low: float = Field(description="Lower end of the likely range ($).")
    high: float = Field(description="Upper end of the likely range ($).")
    level: float = Field(description="Share of real prices the range is calibrated to contain.")


class ConfidenceOut(BaseModel):
    level: str = Field(description="high, medium or low; low comes with a wider range.")
    reasons: list[str] = Field(description="Why, in words: similar appraisals, extrapolation, …")


class MarketOut(BaseModel):
    period: str = Field(description="The month whose market level the price is set at (YYYY-MM).")
    level_percent: float = Field(
        description="That level against the average of the appraisals learned from (%)."
    )


class PartOut(BaseModel):
    feature: str = Field(examples=["carat"])
    value: str = Field(examples=["1.10 ct"])
    dollars: float = Field(description="This input's share of the step ($).")
    percent: float


class StepOut(BaseModel):
    feature: str = Field(description="size, cut, color, clarity, depth, table, market or other.")
    label: str = Field(examples=["Clarity"])
    value: str = Field(examples=["SI2"])
    dollars: float = Field(description="How much this step moves the price ($).")
    percent: float = Field(description="The same move as a percentage of the price before it.")
    price_after: float = Field(description="Running price after this step ($).")
    sentence: str = Field(
        examples=["Clarity SI2 takes off $1,206 (-21.4%) compared with the typical stone"]
    )
    parts: list[PartOut] = Field(
        default_factory=list, description="For 'size': carat and each millimetre's share."
    )


class ExplanationOut(BaseModel):
    """From the price of a typical stone to this one, in a fixed order; the steps add up
    exactly to `price`."""

    base_price: float = Field(description="Price of the typical stone ($).")
    base_stone: str = Field(description="The typical stone the steps start from, in words.")
    steps: list[StepOut]
    price: float = Field(description="base_price plus every step's dollars ($).")

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        return cls(
            base_price=explanation.base_price,
            base_stone=explanation.base_words,
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
                    parts=[
                        PartOut(
                            feature=p.feature,
                            value=p.value,
                            dollars=p.dollars,
                            percent=round(p.percent, 3),
                        )
                        for p in s.parts
                    ],
                )
                for s in explanation.steps
            ],
        )


class CaratConflictOut(BaseModel):
    """The carat and the millimetres disagree: one of them is mistyped. The price is provisional
    (priced from the carat, millimetres set aside) until the caller asks again with one of the
    two: the implied carat, or the carat without the millimetres."""

    carat: float = Field(description="The carat given (ct): what the price was set from.")
    implied_carat: float = Field(description="The weight the millimetres imply (ct).")
    message: str = Field(description="The question to put to the person, in words.")


class QuoteOut(BaseModel):
    """A price with its likely range, how sure it is, and why."""

    quote_id: str | None = Field(
        None, description="Fetch this quote again at GET /v1/quotes/{quote_id}."
    )
    price: float = Field(description="Estimated price ($).", examples=[4576.44])
    currency: str = "USD"
    price_per_carat: float = Field(description="Price divided by the weight ($/ct).")
    interval: IntervalOut
    confidence: ConfidenceOut
    model_version: int
    market: MarketOut
    inputs_used: str = Field(
        description="'all inputs', or '4Cs only' when the measurements are missing or set aside."
    )
    missing_inputs: list[str] = Field(description="Measurements not given.")
    set_aside: list[str] = Field(description="Measurements given but not used (see warnings).")
    implied_carat: float | None = Field(
        None, description="The weight the given millimetres imply (ct)."
    )
    warnings: list[str] = Field(description="What was set aside, assumed or extrapolated.")
    carat_conflict: CaratConflictOut | None = Field(
        None,
        description="Present when the millimetres imply another weight than the carat given: the "
        "price is provisional until one of the two is confirmed.",
    )
    indicative: bool = Field(
        False,
        description="True when the stone is outside the appraisals or of low confidence: show "
        "the price as indicative, to be confirmed by an expert, not as a promise.",
    )
    explanation: ExplanationOut | None = None

    @classmethod
    def of(cls, quote: Quote, version: int, quote_id: str | None = None) -> QuoteOut:
        return cls(
            quote_id=quote_id,
            price=quote.price,
            price_per_carat=quote.price_per_carat,
            interval=IntervalOut(low=quote.low, high=quote.high, level=quote.level),
            confidence=ConfidenceOut(level=str(quote.confidence), reasons=list(quote.reasons)),
            model_version=version,
            market=MarketOut(
                period=quote.market.period, level_percent=round(quote.market.percent, 3)
            ),
            inputs_used=str(quote.inputs_used),
            missing_inputs=list(quote.missing),
            set_aside=list(quote.set_aside),
            implied_carat=quote.implied_carat,
            warnings=list(quote.warnings),
            carat_conflict=None
            if quote.carat_conflict is None
            else CaratConflictOut(
                carat=quote.carat,
                implied_carat=quote.carat_conflict,
                message=conflict_question(quote.carat, quote.carat_conflict),
            ),
            indicative=quote.indicative,
            explanation=ExplanationOut.of(quote.explanation) if quote.explanation else None,
        )


class QuoteRecordOut(BaseModel):
    """A quote as it was given, with the stone it was asked for."""

    quote_id: str
    created_at: UtcDatetime
    model_version: int
    market_period: str
    stone: dict[str, Any]
    quote: QuoteOut


class BatchIn(BaseModel):
    stones: list[LooseStone] = Field(
        min_length=1, description="The stones; at most the server's batch limit (see /docs)."
    )
    explain: bool = Field(False, description="Include explanations (slower on big batches).")


class BatchItem(BaseModel):
    position: int = Field(description="0-based position of the stone in the request or file.")
    line: int | None = Field(None, description="For a CSV file: the stone's line in the file.")
    quote: QuoteOut | None = None
    errors: list[FieldError] = Field(default_factory=list)


class BatchOut(BaseModel):
    model_version: int
    priced: int
    failed: int
    results: list[BatchItem]


class ComparableOut(BaseModel):
    """A stored appraisal close to the stone asked about."""

    model_config = ConfigDict(from_attributes=True)

    batch_id: int
    line: int
    appraised_on: str = Field(description="When the stone was appraised (YYYY-MM-DD).")
    carat: float = Field(description="ct")
    cut: str
    color: str
    clarity: str
    depth: float | None = Field(description="%")
    table: float | None = Field(description="%")
    price: float = Field(description="$")
    x: float | None = Field(description="mm")
    y: float | None = Field(description="mm")
    z: float | None = Field(description="mm")
    distance: float = Field(description="0 = identical weight and grades; 0.08 ≈ one grade apart.")


class MarketPeriodOut(BaseModel):
    period: str = Field(examples=["2026-03"])
    level_percent: float = Field(description="Level against the average appraisal (%).")
    low_percent: float = Field(description="Lower end of its 90 % band (%).")
    high_percent: float = Field(description="Upper end of its 90 % band (%).")
    appraisals: int


class MarketIndexOut(BaseModel):
    model_version: int
    quotes_use: str = Field(description="The period whose level every quote is priced at.")
    periods: list[MarketPeriodOut]


class BatchLiveOut(BaseModel):
    batch_id: int
    uploaded_at: UtcDatetime
    appraisals: int
    mape: float = Field(description="Mean absolute error of the serving model on it (%).")
    coverage: float = Field(description="Its prices inside the quoted ranges (%).")
    level_percent: float = Field(description="Its prices against the model's quotes (%).")
    verdict: str


class ServingModelOut(BaseModel):
    """The model pricing every quote now, its accuracy in plain words, and how it reads the
    latest batches before any retraining (live accuracy)."""

    version: int
    created_at: UtcDatetime
    train_rows: int
    metrics: dict[str, float | None] = Field(description="On held-out appraisals at training.")
    summary: list[str] = Field(description="The held-out accuracy in plain words.")
    latest_batches: list[BatchLiveOut] = Field(
        description="The serving model's reading of the latest batches, before training on them."
    )
    market_period: str
