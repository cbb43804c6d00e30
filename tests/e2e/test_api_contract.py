"""The OpenAPI document is a contract: a typed client generated from the live /openapi.json by an
independent generator (openapi-python-client) parses every success body and every problem
document the server actually sends, on a real uvicorn."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from diamond_model.enums import Scope
from diamond_model.serving.keys import KeyStore
from diamond_model.storage.store import Store
from tests.conftest import csv_bytes
from tests.e2e.server import api_server

STONE = {
    "carat": 1.1,
    "cut": "Ideal",
    "color": "H",
    "clarity": "SI2",
    "x": 6.61,
    "y": 6.65,
    "z": 4.11,
}


def generate(base: str, folder: Path) -> object:
    """Generate and import a client package from the server's own /openapi.json."""
    spec = folder / "openapi.json"
    spec.write_bytes(httpx.get(f"{base}/openapi.json").content)
    config = folder / "config.yaml"
    config.write_text(
        "post_hooks: []\nproject_name_override: contract-client\n"
        "package_name_override: contract_client\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--output-path",
            str(folder / "generated"),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(folder / "generated"))
    try:
        return importlib.import_module("contract_client")
    finally:
        sys.path.pop(0)


def api(module: str) -> object:
    return importlib.import_module(f"contract_client.api.{module}")


@pytest.mark.slow
def test_a_generated_client_parses_every_answer(
    server_env: dict[str, str],
    server_keys: dict[str, str],
    tmp_path: Path,
    appraisals: pd.DataFrame,
) -> None:
    server_env["DIAMOND_AUTO_RETRAIN"] = "false"
    server_env["DIAMOND_MAX_BATCH_STONES"] = "50"
    store = Store(server_env["DIAMOND_DATABASE_URL"])
    limited, _ = KeyStore(store).create("tiny", frozenset({Scope.QUOTE}), requests_per_minute=1)
    store.dispose()
    with api_server(server_env) as base:
        package = generate(base, tmp_path)
        from contract_client import Client
        from contract_client.models import (
            AppraisalPage,
            BatchDetail,
            BatchIn,
            BatchInfo,
            BatchOut,
            BodyQuoteCsvV1QuotesBatchCsvPost,
            BodyUploadV1AppraisalsPost,
            Clarity,
            Color,
            Cut,
            Health,
            IngestOut,
            Liveness,
            MarketIndexOut,
            ModelOut,
            Problem,
            QuoteOut,
            QuoteRecordOut,
            Readiness,
            ServingModelOut,
            Stone,
            TrainingRunIn,
            TrainingRunOut,
            UsageOut,
            WithdrawIn,
        )
        from contract_client.types import File

        assert package is not None
        plain = Client(base_url=base, raise_on_unexpected_status=True, timeout=httpx.Timeout(60))
        expert = plain.with_headers({"X-API-Key": server_keys["expert"]})
        client = plain.with_headers({"X-API-Key": server_keys["client"]})

        quotes, data, models, service, usage = "quotes", "data", "models", "service", "usage"
        q = "quote_v1_quotes_post"
        assert isinstance(api(f"{service}.live_health_live_get").sync(client=plain), Liveness)
        assert isinstance(api(f"{service}.ready_health_ready_get").sync(client=plain), Readiness)
        assert isinstance(api(f"{service}.health_health_get").sync(client=plain), Health)

        quote = api(f"{quotes}.{q}").sync(client=client, body=Stone.from_dict(STONE))
        assert isinstance(quote, QuoteOut) and quote.explanation.steps[0].feature == "size"
        record = api(f"{quotes}.get_quote_v1_quotes_quote_id_get").sync(
            client=client, quote_id=quote.quote_id
        )
        deadline = time.monotonic() + 5
        while not isinstance(record, QuoteRecordOut) and time.monotonic() < deadline:
            time.sleep(0.2)
            record = api(f"{quotes}.get_quote_v1_quotes_quote_id_get").sync(
                client=client, quote_id=quote.quote_id
            )
        assert isinstance(record, QuoteRecordOut) and record.quote.price == quote.price
        missing = api(f"{quotes}.get_quote_v1_quotes_quote_id_get").sync(
            client=client, quote_id="nope"
        )
        assert isinstance(missing, Problem) and missing.status == 404
        invalid = api(f"{quotes}.{q}").sync(
            client=client, body=Stone.from_dict({**STONE, "carat": 40.0})
        )
        assert (
            isinstance(invalid, Problem)
            and invalid.status == 422
            and invalid.errors[0].field == "carat"
        )
        pinned = api(f"{quotes}.{q}").sync(
            client=client, body=Stone.from_dict(STONE), model_version=99
        )
        assert isinstance(pinned, Problem) and pinned.status == 404
        batch = api(f"{quotes}.quote_batch_v1_quotes_batch_post").sync(
            client=client, body=BatchIn.from_dict({"stones": [STONE, {**STONE, "cut": "Superb"}]})
        )
        assert isinstance(batch, BatchOut) and (batch.priced, batch.failed) == (1, 1)
        too_many = api(f"{quotes}.quote_batch_v1_quotes_batch_post").sync(
            client=client, body=BatchIn.from_dict({"stones": [STONE] * 51})
        )
        assert isinstance(too_many, Problem) and too_many.status == 422
        csv = BodyQuoteCsvV1QuotesBatchCsvPost(
            file=File(
                payload=io.BytesIO(b"carat,cut,color,clarity\n1,Ideal,G,VS2\n"), file_name="s.csv"
            )
        )
        assert isinstance(
            api(f"{quotes}.quote_csv_v1_quotes_batch_csv_post").sync(client=client, body=csv),
            BatchOut,
        )
        big = BodyQuoteCsvV1QuotesBatchCsvPost(
            file=File(
                payload=io.BytesIO(b"carat,cut,color,clarity\n" + b"1,Ideal,G,VS2\n" * 60),
                file_name="s.csv",
            )
        )
        too_big = api(f"{quotes}.quote_csv_v1_quotes_batch_csv_post").sync(client=client, body=big)
        assert isinstance(too_big, Problem) and too_big.status == 413
        nearby = api(f"{quotes}.comparables_v1_comparables_get").sync(
            client=client, carat=1.0, cut=Cut.IDEAL, color=Color.G, clarity=Clarity.VS2
        )
        assert isinstance(nearby, list) and nearby and nearby[0].appraised_on == "2026-01-01"
        assert isinstance(
            api(f"{quotes}.market_index_v1_market_index_get").sync(client=client), MarketIndexOut
        )
        assert isinstance(
            api(f"{quotes}.serving_model_v1_model_get").sync(client=client), ServingModelOut
        )

        upload = BodyUploadV1AppraisalsPost(
            file=File(payload=io.BytesIO(csv_bytes(appraisals.iloc[2000:2100])), file_name="b.csv")
        )
        refused = api(f"{data}.upload_v1_appraisals_post").sync(client=client, body=upload)
        assert isinstance(refused, Problem) and refused.status == 403
        anonymous = api(f"{data}.upload_v1_appraisals_post").sync(client=plain, body=upload)
        assert isinstance(anonymous, Problem) and anonymous.status == 401
        upload.file.payload.seek(0)
        stored = api(f"{data}.upload_v1_appraisals_post").sync(client=expert, body=upload)
        assert isinstance(stored, IngestOut) and stored.stored and stored.batch.id == 2
        unusable = BodyUploadV1AppraisalsPost(
            file=File(payload=io.BytesIO(b"carat\n1\n"), file_name="u.csv")
        )
        bad_file = api(f"{data}.upload_v1_appraisals_post").sync(client=expert, body=unusable)
        assert isinstance(bad_file, Problem) and bad_file.status == 422
        batches = api(f"{data}.batches_v1_batches_get").sync(client=client)
        assert all(isinstance(b, BatchInfo) for b in batches) and len(batches) == 2
        assert isinstance(
            api(f"{data}.get_batch_v1_batches_batch_id_get").sync(client=client, batch_id=2),
            BatchDetail,
        )
        assert isinstance(
            api(f"{data}.get_batch_v1_batches_batch_id_get").sync(client=client, batch_id=9),
            Problem,
        )
        withdrawn = api(f"{data}.withdraw_v1_batches_batch_id_withdraw_post").sync(
            client=expert, batch_id=2, body=WithdrawIn(note="test")
        )
        assert isinstance(withdrawn, BatchInfo) and withdrawn.withdrawn_at is not None
        assert isinstance(
            api(f"{data}.restore_v1_batches_batch_id_restore_post").sync(client=expert, batch_id=2),
            BatchInfo,
        )
        assert isinstance(
            api(f"{data}.appraisals_v1_appraisals_get").sync(client=client, limit=5), AppraisalPage
        )

        run = api(f"{models}.start_training_v1_training_runs_post").sync(
            client=expert, body=TrainingRunIn(force=True)
        )
        assert isinstance(run, TrainingRunOut)
        busy = api(f"{models}.start_training_v1_training_runs_post").sync(
            client=expert, body=TrainingRunIn(force=True)
        )
        assert isinstance(busy, Problem | TrainingRunOut)
        deadline = time.monotonic() + 120
        while run.status == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            run = api(f"{models}.get_training_run_v1_training_runs_run_id_get").sync(
                client=client, run_id=run.id
            )
        assert isinstance(run, TrainingRunOut) and run.status != "running"
        assert all(
            isinstance(r, TrainingRunOut)
            for r in api(f"{models}.training_runs_v1_training_runs_get").sync(client=client)
        )
        versions = api(f"{models}.models_v1_models_get").sync(client=client)
        assert all(isinstance(v, ModelOut) for v in versions)
        assert isinstance(
            api(f"{models}.promote_v1_models_version_promote_post").sync(client=expert, version=1),
            ModelOut,
        )
        rollback = api(f"{models}.rollback_v1_models_rollback_post").sync(client=expert)
        assert isinstance(rollback, ModelOut | Problem)
        nothing = api(f"{models}.promote_v1_models_version_promote_post").sync(
            client=expert, version=77
        )
        assert isinstance(nothing, Problem) and nothing.status == 404

        assert isinstance(api(f"{usage}.usage_v1_usage_get").sync(client=client), UsageOut)
        tiny = plain.with_headers({"X-API-Key": limited})
        assert isinstance(
            api(f"{quotes}.{q}").sync(client=tiny, body=Stone.from_dict(STONE)), QuoteOut
        )
        slowed = api(f"{quotes}.{q}").sync(client=tiny, body=Stone.from_dict(STONE))
        assert isinstance(slowed, Problem) and slowed.status == 429
