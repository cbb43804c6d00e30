"""Reading CSV files people make: any encoding mistake, separator or line ending told in words.

A file that cannot be used at all raises `UnusableFileError`; a row with the wrong number of fields
is kept aside (with its line and the reason) so the rest of the file still counts.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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

    @property
    def decimal_comma(self) -> bool:
        """`;`-separated files come from spreadsheets that write 0,5 for a half."""
        return self.separator == ";"

    def raw_text(self, positions: np.ndarray) -> list[str]:
        """The original cells of the given rows joined back with the file's separator."""
        values = self.frame.to_numpy()[positions]
        return [self.separator.join(map(str, row)) for row in values]


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


def _field_count_hint(record: list[str], expected: int, separator: str) -> str:
    """What probably went wrong with a row of the wrong length."""
    if separator == "," and len(record) > expected:
        pairs = zip(record, record[1:], strict=False)
        if any(a.strip().isdigit() and b.strip().isdigit() for a, b in pairs):
            return (
                "a decimal comma (2,02) splits a number in two here: write 2.02, or save the "
                "file with ';' separators"
            )
    return "check for a stray separator or a missing value"


def read_csv(data: bytes | str) -> RawTable:
    """Split a CSV file (UTF-8 with or without BOM, `,` `;` or tab separated, any line ending)."""
    text = data if isinstance(data, str) else _decode(data)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    first_line = next(line for line in text.splitlines() if line.strip())
    separator = _detect_separator(first_line)
    quick = _read_clean(text, separator)
    if quick is not None:
        return quick
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
                        f"the row has {len(record)} fields but the header has {len(header)}: "
                        + _field_count_hint(record, len(header), separator),
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


def _read_clean(text: str, separator: str) -> RawTable | None:
    """The common file read by pandas' C parser: no quotes, header on the first line, no blank
    line, every row as wide as the header. None for anything else (the csv module then reads it
    and says where it went wrong); the two agree cell for cell (tests/data/test_validation.py).
    The file is checked line by line in numpy, on its bytes."""
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    if (data == ord('"')).any():
        return None
    breaks = np.flatnonzero(data == ord("\n"))
    ends = breaks if data[-1] == ord("\n") else np.append(breaks, len(data))
    if len(ends) < 2:
        return None
    starts = np.concatenate([[0], ends[:-1] + 1])
    is_separator = data == ord(separator)
    blank = is_separator | np.isin(data, (ord("\r"), ord(" "), ord("\t")))
    separators = np.concatenate([[0], np.cumsum(is_separator)])
    solid = np.concatenate([[0], np.cumsum(~blank)])
    per_line = separators[ends] - separators[starts]
    if (per_line != per_line[0]).any() or (solid[ends] == solid[starts]).any():
        return None
    header = [cell.strip() for cell in text[: text.index("\n")].rstrip("\r").split(separator)]
    if not all(header) or len({name.lower() for name in header}) != len(header):
        return None
    frame = pd.read_csv(
        io.StringIO(text),
        sep=separator,
        dtype=object,
        na_filter=False,
        keep_default_na=False,
        skip_blank_lines=False,
        index_col=False,
        engine="c",
    )
    if len(frame) != len(ends) - 1:  # a stray carriage return inside a line, say
        return None
    frame.columns = pd.Index(header, dtype=object)
    return RawTable(
        frame=frame, lines=np.arange(2, len(frame) + 2, dtype=np.int64), separator=separator
    )


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell and header a spreadsheet would run as a formula, prefixed with a quote.

    OWASP's rule for CSV injection: text starting with = + - @ tab or carriage return. Plain
    numbers (negative ones included) are left alone: they cannot be formulas.
    """
    out = frame.copy()
    out.columns = [_safe_text(str(name)) for name in out.columns]
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue
        text = column.astype(str)
        risky = text.str.startswith(FORMULA_START) & pd.to_numeric(text, errors="coerce").isna()
        if risky.any():
            out.iloc[:, position] = column.where(~risky, "'" + text)
    return out


def _safe_text(text: str) -> str:
    if text.startswith(FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text
