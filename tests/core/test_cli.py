"""The command line, as an operator or a cron job uses it."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from diamond_model import cli
from diamond_model.settings import Settings


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_init_seeds_trains_and_is_idempotent(run, settings: Settings) -> None:
    code, out, _ = run("init")
    assert code == 0
    assert "4985 accepted, 15 rejected" in out and "champion v1" in out
    code, out, _ = run("init")
    assert code == 0 and "ingested" not in out and "4,985 appraisals, champion v1" in out
    code, out, _ = run("models")
    assert "*       1" in out and "MAPE" in out


def test_ingest_reports_rejections_and_refuses_a_second_copy(
    run, tmp_path: Path, small_csv: bytes
) -> None:
    path = tmp_path / "batch.csv"
    frame = pd.read_csv(io.BytesIO(small_csv))
    frame.loc[4, "cut"] = "Perfect"  # data row 5 is file line 6
    frame.to_csv(path, index=False)
    code, out, _ = run("ingest", str(path), "--no-retrain")
    assert code == 0
    assert "1200 rows, 1199 accepted, 1 rejected" in out
    assert "line 6" in out and "not a cut grade" in out
    code, _, err = run("ingest", str(path))
    assert code == 1 and "already ingested as batch 1" in err


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


def test_ingest_of_a_missing_file(run, tmp_path: Path) -> None:
    code, _, err = run("ingest", str(tmp_path / "nope.csv"))
    assert code == 1 and "no file at" in err


def test_predict_keeps_rows_and_adds_columns(run, tmp_path: Path) -> None:
    code, _, err = run("predict", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert code == 4 and "no model is trained yet" in err
    run("init")
    source = tmp_path / "in.csv"
    source.write_text(
        "id,carat,cut,color,clarity,price\n"
        "a,1.1,Ideal,H,SI2,100\n"
        "b,1.1,Ideal,Q,SI2,100\n"
        "c,0.4,fair,j,i1,\n"
        "=cmd,0.4,fair,j,i1,\n"
    )
    code, out, _ = run("predict", str(source), "-o", str(tmp_path / "out.csv"))
    assert code == 0 and "priced 3 of 4 rows with model v1" in out
    priced = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert priced["id"].tolist() == ["a", "b", "c", "'=cmd"]
    assert list(priced.columns[-4:]) == ["price_estimate", "price_low", "price_high", "error"]
    assert (
        priced.loc[1, "price_estimate"] == ""
        and "'Q' is not a color grade" in priced.loc[1, "error"]
    )
    assert (
        float(priced.loc[0, "price_low"])
        < float(priced.loc[0, "price_estimate"])
        < float(priced.loc[0, "price_high"])
    )


def test_retrain_promote_rollback_export(run, tmp_path: Path) -> None:
    run("init")
    code, out, _ = run("retrain")
    assert code == 0 and "skipped: no new appraisals" in out
    code, out, _ = run("retrain", "--force")
    assert code == 0 and "candidate" in out and "champion" in out and "promoted" in out
    code, out, _ = run("promote", "1")
    assert code == 0 and "version 1 is now the champion" in out
    code, _, err = run("promote", "7")
    assert code == 1 and "There is no model version 7" in err
    code, out, _ = run("rollback")
    assert code == 0 and "version 2 is now the champion" in out
    code, out, _ = run("export", str(tmp_path / "export"))
    assert code == 0
    assert len(pd.read_csv(tmp_path / "export" / "appraisals.csv")) == 4985
    assert len(pd.read_csv(tmp_path / "export" / "rejected.csv")) == 17


def test_retrain_while_another_runs_says_so(run, settings: Settings) -> None:
    from diamond_model.pipeline import Pipeline

    run("init")
    store = Pipeline.from_settings(settings).store
    store.acquire_lock("retrain", 60)
    code, _, err = run("retrain", "--force")
    assert code == 3 and "A retrain is already running" in err
