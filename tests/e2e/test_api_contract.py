"""The OpenAPI document is a contract: a typed client generated from the live /openapi.json by an
independent generator (openapi-python-client) parses every success body and every problem
document the server actually sends, on a real uvicorn."""

from __future__ import annotations

import importlib
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from diamond_model.enums import Scope
from diamond_model.serving.keys import KeyStore
from diamond_model.storage.store import Store
from tests.e2e.conftest import server_environment
from tests.e2e.server import api_server
from tests.helpers import csv_bytes, make_keys

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


@dataclass(frozen=True)
class Contract:
    """One real server and the client generated from its own /openapi.json, for every case."""

    base: str
    plain: Any  # contract_client.Client without a key
    expert: Any  # every scope
    client: Any  # quoting only
    tiny: Any  # quoting, one request a minute


@pytest.fixture(scope="module")
def contract(seeded_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contract]:
    folder = tmp_path_factory.mktemp("contract")
    database = folder / "seed.sqlite3"
    shutil.copy(seeded_sqlite, database)
    url = f"sqlite:///{database}"
    env = server_environment(
        url, folder / "instance", DIAMOND_AUTO_RETRAIN="false", DIAMOND_MAX_BATCH_STONES="50"
    )
    keys = make_keys(url)
    store = Store(url)
    limited, _ = KeyStore(store).create("tiny", frozenset({Scope.QUOTE}), requests_per_minute=1)
    store.dispose()
    with api_server(env) as base:
        assert generate(base, folder) is not None
        from contract_client import Client

        plain = Client(base_url=base, raise_on_unexpected_status=True, timeout=httpx.Timeout(60))
        yield Contract(
            base=base,
            plain=plain,
            expert=plain.with_headers({"X-API-Key": keys["expert"]}),
            client=plain.with_headers({"X-API-Key": keys["client"]}),
            tiny=plain.with_headers({"X-API-Key": limited}),
        )


Q = "quotes.create_quote"


@pytest.mark.slow
def test_the_health_answers_parse(contract: Contract) -> None:
    from contract_client.models import Health, Liveness, Readiness

    plain = contract.plain
    assert isinstance(api("service.get_liveness").sync(client=plain), Liveness)
    assert isinstance(api("service.get_readiness").sync(client=plain), Readiness)
    assert isinstance(api("service.get_health").sync(client=plain), Health)


@pytest.mark.slow
def test_a_quote_its_record_and_its_problems_parse(contract: Contract) -> None:
    from contract_client.models import Problem, QuoteOut, QuoteRecordOut, Stone

    client = contract.client
    quote = api(Q).sync(client=client, body=Stone.from_dict(STONE))
    assert isinstance(quote, QuoteOut) and quote.explanation.steps[0].feature == "size"
    fetch = api("quotes.get_quote")
    record = fetch.sync(client=client, quote_id=quote.quote_id)
    deadline = time.monotonic() + 15  # records are written every two seconds
    while not isinstance(record, QuoteRecordOut) and time.monotonic() < deadline:
        time.sleep(0.2)
        record = fetch.sync(client=client, quote_id=quote.quote_id)
    assert isinstance(record, QuoteRecordOut) and record.quote.price == quote.price
    missing = fetch.sync(client=client, quote_id="nope")
    assert isinstance(missing, Problem) and missing.status == 404
    invalid = api(Q).sync(client=client, body=Stone.from_dict({**STONE, "carat": 40.0}))
    assert (
        isinstance(invalid, Problem)
        and invalid.status == 422
        and invalid.errors[0].field == "carat"
    )
    pinned = api(Q).sync(client=client, body=Stone.from_dict(STONE), model_version=99)
    assert isinstance(pinned, Problem) and pinned.status == 404


@pytest.mark.slow
def test_batches_files_and_the_market_parse(contract: Contract) -> None:
    from contract_client.models import (
        BatchIn,
        BatchOut,
        BodyCreateQuoteBatchFromCsv,
        Clarity,
        Color,
        Cut,
        MarketIndexOut,
        Problem,
        ServingModelOut,
    )
    from contract_client.types import File

    client = contract.client
    batch_route = api("quotes.create_quote_batch")
    batch = batch_route.sync(
        client=client, body=BatchIn.from_dict({"stones": [STONE, {**STONE, "cut": "Superb"}]})
    )
    assert isinstance(batch, BatchOut) and (batch.priced, batch.failed) == (1, 1)
    too_many = batch_route.sync(client=client, body=BatchIn.from_dict({"stones": [STONE] * 51}))
    assert isinstance(too_many, Problem) and too_many.status == 422

    def csv_body(content: bytes) -> BodyCreateQuoteBatchFromCsv:
        return BodyCreateQuoteBatchFromCsv(
            file=File(payload=io.BytesIO(content), file_name="s.csv")
        )

    csv_route = api("quotes.create_quote_batch_from_csv")
    priced = csv_route.sync(
        client=client, body=csv_body(b"carat,cut,color,clarity\n1,Ideal,G,VS2\n")
    )
    assert isinstance(priced, BatchOut)
    many = b"carat,cut,color,clarity\n" + b"1,Ideal,G,VS2\n" * 60
    too_big = csv_route.sync(client=client, body=csv_body(many))
    assert isinstance(too_big, Problem) and too_big.status == 413, "60 stones, 50 allowed"
    nearby = api("quotes.list_comparables").sync(
        client=client, carat=1.0, cut=Cut.IDEAL, color=Color.G, clarity=Clarity.VS2
    )
    assert isinstance(nearby, list) and nearby and nearby[0].appraised_on == "2026-01-01"
    market = api("quotes.get_market_index").sync(client=client)
    assert isinstance(market, MarketIndexOut)
    serving = api("quotes.get_serving_model").sync(client=client)
    assert isinstance(serving, ServingModelOut)


@pytest.mark.slow
def test_uploads_batches_and_their_problems_parse(
    contract: Contract, appraisals: pd.DataFrame
) -> None:
    from contract_client.models import (
        AppraisalPage,
        BatchDetail,
        BatchInfo,
        BodyUploadAppraisals,
        IngestOut,
        Problem,
        WithdrawIn,
    )
    from contract_client.types import File

    upload = BodyUploadAppraisals(
        file=File(payload=io.BytesIO(csv_bytes(appraisals.iloc[2000:2100])), file_name="b.csv")
    )
    refused = api("data.upload_appraisals").sync(client=contract.client, body=upload)
    assert isinstance(refused, Problem) and refused.status == 403
    anonymous = api("data.upload_appraisals").sync(client=contract.plain, body=upload)
    assert isinstance(anonymous, Problem) and anonymous.status == 401
    upload.file.payload.seek(0)
    stored = api("data.upload_appraisals").sync(client=contract.expert, body=upload)
    assert isinstance(stored, IngestOut) and stored.stored and stored.batch.id == 2
    unusable = BodyUploadAppraisals(file=File(payload=io.BytesIO(b"carat\n1\n"), file_name="u.csv"))
    bad_file = api("data.upload_appraisals").sync(client=contract.expert, body=unusable)
    assert isinstance(bad_file, Problem) and bad_file.status == 422
    no_read = api("data.list_batches").sync(client=contract.client)
    assert isinstance(no_read, Problem) and no_read.status == 403, "stored prices need data:read"
    batches = api("data.list_batches").sync(client=contract.expert)
    assert all(isinstance(b, BatchInfo) for b in batches) and len(batches) == 2
    assert isinstance(
        api("data.get_batch").sync(client=contract.expert, batch_id=2),
        BatchDetail,
    )
    assert isinstance(
        api("data.get_batch").sync(client=contract.expert, batch_id=9),
        Problem,
    )
    withdrawn = api("data.withdraw_batch").sync(
        client=contract.expert, batch_id=2, body=WithdrawIn(note="test")
    )
    assert isinstance(withdrawn, BatchInfo) and withdrawn.withdrawn_at is not None
    assert isinstance(
        api("data.restore_batch").sync(client=contract.expert, batch_id=2),
        BatchInfo,
    )
    assert isinstance(
        api("data.list_appraisals").sync(client=contract.expert, limit=5),
        AppraisalPage,
    )


@pytest.mark.slow
def test_training_runs_and_models_parse(contract: Contract) -> None:
    from contract_client.models import ModelOut, Problem, TrainingRunIn, TrainingRunOut

    run = api("models.start_training").sync(client=contract.expert, body=TrainingRunIn(force=True))
    assert isinstance(run, TrainingRunOut)
    busy = api("models.start_training").sync(client=contract.expert, body=TrainingRunIn(force=True))
    assert isinstance(busy, Problem | TrainingRunOut)
    deadline = time.monotonic() + 120
    while run.status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        run = api("models.get_training_run").sync(client=contract.client, run_id=run.id)
    assert isinstance(run, TrainingRunOut) and run.status != "running"
    assert all(
        isinstance(r, TrainingRunOut)
        for r in api("models.list_training_runs").sync(client=contract.client)
    )
    versions = api("models.list_models").sync(client=contract.client)
    assert all(isinstance(v, ModelOut) for v in versions)
    assert isinstance(
        api("models.promote_model").sync(client=contract.expert, version=1),
        ModelOut,
    )
    rollback = api("models.roll_back_model").sync(client=contract.expert)
    assert isinstance(rollback, ModelOut | Problem)
    nothing = api("models.promote_model").sync(client=contract.expert, version=77)
    assert isinstance(nothing, Problem) and nothing.status == 404


@pytest.mark.slow
def test_usage_and_a_limit_parse(contract: Contract) -> None:
    from contract_client.models import Problem, QuoteOut, Stone, UsageOut

    assert isinstance(api("usage.get_usage").sync(client=contract.client), UsageOut)
    assert isinstance(api(Q).sync(client=contract.tiny, body=Stone.from_dict(STONE)), QuoteOut)
    slowed = api(Q).sync(client=contract.tiny, body=Stone.from_dict(STONE))
    assert isinstance(slowed, Problem) and slowed.status == 429
