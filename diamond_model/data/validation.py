"""Validating rows, vectorised, without ever raising for a bad row.

Two outcomes per row: rejected (a 4C, the price or the date is missing or wrong: the row cannot be
used) or accepted, possibly with notes (a measurement was unusable and was set aside: stored as
missing, the raw value kept in the note). Numbers are read strictly: digits with one decimal mark,
no underscores, no thousands separators, so "4.733" cannot silently become $4.73.

About 450 lines: one vectorised check per column, each a few lines, read in the order of the
columns; split up, the order a row is judged in would be spread over files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from diamond_model.data.measurements import Finding, screen
from diamond_model.data.reading import REJECTION_COLUMNS, RawTable, UnusableFileError, read_table
from diamond_model.data.schema import (
    APPRAISAL_COLUMNS,
    APPRAISED_ON,
    FOUR_C,
    GRADE_ALIASES,
    GRADES,
    LABELS,
    MEASUREMENTS,
    PRICE_PER_CARAT,
    RANGES,
    STONE_COLUMNS,
    UNITS,
    beyond_scale_reason,
    grade_dtype,
    grade_key,
    header_column,
)

Purpose = Literal["appraisal", "pricing"]
REQUIRED: dict[str, tuple[str, ...]] = {"appraisal": (*FOUR_C, "price"), "pricing": FOUR_C}
EARLIEST_DATE = date(1900, 1, 1)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[.,' ]\d{3})+(?:[.,]\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SMALL = 64  # below this many cells, plain Python per cell beats numpy's vectorised reading
_PLAIN_WIDTH = 24  # characters: longer cells are never plain numbers a person typed


@dataclass(frozen=True)
class Checked:
    """Typed columns as numpy arrays and what was found, by row position. Numbers are floats with
    NaN for missing or set-aside values; grades rank codes with -1; dates datetime64[D] with NaT.
    The fast core under `validate`, also used to price one stone without a DataFrame."""

    columns: dict[str, np.ndarray]
    problems: list[Finding]
    notes: list[Finding]
    bad: np.ndarray
    ignored: list[str]
    n: int
    implied_carat: np.ndarray


@dataclass(frozen=True)
class ValidationResult:
    """Accepted rows (typed, with their file line), one rejection row per problem found, and one
    note per measurement set aside on an accepted row."""

    accepted: pd.DataFrame
    rejections: pd.DataFrame
    notes: pd.DataFrame
    ignored_columns: list[str]
    total_rows: int
    read_as: tuple[str, ...] = ()  # how the file was read: encoding, sheet, header names

    @property
    def n_accepted(self) -> int:
        return len(self.accepted)

    @property
    def n_rejected(self) -> int:
        return self.total_rows - len(self.accepted)

    def reasons_by_line(self) -> pd.DataFrame:
        """One row per rejected line, its reasons joined: what a person reads first."""
        return _by_line(self.rejections)

    def notes_by_line(self) -> pd.DataFrame:
        return _by_line(self.notes)


def _by_line(findings: pd.DataFrame) -> pd.DataFrame:
    if findings.empty:
        return pd.DataFrame(columns=["line", "reason"])
    return findings.groupby("line", sort=True)["reason"].agg("; ".join).reset_index()


# ---- cells ------------------------------------------------------------------------------------


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return isinstance(value, str) and not value.strip()


def _number(value: object, decimal_comma: bool) -> float:
    """One cell as a number, or NaN. Booleans are not numbers; text must be plain digits."""
    if isinstance(value, bool):
        return np.nan
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return number if np.isfinite(number) else np.nan
    text = str(value).strip()
    if decimal_comma and "." not in text:
        text = text.replace(",", ".", 1)
    return float(text) if _NUMBER.fullmatch(text) else np.nan


def _parse_numbers(cells: np.ndarray, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, blank mask); junk becomes NaN but is not blank."""
    n = len(cells)
    if n < _SMALL:  # a quote or a short list: plain Python is quicker than numpy's set-up
        blanks = [_is_blank(v) for v in cells.tolist()]
        values = [
            np.nan if b else _number(v, decimal_comma) for v, b in zip(cells, blanks, strict=True)
        ]
        return np.array(values, dtype=float), np.array(blanks, dtype=bool)
    numbers, blank = np.full(n, np.nan), np.zeros(n, dtype=bool)
    plain = _plain_numbers(cells, numbers)
    rest = np.flatnonzero(~plain)
    for position in rest.tolist():
        value = cells[position]
        blank[position] = _is_blank(value)
        if not blank[position]:
            numbers[position] = _number(value, decimal_comma)
    return numbers, blank


def _plain_numbers(cells: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cells that are plain digits with at most one point, converted into `out` in C (50,000
    in about 10 ms); the mask of those cells. Everything else goes through `_number`."""
    plain = np.zeros(len(cells), dtype=bool)
    if not all(isinstance(v, str) for v in cells):
        return plain
    if max(map(len, cells)) > _PLAIN_WIDTH:  # a fixed-width copy of long junk would be huge
        return plain
    text = cells.astype(f"U{_PLAIN_WIDTH}")
    codes = text.view(np.uint32).reshape(len(text), _PLAIN_WIDTH)
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    point = codes == ord(".")
    plain[:] = (digit | point | (codes == 0)).all(axis=1)
    plain &= (point.sum(axis=1) <= 1) & digit.any(axis=1)
    out[plain] = text[plain].astype(float)
    return plain


def _number_reason(label: str, set_aside: bool) -> Callable[[int, str], str]:
    def reason(_: int, text: str) -> str:
        if set_aside:
            return f"{label} '{text}' not used: it is not a number"
        hint = ""
        if _GROUPED.fullmatch(text) or "_" in text:
            hint = ", written without thousands separators or underscores (4733, not 4,733)"
        elif text.lower() in ("true", "false"):
            hint = " (true/false is not a number)"
        return f"{label} must be a number: digits with one decimal mark, e.g. 0.5{hint}"

    return reason


def _grade_lookup(column: str) -> dict[str, int]:
    return _LOOKUPS[column]


def _grade_reason(column: str) -> Callable[[int, str], str]:
    scale = ", ".join(GRADES[column])

    def reason(_: int, text: str) -> str:
        return beyond_scale_reason(column, text) or (
            f"'{text}' is not a {column} grade: use one of {scale}"
        )

    return reason


def _range_reason(column: str) -> str:
    allowed = RANGES[column].describe(UNITS[column])
    if column in MEASUREMENTS:
        return f"{LABELS[column]} not used: it must be {allowed}"
    return f"{LABELS[column]} must be {allowed}"


# Worded once: the checks run for every quote.
_LOOKUPS = {
    column: {grade_key(column, grade): rank for rank, grade in enumerate(scale)}
    | {alias: scale.index(grade) for alias, (grade, _) in GRADE_ALIASES[column].items()}
    for column, scale in GRADES.items()
}
_GRADE_REASONS = {column: _grade_reason(column) for column in GRADES}
_NUMBER_REASONS = {
    column: (_number_reason(LABELS[column], column in MEASUREMENTS), _range_reason(column))
    for column in RANGES
}
_EMPTY = {column: f"{LABELS[column]} is required but the cell is empty" for column in LABELS}


def grade_readings(cells: dict[str, np.ndarray]) -> list[str]:
    """'grade …' for each report name in the file read as one of this scale's grades."""
    found = []
    for column, aliases in GRADE_ALIASES.items():
        if column not in cells or not aliases:
            continue
        values = pd.unique(pd.Series(cells[column], dtype=object).dropna().astype(str))
        keys = {grade_key(column, str(v)) for v in values if len(str(v)) < 40}
        found += [f"grade {words}" for alias, (_, words) in aliases.items() if alias in keys]
    return found


def _parse_grades(cells: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(rank codes with -1 for unknown, blank mask); matching ignores case and extra spaces."""
    n = len(cells)
    codes, blank = np.full(n, -1, dtype=np.int8), np.zeros(n, dtype=bool)
    rest = np.arange(n)
    if n >= _SMALL:  # grades spelt exactly as in the scale: a hash lookup in pandas
        exact = {grade: rank for rank, grade in enumerate(GRADES[column])}
        found = pd.Series(cells, dtype=object).map(exact).to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(found)
        codes[known] = found[known]
        rest = np.flatnonzero(~known)
    lookup = _grade_lookup(column)
    for position in rest.tolist():
        value = cells[position]
        blank[position] = _is_blank(value)
        if not blank[position] and isinstance(value, str):
            codes[position] = lookup.get(grade_key(column, value), -1)
    return codes, blank


def _parse_dates(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[D] with NaT for blank or unreadable, blank mask); ISO dates only."""
    blank = np.fromiter((_is_blank(v) for v in cells), dtype=bool, count=len(cells))
    out = np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[D]")
    for position in np.flatnonzero(~blank).tolist():
        value = cells[position]
        if isinstance(value, date):
            out[position] = np.datetime64(value, "D")
            continue
        text = str(value).strip()[:10] if "T" in str(value) else str(value).strip()
        if _DATE.fullmatch(text):
            try:
                out[position] = np.datetime64(date.fromisoformat(text), "D")
            except ValueError:
                pass
    return out, blank


def _findings(
    mask: np.ndarray, column: str, cells: np.ndarray, reason: str | Callable[[int, str], str]
) -> list[Finding]:
    """Findings for the masked positions; `reason` may depend on (position, cell text)."""
    if not mask.any():
        return []
    out = []
    for position in np.flatnonzero(mask).tolist():
        text = "" if _is_blank(cells[position]) else str(cells[position]).strip()
        said = reason(position, text) if callable(reason) else reason
        out.append(Finding(position, column, text, said))
    return out


# ---- rows -------------------------------------------------------------------------------------


def check(
    cells: dict[str, np.ndarray],
    n: int,
    purpose: Purpose,
    decimal_comma: bool = False,
    today: date | None = None,
) -> Checked:
    """Check columns of raw cells (keys already lower-case); never raises for a bad row."""
    required = REQUIRED[purpose]
    missing = [name for name in required if name not in cells]
    if missing:
        raise UnusableFileError(
            f"Required column(s) missing: {', '.join(missing)}. The file needs a header row "
            f"with: {', '.join(required)} (any order, any letter case); depth, table, x, y, z"
            + (f" and {APPRAISED_ON} are optional." if purpose == "appraisal" else " are optional.")
        )
    known = (*APPRAISAL_COLUMNS, APPRAISED_ON) if purpose == "appraisal" else STONE_COLUMNS
    ignored = [name for name in cells if name not in known]
    problems: list[Finding] = []
    notes: list[Finding] = []
    typed: dict[str, np.ndarray] = {}

    for column in known:
        if column not in cells:
            typed[column] = _absent(column, n)
            continue
        values = cells[column]
        if column in GRADES:
            typed[column], blank = _parse_grades(values, column)
            problems += _findings(
                (typed[column] < 0) & ~blank, column, values, _GRADE_REASONS[column]
            )
        elif column == APPRAISED_ON:
            typed[column], blank = _dates(values, problems, today or date.today())
        else:
            numbers, blank = _parse_numbers(values, decimal_comma)
            # A measurement that is junk or implausible is set aside; anything else rejects the row.
            found = notes if column in MEASUREMENTS else problems
            not_number, outside_reason = _NUMBER_REASONS[column]
            found += _findings(np.isnan(numbers) & ~blank, column, values, not_number)
            rng = RANGES[column]
            with np.errstate(invalid="ignore"):
                below = numbers <= rng.low if not rng.low_inclusive else numbers < rng.low
                outside = below | (numbers > rng.high)
            if outside.any():
                found += _findings(outside, column, values, outside_reason)
                numbers[outside] = np.nan
            typed[column] = numbers
        if column in required:
            problems += _findings(blank, column, values, _EMPTY[column])

    if purpose == "appraisal":
        problems += _price_per_carat(typed, cells["price"])
    screened = screen(typed)
    typed.update(screened.columns)
    bad = np.zeros(n, dtype=bool)
    if problems:
        bad[[p[0] for p in problems]] = True
    notes = [note for note in notes + screened.notes if not bad[note.position]]
    return Checked(
        columns=typed,
        problems=problems,
        notes=notes,
        bad=bad,
        ignored=ignored,
        n=n,
        implied_carat=screened.implied_carat,
    )


def _absent(column: str, n: int) -> np.ndarray:
    if column in GRADES:
        return np.full(n, -1, dtype=np.int8)
    if column == APPRAISED_ON:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.full(n, np.nan)


def _dates(
    values: np.ndarray, problems: list[Finding], today: date
) -> tuple[np.ndarray, np.ndarray]:
    parsed, blank = _parse_dates(values)
    label = LABELS[APPRAISED_ON]
    problems += _findings(
        np.isnat(parsed) & ~blank,
        APPRAISED_ON,
        values,
        f"{label} must be a date written YYYY-MM-DD (e.g. 2026-03-01), or empty for the "
        "upload date",
    )
    latest = np.datetime64(today + timedelta(days=1), "D")
    with np.errstate(invalid="ignore"):
        future = parsed > latest
        early = parsed < np.datetime64(EARLIEST_DATE, "D")
    problems += _findings(
        future,
        APPRAISED_ON,
        values,
        f"{label} is in the future; the latest accepted date is {latest} (tomorrow, for time "
        "zones)",
    )
    problems += _findings(
        early, APPRAISED_ON, values, f"{label} is before {EARLIEST_DATE}; check the year"
    )
    parsed[future | early] = np.datetime64("NaT")
    return parsed, blank


def _price_per_carat(typed: dict[str, np.ndarray], price_cells: np.ndarray) -> list[Finding]:
    with np.errstate(invalid="ignore", divide="ignore"):
        per_carat = typed["price"] / typed["carat"]
        odd = (per_carat < PRICE_PER_CARAT.low) | (per_carat > PRICE_PER_CARAT.high)

    def reason(position: int, text: str) -> str:
        value = per_carat[position]
        hint = (
            "did you use a thousands separator? write 4733, not 4.733"
            if value < PRICE_PER_CARAT.low
            else "check for extra digits"
        )
        return (
            f"price ${typed['price'][position]:,.2f} is ${value:,.0f} per carat, outside "
            f"${PRICE_PER_CARAT.low:,.0f}–${PRICE_PER_CARAT.high:,.0f} per carat: {hint}"
        )

    return _findings(odd, "price", price_cells, reason)


def typed_frame(columns: dict[str, np.ndarray], index: pd.Index | None = None) -> pd.DataFrame:
    """Checked columns as a DataFrame with grades as ordered categories."""
    data = {
        name: pd.Categorical.from_codes(values, dtype=grade_dtype(name))
        if name in GRADES
        else values
        for name, values in columns.items()
    }
    return pd.DataFrame(data, index=index)


def findings_table(findings: list[Finding], line_numbers: np.ndarray) -> pd.DataFrame:
    """Findings as a table by file line (line, column, value, reason), in line order."""
    if not findings:
        return pd.DataFrame(columns=REJECTION_COLUMNS)
    table = pd.DataFrame(
        [(f.position, f.column, f.value, f.reason) for f in findings],
        columns=["position", "column", "value", "reason"],
    )
    table.insert(0, "line", line_numbers[table["position"].to_numpy(dtype=int)])
    return table.drop(columns="position").sort_values("line", kind="stable").reset_index(drop=True)


def named_cells(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    """The columns by the names the checks use (Italian and English header names read too), and
    each header read as another name ("'Carati' as carat"); two headers naming one column are
    refused."""
    cells: dict[str, np.ndarray] = {}
    headers: list[str] = []
    for k, name in enumerate(frame.columns):
        column = header_column(str(name))
        if column != str(name).strip().lower():
            if column in cells or any(header_column(str(o)) == column for o in frame.columns[:k]):
                raise UnusableFileError(
                    f"The columns '{name}' and another both name {column}; keep one."
                )
            headers.append(f"'{name}' as {column}")
        cells[column] = frame.iloc[:, k].to_numpy(dtype=object)
    return cells, headers


def readings(headers: list[str], cells: dict[str, np.ndarray]) -> tuple[str, ...]:
    """How the headers and the grades were read, in words; nothing when all was as named."""
    grades = [note.removeprefix("grade ") for note in grade_readings(cells)]
    return tuple(
        [f"Read the header {', '.join(headers)}."] * bool(headers)
        + [f"Read the grades: {'; '.join(grades)}."] * bool(grades)
    )


def validate(
    frame: pd.DataFrame,
    purpose: Purpose,
    lines: np.ndarray | None = None,
    decimal_comma: bool = False,
    today: date | None = None,
) -> ValidationResult:
    """Check every row of `frame` for `purpose`; return typed accepted rows, rejections and notes.

    `appraisal` rows (for training) need the 4Cs and a plausible price; measurements and the
    appraisal date are optional. `pricing` rows need the 4Cs; any price column is ignored.
    Accepted rows keep the index of `frame` and gain a `line` column.
    """
    n = len(frame)
    cells, headers = named_cells(frame)
    checked = check(cells, n, purpose, decimal_comma, today)
    line_numbers = np.arange(1, n + 1) if lines is None else np.asarray(lines)
    accepted = typed_frame(checked.columns, frame.index).loc[~checked.bad]
    accepted.insert(0, "line", line_numbers[~checked.bad])
    return ValidationResult(
        accepted=accepted,
        rejections=findings_table(checked.problems, line_numbers),
        notes=findings_table(checked.notes, line_numbers),
        read_as=readings(headers, cells),
        ignored_columns=checked.ignored,
        total_rows=n,
    )


def validate_csv(
    data: bytes | str, purpose: Purpose, today: date | None = None, sheet: str | None = None
) -> tuple[RawTable, ValidationResult]:
    """Read and validate a whole file (CSV or a workbook's sheet: `reading.read_table`); rows
    with the wrong number of fields are rejected too."""
    raw = read_table(data, sheet)
    result = validate(raw.frame, purpose, raw.lines, raw.decimal_comma, today)
    if raw.notes:  # how the file was read, said first
        result = replace(result, read_as=(*raw.notes, *result.read_as))
    if not raw.malformed.empty:
        rejections = pd.concat([result.rejections, raw.malformed], ignore_index=True)
        result = replace(
            result,
            rejections=rejections.sort_values("line", kind="stable").reset_index(drop=True),
            total_rows=result.total_rows + len(raw.malformed),
        )
    return raw, result
