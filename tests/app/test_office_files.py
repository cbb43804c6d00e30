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


def _two_sheets() -> bytes:
    """A workbook whose first sheet is a summary and whose second holds the stones, as offices
    keep them (openpyxl writes it; the sheet choice is what is tested here)."""
    import io

    from openpyxl import Workbook

    book = Workbook()
    summary = book.active
    summary.title = "Riepilogo"
    summary.append(["Perizie di novembre"])
    summary.append(["Totale", "=SUM(Perizie!G2:G3)"])
    stones = book.create_sheet("Perizie")
    stones.append(["Carati", "Taglio", "Colore", "Purezza", "Profondità", "Tavola", "Prezzo"])
    stones.append([1.1, "Ideal", "H", "SI2", 62, 55, 4733])
    stones.append([0.31, "Very Good", "E", "VS1", 61.8, 58, 841])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_named_sheet_is_read_through_the_api_and_each_sheet_is_its_own_batch(
    client: TestClient,
    keys: dict[str, str],
    api_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    book = _two_sheets()
    upload = {"file": ("novembre.xlsx", book, "application/octet-stream")}
    first = client.post("/v1/quotes/batch/csv", files=upload)
    assert_problem(first, 422, "carat")  # the summary sheet is not a table of stones
    priced = client.post("/v1/quotes/batch/csv", files=upload, params={"sheet": "Perizie"})
    assert priced.status_code == 200, priced.text
    assert [r["line"] for r in priced.json()["results"]] == [2, 3]
    wrong = client.post("/v1/quotes/batch/csv", files=upload, params={"sheet": "Foglio9"})
    assert_problem(wrong, 422, "no sheet named 'Foglio9'; its sheets: Riepilogo, Perizie")
    stored = client.post(
        "/v1/appraisals",
        files=upload,
        headers=auth(keys),
        params={"retrain": "false", "sheet": "Perizie"},
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["batch"]["rows_accepted"] == 2
    again = client.post(
        "/v1/appraisals",
        files=upload,
        headers=auth(keys),
        params={"retrain": "false", "sheet": "Perizie", "dry_run": "true"},
    )
    said = f"This file is already stored as batch {stored.json()['batch']['id']}"
    sentences = again.json()["preview"]["sentences"]
    assert any(line.startswith(said) for line in sentences), "the same sheet again is known"
    assert any("the sheet 'Perizie' (of Riepilogo, Perizie)" in line for line in sentences)

    from diamond_model.learning.preview import upload_digest

    assert upload_digest(book, "Perizie") != upload_digest(book), "two sheets, two batches"

    from diamond_model.cli import commands

    monkeypatch.setattr(commands, "get_settings", lambda: api_settings)
    (tmp_path / "novembre.xlsx").write_bytes(book)
    argv = ["ingest", str(tmp_path / "novembre.xlsx"), "--dry-run", "--sheet", "Perizie"]
    assert commands.main(argv) == 0
    assert "This file is already stored as batch" in capsys.readouterr().out


def test_the_pages_offer_the_sheets_of_a_workbook(dashboard_env: Settings) -> None:
    book = _two_sheets()
    app = run(PRICE)
    app.file_uploader(key="price_list").set_value(("novembre.xlsx", book, "application/zip"))
    app = rerun(app)
    choice = app.selectbox(key="price_list_sheet")
    assert choice.options == ["Riepilogo", "Perizie"] and "carat" in texts(app)
    choice.set_value("Perizie")
    app = rerun(app)
    assert "Priced 2 of 2 stones" in texts(app)

    expert = unlock(run(APPRAISALS))
    expert.file_uploader[0].set_value(("novembre.xlsx", book, "application/zip"))
    expert = rerun(expert)
    [sheet] = [s for s in expert.selectbox if s.label.startswith("Sheet of novembre.xlsx")]
    sheet.set_value("Perizie")
    expert = rerun(expert)
    assert "'Carati' as carat" in texts(expert) and "the sheet 'Perizie'" in texts(expert)
    assert [m.value for m in expert.metric if m.label == "Appraisals to store"] == ["2"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_file_through_the_api_and_the_command_line(
    client: TestClient,
    keys: dict[str, str],
    api_settings: Settings,
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same three appraisals and one bad price, whichever program saved them, through the
    API's preview and the CLI's ingest (against the same database)."""
    preview = client.post(
        "/v1/appraisals",
        files={"file": (f"perizie.{kind}", _content(kind), "application/octet-stream")},
        headers=auth(keys),
        params={"dry_run": "true"},
    )
    assert preview.status_code == 201, preview.text
    shown = preview.json()["preview"]
    assert (shown["rows_accepted"], shown["rows_rejected"]) == (3, 1)
    assert [r["line"] for r in shown["rejections"]] == [5]

    from diamond_model.cli import commands

    monkeypatch.setattr(commands, "get_settings", lambda: api_settings)
    path = tmp_path / f"perizie.{kind}"
    path.write_bytes(_content(kind))
    assert commands.main(["ingest", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 rows, 3 accepted, 1 rejected" in out and "'Carati' as carat" in out
    assert "line 5 [price] rejected: Price must be a number" in out
