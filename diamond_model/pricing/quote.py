"""The one call that prices stones: estimate, range, confidence, explanation and warnings.

The CLI, the dashboard and the REST API all go through `quote_frame` (many stones) or
`quote_stone` (one), so a price means the same thing wherever it is shown. A stone is refused
only when a C is missing or invalid; unusable measurements are set aside with a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diamond_model.data.measurements import Finding, FindingKind
from diamond_model.data.reading import read_table
from diamond_model.data.schema import (
    LABELS,
    MEASUREMENTS,
    SIZE_AXES,
    STONE_COLUMNS,
    UNITS,
)
from diamond_model.data.validation import Checked, check, findings_table, named_cells, readings
from diamond_model.enums import Confidence, Inputs
from diamond_model.pricing.confidence import ENOUGH_LIKE, LEVELS, like_words, size_band
from diamond_model.pricing.contributions import Explanation, explain
from diamond_model.pricing.estimates import Estimates, estimate_prices
from diamond_model.pricing.model import PricingModel
from diamond_model.words import and_list

# The millimetres as staff and reports name them.
AXIS_WORDS = {"x": "length", "y": "width", "z": "total depth"}
OUTPUT_COLUMNS = (
    "price_estimate",
    "price_low",
    "price_high",
    "confidence",
    "carat_from_mm",  # filled only where the millimetres imply another weight than the carat
    "warnings",
    "error",
)


@dataclass(frozen=True)
class MarketLevel:
    """The market level a price was set at: its month and how far above the average appraisal."""

    period: str
    percent: float


@dataclass(frozen=True)
class Quote:
    """The full answer for one stone."""

    price: float
    low: float
    high: float
    level: float
    inputs_used: Inputs
    missing: tuple[str, ...]
    set_aside: tuple[str, ...]
    warnings: tuple[str, ...]
    confidence: Confidence
    reasons: tuple[str, ...]
    market: MarketLevel
    carat: float
    implied_carat: float | None
    explanation: Explanation | None
    extrapolated: bool = False  # outside what the appraisals cover (weight or grade combination)
    # The carat the millimetres imply when it disagrees with the carat given: one of the two is
    # mistyped, the millimetres are set aside and the price is provisional until someone chooses.
    carat_conflict: float | None = None

    @property
    def provisional(self) -> bool:
        """The carat and the millimetres disagree: a person must say which is right."""
        return self.carat_conflict is not None

    @property
    def indicative(self) -> bool:
        """Outside the appraisals or of low confidence: to be confirmed by the expert before the
        price is promised."""
        return self.extrapolated or self.confidence is Confidence.LOW

    @property
    def price_per_carat(self) -> float:
        return round(self.price / self.carat, 2)


class InvalidStoneError(ValueError):
    """The stone cannot be priced; `problems` lists (field, value, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, _, reason in problems))


@dataclass(frozen=True)
class QuoteBatch:
    """Quotes for the rows that could be priced, aligned with the input rows by position."""

    n_rows: int
    positions: np.ndarray
    quotes: list[Quote]
    rejections: pd.DataFrame
    errors: dict[int, str]

    def __iter__(self) -> Iterator[tuple[int, Quote]]:
        return iter(zip(self.positions.tolist(), self.quotes, strict=True))


def _note_sentence(finding: Finding) -> str:
    if finding.kind is FindingKind.SIZE_CONFLICT:
        return f"measurements {finding.value}: {finding.reason}"
    return finding.reason


@dataclass(frozen=True)
class _Priced:
    """Checked rows priced together, with what each row's quote is built from."""

    columns: dict[str, np.ndarray]
    notes: dict[int, list[Finding]]  # by position among the priced rows; most rows have none
    found: Estimates
    market: MarketLevel
    implied: np.ndarray


def _price(
    model: PricingModel, checked: Checked, rows: np.ndarray, level: float, explain_prices: bool
) -> _Priced:
    """Price the checked rows at `rows` (all of them valid)."""
    columns = {name: checked.columns[name][rows] for name in STONE_COLUMNS}
    n = len(rows)
    notes: dict[int, list[Finding]] = {}
    if checked.notes:
        where = dict(zip(rows.tolist(), range(n), strict=True))
        for finding in checked.notes:
            if finding.position in where:
                notes.setdefault(where[finding.position], []).append(finding)
    conflicts: list[tuple[str, ...]] = [()] * n
    for k, noted in notes.items():
        conflicts[k] = _conflicts(noted)
    found = estimate_prices(model, columns, level, conflicts=conflicts, explain=explain_prices)
    market = MarketLevel(
        period=model.market.latest_label, percent=100 * float(np.expm1(model.market.latest_level))
    )
    return _Priced(columns, notes, found, market, checked.implied_carat[rows])


def _quotes(
    model: PricingModel,
    checked: Checked,
    rows: np.ndarray,
    level: float,
    explain_prices: bool,
) -> list[Quote]:
    """Quotes for the checked rows at `rows` (all of them valid)."""
    priced = _price(model, checked, rows, level, explain_prices)
    return [_quote(model, priced, k, level, explain_prices) for k in range(len(rows))]


def _without_notes(model: PricingModel, priced: _Priced) -> np.ndarray:
    """Rows whose only possible warning is how many appraisals are like them: every input used
    and inside what the model has seen, nothing set aside, assumed or conflicting (conflicts come
    with notes). Their file columns need no Quote object."""
    found = priced.found
    plain: np.ndarray = found.full & ~found.assumed_table & ~found.judged.beyond
    plain[list(priced.notes)] = False
    for name in MEASUREMENTS:
        low, high = model.domain.ranges.get(name, (-np.inf, np.inf))
        values = priced.columns[name]
        plain &= (values >= low) & (values <= high)
    return plain


def _conflicts(notes: list[Finding]) -> tuple[str, ...]:
    out = []
    for note in notes:
        if note.kind is FindingKind.SIZE_CONFLICT:
            out.append(
                f"the millimetres disagree with the carat (they imply {note.figure:.2f} ct): the "
                "range is wider for it"
            )
        elif note.kind is FindingKind.DEPTH_CONFLICT:
            out.append("depth % disagrees with the millimetres: the range is wider for it")
    return tuple(out)


def _quote(
    model: PricingModel, priced: _Priced, k: int, level: float, explain_prices: bool
) -> Quote:
    found, columns, notes = priced.found, priced.columns, priced.notes.get(k, [])
    inputs = found.inputs(k)
    set_aside = tuple(
        axis for note in notes for axis in note.column.split(",") if axis in MEASUREMENTS
    )
    missing = tuple(
        name for name in MEASUREMENTS if np.isnan(columns[name][k]) and name not in set_aside
    )
    warnings = [_note_sentence(note) for note in notes]
    if inputs == Inputs.FOUR_C:
        unusable = [a for a in SIZE_AXES if a in set_aside or a in missing]
        verb = ("was" if len(unusable) == 1 else "were") + " not usable"
        if not any(a in set_aside for a in unusable):
            verb = "is missing" if len(unusable) == 1 else "are missing"
        names = and_list([AXIS_WORDS[a] for a in unusable])
        warnings.append(
            f"priced from the carat and the grades alone because the {names} {verb}: the range "
            "is wider"
        )
    elif found.assumed_table[k]:
        warnings.append(f"table % not given: a typical {model.typical['table']:g} % was used")
    warnings += _outside(model, columns, k, inputs)
    assessment = found.assessment(model.domain, k)
    warnings += [c for c in assessment.concerns if c not in warnings and "millimetres" not in c]
    explanation = None
    if explain_prices:
        explanation = _explanation(model, found, k, columns, inputs, priced.market)
    implied = priced.implied[k]
    return Quote(
        price=float(found.price[k]),
        low=float(found.low[k]),
        high=float(found.high[k]),
        level=level,
        inputs_used=inputs,
        missing=missing,
        set_aside=set_aside,
        warnings=tuple(warnings),
        confidence=assessment.level,
        reasons=assessment.reasons,
        market=priced.market,
        carat=float(columns["carat"][k]),
        implied_carat=None if np.isnan(implied) else round(float(implied), 2),
        explanation=explanation,
        extrapolated=assessment.extrapolated,
        carat_conflict=_carat_conflict(notes),
    )


def conflict_question(carat: float, implied: float) -> str:
    """The one question a carat/millimetre conflict asks, in the same words everywhere."""
    return (
        f"The carat and the measurements disagree: {carat:g} ct was typed, the millimetres "
        f"imply {implied:.2f} ct. One of them is mistyped. The price below is provisional "
        f"(from {carat:g} ct): use {implied:.2f} ct, or keep {carat:g} ct and ignore the "
        "millimetres."
    )


def _carat_conflict(notes: list[Finding]) -> float | None:
    for note in notes:
        if note.kind is FindingKind.SIZE_CONFLICT and not np.isnan(note.figure):
            return round(float(note.figure), 2)
    return None


def _outside(
    model: PricingModel, columns: dict[str, np.ndarray], k: int, inputs: Inputs
) -> list[str]:
    """Measurements used for the price but beyond what the model has seen."""
    if inputs != Inputs.ALL:
        return []
    out = []
    for name in MEASUREMENTS:
        value = columns[name][k]
        low, high = model.domain.ranges.get(name, (value, value))
        if not np.isnan(value) and not low <= value <= high:
            unit = UNITS[name]
            out.append(
                f"{LABELS[name]} {value:g} {unit} is outside what the model has seen "
                f"({low:g}–{high:g} {unit})"
            )
    return out


def _explanation(
    model: PricingModel,
    found: Estimates,
    k: int,
    columns: dict[str, np.ndarray],
    inputs: Inputs,
    market: MarketLevel,
) -> Explanation:
    regressor = model.regressor(inputs)
    features = list(regressor.features)
    explainer = model.explainer(inputs)
    values = {name: float(found.columns[name][k]) for name in features if name in found.columns}
    contributions = found.contributions[k]
    if contributions is None:
        raise ValueError("the stone was priced without contributions: ask for explain=True")
    return explain(
        explainer.base_log,
        contributions,
        features,
        values,
        base_stone=explainer.typical_words,
        market=(market.period, float(found.market_log[k])),
        final_price=float(found.price[k]),
    )


def _cells(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns by the names the checks use (Italian and English header names read too)."""
    return named_cells(frame)[0]


def _errors(checked: Checked) -> dict[int, str]:
    errors: dict[int, str] = {}
    for problem in checked.problems:
        position, reason = problem.position, problem.reason
        errors[position] = f"{errors[position]}; {reason}" if position in errors else reason
    return errors


def quote_frame(
    model: PricingModel,
    frame: pd.DataFrame,
    level: float,
    explain_prices: bool = True,
    lines: np.ndarray | None = None,
    decimal_comma: bool = False,
) -> QuoteBatch:
    """Validate and price every row of `frame`; rows without valid 4Cs get an error instead."""
    frame = frame.reset_index(drop=True)
    n = len(frame)
    checked = check(_cells(frame), n, "pricing", decimal_comma)
    rows = np.flatnonzero(~checked.bad)
    line_numbers = np.arange(1, n + 1) if lines is None else np.asarray(lines)
    return QuoteBatch(
        n_rows=n,
        positions=rows,
        quotes=_quotes(model, checked, rows, level, explain_prices) if len(rows) else [],
        rejections=findings_table(checked.problems, line_numbers),
        errors=_errors(checked),
    )


def output_columns(
    model: PricingModel, frame: pd.DataFrame, level: float, decimal_comma: bool = False
) -> pd.DataFrame:
    """The output columns for every row of `frame`, in order; blanks where a row is not priced.

    The same prices, ranges, confidence and warnings as `quote_frame`'s quotes, without building
    a Quote for the rows that need no words (most of a file): 50,000 rows in a fraction of the
    time (`make bench`)."""
    n = len(frame)
    checked = check(_cells(frame.reset_index(drop=True)), n, "pricing", decimal_comma)
    out: dict[str, np.ndarray] = {
        "price_estimate": np.full(n, np.nan),
        "price_low": np.full(n, np.nan),
        "price_high": np.full(n, np.nan),
        "confidence": np.full(n, "", dtype=object),
        "carat_from_mm": np.full(n, np.nan),
        "warnings": np.full(n, "", dtype=object),
        "error": np.full(n, "", dtype=object),
    }
    rows = np.flatnonzero(~checked.bad)
    if len(rows):
        priced = _price(model, checked, rows, level, explain_prices=False)
        found = priced.found
        out["price_estimate"][rows] = found.price
        out["price_low"][rows] = found.low
        out["price_high"][rows] = found.high
        out["confidence"][rows] = np.array([str(c) for c in LEVELS], dtype=object)[
            found.judged.level
        ]
        plain = _without_notes(model, priced)
        worded = np.flatnonzero(~plain)
        out["warnings"][rows[worded]] = [
            "; ".join(_quote(model, priced, k, level, False).warnings) for k in worded.tolist()
        ]
        for k, noted in priced.notes.items():
            out["carat_from_mm"][rows[k]] = _carat_conflict(noted) or np.nan
        few = np.flatnonzero(plain & (found.judged.like < ENOUGH_LIKE))
        out["warnings"][rows[few]] = _like_warnings(found, few)
    for position, message in _errors(checked).items():
        out["error"][position] = message
    return pd.DataFrame(out)


def _like_warnings(found: Estimates, positions: np.ndarray) -> list[str]:
    """The one warning of plain rows with few appraisals like them, each wording built once."""
    keys = zip(
        found.judged.like[positions].tolist(),
        found.columns["color"][positions].tolist(),
        found.columns["clarity"][positions].tolist(),
        size_band(found.columns["carat"][positions]).tolist(),
        strict=True,
    )
    words: dict[tuple[int, int, int, int], str] = {}
    return [words.get(key) or words.setdefault(key, like_words(*key)) for key in keys]


def price_table(model: PricingModel, data: bytes | str, level: float) -> pd.DataFrame:
    """Every row of a file of stones, in file order, with the output columns added.

    Rows with the wrong number of fields are kept too (cells padded or cut to the header) with
    the reason in `error`. Any price column in the input is carried along but never used.
    """
    return read_and_price(model, data, level)[0]


def read_and_price(
    model: PricingModel, data: bytes | str, level: float, sheet: str | None = None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """`price_table`, and how the file was read (encoding, sheet, header names, report grades
    such as "GIA Excellent read as Ideal"), in words, for the person to check."""
    raw = read_table(data, sheet)
    frame = raw.frame.drop(columns=[c for c in raw.frame.columns if c in OUTPUT_COLUMNS])
    frame = frame.reset_index(drop=True)
    cells, headers = named_cells(frame)
    read_as = (*raw.notes, *readings(headers, cells))
    priced = pd.concat([frame, output_columns(model, frame, level, raw.decimal_comma)], axis=1)
    if not raw.malformed_cells:
        return priced, read_as
    priced["_line"] = raw.lines
    width = len(frame.columns)
    padded = [(cells + [""] * width)[:width] for cells in raw.malformed_cells]
    extra = pd.DataFrame(padded, columns=frame.columns, dtype=object)
    extra["price_estimate"] = extra["price_low"] = extra["price_high"] = np.nan
    extra["carat_from_mm"] = np.nan
    extra["confidence"] = extra["warnings"] = ""
    extra["error"] = raw.malformed["reason"].to_numpy()
    extra["_line"] = raw.malformed["line"].to_numpy()
    priced = pd.concat([priced, extra], ignore_index=True)
    priced = priced.sort_values("_line", kind="stable").drop(columns="_line")
    return priced.reset_index(drop=True), read_as


def quote_stone(
    model: PricingModel, stone: Mapping[str, object], level: float, explain_prices: bool = True
) -> Quote:
    """Price one stone given as a mapping (carat, cut, color, clarity, optional measurements).

    Goes straight from the mapping to numpy arrays (no DataFrame): this is the hot path of the
    API and the dashboard.
    """
    cells = {name: np.array([stone.get(name)], dtype=object) for name in STONE_COLUMNS}
    checked = check(cells, 1, "pricing")
    if checked.problems:
        raise InvalidStoneError(
            [(problem.column, problem.value, problem.reason) for problem in checked.problems]
        )
    return _quotes(model, checked, np.zeros(1, dtype=int), level, explain_prices)[0]
