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
from diamond_model.model import encode_columns
from diamond_model.schema import GRADES, LABELS, MEASUREMENTS, STONE_COLUMNS, UNITS
from diamond_model.training import NUMERIC_DOMAIN, PricingModel
from diamond_model.validation import check, read_csv, validate

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


def _domain_warnings(
    model: PricingModel, columns: dict[str, np.ndarray], n: int
) -> list[list[str]]:
    warnings: list[list[str]] = [[] for _ in range(n)]
    for name in NUMERIC_DOMAIN:
        low, high = model.domain.ranges[name]
        values = columns[name]
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
        codes = columns[grade]
        for position in np.flatnonzero(seen[codes] < RARE_GRADE_COUNT):
            value = scale[codes[position]]
            warnings[position].append(
                f"only {counts.get(value, 0)} {grade} {value} stones were in the training "
                "data; treat this estimate with care"
            )
    return warnings


def _shown(name: str, value: object) -> object:
    """A cell as the explanation shows it: grade names for codes, None for missing numbers."""
    if name in GRADES:
        return GRADES[name][int(value)]
    return None if value != value else float(value)


def price_columns(
    model: PricingModel, columns: dict[str, np.ndarray], level: float, explain_prices: bool = True
) -> list[Quote]:
    """Quotes for valid, checked stones given as columns (see `validation.check`)."""
    n = len(columns["carat"])
    if n == 0:
        return []
    missing_mask = np.column_stack([np.isnan(columns[name]) for name in MEASUREMENTS])
    incomplete = missing_mask.any(axis=1)
    warnings = _domain_warnings(model, columns, n)
    quotes: list[Quote | None] = [None] * n
    for variant, rows in (("full", ~incomplete), ("reduced", incomplete)):
        index = np.flatnonzero(rows)
        if not len(index):
            continue
        regressor = model.regressor(variant)
        features = list(regressor.features)
        matrix = encode_columns(columns, features, None if len(index) == n else index)
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
                values = {name: _shown(name, columns[name][position]) for name in STONE_COLUMNS}
                explanation = explain(float(base[k]), contributions[k], features, values)
                price = explanation.price
            low, high = calibration.bounds(price)
            missing = tuple(
                name for name, gap in zip(MEASUREMENTS, missing_mask[position], strict=True) if gap
            )
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
    return [q for q in quotes if q is not None]


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
    columns = {
        name: stones[name].cat.codes.to_numpy() if name in GRADES else stones[name].to_numpy(float)
        for name in STONE_COLUMNS
    }
    errors = {}
    if not result.rejections.empty:
        line_numbers = np.arange(1, len(frame) + 1) if lines is None else np.asarray(lines)
        line_to_position = {line: k for k, line in enumerate(line_numbers.tolist())}
        for line, reason in result.reasons_by_line().itertuples(index=False):
            errors[line_to_position[line]] = reason
    return QuoteBatch(
        n_rows=len(frame),
        positions=stones.index.to_numpy(dtype=int),
        quotes=price_columns(model, columns, level, explain_prices),
        rejections=result.rejections,
        errors=errors,
    )


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
    """Price one stone given as a mapping (carat, cut, color, clarity, optional measurements).

    Goes straight from the mapping to numpy arrays (no DataFrame): this is the hot path of the
    API and the dashboard.
    """
    cells = {name: np.array([stone.get(name)], dtype=object) for name in STONE_COLUMNS}
    checked = check(cells, 1, "pricing")
    if checked.problems:
        raise InvalidStoneError(
            [(column, value, reason) for _, column, value, reason in checked.problems]
        )
    return price_columns(model, checked.columns, level, explain_prices)[0]
