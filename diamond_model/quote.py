"""The one call that prices stones: estimate, interval, explanation, missing inputs and warnings.

The CLI, the dashboard and the REST API all go through `quote_frame` (many stones) or
`quote_stone` (one), so a price means the same thing wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diamond_model.explain import Explanation, explain
from diamond_model.model import encode
from diamond_model.schema import GRADES, LABELS, MEASUREMENTS, STONE_COLUMNS, UNITS
from diamond_model.training import NUMERIC_DOMAIN, PricingModel
from diamond_model.validation import read_csv, validate

RARE_GRADE_COUNT = 10


@dataclass(frozen=True)
class Quote:
    """The full answer for one stone."""

    price: float
    low: float
    high: float
    level: float
    model: str
    missing: tuple[str, ...]
    warnings: tuple[str, ...]
    explanation: Explanation | None


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

    def to_frame(self) -> pd.DataFrame:
        """price_estimate, price_low, price_high, error: one row per input row, in input order."""
        out = pd.DataFrame(
            {
                "price_estimate": np.full(self.n_rows, np.nan),
                "price_low": np.full(self.n_rows, np.nan),
                "price_high": np.full(self.n_rows, np.nan),
                "error": [""] * self.n_rows,
            }
        )
        if self.quotes:
            out.loc[self.positions, "price_estimate"] = [q.price for q in self.quotes]
            out.loc[self.positions, "price_low"] = [q.low for q in self.quotes]
            out.loc[self.positions, "price_high"] = [q.high for q in self.quotes]
        for position, message in self.errors.items():
            out.loc[position, "error"] = message
        return out


def _domain_warnings(model: PricingModel, stones: pd.DataFrame) -> list[list[str]]:
    warnings: list[list[str]] = [[] for _ in range(len(stones))]
    for name in NUMERIC_DOMAIN:
        low, high = model.domain.ranges[name]
        values = stones[name].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            outside = np.flatnonzero((values < low) | (values > high))
        unit = UNITS[name]
        for position in outside:
            warnings[position].append(
                f"{LABELS[name]} {values[position]:g} {unit} is outside what the model has seen "
                f"({low:g}–{high:g} {unit}); this estimate is an extrapolation"
            )
    for grade, counts in model.domain.grade_counts.items():
        scale = GRADES[grade]
        seen = np.array([counts.get(value, 0) for value in scale])
        codes = stones[grade].cat.codes.to_numpy()
        for position in np.flatnonzero(seen[codes] < RARE_GRADE_COUNT):
            value = scale[codes[position]]
            warnings[position].append(
                f"only {counts.get(value, 0)} {grade} {value} stones were in the training "
                "data; treat this estimate with care"
            )
    return warnings


def quote_frame(
    model: PricingModel,
    frame: pd.DataFrame,
    level: float,
    explain_prices: bool = True,
    lines: np.ndarray | None = None,
    decimal_comma: bool = False,
) -> QuoteBatch:
    """Validate and price every row of `frame`; bad rows get an error instead of a price."""
    frame = frame.reset_index(drop=True)
    result = validate(frame, "pricing", lines=lines, decimal_comma=decimal_comma)
    stones = result.accepted
    positions = stones.index.to_numpy(dtype=int)
    missing_mask = stones[list(MEASUREMENTS)].isna().to_numpy() if len(stones) else np.zeros((0, 5))
    incomplete = missing_mask.any(axis=1)
    warnings = _domain_warnings(model, stones) if len(stones) else []

    quotes: list[Quote | None] = [None] * len(stones)
    cells = {name: stones[name].to_numpy(dtype=object) for name in STONE_COLUMNS}
    for variant, rows in (("full", ~incomplete), ("reduced", incomplete)):
        index = np.flatnonzero(rows)
        if not len(index):
            continue
        regressor = model.regressor(variant)
        features = list(regressor.features)
        subset = stones if len(index) == len(stones) else stones.iloc[index]
        matrix = encode(subset, features)
        calibration = model.calibration(variant, level)
        if explain_prices:
            base, contributions = regressor.contributions_matrix(matrix)
            log_price = base + contributions.sum(axis=1)
        else:
            log_price = regressor.predict_log_matrix(matrix)
        prices = np.round(np.exp(log_price), 2)
        label = "all inputs" if variant == "full" else "4Cs only"
        for k, position in enumerate(index):
            explanation = None
            price = float(prices[k])
            if explain_prices:
                values = {name: _present(cells[name][position]) for name in features}
                explanation = explain(float(base[k]), contributions[k], features, values)
                price = explanation.price
            low, high = calibration.bounds(price)
            missing = tuple(np.asarray(MEASUREMENTS)[missing_mask[position]])
            notes = list(warnings[position])
            if missing:
                notes.insert(
                    0,
                    f"priced from the 4Cs only because {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} missing; the range is wider",
                )
            quotes[position] = Quote(
                price=price,
                low=round(float(low), 2),
                high=round(float(high), 2),
                level=level,
                model=label,
                missing=missing,
                warnings=tuple(notes),
                explanation=explanation,
            )
    errors = {}
    if not result.rejections.empty:
        line_to_position = dict(
            zip(
                (np.arange(1, len(frame) + 1) if lines is None else np.asarray(lines)).tolist(),
                range(len(frame)),
                strict=True,
            )
        )
        for line, reason in result.reasons_by_line().itertuples(index=False):
            errors[line_to_position[line]] = reason
    return QuoteBatch(
        n_rows=len(frame),
        positions=positions,
        quotes=[q for q in quotes if q is not None],
        rejections=result.rejections,
        errors=errors,
    )


def _present(value: object) -> object:
    return None if value is None or value != value else value


OUTPUT_COLUMNS = ("price_estimate", "price_low", "price_high", "error")


def price_table(model: PricingModel, data: bytes | str, level: float) -> pd.DataFrame:
    """Every row of a CSV file, in file order, with price_estimate, price_low, price_high, error.

    Rows with the wrong number of fields are kept too (cells padded or cut to the header) with
    the reason in `error`. Any price column in the input is carried along but never used.
    """
    raw = read_csv(data)
    frame = raw.frame.drop(columns=[c for c in raw.frame.columns if c in OUTPUT_COLUMNS])
    batch = quote_frame(
        model,
        frame,
        level,
        explain_prices=False,
        lines=raw.lines,
        decimal_comma=raw.separator == ";",
    )
    priced = pd.concat([frame.reset_index(drop=True), batch.to_frame()], axis=1)
    priced["_line"] = raw.lines
    if raw.malformed_cells:
        width = len(frame.columns)
        padded = [(cells + [""] * width)[:width] for cells in raw.malformed_cells]
        extra = pd.DataFrame(padded, columns=frame.columns, dtype=object)
        extra["price_estimate"] = extra["price_low"] = extra["price_high"] = np.nan
        extra["error"] = raw.malformed["reason"].to_numpy()
        extra["_line"] = raw.malformed["line"].to_numpy()
        priced = pd.concat([priced, extra], ignore_index=True)
    return priced.sort_values("_line", kind="stable").drop(columns="_line").reset_index(drop=True)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with = + - @ with a quote, so a spreadsheet shows, not runs, them.

    Plain numbers (including negative ones) are left alone: they cannot be formulas.
    """
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column].dtype):
            continue
        text = out[column].astype(str)
        risky = text.str.match(r"^[=+\-@\t\r]") & pd.to_numeric(text, errors="coerce").isna()
        out.loc[risky, column] = "'" + text[risky]
    return out


def quote_stone(
    model: PricingModel, stone: Mapping[str, object], level: float, explain_prices: bool = True
) -> Quote:
    """Price one stone given as a mapping (carat, cut, color, clarity, optional measurements)."""
    row = {name: stone.get(name) for name in STONE_COLUMNS}
    frame = pd.DataFrame([row])
    batch = quote_frame(model, frame, level, explain_prices=explain_prices)
    if not batch.quotes:
        problems = [(r.column, r.value, r.reason) for r in batch.rejections.itertuples(index=False)]
        raise InvalidStoneError(problems)
    return batch.quotes[0]
