"""The command line, as an operator or a cron job uses it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from diamond_model.cli import commands
from diamond_model.settings import Settings
from diamond_model.storage import lease
from tests.helpers import BUNDLED_STORED, auth, csv_bytes, make_keys, repriced

MISSING_MM = (
    "priced from the carat and the grades alone because the length, width and total depth are "
    "missing"
)


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(commands, "get_settings", lambda: settings)

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = commands.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_init_seeds_trains_and_is_idempotent(run) -> None:
    code, out, _ = run("init")
    assert code == 0
    assert "4,989 appraisals, 10 rows rejected, 7 with measurements set aside" in out
    assert "champion v1" in out
    code, out, _ = run("init")
    assert code == 0 and "stored" not in out and "4,989 appraisals, champion v1" in out
    code, out, _ = run("models")
    assert "*       1" in out and "MAPE" in out


def test_ingest_reports_rejections_and_a_second_copy_is_a_no_op(
    run, tmp_path: Path, small_csv: bytes
) -> None:
    path = tmp_path / "batch.csv"
    frame = pd.read_csv(io.BytesIO(small_csv))
    frame.loc[4, "cut"] = "Perfect"  # data row 5 is file line 6
    frame.loc[7, "x"] = 0
    frame.to_csv(path, index=False)
    code, out, _ = run("ingest", str(path), "--no-retrain")
    assert code == 0
    assert "1,200 rows, 1,199 accepted, 1 rejected" in out
    assert "line 6 [cut] rejected: 'Perfect' is not a cut grade" in out
    assert "line 9 [x] note: Length x not used" in out
    code, out, err = run("ingest", str(path))
    assert code == 0, err
    assert "Already stored as batch 1: nothing added." in out


def test_dry_run_stores_nothing(run, tmp_path: Path, small_csv: bytes, settings: Settings) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(small_csv)
    code, out, _ = run("ingest", str(path), "--dry-run")
    assert code == 0 and "1,200 accepted" in out
    code, out, _ = run("batches")
    assert "no batches stored yet" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "The file is empty"), (b"carat,cut\n1,Ideal\n", "Required column(s) missing")],
)
def test_ingest_of_an_unusable_file_fails_clearly(
    run, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, _, err = run("ingest", str(path))
    assert code == 1 and message in err


def test_ingest_reads_a_libreoffice_workbook_with_italian_headers(run, tmp_path: Path) -> None:
    saved = Path(__file__).resolve().parents[1] / "data" / "files" / "appraisals-libreoffice.ods"
    code, out, err = run("ingest", str(saved), "--no-retrain")
    assert code == 0, err
    assert "4 rows, 3 accepted, 1 rejected" in out
    assert "Read the sheet 'it' of the ods workbook" in out and "'Carati' as carat" in out
    assert "line 5 [price] rejected: Price must be a number" in out


def test_predict_reads_report_grades_and_refuses_those_beyond_the_appraisals(
    run, tmp_path: Path
) -> None:
    """The same mapping and the same refusals as the page, the API and the core."""
    source = tmp_path / "report.csv"
    source.write_text(
        "carat,cut,color,clarity\n1.0,Excellent,G,VS-1\n1.0,Ideal,K,VS1\n1.0,Ideal,G,I2\n"
    )
    run("init")
    code, out, _ = run("predict", str(source), "-o", str(tmp_path / "out.csv"))
    assert code == 0 and "priced 1 of 3 rows" in out
    assert "'Excellent' (GIA's, IGI's and HRD's top cut grade) read as Ideal" in out, "said"
    priced = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert priced["error"].iloc[0] == "" and float(priced["price_estimate"].iloc[0]) > 0
    assert priced["error"].iloc[1].startswith("'K' is a colour grade below J")
    assert "'I2' is a clarity grade below I1" in priced["error"].iloc[2]


def test_predict_reads_the_sheet_it_is_told(run, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Notes"
    book.active.append(["nothing to price here"])
    stones = book.create_sheet("Stones")
    stones.append(["Carati", "Taglio", "Colore", "Purezza"])
    stones.append([1.0, "Ideal", "G", "VS1"])
    book.save(tmp_path / "office.xlsx")
    run("init")
    code, out, _ = run(
        "predict", str(tmp_path / "office.xlsx"), "--sheet", "Stones", "-o", str(tmp_path / "o.csv")
    )
    assert code == 0 and "priced 1 of 1 rows" in out and "'Carati' as carat" in out
    code, _, err = run(
        "predict", str(tmp_path / "office.xlsx"), "--sheet", "Prices", "-o", str(tmp_path / "o.csv")
    )
    assert code != 0 and "Prices" in err, "an unknown sheet is named in the error"


def test_ingest_of_a_missing_file(run, tmp_path: Path) -> None:
    code, _, err = run("ingest", str(tmp_path / "nope.csv"))
    assert code == 1 and "no file at" in err


def test_withdraw_and_restore_a_batch(run, tmp_path: Path, appraisals: pd.DataFrame) -> None:
    run("init")
    path = tmp_path / "b.csv"
    path.write_bytes(
        csv_bytes(appraisals.iloc[:10].assign(price=appraisals["price"].iloc[:10] * 1.01))
    )
    run("ingest", str(path), "--no-retrain")
    code, out, _ = run("withdraw", "2", "--note", "typo", "--no-retrain")
    assert code == 0 and "batch 2 ('b.csv', 10 appraisals) withdrawn" in out
    code, out, _ = run("batches")
    assert "withdrawn" in out.splitlines()[-1]
    code, out, _ = run("restore", "2", "--no-retrain")
    assert code == 0 and "batch 2 ('b.csv', 10 appraisals) restored" in out
    code, _, err = run("withdraw", "9")
    assert code == 1 and "There is no batch 9" in err


def test_predict_keeps_rows_and_adds_columns(run, tmp_path: Path) -> None:
    code, _, err = run("predict", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert code == 4 and "no model is trained yet" in err
    run("init")
    source = tmp_path / "in.csv"
    source.write_text(
        "id,carat,cut,color,clarity,x,y,z,price\n"
        "a,1.1,Ideal,H,SI2,6.61,6.65,4.11,100\n"
        "b,1.1,Ideal,Q,SI2,,,,100\n"
        "c,0.4,fair,j,i1,,,,\n"
        "=cmd,0.4,fair,j,i1,9,9,5,\n"
    )
    code, out, _ = run("predict", str(source), "-o", str(tmp_path / "out.csv"))
    assert code == 0 and "priced 3 of 4 rows with model v1" in out and "market level 2026-01" in out
    priced = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert priced["id"].tolist() == ["a", "b", "c", "'=cmd"]
    assert list(priced.columns[-7:]) == [
        "price_estimate",
        "price_low",
        "price_high",
        "confidence",
        "carat_from_mm",
        "warnings",
        "error",
    ]
    assert (
        priced.loc[1, "price_estimate"] == ""
        and "'Q' is a colour grade below J" in priced.loc[1, "error"]
    )
    assert MISSING_MM in priced.loc[2, "warnings"]
    assert "the millimetres imply" in priced.loc[3, "warnings"]
    assert priced["carat_from_mm"].tolist()[:3] == ["", "", ""], "filled only for a conflict"
    assert float(priced.loc[3, "carat_from_mm"]) > 2.0, "9 × 9 × 5 mm is no 0.4 ct stone"
    assert priced.loc[3, "confidence"] == "low"
    assert (
        "none of our appraisals is a J I1 stone weighing up to 0.5 ct" in priced.loc[3, "warnings"]
    )
    low, estimate, high = (
        float(priced.loc[0, c]) for c in ("price_low", "price_estimate", "price_high")
    )
    assert low < estimate < high


def test_retrain_promote_rollback(run) -> None:
    run("init")
    code, out, _ = run("retrain")
    assert code == 0 and "skipped: no new appraisals" in out
    code, out, _ = run("retrain", "--force")
    assert code == 0 and "candidate" in out and "champion" in out
    code, out, _ = run("promote", "1")
    assert code == 0 and "version 1 is now the champion" in out
    code, _, err = run("promote", "7")
    assert code == 1 and "There is no model version 7" in err
    code, out, _ = run("market")
    assert code == 0 and "2026-01" in out


def test_export_and_backup_refuse_bad_targets_without_a_traceback(run, tmp_path: Path) -> None:
    run("init")
    code, out, _ = run("export", str(tmp_path / "export"))
    assert code == 0
    assert len(pd.read_csv(tmp_path / "export" / "appraisals.csv")) == BUNDLED_STORED
    assert len(pd.read_csv(tmp_path / "export" / "rejected.csv")) == 10
    code, _, err = run("export", str(tmp_path / "export"))
    assert code == 1 and "exists already; use --force to replace it" in err
    code, _, err = run("export", str(tmp_path / "export" / "appraisals.csv"))
    assert code == 1 and "is a file, not a folder" in err
    code, out, _ = run("backup", str(tmp_path / "b.zip"))
    assert code == 0 and "4,989 appraisals, 1 batches" in out
    code, _, err = run("backup", str(tmp_path / "b.zip"))
    assert code == 1 and "exists already" in err
    code, _, err = run("backup", str(tmp_path / "missing" / "b.zip"))
    assert code == 1 and "does not exist" in err
    code, _, err = run("restore", str(tmp_path / "b.zip"))
    assert code == 1 and "The database is not empty" in err
    code, _, err = run("restore", str(tmp_path / "export" / "appraisals.csv"))
    assert code == 1 and "is not a backup" in err


def test_retrain_while_another_runs_says_so(run, settings: Settings) -> None:
    from diamond_model.learning.loop import LearningLoop

    run("init")
    pipeline = LearningLoop.from_settings(settings)
    lease.acquire(pipeline.store, "retrain", 60)
    code, _, err = run("retrain", "--force")
    assert code == 3 and "A retrain is already running" in err
    code, out, _ = run("unlock")
    assert code == 0 and "Cleared the retraining lease" in out
    code, out, _ = run("unlock")
    assert "nothing to clear" in out


def test_keys_are_shown_once_stored_as_a_hash_listed_used_and_revoked(
    run, settings: Settings
) -> None:
    import hashlib

    from sqlalchemy import select

    from diamond_model.learning.loop import LearningLoop
    from diamond_model.serving.keys import KeyRing, KeyStore
    from diamond_model.serving.metering import Meter
    from diamond_model.storage.tables import ApiKey, utcnow

    run("init")
    code, out, _ = run(
        "keys", "create", "acme", "--scopes", "quote", "data:write",
        "--stones-per-day", "5000", "--requests-per-minute", "60",
    )  # fmt: skip
    assert code == 0 and "key 'acme' (data:write, quote) created. It is shown once:" in out
    key = out.strip().splitlines()[-1]
    assert key.startswith("dk_") and len(key) > 30

    store = LearningLoop.from_settings(settings).store
    with store.session() as session:
        row = session.scalars(select(ApiKey)).one()
        stored = [str(getattr(row, c.name)) for c in ApiKey.__table__.columns]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in value for value in stored), "the key itself is never stored"

    code, out, _ = run("keys", "list")
    assert code == 0 and "acme" in out and "active" in out and "never used" in out
    assert "5,000 stones/day" in out and "60 requests/min" in out

    ring = KeyRing(KeyStore(store))
    ring.refresh()
    client = ring.check(key)
    assert client is not None and ring.check(key[:-1] + "x") is None
    meter = Meter(store)
    meter.record(client, stones=3)
    meter.flush()
    code, out, _ = run("keys", "list")
    assert "last used" in out and "never used" not in out
    code, out, _ = run("keys", "usage", "acme")
    assert code == 0 and "total: 1 requests, 3 stones, 0 errors, 0 refused for a limit" in out
    assert "$20.00 per 1,000 stones (default)" in run("keys", "list")[1]

    code, out, _ = run(
        "keys", "change", "acme", "--price-per-1000", "$150", "--stones-per-day", "none"
    )
    assert code == 0 and "no limits" not in out, out  # the minute's limit was kept
    assert "60 requests/min, $150.00 per 1,000 stones" in out and "stones/day" not in out
    month = f"{utcnow():%Y-%m}"
    folder = settings.instance_dir.parent
    sheet_csv, sheet_pdf = folder / "s.csv", folder / "s.pdf"
    code, out, _ = run(
        "keys",
        "statement",
        "acme",
        "--month",
        month,
        "--csv",
        str(sheet_csv),
        "--pdf",
        str(sheet_pdf),
    )
    assert code == 0 and "1 requests, 3 stones at $150.00 per 1,000 = $0.45" in out
    assert sheet_csv.read_text().splitlines()[-1].endswith(",total,1,3,150.00,0.45")
    assert sheet_pdf.read_bytes().startswith(b"%PDF")
    code, _, err = run("keys", "statement", "acme", "--month", "last month")
    assert code == 1 and "write it as 2026-11" in err

    code, out, _ = run("keys", "revoke", "acme")
    assert code == 0 and "key 'acme' revoked at" in out
    code, out, _ = run("keys", "list")
    assert "revoked" in out
    code, _, err = run("keys", "revoke", "nobody")
    assert code == 1 and "nobody" in err
    store.dispose()


def test_a_batch_stored_while_another_process_retrains_queues_a_follow_up(
    run,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    appraisals: pd.DataFrame,
) -> None:
    from diamond_model.learning.loop import LearningLoop

    run("init")
    automatic = settings.model_copy(update={"auto_retrain": True})
    monkeypatch.setattr(commands, "get_settings", lambda: automatic)
    pipeline = LearningLoop.from_settings(automatic)
    lease.acquire(pipeline.store, "retrain", 60)  # another process is retraining
    path = tmp_path / "new.csv"
    path.write_bytes(csv_bytes(appraisals.iloc[100:150].assign(price=lambda f: f["price"] + 1)))
    code, out, _ = run("ingest", str(path))
    assert code == 0, "stored; nothing is wrong"
    assert "A retrain is running: it will train once more with this data when it finishes" in out
    pipeline.store.dispose()


def test_people_sign_in_by_name_and_every_change_names_who_made_it(
    run, settings: Settings, monkeypatch: pytest.MonkeyPatch, appraisals: pd.DataFrame, tmp_path
) -> None:
    code, out, _ = run("init")
    assert "'owner' signs in with that code (the owner: everything" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("anna-personal-code\n"))
    code, out, _ = run("people", "add", "Anna", "--role", "owner", "--code-from-stdin")
    assert code == 0 and "Anna (owner) can sign in" in out and "anna-personal-code" not in out
    code, _, err = run("people", "add", "Anna")
    assert code == 1 and "already someone called 'Anna'" in err
    code, out, _ = run("people", "list")
    assert out.count("owner") >= 2 and "Anna" in out, "the first person and Anna"

    rows = repriced(appraisals, 1.0, 3, 300).reset_index(drop=True)  # the same stones again
    rows.loc[7, "price"] *= 10
    path = tmp_path / "slip.csv"
    path.write_bytes(csv_bytes(rows))
    code, out, _ = run("ingest", str(path), "--by", "Anna", "--no-retrain")
    assert "prices are suspects" in out and "line 9: $" in out, out
    code, out, _ = run("review")
    held = [line.split() for line in out.splitlines()[1:-1]]
    assert code == 0 and any(fields[2] == "9" for fields in held), out
    appraisal = next(fields[0] for fields in held if fields[2] == "9")
    price = rows.loc[7, "price"] / 10
    code, out, _ = run(
        "correct",
        appraisal,
        "--price",
        str(price),
        "--reason",
        "decimal slip",
        "--by",
        "Anna",
        "--no-retrain",
    )
    assert code == 0 and f"price {rows.loc[7, 'price']:g}" in out.replace(".0 ", " "), out
    code, _, _ = run("withdraw", "2", "--by", "Anna", "--no-retrain", "--note", "checking")
    assert code == 0

    keys = make_keys(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/audit").status_code == 401, "it names people: a key is needed"
        assert client.get("/v1/audit", headers=auth(keys, "client")).status_code == 403
        entries = client.get("/v1/audit", headers=auth(keys)).json()
    did = [(e["who"], e["action"], e["subject"]) for e in entries]
    assert did[:3] == [
        ("Anna", "withdraw", "batch 2"),
        ("Anna", "correct", f"appraisal {appraisal}"),
        ("Anna", "upload", "batch 2"),
    ], did
