"""Reading the files an office has: CSV text in the encodings spreadsheet programs write, and
.xlsx and .ods workbooks; any mistake, separator or line ending told in words.

`read_table` takes the bytes of an upload and decides what they are by their content, not their
name: an .xlsx or .ods workbook (the first sheet, or the one named; row numbers as the spreadsheet
shows them; formulas read as their values; dates as dates), or text in UTF-8 (with or without a
BOM), UTF-16 (Excel's "Unicode text") or Windows-1252 (Excel's "CSV" on Western European
systems, which also covers Latin-1's letters). A file that cannot be used at all raises
`UnusableFileError`; a row with the wrong number of fields is kept aside (with its line and the
reason) so the rest of the file still counts. What was assumed is said in `RawTable.notes`.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Literal

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
    notes: tuple[str, ...] = ()  # what was assumed to read the file ("read as Windows-1252 text")

    @property
    def decimal_comma(self) -> bool:
        """`;`-separated files come from spreadsheets that write 0,5 for a half."""
        return self.separator == ";"

    def raw_text(self, positions: np.ndarray) -> list[str]:
        """The original cells of the given rows joined back with the file's separator."""
        values = self.frame.to_numpy()[positions]
        return [self.separator.join(map(str, row)) for row in values]


def _decode(data: bytes) -> tuple[str, tuple[str, ...]]:
    """The text of a CSV file, and a note when it was not plain UTF-8."""
    if not data.strip():
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(data):
        try:
            text = data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le")
        except UnicodeDecodeError as error:
            raise UnusableFileError(
                f"The file looks like UTF-16 text but byte {error.start} cannot be read. Save it "
                "again as 'CSV UTF-8' or as a workbook (.xlsx)."
            ) from error
        return text, ("Read as UTF-16 text (Excel's 'Unicode text').",)
    if b"\x00" in data[:4096]:
        raise UnusableFileError(
            "The file is not a table this program can read (it contains binary data). Upload a "
            "CSV file, or an .xlsx or .ods workbook."
        )
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), (
            "Read as Windows-1252 text (not UTF-8): the encoding Excel uses for 'CSV' on "
            "Western European computers.",
        )
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise UnusableFileError(
            f"The file is neither UTF-8, UTF-16 nor Windows-1252 text: byte {error.start} "
            f"(line {line}, position {column}: 0x{data[error.start]:02X}) fits none of them. "
            "Save it as 'CSV UTF-8' or as a workbook (.xlsx) and upload it again."
        ) from error


def _looks_like_utf16(data: bytes) -> bool:
    """UTF-16 little-endian without a BOM: ASCII text with a zero after every character."""
    head = data[:2048]
    return len(head) >= 8 and head[1::2].count(0) > 0.9 * len(head[1::2]) and 0 not in head[::2]


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


def read_table(data: bytes | str, sheet: str | None = None) -> RawTable:
    """A workbook (.xlsx, .ods) or CSV text, told apart by their first bytes (see the module)."""
    if isinstance(data, bytes):
        kind = workbook_kind(data)
        if kind is not None:
            return read_workbook(data, kind, sheet)
    return read_csv(data)


def read_csv(data: bytes | str) -> RawTable:
    """Split CSV text (see `_decode` for the encodings; `,` `;` or tab separated, any line
    ending)."""
    text, notes = (data, ()) if isinstance(data, str) else _decode(data)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise UnusableFileError("The file is empty: it needs a header row and at least one stone.")
    first_line = next(line for line in text.splitlines() if line.strip())
    separator = _detect_separator(first_line)
    quick = _read_clean(text, separator)
    if quick is not None:
        return replace(quick, notes=notes)
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
        notes=notes,
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


WORKBOOK_ENGINES: dict[str, Literal["openpyxl", "odf"]] = {"xlsx": "openpyxl", "ods": "odf"}
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


def workbook_kind(data: bytes) -> str | None:
    """'xlsx' or 'ods' for a workbook, None for text; UnusableFileError for other binary files
    a person may pick by mistake (an old .xls, a zip of something else, a PDF)."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnusableFileError(
            "This is an Excel 97–2003 workbook (.xls), which is not read here: open it and save "
            "it as an Excel workbook (.xlsx) or as CSV."
        )
    if data.startswith(b"%PDF"):
        raise UnusableFileError(
            "This is a PDF, not a table: upload the CSV file or the workbook (.xlsx, .ods) the "
            "appraisals were typed in."
        )
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "mimetype" in names and archive.read("mimetype").strip() == ODS_MIMETYPE:
                return "ods"
    except zipfile.BadZipFile as error:
        raise UnusableFileError(
            f"The file looks like a workbook but cannot be opened ({error}); save it again."
        ) from error
    raise UnusableFileError(
        "This is a zip archive, not a workbook or a CSV file: upload the .xlsx, .ods or .csv "
        "file itself."
    )


def sheet_names(data: bytes) -> list[str]:
    """The sheets of a workbook, in its order; [] for CSV text (UnusableFileError as
    `read_table` for files that are neither)."""
    kind = workbook_kind(data)
    if kind is None:
        return []
    try:
        with pd.ExcelFile(io.BytesIO(data), engine=WORKBOOK_ENGINES[kind]) as book:
            return [str(name) for name in book.sheet_names]
    except Exception as error:  # a damaged workbook: each engine raises its own kinds
        raise UnusableFileError(
            f"The workbook cannot be read ({type(error).__name__}: {str(error)[:200]}); open it "
            "and save it again, or save the sheet as CSV."
        ) from error


def read_workbook(data: bytes, kind: str, sheet: str | None = None) -> RawTable:
    """One sheet of an .xlsx or .ods workbook as text cells, with the row numbers the spreadsheet
    shows (the header is the first non-empty row). Formulas come as the values the program last
    computed; dates as ISO dates; whole numbers without '.0'."""
    try:
        sheets = pd.read_excel(
            io.BytesIO(data),
            sheet_name=None,
            header=None,
            dtype=object,
            engine=WORKBOOK_ENGINES[kind],
        )
    except Exception as error:  # a damaged workbook: each engine raises its own kinds
        raise UnusableFileError(
            f"The workbook cannot be read ({type(error).__name__}: {str(error)[:200]}); open it "
            "and save it again, or save the sheet as CSV."
        ) from error
    if not sheets:
        raise UnusableFileError("The workbook has no sheets.")
    names = list(sheets)
    if sheet is not None and sheet not in sheets:
        raise UnusableFileError(
            f"The workbook has no sheet named '{sheet[:60]}'; its sheets: {', '.join(names)}."
        )
    name = sheet if sheet is not None else names[0]
    cells = sheets[name].map(_cell_text)
    filled = (cells != "").any(axis=1).to_numpy()
    if not filled.any():
        raise UnusableFileError(f"The sheet '{name}' is empty: it needs a header row and stones.")
    rows = np.flatnonzero(filled)
    header = [cell.strip() for cell in cells.iloc[rows[0]].tolist()]
    while header and not header[-1]:
        header.pop()
    body = cells.iloc[rows[1:], : len(header)]
    if body.empty:
        raise UnusableFileError(f"The sheet '{name}' has a header but no data rows.")
    seen: set[str] = set()
    for column in header:
        if column.lower() in seen and column:
            raise UnusableFileError(f"The column '{column}' appears twice in the header; keep one.")
        seen.add(column.lower())
    frame = pd.DataFrame(body.to_numpy(), columns=pd.Index(header, dtype=object), dtype=object)
    which = f"the sheet '{name}'"
    if len(names) > 1:
        which += f" (the first of {len(names)})" if sheet is None else f" (of {', '.join(names)})"
    return RawTable(
        frame=frame,
        lines=(rows[1:] + 1).astype(np.int64),  # the row numbers the spreadsheet shows
        separator=",",
        notes=(f"Read {which} of the {kind} workbook; line numbers are its row numbers.",),
    )


def _cell_text(value: object) -> str:
    """A workbook cell as the text a CSV of it would hold."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
