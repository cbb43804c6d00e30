"""Reading and validating appraisal files: rows without usable 4Cs or price are rejected with
line, column and reason; unusable measurements are set aside (the row is kept); numbers are
strict."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from diamond_model.data.reading import _read_clean, read_csv
from diamond_model.data.validation import UnusableFileError, validate, validate_csv

HEADER = "carat,cut,color,clarity,depth,table,price,x,y,z"
GOOD = "1.1,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11"
TODAY = date(2026, 11, 26)


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_bundled_dataset_defects_are_each_handled(dataset_bytes: bytes) -> None:
    _, result = validate_csv(dataset_bytes, "appraisal")
    reasons = result.reasons_by_line().set_index("line")["reason"]
    price_lines = result.rejections.query("column == 'price'")["line"].tolist()
    assert len(price_lines) == 10, "the ten -1 prices are rejected"
    assert all("Price must be more than $0" in reasons[line] for line in price_lines)
    notes = result.notes_by_line().set_index("line")["reason"]
    # 2.25 ct with x = y = z = 0: kept, its millimetres set aside.
    assert "Length x not used: it must be more than 0 mm" in notes[4323]
    for line in (1115, 1778, 1891):  # depth % against 2·z/(x+y), or millimetres against carat
        assert "not used" in notes[line]
    # A 95 % table (a stone with almost no crown): a typing error, set aside, the row kept.
    assert "Table % not used: it must be at least 40 % and at most 80 %" in notes[681]
    assert result.n_accepted == 5000 - 10
    assert result.total_rows == 5000


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (
            "1.1,Excelent,H,SI2,62.0,55.0,4733,6.61,6.65,4.11",
            "cut",
            "'Excelent' is not a cut grade: use one of Fair, Good, Very Good, Premium, Ideal",
        ),
        (
            "1.1,Ideal,K,SI2,62.0,55.0,4733,6.61,6.65,4.11",
            "color",
            "beyond these appraisals (J to D): the model cannot price it honestly",
        ),
        (
            "1.1,Ideal,H+,SI2,62.0,55.0,4733,6.61,6.65,4.11",
            "color",
            "use one of J, I, H, G, F, E, D",
        ),
        (
            "1.1,Ideal,H,SI3,62.0,55.0,4733,6.61,6.65,4.11",
            "clarity",
            "use one of I1, SI2, SI1, VS2, VS1, VVS2, VVS1, IF",
        ),
        ("abc,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "Carat must be a number"),
        ("0,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "Carat must be at least 0.001 ct"),
        ("45,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "at most 30 ct"),
        ("1.1,Ideal,H,SI2,62.0,55.0,0,6.61,6.65,4.11", "price", "Price must be more than $0"),
        ("1.1,Ideal,H,SI2,62.0,55.0,-5,6.61,6.65,4.11", "price", "Price must be more than $0"),
        ("1.1,Ideal,H,SI2,62.0,55.0,,6.61,6.65,4.11", "price", "Price is required"),
        ("1.1,Ideal,H,SI2,62.0,55.0,inf,6.61,6.65,4.11", "price", "Price must be a number"),
        ("1.1,Ideal,H,,62.0,55.0,4733,6.61,6.65,4.11", "clarity", "Clarity is required"),
    ],
)
def test_a_bad_4c_or_price_rejects_the_row_with_line_column_and_reason(
    row: str, column: str, reason: str
) -> None:
    _, result = validate_csv(csv_of(GOOD, row, GOOD.replace("4733", "4800")), "appraisal")
    assert result.n_accepted == 2
    assert result.n_rejected == 1
    problem = result.rejections.iloc[0]
    assert (problem["line"], problem["column"]) == (3, column)
    assert reason in problem["reason"]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("1.1,Ideal,H,SI2,62.0,120,4733,6.61,6.65,4.11", "table", "Table % not used: it must be"),
        ("1.1,Ideal,H,SI2,95,55.0,4733,6.61,6.65,4.11", "depth", "Depth % not used: it must be"),
        ("1.1,Ideal,H,SI2,62.0,55.0,4733,0,6.65,4.11", "x", "Length x not used: it must be more"),
        ("1.1,Ideal,H,SI2,62.0,55.0,4733,6.61,abc,4.11", "y", "Width y 'abc' not used"),
        (
            "1.1,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,3.80",
            "depth",
            "depth 62 % disagrees with the millimetres",
        ),
        (
            "1.1,Ideal,H,SI2,62.0,55.0,4733,5.9,5.95,3.67",
            "x,y,z",
            "the millimetres imply 0.79 ct, 28 % less than the 1.1 ct weighed",
        ),
    ],
)
def test_an_unusable_measurement_is_set_aside_and_the_row_kept(
    row: str, column: str, reason: str
) -> None:
    _, result = validate_csv(csv_of(GOOD, row), "appraisal")
    assert result.n_accepted == 2 and result.n_rejected == 0
    note = result.notes.iloc[0]
    assert (note["line"], note["column"]) == (3, column)
    assert reason in note["reason"]
    kept = result.accepted.set_index("line").loc[3]
    for name in column.split(","):
        assert np.isnan(kept[name]), f"{name} is stored as missing"
    assert note["value"] != "", "the raw value stays in the report"


@pytest.mark.parametrize(
    ("cell", "hint"),
    [
        ("4.733", "did you use a thousands separator? write 4733, not 4.733"),
        ('"4,733"', "without thousands separators"),
        ("4_733", "without thousands separators or underscores"),
        ("4733000", "check for extra digits"),
    ],
)
def test_prices_are_read_strictly_with_a_hint(cell: str, hint: str) -> None:
    _, result = validate_csv(csv_of(GOOD.replace("4733", cell)), "appraisal")
    assert result.n_accepted == 0
    assert hint in result.rejections.iloc[0]["reason"]


def test_underscores_in_a_carat_are_not_a_number() -> None:
    # Python's float() reads "0_5" as 5.0; a stone of 6.6 mm is not 5 ct.
    _, result = validate_csv(csv_of("0_5,Ideal,E,VS1,61.5,56,1800,5.1,5.13,3.15"), "appraisal")
    assert result.n_accepted == 0
    assert "Carat must be a number" in result.rejections.iloc[0]["reason"]


def test_semicolon_files_keep_decimal_commas() -> None:
    row = "1,1;Ideal;H;SI2;62,0;55;4733;6,61;6,65;4,11"
    _, result = validate_csv(csv_of(row, header=HEADER.replace(",", ";")), "appraisal")
    assert result.n_accepted == 1
    assert result.accepted.iloc[0]["carat"] == pytest.approx(1.1)
    assert result.accepted.iloc[0]["price"] == 4733


@pytest.mark.parametrize(
    ("cell", "accepted", "reason"),
    [
        ("2026-03-01", True, ""),
        ("", True, ""),
        ("2026-11-27", True, ""),  # tomorrow: time zones
        ("2026-11-28", False, "is in the future; the latest accepted date is 2026-11-27"),
        ("01/03/2026", False, "must be a date written YYYY-MM-DD"),
        ("2026-02-30", False, "must be a date written YYYY-MM-DD"),
        ("1850-01-01", False, "is before 1900-01-01"),
    ],
)
def test_appraisal_dates_are_validated(cell: str, accepted: bool, reason: str) -> None:
    _, result = validate_csv(
        csv_of(GOOD + "," + cell, header=HEADER + ",appraised_on"), "appraisal", today=TODAY
    )
    assert result.n_accepted == int(accepted)
    if not accepted:
        assert reason in result.rejections.iloc[0]["reason"]
        assert result.rejections.iloc[0]["column"] == "appraised_on"
    elif cell:
        assert result.accepted.iloc[0]["appraised_on"] == pd.Timestamp(cell)


def test_several_problems_in_one_row_are_all_reported() -> None:
    _, result = validate_csv(csv_of("0,Bad,H,SI2,62.0,55.0,-1,6.61,6.65,4.11"), "appraisal")
    assert set(result.rejections["column"]) == {"carat", "cut", "price"}
    assert result.n_rejected == 1
    assert result.reasons_by_line()["line"].tolist() == [2]


def test_grades_are_matched_case_insensitively_and_trimmed() -> None:
    _, result = validate_csv(
        csv_of("1.1,  very   GOOD ,h , si2,62.0,55.0,4733,6.61,6.65,4.11"), "appraisal"
    )
    assert result.n_rejected == 0
    row = result.accepted.iloc[0]
    assert (row["cut"], row["color"], row["clarity"]) == ("Very Good", "H", "SI2")
    assert result.accepted["cut"].cat.ordered
    assert list(result.accepted["color"].dtype.categories) == list("JIHGFED")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"   \n\n", "The file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary data"),
        (b"carat,cut\n1,\x81", "byte 12 (line 2, position 3: 0x81) fits none of them"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel 97\u20132003 workbook (.xls)"),
        (b"%PDF-1.7\n", "This is a PDF, not a table"),
        (b"PK\x03\x04 not really", "cannot be opened"),
        (HEADER.encode() + b"\n", "has a header but no data rows"),
        (b"carat,cut,color\n1,Ideal,H\n", "Required column(s) missing: clarity, price"),
        (b"carat,Carat,cut\n1,1,Ideal\n", "The column 'Carat' appears twice"),
        (b"hello world\nthis is not a table\n", "Required column(s) missing: carat"),
    ],
)
def test_unusable_files_raise_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(UnusableFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_csv(data, "appraisal")


def test_measurement_columns_are_optional_in_an_appraisal_file() -> None:
    _, result = validate_csv(
        csv_of("1.1,Ideal,H,SI2,4733", header="carat,cut,color,clarity,price"), "appraisal"
    )
    assert result.n_accepted == 1
    assert np.isnan(result.accepted.iloc[0]["x"])


def test_columns_in_any_order_extra_columns_reported() -> None:
    header = "price,z,y,x,table,depth,clarity,color,cut,carat,seller,notes"
    row = "4733,4.11,6.65,6.61,55.0,62.0,SI2,H,Ideal,1.1,Bob,nice"
    _, result = validate_csv(csv_of(row, header=header), "appraisal")
    assert result.n_accepted == 1
    assert result.ignored_columns == ["seller", "notes"]
    assert result.accepted.iloc[0]["carat"] == 1.1


@pytest.mark.parametrize(
    "data",
    [
        ("\ufeff" + HEADER + "\r\n" + GOOD + "\r\n").encode("utf-8"),
        (HEADER.replace(",", ";") + "\n" + GOOD.replace(",", ";") + "\n").encode(),
        (HEADER.replace(",", "\t") + "\n" + GOOD.replace(",", "\t") + "\n").encode(),
        (HEADER.upper() + "\n" + GOOD + "\n").encode(),
    ],
    ids=["bom-crlf", "semicolon", "tab", "upper-case-header"],
)
def test_common_spreadsheet_exports_are_read(data: bytes) -> None:
    _, result = validate_csv(data, "appraisal")
    assert result.n_accepted == 1, result.rejections
    assert result.accepted.iloc[0]["price"] == 4733


def test_row_with_wrong_number_of_fields_is_rejected_with_its_line() -> None:
    data = csv_of(GOOD, GOOD + ",extra", "", GOOD.replace("4733", "4800"))
    _, result = validate_csv(data, "appraisal")
    assert result.n_accepted == 2
    assert result.rejections.iloc[0]["line"] == 3
    assert "the row has 11 fields but the header has 10" in result.rejections.iloc[0]["reason"]
    assert result.accepted["line"].tolist() == [2, 5], "blank line 4 is skipped, numbering kept"


def test_pricing_rows_need_only_the_four_cs_and_ignore_price() -> None:
    frame = pd.DataFrame(
        {
            "carat": ["0.5", "1.0"],
            "cut": ["Good", "Ideal"],
            "color": ["E", "G"],
            "clarity": ["VS1", "IF"],
            "depth": ["", "61.5"],
            "price": ["-1", "oops"],
        }
    )
    result = validate(frame, "pricing")
    assert result.n_accepted == 2
    assert np.isnan(result.accepted.iloc[0]["depth"])
    assert "price" in result.ignored_columns
    assert np.isnan(result.accepted["x"]).all()


@pytest.mark.parametrize("cell", [True, "true", "1e400", "nan", [1]])
def test_booleans_and_junk_are_not_numbers(cell: object) -> None:
    frame = pd.DataFrame([{"carat": cell, "cut": "Ideal", "color": "H", "clarity": "SI2"}])
    result = validate(frame, "pricing")
    assert result.n_accepted == 0
    assert "Carat must be a number" in result.rejections.iloc[0]["reason"]


# ---- the quick paths agree with the careful ones ------------------------------------------------

ODD_CELLS = {
    "carat": ["1.1", " 0.7 ", "0,9", "+1.2", "1.", ".5", "1e2", "1_0", "", "  ", "abc", "0.30"],
    "cut": ["Ideal", "ideal", " Very  good ", "Fair", "", "Excellent", "PREMIUM", "Good"],
    "color": ["H", "h", "D", " J ", "", "Z", "E", "G"],
    "clarity": ["SI2", "vs1", "IF", "I1", "", "SI3", "VVS2", "si1"],
    "depth": ["62.0", "", "junk", "61,5", "90", "60.1", " 61 ", "-1"],
    "price": ["4733", "4,733", "4.733", "", "900", "12000", "abc", "350"],
    "x": ["6.61", "0", "", "7.1.2", "6.5", "31", "5.2", "5.20"],
}


def _odd_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.choice(cells, n) for c, cells in ODD_CELLS.items()}, dtype=object)


@pytest.mark.parametrize("purpose", ["appraisal", "pricing"])
def test_a_large_file_is_judged_cell_for_cell_as_row_by_row(purpose: str) -> None:
    """Files of 64 rows or more take vectorised paths for numbers and grades; every row must get
    the same values, rejections and notes as when it is checked alone (the per-cell path)."""
    frame = _odd_frame(400, seed=1)
    whole = validate(frame, purpose)
    assert 0 < whole.n_accepted < 400, "the mix has both kinds"
    accepted, reasons = [], []
    for position in range(len(frame)):
        alone = validate(frame.iloc[[position]].reset_index(drop=True), purpose)
        accepted += [alone.accepted.assign(line=position + 1)]
        reasons += [alone.rejections.assign(line=position + 1)]
    singles = pd.concat(accepted, ignore_index=True)
    columns = [c for c in whole.accepted.columns if c != "appraised_on"]
    pd.testing.assert_frame_equal(
        whole.accepted[columns].reset_index(drop=True), singles[columns], check_dtype=False
    )
    rejections = pd.concat(reasons, ignore_index=True).sort_values(["line", "column"])
    pd.testing.assert_frame_equal(
        whole.rejections.sort_values(["line", "column"]).reset_index(drop=True),
        rejections.reset_index(drop=True),
        check_dtype=False,
    )


@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_a_clean_file_is_read_by_pandas_exactly_as_by_the_csv_module(
    separator: str, ending: str
) -> None:
    frame = _odd_frame(300, seed=2)
    lines = [separator.join(frame.columns)] + [separator.join(row) for row in frame.to_numpy()]
    text = ending.join(lines) + ending
    taken = _read_clean(text, separator) is not None
    assert taken == (separator != ","), "decimal commas in a comma file make rows too long"
    _same_reading(text)


def _same_reading(text: str) -> None:
    """read_csv gives what the csv module gives (a quoted header keeps pandas out)."""
    header = text.split("\n", 1)[0]
    first = header.split("carat", 1)
    quick = read_csv(text)
    careful = read_csv(text.replace(header, '"carat"'.join(first), 1))
    pd.testing.assert_frame_equal(quick.frame, careful.frame)
    pd.testing.assert_frame_equal(quick.malformed, careful.malformed)
    np.testing.assert_array_equal(quick.lines, careful.lines)
    assert quick.separator == careful.separator


@pytest.mark.parametrize(
    "trouble",
    ["a blank line", "a row of separators", "a short row", "a long row", "a lone carriage return"],
)
def test_an_untidy_file_falls_back_to_the_csv_module(trouble: str) -> None:
    rows = [GOOD] * 80
    rows[40] = {
        "a blank line": "",
        "a row of separators": ",,,,,,,,,",
        "a short row": GOOD.rsplit(",", 1)[0],
        "a long row": GOOD + ",9",
        "a lone carriage return": GOOD.replace("Ideal", "Ide\ral"),
    }[trouble]
    _same_reading(csv_of(*rows).decode())
