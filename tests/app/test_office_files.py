"""The files an office really has, through every door: files saved by LibreOffice Calc 7.4
(.xlsx, .ods, its Windows-1252 CSV and its UTF-16 "Unicode text"; tests/data/files/) and the
bytes Italian Excel writes for "CSV (delimitato dal separatore di elenco)": Windows-1252, `;`,
decimal commas, CRLF. Each holds three good appraisals and one bad price on spreadsheet row 5,
Italian headers, an accented extra column, a date column, and (in the workbooks) a formula."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from diamond_model.data.validation import validate_csv
from diamond_model.settings import Settings
from tests.helpers import APPRAISALS, PRICE, assert_problem, auth, frame, rerun, run, texts, unlock

FILES = Path(__file__).resolve().parents[1] / "data" / "files"
SAVED = {
    "xlsx": "appraisals-libreoffice.xlsx",
    "ods": "appraisals-libreoffice.ods",
    "cp1252": "appraisals-libreoffice-1252.csv",
    "utf-16": "appraisals-libreoffice-unicode.txt",
}
ITALIAN_EXCEL = (
    "Carati;Taglio;Colore;Purezza;Profondità;Tavola;Prezzo;Lunghezza;Larghezza;Altezza;Data;Note\r\n"
    "1,1;Ideal;H;SI2;62;55;4733;6,61;6,65;4,11;2026-11-03;perizia già fatta\r\n"
    "0,31;Very Good;E;VS1;61,8;58;841;4,32;4,35;2,68;2026-11-04;colore più caldo\r\n"
    "0,7;Premium;G;VS2;61,5;58;2757;5,7;5,73;3,51;2026-11-05;\r\n"
    "1,02;Ideal;F;VS1;61,9;56;Z;6,45;6,48;4;2026-11-05;prezzo da rifare\r\n"
).encode("cp1252")


def _content(kind: str) -> bytes:
    return ITALIAN_EXCEL if kind == "italian-excel" else (FILES / SAVED[kind]).read_bytes()


KINDS = [*SAVED, "italian-excel"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_office_file_reads_the_same_stones(kind: str) -> None:
    raw, result = validate_csv(_content(kind), "appraisal", date(2026, 12, 6))
    accepted = result.accepted
    assert accepted["line"].tolist() == [2, 3, 4], "row numbers as the spreadsheet shows them"
    assert accepted["carat"].tolist() == [1.1, 0.31, 0.7]
    assert accepted["price"].tolist() == [4733, 841, 2757], "the formula =800+41 read as 841"
    assert accepted["x"].tolist() == [6.61, 4.32, 5.7]
    assert [f"{d:%Y-%m-%d}" for d in accepted["appraised_on"]] == [
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
    ]
    rejected = result.reasons_by_line()
    assert rejected["line"].tolist() == [5] and "Price must be a number" in rejected["reason"][0]
    assert result.notes.empty, "nothing set aside: how the file was read is said apart"
    said = " ".join(result.read_as)
    assert "'Carati' as carat" in said and "'Purezza' as clarity" in said
    assert "'Data' as appraised_on" in said
    assert result.ignored_columns == ["note"], "the accented notes column is kept aside"
    expected = {
        "xlsx": "xlsx workbook",
        "ods": "ods workbook",
        "cp1252": "Windows-1252",
        "utf-16": "UTF-16",
        "italian-excel": "Windows-1252",
    }[kind]
    assert expected in said


def test_a_sheet_can_be_named_and_a_wrong_name_lists_the_sheets() -> None:
    from diamond_model.data.reading import UnusableFileError, read_table

    assert read_table(_content("xlsx"), sheet="it").frame.shape == (4, 12)
    with pytest.raises(UnusableFileError, match="no sheet named 'Foglio2'; its sheets: it"):
        read_table(_content("ods"), sheet="Foglio2")


@pytest.mark.parametrize("kind", ["xlsx", "italian-excel"])
def test_the_api_stores_them_and_prices_them(
    client: TestClient, keys: dict[str, str], kind: str
) -> None:
    name = {"xlsx": "perizie.xlsx", "italian-excel": "perizie.csv"}[kind]
    upload = client.post(
        "/v1/appraisals",
        files={"file": (name, _content(kind), "application/octet-stream")},
        headers=auth(keys),
        params={"retrain": "false"},
    )
    assert upload.status_code == 201, upload.text
    batch = upload.json()["batch"]
    assert (batch["rows_accepted"], batch["rows_rejected"]) == (3, 1)
    read_as = " ".join(upload.json()["preview"]["read_as"])
    assert "'Prezzo' as price" in read_as and ("xlsx" in read_as or "Windows-1252" in read_as)
    priced = client.post(
        "/v1/quotes/batch/csv",
        files={"file": (name, _content(kind), "application/octet-stream")},
    )
    assert priced.status_code == 200, priced.text
    results = priced.json()["results"]
    assert [r["line"] for r in results] == [2, 3, 4, 5]
    assert all(r["quote"] is not None for r in results), "a bad price does not matter to pricing"


def test_the_api_answers_a_file_that_is_not_a_table_in_words(
    client: TestClient, keys: dict[str, str]
) -> None:
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    response = client.post(
        "/v1/appraisals",
        files={"file": ("perizie.pdf", pdf, "application/pdf")},
        headers=auth(keys),
    )
    assert_problem(response, 422, "This is a PDF, not a table")


def test_the_page_prices_a_workbook_and_refuses_a_pdf_in_words(dashboard_env: Settings) -> None:
    app = run(PRICE)
    app.file_uploader(key="price_list").set_value(
        ("perizie.ods", _content("ods"), "application/vnd.oasis.opendocument.spreadsheet")
    )
    app = rerun(app)
    assert "Priced 4 of 4 stones" in texts(app)
    assert frame(app, "Estimate")["Estimate"].str.startswith("$").all()
    app.file_uploader(key="price_list").set_value(("scan.pdf", b"%PDF-1.4\n", "application/pdf"))
    app = rerun(app)
    assert "This is a PDF, not a table" in texts(app)


def test_the_expert_uploads_italian_excels_csv_on_the_page(dashboard_env: Settings) -> None:
    app = unlock(run(APPRAISALS))
    app.file_uploader[0].set_value(("perizie.csv", ITALIAN_EXCEL, "text/csv"))
    app = rerun(app)
    assert "Windows-1252" in texts(app) and "'Carati' as carat" in texts(app)
    rejected = frame(app, "Why")
    assert rejected["Line"].tolist() == ["5"]
