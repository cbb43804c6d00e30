"""Grades as grading reports write them: read with a stated mapping where one exists ('Excellent'
is Ideal), refused with that reason where the grade is real but beyond these appraisals (colour
K, clarity I2), the same on the page's list, the CLI's file, the API and the core."""

from __future__ import annotations

from fastapi.testclient import TestClient

from diamond_model.data.validation import validate_csv
from diamond_model.settings import Settings
from tests.helpers import PRICE, frame, rerun, run, texts

STONE = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS1"}
FILE = (
    b"carat,cut,color,clarity\n"
    b"1.0,Excellent,G,VS1\n"  # GIA's top cut grade
    b"1.0,Ideal,G,VS-1\n"  # a report's spelling
    b"1.0,Ideal,K,VS1\n"  # a real colour below J
    b"1.0,Ideal,G,I2\n"  # a real clarity below I1
    b"1.0,Superb,G,VS1\n"  # no grade at all
)


def test_the_core_reads_report_names_and_refuses_grades_beyond_the_appraisals() -> None:
    _, result = validate_csv(FILE, "pricing")
    assert result.accepted["line"].tolist() == [2, 3]
    assert result.accepted["cut"].astype(str).tolist() == ["Ideal", "Ideal"]
    assert result.accepted["clarity"].astype(str).tolist() == ["VS1", "VS1"]
    assert "'Excellent' (GIA's, IGI's and HRD's top cut grade) read as Ideal" in result.read_as[0]
    reasons = dict(zip(*result.reasons_by_line().to_dict("list").values(), strict=True))
    assert "'K' is a colour grade below J" in reasons[4] and "ask the expert" in reasons[4]
    assert "'I2' is a clarity grade below I1" in reasons[5]
    assert "'Superb' is not a cut grade: use one of" in reasons[6]


def test_the_api_prices_a_gia_stone_as_ideal_and_refuses_k_in_words(client: TestClient) -> None:
    ideal = client.post("/v1/quotes", json=STONE).json()["price"]
    excellent = client.post("/v1/quotes", json={**STONE, "cut": "Excellent", "clarity": "VS 1"})
    assert excellent.status_code == 200 and excellent.json()["price"] == ideal
    refused = client.post("/v1/quotes", json={**STONE, "color": "K"})
    assert refused.status_code == 422
    error = refused.json()["errors"][0]
    assert error["field"] == "color" and error["reason"].startswith("'K' is a colour grade below J")
    assert "Value error" not in refused.text


def test_the_pages_list_agrees_with_the_core(dashboard_env: Settings) -> None:
    app = run(PRICE)
    app.file_uploader(key="price_list").set_value(("report.csv", FILE, "text/csv"))
    app = rerun(app)
    assert "Priced 2 of 5 stones; 3 could not be priced" in texts(app)
    reasons = " ".join(frame(app, "Estimate")["Could not be priced because"])
    assert "'K' is a colour grade below J" in reasons and "'I2' is a clarity grade" in reasons
