"""Reading and validating appraisal files: every defect is reported, good rows are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diamond_model.validation import UnusableFileError, validate, validate_csv

HEADER = "carat,cut,color,clarity,depth,table,price,x,y,z"
GOOD = "1.1,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11"


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_bundled_dataset_defects_are_each_caught(dataset_bytes: bytes) -> None:
    _, result = validate_csv(dataset_bytes, "appraisal")
    reasons = result.reasons_by_line().set_index("line")["reason"]
    price_lines = result.rejections.query("column == 'price'")["line"].tolist()
    assert len(price_lines) == 10, "the ten -1 prices"
    assert all("Price must be more than $0" in reasons[line] for line in price_lines)
    assert "Length x must be more than 0 mm" in reasons[4323]  # 2.25 ct with x = y = z = 0
    assert reasons[4945] == "duplicate of line 2431 (same stone, same price)"
    assert result.n_accepted == 5000 - 15
    assert result.total_rows == 5000


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        (
            "1.1,Excelent,H,SI2,62.0,55.0,4733,6.61,6.65,4.11",
            "cut",
            "'Excelent' is not a cut grade; use one of Fair, Good, Very Good, Premium, Ideal",
        ),
        (
            "1.1,Ideal,K,SI2,62.0,55.0,4733,6.61,6.65,4.11",
            "color",
            "use one of J, I, H, G, F, E, D",
        ),
        (
            "1.1,Ideal,H,SI3,62.0,55.0,4733,6.61,6.65,4.11",
            "clarity",
            "use one of I1, SI2, SI1, VS2, VS1, VVS2, VVS1, IF",
        ),
        ("abc,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "Carat must be a number"),
        ("0,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "Carat must be more than 0 ct"),
        ("45,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11", "carat", "at most 30 ct"),
        ("1.1,Ideal,H,SI2,62.0,55.0,0,6.61,6.65,4.11", "price", "Price must be more than $0"),
        ("1.1,Ideal,H,SI2,62.0,55.0,-5,6.61,6.65,4.11", "price", "Price must be more than $0"),
        (
            "1.1,Ideal,H,SI2,62.0,55.0,,6.61,6.65,4.11",
            "price",
            "Price is required but the cell is empty",
        ),
        (
            "1.1,Ideal,H,SI2,62.0,120,4733,6.61,6.65,4.11",
            "table",
            "Table % must be at least 40 % and at most 100 %",
        ),
        ("1.1,Ideal,H,SI2,95,55.0,4733,6.61,6.65,4.11", "depth", "Depth % must be at least 40 %"),
        ("1.1,Ideal,H,SI2,62.0,55.0,4733,0,6.65,4.11", "x", "Length x must be more than 0 mm"),
        (
            "1.1,Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,1.41",
            "depth",
            "depth % disagrees with the measurements",
        ),
        ("1.1,Ideal,H,SI2,62.0,55.0,inf,6.61,6.65,4.11", "price", "Price must be a number"),
        ("1.1,Ideal,H,,62.0,55.0,4733,6.61,6.65,4.11", "clarity", "Clarity is required"),
    ],
)
def test_each_bad_cell_is_rejected_with_line_column_and_reason(
    row: str, column: str, reason: str
) -> None:
    _, result = validate_csv(csv_of(GOOD, row, GOOD.replace("4733", "4800")), "appraisal")
    assert result.n_accepted == 2
    assert result.n_rejected == 1
    problem = result.rejections.iloc[0]
    assert problem["line"] == 3
    assert problem["column"] == column
    assert reason in problem["reason"]


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


def test_grade_scales_are_ordered_worst_to_best() -> None:
    _, result = validate_csv(csv_of(GOOD), "appraisal")
    cut = result.accepted["cut"].dtype
    assert list(cut.categories) == ["Fair", "Good", "Very Good", "Premium", "Ideal"]
    assert list(result.accepted["color"].dtype.categories) == list("JIHGFED")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"   \n\n", "The file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a CSV text file"),
        ("carat,cut\n1,\xe9".encode("latin-1"), "not UTF-8 text"),
        (HEADER.encode() + b"\n", "has a header but no data rows"),
        (
            b"carat,cut,color\n1,Ideal,H\n",
            "Required column(s) missing: clarity, depth, table, price, x, y, z",
        ),
        (b"carat,Carat,cut\n1,1,Ideal\n", "The column 'Carat' appears twice"),
        (b"hello world\nthis is not a table\n", "Required column(s) missing: carat"),
    ],
)
def test_unusable_files_raise_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(UnusableFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_csv(data, "appraisal")


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


def test_semicolon_files_accept_decimal_commas() -> None:
    row = "1,1;Ideal;H;SI2;62,0;55;4733;6,61;6,65;4,11"
    _, result = validate_csv(csv_of(row, header=HEADER.replace(",", ";")), "appraisal")
    assert result.n_accepted == 1
    assert result.accepted.iloc[0]["carat"] == pytest.approx(1.1)


def test_row_with_wrong_number_of_fields_is_rejected_with_its_line() -> None:
    data = csv_of(GOOD, GOOD + ",extra", "", GOOD.replace("4733", "4800"))
    _, result = validate_csv(data, "appraisal")
    assert result.n_accepted == 2
    assert result.rejections.iloc[0]["line"] == 3
    assert "the row has 11 fields but the header has 10" in result.rejections.iloc[0]["reason"]
    assert result.accepted["line"].tolist() == [2, 5], "blank line 4 is skipped, numbering kept"


def test_duplicates_keep_the_first_copy_only() -> None:
    _, result = validate_csv(csv_of(GOOD, GOOD, GOOD), "appraisal")
    assert result.n_accepted == 1
    assert (
        result.rejections["reason"].tolist() == ["duplicate of line 2 (same stone, same price)"] * 2
    )


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


def test_validating_never_raises_for_bad_rows_only() -> None:
    rows = [
        f"{v},Ideal,H,SI2,62.0,55.0,4733,6.61,6.65,4.11" for v in ["x", "-1", "", "1e400", "nan"]
    ]
    _, result = validate_csv(csv_of(*rows), "appraisal")
    assert result.n_accepted == 0
    assert result.n_rejected == 5
