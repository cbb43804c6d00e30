"""Reading appraisal CSV files and validating rows, vectorised, without ever raising for a bad row.

A file that cannot be used at all raises `UnusableFileError`; every other problem becomes a row of
the rejection table (line in the file, column, value, reason) while the good rows are kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from diamond_model.schema import (
    APPRAISAL_COLUMNS,
    DEPTH_TOLERANCE_POINTS,
    FOUR_C,
    GRADES,
    LABELS,
    RANGES,
    STONE_COLUMNS,
    UNITS,
    grade_dtype,
)

Purpose = Literal["appraisal", "pricing"]
REJECTION_COLUMNS = ["line", "column", "value", "reason"]


class UnusableFileError(ValueError):
    """The file as a whole cannot be used (not a CSV, empty, required columns missing)."""


@dataclass(frozen=True)
class RawTable:
    """A CSV file split into text cells, with the file line number of every data row."""

    frame: pd.DataFrame
    lines: np.ndarray
    separator: str
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECTION_COLUMNS))
    malformed_cells: list[list[str]] = field(default_factory=list)

    def raw_text(self, positions: np.ndarray) -> list[str]:
        """The original cells of the given rows joined back with the file's separator."""
        values = self.frame.to_numpy()[positions]
        return [self.separator.join(map(str, row)) for row in values]


@dataclass(frozen=True)
class ValidationResult:
    """Accepted rows (typed, with their file line) and one rejection row per problem found."""

    accepted: pd.DataFrame
    rejections: pd.DataFrame
    ignored_columns: list[str]
    total_rows: int

    @property
    def n_accepted(self) -> int:
        return len(self.accepted)

    @property
    def n_rejected(self) -> int:
        return self.total_rows - len(self.accepted)

    def reasons_by_line(self) -> pd.DataFrame:
        """One row per rejected line, its reasons joined: what a person reads first."""
        if self.rejections.empty:
            return pd.DataFrame(columns=["line", "reason"])
        grouped = self.rejections.groupby("line", sort=True)["reason"].agg("; ".join)
        return grouped.reset_index()


def _decode(data: bytes) -> str:
    if not data.strip():
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    if b"\x00" in data[:4096]:
        raise UnusableFileError(
            "The file is not a CSV text file (it contains binary data). "
            "Export the sheet as 'CSV UTF-8 (comma delimited)'."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnusableFileError(
            f"The file is not UTF-8 text (byte {error.start} cannot be read). "
            "Save it as 'CSV UTF-8' and upload it again."
        ) from error


def _detect_separator(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else ","


def read_csv(data: bytes | str) -> RawTable:
    """Split a CSV file (UTF-8 with or without BOM, `,` `;` or tab separated, any line ending)."""
    text = data if isinstance(data, str) else _decode(data)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    first_line = next(line for line in text.splitlines() if line.strip())
    separator = _detect_separator(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)

    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    malformed: list[tuple[int, str, str, str]] = []
    malformed_cells: list[list[str]] = []
    line_number = 1
    try:
        for record in reader:
            start, line_number = line_number, reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                continue
            if len(record) != len(header):
                malformed_cells.append(record)
                malformed.append(
                    (
                        start,
                        "",
                        separator.join(record)[:200],
                        f"the row has {len(record)} fields but the header has {len(header)}; "
                        "check for a stray separator or a missing value",
                    )
                )
                continue
            rows.append(record)
            lines.append(start)
    except csv.Error as error:
        raise UnusableFileError(
            f"The file is not a readable CSV near line {line_number}: {error}."
        ) from error

    if header is None:
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    seen: set[str] = set()
    for name in header:
        key = name.lower()
        if key and key in seen:
            raise UnusableFileError(f"The column '{name}' appears twice in the header; keep one.")
        seen.add(key)
    if not rows and not malformed:
        raise UnusableFileError("The file has a header but no data rows.")
    frame = pd.DataFrame(rows, columns=pd.Index(header, dtype=object), dtype=object)
    return RawTable(
        frame=frame,
        lines=np.asarray(lines, dtype=np.int64),
        separator=separator,
        malformed=pd.DataFrame(malformed, columns=REJECTION_COLUMNS),
        malformed_cells=malformed_cells,
    )


def required_columns(purpose: Purpose) -> tuple[str, ...]:
    return APPRAISAL_COLUMNS if purpose == "appraisal" else FOUR_C


Problem = tuple[int, str, str, str]


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return isinstance(value, str) and not value.strip()


def _to_float(value: object, decimal_comma: bool) -> float:
    if isinstance(value, str):
        value = value.strip()
        if decimal_comma:
            value = value.replace(",", ".")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan
    return number if np.isfinite(number) else np.nan


def _parse_numbers(cells: np.ndarray, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, blank mask) from text or numeric cells; junk becomes NaN but is not blank."""
    blank = np.fromiter((_is_blank(v) for v in cells), dtype=bool, count=len(cells))
    if not decimal_comma:
        try:
            numbers = np.asarray(np.where(blank, np.nan, cells), dtype=float)
            numbers[~np.isfinite(numbers)] = np.nan
            return numbers, blank
        except (TypeError, ValueError):
            pass
    numbers = np.fromiter(
        (np.nan if b else _to_float(v, decimal_comma) for v, b in zip(cells, blank, strict=True)),
        dtype=float,
        count=len(cells),
    )
    return numbers, blank


def _grade_lookup(column: str) -> dict[str, int]:
    return {grade.casefold(): rank for rank, grade in enumerate(GRADES[column])}


def _parse_grades(cells: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(rank codes with -1 for unknown, blank mask); matching ignores case and extra spaces."""
    lookup = _grade_lookup(column)
    blank = np.fromiter((_is_blank(v) for v in cells), dtype=bool, count=len(cells))
    codes = np.fromiter(
        (
            -1 if b else lookup.get(" ".join(str(v).split()).casefold(), -1)
            for v, b in zip(cells, blank, strict=True)
        ),
        dtype=np.int8,
        count=len(cells),
    )
    return codes, blank


def _problems(
    mask: np.ndarray, column: str, cells: np.ndarray, reason: str | Callable[[int, str], str]
) -> list[Problem]:
    """Rejection rows for the masked positions; `reason` may depend on (position, cell text)."""
    if not mask.any():
        return []
    out = []
    for position in np.flatnonzero(mask).tolist():
        text = "" if _is_blank(cells[position]) else str(cells[position]).strip()
        out.append((position, column, text, reason(position, text) if callable(reason) else reason))
    return out


@dataclass(frozen=True)
class Checked:
    """Typed columns as numpy arrays (numbers: float with NaN; grades: rank codes with -1) and the
    problems found, by row position. The fast core under `validate`, also used to price one stone
    without building a DataFrame."""

    columns: dict[str, np.ndarray]
    problems: list[Problem]
    bad: np.ndarray
    ignored: list[str]
    n: int


def check(
    cells: dict[str, np.ndarray], n: int, purpose: Purpose, decimal_comma: bool = False
) -> Checked:
    """Check columns of raw cells (keys already lower-case); never raises for a bad row."""
    required = required_columns(purpose)
    missing = [name for name in required if name not in cells]
    if missing:
        raise UnusableFileError(
            f"Required column(s) missing: {', '.join(missing)}. "
            f"The file needs a header row with: {', '.join(required)} (any order, any letter case)."
        )
    known = APPRAISAL_COLUMNS if purpose == "appraisal" else STONE_COLUMNS
    ignored = [name for name in cells if name not in known]
    problems: list[Problem] = []
    typed: dict[str, np.ndarray] = {}

    for column in known:
        if column not in cells:
            typed[column] = (
                np.full(n, -1, dtype=np.int8) if column in GRADES else np.full(n, np.nan)
            )
            continue
        values = cells[column]
        label = LABELS[column]
        if column in GRADES:
            codes, blank = _parse_grades(values, column)
            accepted = ", ".join(GRADES[column])
            problems += _problems(
                (codes < 0) & ~blank,
                column,
                values,
                lambda _, text, c=column, a=accepted: (
                    f"'{text}' is not a {c} grade; use one of {a}"
                ),
            )
            typed[column] = codes
        else:
            numbers, blank = _parse_numbers(values, decimal_comma)
            junk = np.isnan(numbers) & ~blank
            problems += _problems(junk, column, values, f"{label} must be a number")
            rng = RANGES[column]
            with np.errstate(invalid="ignore"):
                below = numbers <= rng.low if not rng.low_inclusive else numbers < rng.low
                outside = below | (numbers > rng.high)
            reason = f"{label} must be {rng.describe(UNITS[column])}"
            problems += _problems(outside, column, values, reason)
            numbers[outside] = np.nan
            typed[column] = numbers
        if column in required or purpose == "appraisal":
            reason = f"{label} is required but the cell is empty"
            problems += _problems(blank, column, values, reason)

    if all(name in cells for name in ("depth", "x", "y", "z")):
        with np.errstate(invalid="ignore", divide="ignore"):
            implied = 200.0 * typed["z"] / (typed["x"] + typed["y"])
            inconsistent = np.abs(implied - typed["depth"]) > DEPTH_TOLERANCE_POINTS

        def depth_reason(position: int, _: str) -> str:
            return (
                "depth % disagrees with the measurements: 2·z/(x+y) gives "
                f"{implied[position]:.1f} %; correct depth, x, y or z "
                f"(tolerance ±{DEPTH_TOLERANCE_POINTS:g} points)"
            )

        problems += _problems(inconsistent, "depth", cells["depth"], depth_reason)

    bad = np.zeros(n, dtype=bool)
    if problems:
        bad[[p[0] for p in problems]] = True
    return Checked(columns=typed, problems=problems, bad=bad, ignored=ignored, n=n)


def typed_frame(columns: dict[str, np.ndarray], index: pd.Index | None = None) -> pd.DataFrame:
    """Checked columns as a DataFrame with grades as ordered categories."""
    data = {
        name: pd.Categorical.from_codes(values, dtype=grade_dtype(name))
        if name in GRADES
        else values
        for name, values in columns.items()
    }
    return pd.DataFrame(data, index=index)


def validate(
    frame: pd.DataFrame,
    purpose: Purpose,
    lines: np.ndarray | None = None,
    decimal_comma: bool = False,
) -> ValidationResult:
    """Check every row of `frame` for `purpose`; return typed accepted rows and the rejections.

    `appraisal` rows (for training) need all ten columns and a positive price. `pricing` rows need
    the 4Cs; depth, table and x/y/z may be absent or empty, and any price column is ignored.
    Accepted rows keep the index of `frame` and gain a `line` column.
    """
    n = len(frame)
    cells = {
        str(name).strip().lower(): frame.iloc[:, k].to_numpy(dtype=object)
        for k, name in enumerate(frame.columns)
    }
    checked = check(cells, n, purpose, decimal_comma)
    line_numbers = np.arange(1, n + 1) if lines is None else np.asarray(lines)
    problems, bad = list(checked.problems), checked.bad.copy()
    accepted_frame = typed_frame(checked.columns, frame.index)

    if purpose == "appraisal" and n > 1:
        keys = pd.util.hash_pandas_object(accepted_frame, index=False).to_numpy()
        # Rows already rejected must not count as the "first" copy of a duplicate.
        keys = np.where(bad, np.arange(n, dtype=np.uint64) ^ np.uint64(0x9E3779B97F4A7C15), keys)
        first = pd.Series(line_numbers).groupby(keys).transform("first").to_numpy()
        duplicate = (first != line_numbers) & ~bad
        problems += _problems(
            duplicate,
            "",
            np.full(n, "", dtype=object),
            lambda position, _: f"duplicate of line {first[position]} (same stone, same price)",
        )
        bad |= duplicate

    if problems:
        rejections = pd.DataFrame(problems, columns=["position", "column", "value", "reason"])
        rejections.insert(0, "line", line_numbers[rejections["position"].to_numpy(dtype=int)])
        rejections = rejections.drop(columns="position").sort_values("line", kind="stable")
        accepted_frame = accepted_frame.loc[~bad]
    else:
        rejections = pd.DataFrame(columns=REJECTION_COLUMNS)
    accepted_frame.insert(0, "line", line_numbers[~bad] if problems else line_numbers)
    return ValidationResult(
        accepted=accepted_frame,
        rejections=rejections.reset_index(drop=True),
        ignored_columns=checked.ignored,
        total_rows=n,
    )


def validate_csv(data: bytes | str, purpose: Purpose) -> tuple[RawTable, ValidationResult]:
    """Read and validate a whole file; rows with the wrong number of fields are rejected too."""
    raw = read_csv(data)
    result = validate(raw.frame, purpose, lines=raw.lines, decimal_comma=raw.separator == ";")
    if not raw.malformed.empty:
        rejections = pd.concat([result.rejections, raw.malformed], ignore_index=True)
        result = ValidationResult(
            accepted=result.accepted,
            rejections=rejections.sort_values("line", kind="stable").reset_index(drop=True),
            ignored_columns=result.ignored_columns,
            total_rows=result.total_rows + len(raw.malformed),
        )
    return raw, result
